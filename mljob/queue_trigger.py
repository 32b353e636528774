"""The queue worker: what the queue-triggered function does with one message, safe under redelivery.

Delivery is at least once. A message that cannot name a valid, existing job is dropped (logged with
its id); a completed job is skipped; a job whose run lease a live run holds is not started twice. The
run itself, its retries and its final status belong to `mljob.lifecycle` (with the queue's policy):
an error re-raised from there makes the host deliver the message again, or move it to the poison queue.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mljob import messages
from mljob.errors import InvalidInput, JobBusy, JobFinished, JobNotFound
from mljob.lifecycle import RunPolicy, run_job
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_DEQUEUE_COUNT = 5


def max_dequeue_count(host_json: Path) -> int:
    """extensions.queues.maxDequeueCount of a host.json (the Functions default, 5, when absent)."""
    try:
        queues = json.loads(host_json.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
        return int(queues.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MAX_DEQUEUE_COUNT


def handle_message(
    body: bytes | str,
    *,
    message_id: str,
    dequeue_count: int,
    max_dequeue_count: int,
    settings: Settings,
) -> str:
    """Handle one queue message; returns what happened (dropped, skipped, busy, completed, failed)."""
    message_id = _for_log(message_id)
    store = ResultsFileStore.from_settings(settings)
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


def _for_log(text: object) -> str:
    """`text` as it may appear in a log line: unchanged when it is plain printable ASCII, else escaped."""
    value = str(text)
    return value if value.isascii() and value.isprintable() else ascii(value)
