"""The queue worker: what the queue-triggered function does with one message, safe under redelivery.

Delivery is at least once. A message that cannot name a valid, existing job is dropped (logged
with its id); a completed job is skipped; a job whose run lease is held by a live run elsewhere is
not started twice. Failures a retry cannot fix end the job `failed` at once. Other failures put the
job back to `queued` and re-raise, so that the host retries; on the last allowed try the job is
marked `failed` first, and the re-raised error sends the message to the poison queue.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mljob import callback
from mljob.errors import InvalidInput, SettingsError
from mljob.lease import RunLease
from mljob.queue import decode_message
from mljob.results_store import PathEscape, ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.settings import Settings
from mljob.status import JobStatus, State

log = logging.getLogger(__name__)

DEFAULT_MAX_DEQUEUE_COUNT = 5


def max_dequeue_count(host_json: Path) -> int:
    """extensions.queues.maxDequeueCount of a host.json (the Functions default, 5, when absent)."""
    try:
        queues = json.loads(host_json.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
        return int(queues.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MAX_DEQUEUE_COUNT


def process_message(
    body: bytes | str,
    *,
    message_id: str,
    dequeue_count: int,
    max_dequeue_count: int,
    settings: Settings,
) -> str:
    """Handle one queue message; returns what happened (dropped, skipped, busy, completed, failed)."""
    message_id = _for_log(message_id)
    try:
        jobname = decode_message(body)
    except InvalidInput as exc:
        log.warning("queue message %s dropped: %s", message_id, exc)
        return "dropped"
    store = ResultsFileStore(settings.require_jobs_path())
    try:
        return _process(store, jobname, message_id, dequeue_count, max_dequeue_count, settings)
    except PathEscape as exc:  # a tampered job folder: a retry cannot help, and nothing is written through it
        log.warning("queue message %s: job %s refused: %s", message_id, jobname, exc)
        try:
            store.update_status(jobname, State.FAILED, f"the job folder was tampered with: {exc}")
        except (InvalidInput, OSError):
            return "dropped"
        return State.FAILED.value


def _process(
    store: ResultsFileStore,
    jobname: str,
    message_id: str,
    dequeue_count: int,
    max_dequeue_count: int,
    settings: Settings,
) -> str:
    if not store.exists(jobname):
        log.warning("queue message %s dropped: job %s not found in %s", message_id, jobname, store.root)
        return "dropped"
    if _completed(store, jobname):
        log.info("queue message %s: job %s is completed already; skipped", message_id, jobname)
        return "skipped"
    lease = RunLease(store, jobname, stale_after=settings.lease_stale_seconds)
    # A held lease is a live run (this message is a duplicate: let that run finish) or a run that died
    # holding this very message (its heartbeat stops): waiting past the staleness limit tells them apart.
    if not lease.acquire(wait=settings.lease_stale_seconds * 1.5):
        log.info("queue message %s: job %s is being run by %s; not started twice", message_id, jobname, lease.holder())
        return "busy"
    try:
        if _completed(store, jobname):  # finished by another run between the check and the lease
            return "skipped"
        final = run_job(store, jobname, settings, try_number=dequeue_count, last_try=dequeue_count >= max_dequeue_count)
    finally:
        lease.release()
    log.info("queue message %s: job %s %s (try %d)", message_id, jobname, final.status.value, dequeue_count)
    return final.status.value


def run_job(store: ResultsFileStore, jobname: str, settings: Settings, *, try_number: int, last_try: bool) -> JobStatus:
    """Run a job whose lease is held; on the last try an unexpected error marks it failed, then re-raises."""
    try:
        data_path = settings.require_data_path()
    except SettingsError as exc:
        final = store.update_status(jobname, State.FAILED, f"the server cannot run jobs: {exc}")
        callback.notify(store, final)
        return final
    try:
        return run_geneplexus(jobname, store, data_path, retry=True)
    except Exception as exc:
        if last_try:
            final = store.update_status(
                jobname,
                State.FAILED,
                f"failed on each of {try_number} tries; last error: {type(exc).__name__}: {exc} "
                "(details are in job.log)",
            )
            callback.notify(store, final)
        raise


def _for_log(text: object) -> str:
    """`text` as it may appear in a log line: unchanged when it is plain printable ASCII, else escaped."""
    value = str(text)
    return value if value.isascii() and value.isprintable() else ascii(value)


def _completed(store: ResultsFileStore, jobname: str) -> bool:
    try:
        return store.read_status(jobname).status is State.COMPLETED
    except InvalidInput:
        return False
