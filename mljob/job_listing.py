"""The jobs of a store, listed: newest first, filtered by status and name prefix, in pages with a stable cursor.

For `GET /api/jobs`, the console and `mljob list`. It reads only the head of each job's status.json (no
history, never results), sequentially on a local disk and in parallel when each read waits on a network
(an Azure Files share). The cursor names the last job of a page (its `created` time and name): jobs that
arrive later sort before it, so the pages after it do not move.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mljob.errors import InvalidInput
from mljob.results_store import ResultsFileStore
from mljob.status import State

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
UNREADABLE = "unreadable"  # the status of a job whose status.json cannot be read
_PROBE = 32  # heads read one by one before deciding whether the reads wait on a network
_SLOW_READ_SECONDS = 0.0005
_PARALLEL_READS = 32
_STATUSES = frozenset({*(s.value for s in State), UNREADABLE})


@dataclass(frozen=True)
class Page:
    """One page of a listing: its jobs (newest first) and the cursor of the next page (None: the last)."""

    jobs: list[dict[str, Any]]
    next: str | None


def list_jobs(
    store: ResultsFileStore,
    *,
    statuses: Collection[str] = (),
    prefix: str = "",
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
) -> Page:
    """A page of the store's jobs, newest first (by `created`, then name), those of `statuses` (any when
    empty) whose names start with `prefix`, after the cursor `after`. InvalidInput for a bad argument."""
    wanted = _statuses(statuses)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    start = _decode_cursor(after) if after else None
    names = [name for name in store.list_jobs() if name.startswith(prefix)]
    items = [item for item in _items(store, names) if not wanted or item["status"] in wanted]
    items.sort(key=_order, reverse=True)
    if start is not None:
        items = [item for item in items if _order(item) < start]
    page = items[:limit]
    more = len(items) > limit
    return Page(page, _encode_cursor(_order(page[-1])) if more else None)


def _statuses(statuses: Collection[str]) -> frozenset[str]:
    if isinstance(statuses, str):
        statuses = [statuses]
    unknown = sorted(set(statuses) - _STATUSES)
    if unknown:
        raise InvalidInput(f"unknown status {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_STATUSES))}")
    return frozenset(statuses)


def _items(store: ResultsFileStore, names: list[str]) -> list[dict[str, Any]]:
    """One item per job; the first reads tell whether to read the rest in parallel (a network share)."""
    started = time.perf_counter()
    first = [_item(store, name) for name in names[:_PROBE]]
    rest = names[_PROBE:]
    if not rest:
        return first
    if (time.perf_counter() - started) / max(1, len(first)) < _SLOW_READ_SECONDS:
        return first + [_item(store, name) for name in rest]
    with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
        return first + list(pool.map(lambda name: _item(store, name), rest))


def _item(store: ResultsFileStore, name: str) -> dict[str, Any]:
    try:
        head = store.read_status_head(name)
    except InvalidInput as exc:
        return _unreadable(store, name, str(exc))
    started, finished = head.get("started"), head.get("finished")
    return {
        "jobname": name,
        "status": head.get("status"),
        "code": head.get("code"),
        "message": head.get("message", ""),
        "created": head.get("created"),
        "updated": head.get("updated"),
        "progress": head.get("progress") or {"step": "", "percent": 0},
        "attempt": head.get("attempt", 0),
        "seconds": _seconds(started, finished),
    }


def _unreadable(store: ResultsFileStore, name: str, why: str) -> dict[str, Any]:
    """A job whose status.json cannot be read, dated by its folder (it still sorts, and shows why)."""
    try:
        stamp = datetime.fromtimestamp(store.job_path(name).stat().st_mtime, tz=UTC).isoformat()
    except OSError:
        stamp = datetime.fromtimestamp(0, tz=UTC).isoformat()
    return {
        "jobname": name,
        "status": UNREADABLE,
        "code": None,
        "message": why,
        "created": stamp,
        "updated": stamp,
        "progress": {"step": "", "percent": 0},
        "attempt": 0,
        "seconds": None,
    }


def _seconds(started: Any, finished: Any) -> float | None:
    if not started or not finished:
        return None
    try:
        return round((_time(finished) - _time(started)).total_seconds(), 3)
    except ValueError:
        return None


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _order(item: dict[str, Any]) -> tuple[str, str]:
    """The sort key, newest first when reversed: the creation time (normalised to UTC), then the name."""
    try:
        created = _time(item["created"]).astimezone(UTC).isoformat()
    except (TypeError, ValueError):
        created = ""
    return created, item["jobname"]


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, name = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(created, str) or not isinstance(name, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise InvalidInput("invalid cursor: give back the `next` of an earlier page as it was") from None
    return created, name


def statuses_from(values: Iterable[str]) -> list[str]:
    """Status filters as given in a query (repeatable, or comma-separated), without blanks."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
