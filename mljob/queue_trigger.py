"""The queue trigger: what the queue-triggered function does with one message, safe under redelivery.

Delivery is at least once. A message that cannot name a valid, existing job is dropped (logged with
its id); a completed job is skipped; a job whose run lease a live run holds is not started twice. The
run itself, its retries and its final status belong to `mljob.lifecycle` (with the queue's policy):
an error re-raised from there makes the host deliver the message again, or move it to the poison queue.
A wrong deployment (a malformed setting, JOBS_PATH or DATA_PATH not a folder) is the server's fault, not the
job's: the message is left to be retried (`misconfigured`) and its job is not touched.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mljob import messages
from mljob.errors import HostJsonError, InvalidInput, JobBusy, JobFinished, JobNotFound, SettingsError
from mljob.host_config import HostConfig, QueueOptions
from mljob.lifecycle import RunPolicy, run_job
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings

log = logging.getLogger(__name__)


def max_dequeue_count(host_json: Path) -> int:
    """extensions.queues.maxDequeueCount of a host.json as the Functions host reads it (keys in any case; 5 when
    absent); when host.json is wrong, the default with a warning that names what is wrong."""
    try:
        return HostConfig.load(host_json).queues.max_dequeue_count
    except HostJsonError as exc:
        default = QueueOptions().max_dequeue_count
        log.warning("%s; counting tries against the Functions default, %d", exc, default)
        return default


def handle_message(
    body: bytes | str,
    *,
    message_id: str,
    dequeue_count: int,
    max_dequeue_count: int,
    settings: Settings,
) -> str:
    """Handle one queue message; returns what happened (dropped, skipped, busy, completed, failed).
    SettingsError, before anything is read, when JOBS_PATH or DATA_PATH is not a folder."""
    message_id = _for_log(message_id)
    store = ResultsFileStore.from_settings(settings)
    settings.require_data_path()
    try:
        jobname = messages.decode(body)
        final = run_job(store, jobname, settings, RunPolicy.queue(dequeue_count, max_dequeue_count, settings))
    except (InvalidInput, JobNotFound) as exc:  # InvalidInput: a bad message, or a job folder that links out
        log.warning("queue message %s dropped: %s", message_id, exc)
        return "dropped"
    except JobFinished as exc:  # completed (a redelivery), or cancelled while it waited in the queue
        log.info("queue message %s skipped: %s; not run", message_id, exc)
        return "skipped"
    except JobBusy as exc:
        log.info("queue message %s: %s; not started twice", message_id, exc)
        return "busy"
    log.info("queue message %s: job %s %s (try %d)", message_id, jobname, final.status.value, dequeue_count)
    return final.status.value


def misconfigured(message_id: str, dequeue_count: int, max_dequeue_count: int, exc: SettingsError) -> SettingsError:
    """Log a wrong deployment once for this delivery (one line, no traceback) and return the short error to raise
    instead: the host delivers the message again, its job untouched."""
    log.error(
        "queue message %s not run (try %d of %d), to be retried: the server is misconfigured: %s",
        _for_log(message_id),
        dequeue_count,
        max_dequeue_count,
        exc,
    )
    return SettingsError(f"the server is misconfigured (logged above); message {_for_log(message_id)} is retried")


def _for_log(text: object) -> str:
    """`text` as it may appear in a log line: unchanged when it is plain printable ASCII, else escaped."""
    value = str(text)
    return value if value.isascii() and value.isprintable() else ascii(value)
