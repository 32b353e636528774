"""The life of one run of a job: the only code that writes a run's status transitions and sends its callback.

    queued/created -> running (attempt n; progress per step, written by the job process)
        -> completed | failed | timeout (JOB_TIMEOUT_SECONDS) | cancelled (a cancel request)
        -> queued again ("try n failed ...; it will be retried"), when the caller's policy retries

The GenePlexus work runs in a supervised job process (mljob.supervisor); this module turns how that
ended into the job's final state, sends the callback once for it, and leaves no partial results behind.
Every entry point (the queue trigger, testfn, `mljob run`, LocalLauncher, `run_geneplexus`) calls `run_job`
with the settings it read and a `RunPolicy`; none of them decides a final state itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import mljob
from mljob import callback, supervisor
from mljob.errors import (
    InvalidInput,
    JobError,
    JobFinished,
    JobNotReady,
    JobProcessDied,
    JobWorkFailed,
    PathEscape,
    RunCancelled,
    RunTimedOut,
)
from mljob.job_log import job_log
from mljob.lease import RunLease
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus, Progress, State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPolicy:
    """What the caller wants from a run beyond running it: retries, waiting for a lease, skipping finished jobs.

    With `max_tries` 1 (the default: `mljob run`, testfn, LocalLauncher) an unexpected error ends the
    job `failed` at once. The queue trigger passes its dequeue count and maxDequeueCount: an unexpected
    error before the last try puts the job back to `queued` and is re-raised (the queue redelivers); on
    the last try the job ends `failed` and the error is re-raised (the message goes to the poison queue).
    Timeouts, cancels and running out of memory are final under every policy.
    """

    try_number: int = 1
    max_tries: int = 1
    lease_wait: float = 0.0  # seconds to wait for a run lease another run holds
    skip_finished: bool = False  # JobFinished instead of running a completed or cancelled job again

    @classmethod
    def queue(cls, dequeue_count: int, max_dequeue_count: int, settings: Settings) -> RunPolicy:
        """The queue trigger's policy: retry until maxDequeueCount, never run a completed or cancelled job, and
        wait past the lease's staleness for a held lease (a live duplicate finishes; a dead run's goes stale)."""
        return cls(
            try_number=dequeue_count,
            max_tries=max_dequeue_count,
            lease_wait=settings.lease_stale_seconds * 1.5,
            skip_finished=True,
        )

    @property
    def retries(self) -> bool:
        return self.max_tries > 1

    @property
    def last_try(self) -> bool:
        return self.try_number >= self.max_tries


ONCE = RunPolicy()
CANCEL_WAIT_SECONDS = 15.0  # how long a cancel request waits for a running job to stop
_SKIPPED = frozenset({State.COMPLETED, State.CANCELLED})


def run_job(store: ResultsFileStore, jobname: str, settings: Settings, policy: RunPolicy = ONCE) -> JobStatus:
    """Run `jobname` once under its run lease and return its final status.

    Raises JobNotFound (no such job), JobBusy (a live run holds its lease), JobFinished (completed or
    cancelled, and the policy skips those), or, when the policy retries, the run's unexpected error (see
    RunPolicy). A job folder tampered with (a link out of it) ends `failed` when its status can still be
    written. A job cancelled before its run starts ends `cancelled` without running.
    """
    store.require_job(jobname)
    try:
        _refuse_finished(store, jobname, policy)
        lease = RunLease.from_settings(store, jobname, settings)
    except PathEscape as exc:
        return _tampered(store, jobname, exc, settings)
    if not lease.acquire(wait=policy.lease_wait):
        raise lease.busy()
    try:
        _refuse_finished(store, jobname, policy)  # finished by another run between the check and the lease
        if store.cancel_requested(jobname):
            return _end(store, jobname, State.CANCELLED, "cancelled by request before it ran", settings, lease)
        return _run(store, jobname, settings, policy, lease)
    except PathEscape as exc:
        return _tampered(store, jobname, exc, settings)
    finally:
        lease.release()


def cancel_job(store: ResultsFileStore, jobname: str, settings: Settings) -> JobStatus:
    """Cancel a job; returns its status: `cancelled`, or still `running` while its run stops (within seconds).

    A created or queued job becomes `cancelled` at once (its queue message is dropped when it comes). A
    running job gets a cancel marker in its folder, which its run sees wherever it runs; this waits up to
    CANCEL_WAIT_SECONDS for it to end. Cancelling a cancelled job answers the same again. JobNotReady for a
    job that has completed, failed or timed out (it stays as it is); JobNotFound for an unknown job.
    """
    store.require_job(jobname)
    status = _status(store, jobname)
    if status is not None and status.is_final:
        return _cancelled_or_refused(status)
    store.request_cancel(jobname)
    lease = RunLease.from_settings(store, jobname, settings)
    if lease.acquire():  # no run in progress: created, queued, or a dead run's stale lease
        try:
            status = _status(store, jobname)
            if status is None or not status.is_final:
                with job_log(store, jobname):
                    return _end(store, jobname, State.CANCELLED, "cancelled by request before it ran", settings, lease)
            store.clear_cancel(jobname)
        finally:
            lease.release()
    else:  # a run holds the lease: it sees the marker within CANCEL_CHECK_SECONDS and stops
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while (status := _status(store, jobname)) is None or not status.is_final:
            if time.monotonic() >= deadline:
                return status or store.read_status(jobname)
            time.sleep(0.25)
        if status.status is not State.CANCELLED:  # the run ended otherwise just before the marker came
            store.clear_cancel(jobname)
    return _cancelled_or_refused(store.read_status(jobname))


def _cancelled_or_refused(status: JobStatus) -> JobStatus:
    if status.status is State.CANCELLED:
        return status
    raise JobNotReady(
        f"job {status.jobname} is {status.status.value}: only a created, queued or running job can be cancelled"
    )


def _status(store: ResultsFileStore, jobname: str) -> JobStatus | None:
    try:
        return store.read_status(jobname)
    except PathEscape:
        raise
    except InvalidInput:  # missing or corrupt: started anew by the next write
        return None


def _refuse_finished(store: ResultsFileStore, jobname: str, policy: RunPolicy) -> None:
    if not policy.skip_finished:
        return
    try:
        status = store.read_status(jobname)
    except PathEscape:
        raise
    except InvalidInput:
        return
    if status.status in _SKIPPED:
        raise JobFinished(f"job {jobname} is {status.status.value} already")


def _run(store: ResultsFileStore, jobname: str, settings: Settings, policy: RunPolicy, lease: RunLease) -> JobStatus:
    try:
        attempt = store.read_status(jobname).attempt + 1
    except PathEscape:
        raise
    except InvalidInput:
        attempt = 1
    with job_log(store, jobname):
        store.update_status(
            jobname, State.RUNNING, f"run {attempt} started", attempt=attempt, progress=Progress(step="starting")
        )
        log.info("job %s: run %d started (mljob %s, %s)", jobname, attempt, mljob.__version__, _limits(settings))
        try:
            summary = supervisor.supervise_job(store, jobname, settings, on_process=lease.note_process)
        except RunTimedOut as exc:
            return _end(store, jobname, State.TIMEOUT, str(exc), settings, lease)
        except RunCancelled as exc:
            return _end(store, jobname, State.CANCELLED, str(exc), settings, lease)
        except (JobError, InvalidInput) as exc:  # bad input, too few genes, out of memory: a retry cannot help
            return _end(store, jobname, State.FAILED, str(exc), settings, lease)
        except KeyboardInterrupt:  # `mljob run` stopped with Ctrl-C: the job process is gone
            stopped = "stopped with Ctrl-C while it ran; no results were kept"
            _end(store, jobname, State.CANCELLED, stopped, settings, lease)
            raise
        except Exception as exc:  # the job process died, or the work raised: the retry policy decides
            log.error("job %s: run %d failed: %s", jobname, attempt, exc)
            error = str(exc) if isinstance(exc, JobProcessDied | JobWorkFailed) else f"{type(exc).__name__}: {exc}"
            reason = f"unexpected error ({error}); details are in job.log"
            if policy.retries and not policy.last_try:
                _clean(store, jobname)
                store.update_status(jobname, State.QUEUED, f"try {attempt} failed: {reason}; it will be retried")
                raise
            if policy.retries:
                reason = f"failed on each of {policy.try_number} tries; last error: {error} (details are in job.log)"
            _end(store, jobname, State.FAILED, reason, settings, lease)
            if policy.retries:
                raise
            return store.read_status(jobname)
        final = store.update_status(jobname, State.COMPLETED, summary, progress=Progress(step="done", percent=100))
        store.clear_cancel(jobname)  # a cancel that came too late: the job completed
        log.info("job %s completed: %s", jobname, summary)
        _finish(store, final, settings, lease)
    return final


def _end(
    store: ResultsFileStore, jobname: str, state: State, message: str, settings: Settings, lease: RunLease
) -> JobStatus:
    """A final state other than completed: no results are kept, the cancel marker goes, the callback is sent."""
    _clean(store, jobname)
    final = store.update_status(jobname, state, message)
    store.clear_cancel(jobname)
    (log.warning if state is State.CANCELLED else log.error)("job %s %s: %s", jobname, state.value, message)
    _finish(store, final, settings, lease)
    return final


def _finish(store: ResultsFileStore, final: JobStatus, settings: Settings, lease: RunLease) -> None:
    """After a final status is written: release the lease at once (a client that sees the final state may re-run
    the job straight away), then send the callback, which may take seconds."""
    lease.release()
    _notify(store, final, settings)


def _clean(store: ResultsFileStore, jobname: str) -> None:
    """Remove what a stopped or failed run may have left: staging folders, temporary files, results/ and job_info."""
    store.discard_partial(jobname)
    store.discard_results(jobname)


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


def _limits(settings: Settings) -> str:
    cache = f"data cache {settings.data_cache_mb} MB" if settings.data_cache_mb else "data cache off"
    memory = f"memory limit {settings.job_memory_mb} MB" if settings.job_memory_mb else "no memory limit"
    return f"{cache}, time limit {settings.job_timeout_seconds} s, {memory}"
