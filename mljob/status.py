"""Job status: the values and codes of status.json, its progress and its history."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class State(StrEnum):
    """The life of a job: created -> queued -> running -> completed | failed | timeout | cancelled."""

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


CODES: dict[State, int] = {
    State.CREATED: 201,
    State.QUEUED: 202,
    State.RUNNING: 102,
    State.COMPLETED: 200,
    State.FAILED: 500,
    State.TIMEOUT: 504,
    State.CANCELLED: 410,  # Gone: withdrawn by request; it will not produce results
}
NOT_FOUND_CODE = 404
FINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.TIMEOUT, State.CANCELLED})


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Progress(BaseModel):
    """Where a running job is: the step it is on and a rough percentage of the whole run."""

    step: str = ""
    percent: int = Field(default=0, ge=0, le=100)


class HistoryEntry(BaseModel):
    """One status write, as kept in status.json's history."""

    time: datetime
    status: State
    code: int
    message: str = ""
    step: str = ""
    percent: int = 0
    attempt: int = 0


class JobStatus(BaseModel):
    """The content of status.json."""

    jobname: str
    status: State
    code: int
    message: str = ""
    progress: Progress = Field(default_factory=Progress)
    created: datetime
    updated: datetime
    started: datetime | None = None
    finished: datetime | None = None
    attempt: int = 0
    history: list[HistoryEntry] = Field(default_factory=list)

    @classmethod
    def new(cls, jobname: str, message: str = "job created") -> JobStatus:
        """The status of a job that has just been created."""
        now = utcnow()
        status = cls(jobname=jobname, status=State.CREATED, code=201, message=message, created=now, updated=now)
        return status.with_history()

    @property
    def is_final(self) -> bool:
        """True once the job has completed, failed, timed out or been cancelled."""
        return self.status in FINAL_STATES

    def advance(
        self,
        state: State,
        message: str = "",
        *,
        progress: Progress | None = None,
        attempt: int | None = None,
    ) -> JobStatus:
        """A copy moved to `state` (or a progress update within it), with the change appended to history."""
        now = utcnow()
        changes: dict[str, object] = {"status": state, "code": CODES[state], "message": message, "updated": now}
        if progress is not None:
            changes["progress"] = progress
        if attempt is not None:
            changes["attempt"] = attempt
        if state is State.RUNNING and self.status is not State.RUNNING:
            changes.update(started=now, finished=None)
        if state in FINAL_STATES:
            changes["finished"] = now
        if state in (State.CREATED, State.QUEUED):
            changes.update(started=None, finished=None, progress=Progress())
        return self.model_copy(update=changes).with_history()

    def with_history(self) -> JobStatus:
        """A copy whose history ends with an entry for the current state."""
        entry = HistoryEntry(
            time=self.updated,
            status=self.status,
            code=self.code,
            message=self.message,
            step=self.progress.step,
            percent=self.progress.percent,
            attempt=self.attempt,
        )
        return self.model_copy(update={"history": [*self.history, entry]})

    def summary(self) -> dict[str, object]:
        """The short form sent to callbacks: jobname, status and code."""
        return {"jobname": self.jobname, "status": self.status.value, "code": self.code}
