"""The life of one run of a job: the only code that writes a run's status transitions and sends its callback.

    queued/created -> running (attempt n, progress per step) -> completed | failed
                                                             -> queued again ("try n failed ...; it will be
                                                                retried"), when the caller's policy retries

Every entry point (the queue worker, testfn, `mljob run`, LocalLauncher, `run_geneplexus`) calls `run_job`
with the settings it read and a `RunPolicy`; none of them decides a final state itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mljob
from mljob import callback, manifest
from mljob.errors import InvalidInput, JobCompleted, JobError, PathEscape
from mljob.lease import RunLease
from mljob.pipeline import STEP_PERCENT, run_pipeline, save_class
from mljob.report import REPORT_FILE, ReportData, render_report
from mljob.results import write_web_files
from mljob.results_store import ResultsFileStore, atomic_write
from mljob.settings import Settings
from mljob.status import JobStatus, Progress, State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPolicy:
    """What the caller wants from a run beyond running it: retries, waiting for a lease, skipping a completed job.

    With `max_tries` 1 (the default: `mljob run`, testfn, LocalLauncher) an unexpected error ends the
    job `failed` at once. The queue worker passes its dequeue count and maxDequeueCount: an unexpected
    error before the last try puts the job back to `queued` and is re-raised (the queue redelivers); on
    the last try the job ends `failed` and the error is re-raised (the message goes to the poison queue).
    """

    try_number: int = 1
    max_tries: int = 1
    lease_wait: float = 0.0  # seconds to wait for a run lease another run holds
    skip_completed: bool = False  # JobCompleted instead of running a completed job again

    @classmethod
    def queue(cls, dequeue_count: int, max_dequeue_count: int, settings: Settings) -> RunPolicy:
        """The queue worker's policy: retry until maxDequeueCount, never run a completed job twice, and wait
        past the lease's staleness for a held lease (a live duplicate finishes; a dead run's lease goes stale)."""
        return cls(
            try_number=dequeue_count,
            max_tries=max_dequeue_count,
            lease_wait=settings.lease_stale_seconds * 1.5,
            skip_completed=True,
        )

    @property
    def retries(self) -> bool:
        return self.max_tries > 1

    @property
    def last_try(self) -> bool:
        return self.try_number >= self.max_tries


ONCE = RunPolicy()


def run_job(store: ResultsFileStore, jobname: str, settings: Settings, policy: RunPolicy = ONCE) -> JobStatus:
    """Run `jobname` once under its run lease and return its final status (completed or failed, with a reason).

    Raises JobNotFound (no such job), JobBusy (a live run holds its lease), JobCompleted (completed, and
    the policy skips completed jobs), or, when the policy retries, the run's unexpected error (see RunPolicy).
    A job folder tampered with (a link out of it) ends `failed` when its status can still be written.
    """
    store.require_job(jobname)
    try:
        _refuse_completed(store, jobname, policy)
        lease = RunLease.from_settings(store, jobname, settings)
    except PathEscape as exc:
        return _tampered(store, jobname, exc, settings)
    if not lease.acquire(wait=policy.lease_wait):
        raise lease.busy()
    try:
        _refuse_completed(store, jobname, policy)  # finished by another run between the check and the lease
        return _run(store, jobname, settings, policy)
    except PathEscape as exc:
        return _tampered(store, jobname, exc, settings)
    finally:
        lease.release()


def _refuse_completed(store: ResultsFileStore, jobname: str, policy: RunPolicy) -> None:
    if not policy.skip_completed:
        return
    try:
        status = store.read_status(jobname)
    except PathEscape:
        raise
    except InvalidInput:
        return
    if status.status is State.COMPLETED:
        raise JobCompleted(f"job {jobname} is completed already")


def _run(store: ResultsFileStore, jobname: str, settings: Settings, policy: RunPolicy) -> JobStatus:
    try:
        attempt = store.read_status(jobname).attempt + 1
    except PathEscape:
        raise
    except InvalidInput:
        attempt = 1
    with _job_log(store, jobname):
        store.update_status(
            jobname, State.RUNNING, f"run {attempt} started", attempt=attempt, progress=Progress(step="starting")
        )
        log.info(
            "job %s: run %d started (mljob %s, data cache %s)",
            jobname,
            attempt,
            mljob.__version__,
            f"{settings.data_cache_mb} MB" if settings.data_cache_mb else "off",
        )
        try:
            summary = _complete(store, jobname, settings)
        except (JobError, InvalidInput) as exc:
            log.error("job %s failed: %s", jobname, exc)
            final = store.update_status(jobname, State.FAILED, str(exc))
        except Exception as exc:
            log.exception("job %s: run %d failed with an unexpected error", jobname, attempt)
            error = f"{type(exc).__name__}: {exc}"
            if policy.retries and not policy.last_try:
                reason = f"unexpected error ({error}); details are in job.log"
                store.update_status(jobname, State.QUEUED, f"try {attempt} failed: {reason}; it will be retried")
                raise
            if policy.retries:
                reason = f"failed on each of {policy.try_number} tries; last error: {error} (details are in job.log)"
            else:
                reason = f"unexpected error ({error}); details are in job.log"
            final = store.update_status(jobname, State.FAILED, reason)
            _notify(store, final, settings)
            if policy.retries:
                raise
            return final
        else:
            final = store.update_status(jobname, State.COMPLETED, summary, progress=Progress(step="done", percent=100))
            log.info("job %s completed: %s", jobname, summary)
        _notify(store, final, settings)
    return final


def _complete(store: ResultsFileStore, jobname: str, settings: Settings) -> str:
    """Read the inputs, run the pipeline, store results/ and job_info.json; returns the completed message."""
    config = store.read_config(jobname)
    genes = store.read_genes(jobname)
    negatives = store.read_negatives(jobname)
    store.discard_results(jobname)
    if settings.data_path is None:
        raise JobError("the server cannot run jobs: DATA_PATH, the folder of the GenePlexus backend data, is not set")
    data_path = settings.data_path

    def progress(step: str, percent: int) -> None:
        store.update_status(jobname, State.RUNNING, step, progress=Progress(step=step, percent=percent))

    result = run_pipeline(config, genes, negatives, data_path, on_step=progress, cache_mb=settings.data_cache_mb)
    progress("saving", STEP_PERCENT["saving"])
    saving = time.perf_counter()
    with store.staging_results(jobname) as staging:
        save_class(result.gp, staging)
        web = write_web_files(result.gp, staging, top=config.num_nodes)
        info = manifest.job_info(result)
        report = render_report(ReportData.from_web(config.model_dump(mode="json"), info, web))
        atomic_write(staging / REPORT_FILE, report)
    info["seconds"]["saving"] = round(time.perf_counter() - saving, 4)
    info["total_seconds"] = round(time.time() - result.started, 3)
    info["result_files"] = store.list_results(jobname)
    store.write_job_info(jobname, info)
    return manifest.summary(info)


def _tampered(store: ResultsFileStore, jobname: str, exc: PathEscape, settings: Settings) -> JobStatus:
    """End a job whose folder was tampered with `failed`; re-raise when even its status cannot be written."""
    log.warning("job %s refused: %s", jobname, exc)
    try:
        final = store.update_status(jobname, State.FAILED, f"the job folder was tampered with: {exc}")
    except (InvalidInput, OSError):
        raise exc from None
    _notify(store, final, settings)
    return final


def _notify(store: ResultsFileStore, final: JobStatus, settings: Settings) -> None:
    """Send the callback of a final state: once, and never failing the job."""
    callback.notify(store, final, callback.allowed_hosts(settings.callback_allowed_hosts))


class _ThisThread(logging.Filter):
    """Lets through only records from the thread running this job (jobs may share a process)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


@contextmanager
def _job_log(store: ResultsFileStore, jobname: str) -> Iterator[None]:
    """Send this thread's log lines (mljob's, geneplexus's, ...) to the job's job.log while it runs.

    The handler sits on the root logger: GenePlexus resets the level of every stream handler on its
    own logger (file handlers included), so a handler there would lose its INFO lines.
    """
    handler = store.log_handler(jobname)
    handler.addFilter(_ThisThread())
    mljob_logger = logging.getLogger("mljob")
    if mljob_logger.level == logging.NOTSET:
        mljob_logger.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
