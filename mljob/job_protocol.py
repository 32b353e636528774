"""What the supervisor (mljob.supervisor) and its job processes (mljob.job_process) say to each other.

One JSON line per message, its `kind` naming the dataclass, on the child's stdin (requests) and on its
stdout (`Ready`, then one outcome per request). `Preload` is the child's one command-line argument.

    supervisor -> job process:  RunJob (a job folder's work) | ConvertIds (a light request: no job folder)
    job process -> supervisor:  Ready, then per request: Completed | Converted | Refused | OutOfMemory | Failed
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any


class JsonText(str):
    """JSON text (one line) that a message carries as it is: `encode` puts it into the line without encoding
    it again, and `decode` gives back the value it stands for."""


@dataclass(frozen=True)
class Preload:
    """PRELOAD: backend files the job process reads into its warm cache before it says it is ready."""

    data_path: str
    targets: list[dict[str, str]]
    cache_mb: int


@dataclass(frozen=True)
class RunJob:
    """Do the job `jobname` of the jobs folder `jobs_path` under `settings` (Settings.to_dict())."""

    jobs_path: str
    max_genes: int
    max_bytes: int
    jobname: str
    settings: dict[str, Any]
    instance_share: float = 1.0  # of the instance, for the job's estimated cost


@dataclass(frozen=True)
class ConvertIds:
    """GenePlexus's load_genes on `genes` (mljob.science.convert_ids), with the warm cache: no job folder."""

    genes: list[str]
    species: str
    data_path: str
    cache_mb: int
    fast: bool


@dataclass(frozen=True)
class Ready:
    """The job process has imported the ML stack (and preloaded) and waits for requests."""

    pid: int


@dataclass(frozen=True)
class Completed:
    """A RunJob's results are stored; `summary` is its completed message."""

    summary: str


@dataclass(frozen=True)
class Converted:
    """A ConvertIds's answer: input_count, convert_ids, table_summary and df_convert_out. The job process sends
    it as JsonText (written once, mostly by pandas); decoded, it is that dict."""

    result: dict[str, Any] | JsonText


@dataclass(frozen=True)
class Refused:
    """The request cannot succeed as asked (bad input, too few genes, missing data): not retried."""

    message: str


@dataclass(frozen=True)
class OutOfMemory:
    """The work raised MemoryError in the job process."""

    message: str


@dataclass(frozen=True)
class Failed:
    """The work raised an unexpected error (its traceback is in job.log, or the host's log)."""

    error: str


Request = RunJob | ConvertIds
Outcome = Completed | Converted | Refused | OutOfMemory | Failed
Message = Preload | Request | Ready | Outcome

_KINDS: dict[str, type[Message]] = {
    "preload": Preload,
    "run-job": RunJob,
    "convert-ids": ConvertIds,
    "ready": Ready,
    "completed": Completed,
    "converted": Converted,
    "refused": Refused,
    "out-of-memory": OutOfMemory,
    "failed": Failed,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def encode(message: Message) -> str:
    """The message as one JSON line (no newline in it), its kind first; JsonText fields as they are."""
    parts = [f'"kind":"{_KIND_OF[type(message)]}"']
    for field in fields(message):  # (not asdict, which would deep-copy every value)
        value = getattr(message, field.name)
        text = value if isinstance(value, JsonText) else json.dumps(value, separators=(",", ":"))
        parts.append(f'"{field.name}":{text}')
    return "{" + ",".join(parts) + "}"


def decode(line: str) -> Message:
    """The message of one JSON line; ValueError when it is not one (malformed, unknown kind or fields)."""
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        raise ValueError(f"not a job-process message: {line[:200]!r}")
    cls = _KINDS[data.pop("kind")]
    try:
        return cls(**data)
    except TypeError as exc:
        raise ValueError(f"not a {cls.__name__}: {exc}") from None
