"""RunLease: a lock file in a job folder that lets one run at a time work on a job, across hosts.

The holder rewrites the file (its heartbeat) every `stale_after / 4` seconds. A lease whose
heartbeat is older than `stale_after` belonged to a run that died; the next run takes it over.
Creation uses O_CREAT|O_EXCL, which local disks and Azure Files (SMB) both honour.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from mljob.errors import JobBusy
from mljob.results_store import ResultsFileStore, atomic_write

if TYPE_CHECKING:
    from mljob.settings import Settings

log = logging.getLogger(__name__)


class RunLease:
    """The right to run one job; use `acquire()`/`release()` or `with RunLease(...):`."""

    def __init__(self, store: ResultsFileStore, jobname: str, *, stale_after: float = 120.0):
        self.path: Path = store.lease_path(jobname)
        self.jobname = jobname
        self.stale_after = stale_after
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.process: int | None = None  # the job process doing the run's work, once known
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @classmethod
    def from_settings(cls, store: ResultsFileStore, jobname: str, settings: Settings) -> RunLease:
        """The lease of a job, stale after LEASE_STALE_SECONDS."""
        return cls(store, jobname, stale_after=settings.lease_stale_seconds)

    def __enter__(self) -> RunLease:
        if not self.acquire():
            raise self.busy()
        return self

    def busy(self) -> JobBusy:
        """The error for a job whose lease a live run holds (naming the holder)."""
        return JobBusy(f"job {self.jobname} is being run elsewhere ({self.holder() or 'unknown holder'})")

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease if it is free or stale; False while a live run holds it (after `wait` seconds)."""
        deadline = time.monotonic() + wait
        while not self._try_acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 1.0, max(0.05, self.stale_after / 10)))
        return True

    def _try_acquire(self) -> bool:
        if self._create():
            return self._started()
        seen = self._read()
        if seen is not None and time.time() - seen.get("heartbeat", 0) < self.stale_after:
            return False
        if seen is None and time.time() - self._mtime() < self.stale_after:
            return False  # being written right now, or unreadable but fresh
        self._take_over_stale(seen)
        return self._create() and self._started()

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if this run still holds it."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if (self._read() or {}).get("owner") == self.owner:
            self.path.unlink(missing_ok=True)

    def note_process(self, pid: int) -> None:
        """Record in the lease which job process does the run's work (for operators, and to stop it by hand)."""
        self.process = pid
        if (self._read() or {}).get("owner") == self.owner:
            atomic_write(self.path, self._record())

    def holder(self) -> str | None:
        """Who holds the lease now (owner string), if anyone."""
        return (self._read() or {}).get("owner")

    def _record(self) -> str:
        record = {
            "owner": self.owner,
            "pid": os.getpid(),
            "process": self.process,
            "heartbeat": time.time(),
            "stale_after": self.stale_after,
        }
        return json.dumps(record)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(self._record())
        return True

    def _started(self) -> bool:
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.jobname}", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.stale_after / 4):
            if (self._read() or {}).get("owner") != self.owner:
                log.warning("run lease of job %s was taken over by another run", self.jobname)
                return
            atomic_write(self.path, self._record())

    def _take_over_stale(self, seen: dict | None) -> None:
        """Move a stale lease aside; if what was moved turns out fresh (a race), put it back."""
        aside = self.path.with_name(f".{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = _read_json(aside)
        if seen is not None and moved is not None and moved.get("owner") != seen.get("owner"):
            os.rename(aside, self.path)  # another run took it over in between: leave it theirs
            return
        log.warning("job %s: taking over the stale run lease of %s", self.jobname, (seen or {}).get("owner"))
        aside.unlink(missing_ok=True)

    def _read(self) -> dict | None:
        return _read_json(self.path)

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
