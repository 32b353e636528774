"""Enqueueing: put jobs on the queue, all or nothing. The HTTP API, the CLI, QueueLauncher and gpz-ml all call it.

Every job is checked before anything is written (a valid name, a folder with a valid config and gene
list, not queued, running or completed unless it is a re-run); then each job is marked `queued` and
its message sent (in that order, so a host that receives a message always finds its job queued).
When a send fails, the messages already sent are withdrawn and every status is put back.
A job folder of the 2023 GenePlexus web app is refused, and its own status file says `Failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mljob.errors import InvalidInput, JobNotFound, JobNotReady, LegacyJobFolder, MljobError, QueueUnavailable
from mljob.job import validate_jobnames
from mljob.queue import JobQueue, Sent
from mljob.results_store import LEGACY_FAILED, LEGACY_STATUS_SUFFIX, ResultsFileStore
from mljob.status import State

log = logging.getLogger(__name__)

BUSY_STATES = frozenset({State.QUEUED, State.RUNNING, State.COMPLETED})
PARALLEL_CALLS = 8  # queue calls and status writes of one enqueue in flight at once


def enqueue_jobs(
    store: ResultsFileStore, queue: JobQueue, jobnames: Iterable[str], *, rerun: bool = False
) -> list[str]:
    """Queue every job or none of them; mark them `queued`; return their names (duplicates dropped, in order).

    Raises InvalidInput (a bad name, config or gene list), JobNotFound (no such job folder),
    JobNotReady (a job is queued, running or completed and `rerun` is false) before anything is
    written, and QueueUnavailable when a message cannot be sent: the messages already sent are
    withdrawn and every status is put back (a message that cannot be withdrawn is named).
    A job folder of the 2023 GenePlexus web app (LegacyJobFolder) is the one write of a refused call:
    its `<job>_jobstatus` is set to `Failed`, which that app's pages read.
    """
    names = validate_jobnames(jobnames)
    previous = _check_jobs(store, names, rerun)
    marked: list[str] = []

    def mark_and_send(name: str) -> Sent:
        store.clear_cancel(name)  # a re-run of a cancelled job
        store.update_status(name, State.QUEUED, "queued for processing")
        marked.append(name)
        return queue.send(name)

    sent, error = _each(mark_and_send, names)
    if error is not None:
        stuck = _withdraw(queue, [(n, m) for n, m in zip(names, sent, strict=True) if m is not None])
        _restore_statuses(store, marked, previous)
        if isinstance(error, QueueUnavailable):
            raise QueueUnavailable(f"{error}; {_nothing_enqueued(stuck, len(names))}") from None
        raise error
    log.info("enqueued %d job(s) on queue %s: %s", len(names), queue.name, ", ".join(names))
    return names


def _check_jobs(store: ResultsFileStore, names: list[str], rerun: bool) -> dict[str, bytes | None]:
    """Check every job (see `_check_job`); raise the first job's error, after marking each 2023 web-app folder failed.

    Every job is checked even after one fails, so that each 2023 web-app folder the call names learns that
    it failed, whatever else the call holds. Returns each job's status.json as it is.
    """
    previous: dict[str, bytes | None] = {}
    errors: list[MljobError] = []
    for name in names:
        try:
            previous[name] = _check_job(store, name, rerun)
        except LegacyJobFolder as exc:
            errors.append(_refuse_legacy(store, name, exc))
        except MljobError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return previous


def _refuse_legacy(store: ResultsFileStore, name: str, exc: LegacyJobFolder) -> MljobError:
    """Write `Failed` into a 2023 web-app folder's `<job>_jobstatus` (its pages read it); the error to report."""
    status_file = f"{name}{LEGACY_STATUS_SUFFIX}"
    try:
        written = store.mark_legacy_failed(name)
    except MljobError as write_error:  # e.g. PathEscape: the status file is a link; nothing was written
        return write_error
    if written:
        log.warning("job %s refused: a job folder of the 2023 web app; %s set to %s", name, status_file, LEGACY_FAILED)
        return LegacyJobFolder(f"{exc}; {status_file} now reads {LEGACY_FAILED}; nothing was enqueued")
    return LegacyJobFolder(f"{exc}; {status_file} says the job completed and was left as it is; nothing was enqueued")


def _check_job(store: ResultsFileStore, name: str, rerun: bool) -> bytes | None:
    """Raise unless the job can be queued; returns its status.json as it is (see `status_snapshot`)."""
    try:
        store.require_job(name)
    except JobNotFound as exc:
        raise JobNotFound(f"{exc}; nothing was enqueued") from None
    store.read_config(name)
    store.read_genes(name)
    store.read_negatives(name)  # validated when the job has any
    snapshot = store.status_snapshot(name)  # PathEscape when status.json links out: never written through
    try:
        status = store.parse_status(name, snapshot)
    except InvalidInput:
        return snapshot  # a missing or corrupt status.json is started anew by update_status
    if status.status in BUSY_STATES and not rerun:
        raise JobNotReady(
            f"job {name} is {status.status.value}; nothing was enqueued (ask for a re-run to queue it again)"
        )
    return snapshot


def _withdraw(queue: JobQueue, sent: list[tuple[str, Sent]]) -> list[str]:
    """Delete the messages sent by this call; returns the jobs whose message could not be deleted.

    A delete fails when the service is down or when a host has already received the message
    (receiving changes its pop receipt): either way that job may still run.
    """
    stuck = []
    for name, message in sent:
        try:
            queue.delete(message)
        except QueueUnavailable as exc:
            stuck.append(name)
            log.warning("could not withdraw the message of job %s (%s); it may still be delivered", name, exc)
    return stuck


def _restore_statuses(store: ResultsFileStore, names: list[str], previous: dict[str, bytes | None]) -> None:
    """Put back status.json as it was before this enqueue, unless a run has moved the job on since."""
    for name in names:
        try:
            if store.read_status(name).status is State.QUEUED:
                store.restore_status(name, previous[name])
        except Exception:  # the original error is the one to report
            log.exception("could not restore the status of job %s after a failed enqueue", name)


def _nothing_enqueued(stuck: list[str], total: int) -> str:
    if not stuck:
        return "nothing was enqueued" if total == 1 else f"none of the {total} jobs was enqueued"
    return (
        f"no job was left marked queued, but the message of job(s) {', '.join(stuck)} could not be withdrawn "
        "and may still be delivered"
    )


def _each(work: Callable[[Any], Any], items: list[Any]) -> tuple[list[Any], BaseException | None]:
    """Run `work` on every item, a few at a time (queue round trips and status writes wait on I/O).

    Returns the results in the order of `items` (None where `work` raised) and the first error, if any.
    """
    if len(items) <= 1:  # one job: no pool
        try:
            return [work(item) for item in items], None
        except BaseException as exc:  # reported to the caller, which rolls back
            return [None] * len(items), exc
    with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    results: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        exc = future.exception()
        results.append(None if exc else future.result())
        error = error or exc
    return results, error
