"""The poison queue, administered: what it holds, and its jobs put back on the job queue (all or nothing).

For `GET /api/queue`, `POST /api/queue/poison/requeue`, `mljob poison list|requeue` and the console.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mljob import messages
from mljob.enqueue import enqueue_jobs
from mljob.errors import InvalidInput, JobNotFound, QueueUnavailable
from mljob.job import validate_jobnames
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore

log = logging.getLogger(__name__)


def overview(queue: JobQueue) -> dict[str, Any]:
    """Approximate message counts of the queue and its poison queue, and the oldest poison messages with the
    jobs they name (or why they name none)."""
    counts = queue.counts()
    oldest = []
    for message in queue.peek_poison():
        inserted = message.inserted_on.isoformat() if message.inserted_on else None
        item: dict[str, Any] = {"id": message.id, "inserted": inserted, "jobname": None}
        try:
            item["jobname"] = messages.decode(messages.from_wire(message.content))
        except (InvalidInput, ValueError) as exc:
            item["error"] = str(exc)
        oldest.append(item)
    return {
        "queue": {"name": queue.name, "count": counts.queue},
        "poison": {"name": queue.poison_name, "count": counts.poison, "oldest": oldest},
    }


def requeue(store: ResultsFileStore, queue: JobQueue, jobnames: Iterable[str] | None) -> list[str]:
    """Put jobs of the poison queue back on the job queue (as `enqueue_jobs` does, all or nothing, re-runs allowed)
    and delete their poison messages; `jobnames` None: every job the poison queue names.

    JobNotFound when a named job has no message in the poison queue; nothing is requeued then, and every
    poison message stays. Messages that name no job are left where they are.
    """
    wanted = None if jobnames is None else validate_jobnames(jobnames)
    held = queue.receive_poison()
    by_name: dict[str, list[Any]] = {}
    for message in held:
        try:
            by_name.setdefault(messages.decode(messages.from_wire(message.content)), []).append(message)
        except (InvalidInput, ValueError):
            continue
    try:
        names = list(by_name) if wanted is None else wanted
        missing = [name for name in names if name not in by_name]
        if missing:
            raise JobNotFound(f"job(s) {', '.join(missing)} have no message in the poison queue; nothing was requeued")
        if not names:
            raise InvalidInput("the poison queue holds no job message; nothing was requeued")
        enqueue_jobs(store, queue, names, rerun=True)
    except BaseException:
        queue.release_poison(held)
        raise
    requeued = {id(m) for name in names for m in by_name[name]}
    for message in held:
        if id(message) in requeued:
            try:
                queue.delete_poison(message)
            except QueueUnavailable as exc:  # the job is queued; its old message may be requeued twice
                log.warning("job queued, but its poison message %s stays: %s", message.id, exc)
    queue.release_poison([m for m in held if id(m) not in requeued])
    log.info("requeued %d job(s) from %s: %s", len(names), queue.poison_name, ", ".join(names))
    return names
