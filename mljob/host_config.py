"""host.json as the Functions host reads it: `extensions.queues` with the host's defaults, and the HTTP route prefix.

The host matches host.json's keys in any case (`maxDequeueCount`, `maxdequeuecount`) and takes a whole number
written as text ("3"); so does this reader. HostJsonError names a wrong value in words.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mljob.errors import HostJsonError
from mljob.messages import ENCODINGS

MIN_POLLING_SECONDS = 0.1  # the host's floor for maxPollingInterval


def parse_timespan(text: str) -> float:
    """Seconds in a .NET TimeSpan as host.json writes it: "[d.]hh:mm:ss[.fff]"."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)", str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a time span like 00:00:30 or 00:00:00.500")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"

    @property
    def max_in_flight(self) -> int:
        """The most messages one host processes at once."""
        return self.batch_size + self.new_batch_threshold


@dataclass(frozen=True)
class HostConfig:
    """What mljob reads from host.json: the queue trigger's options and the HTTP route prefix."""

    queues: QueueOptions = field(default_factory=QueueOptions)
    route_prefix: str = "api"

    @classmethod
    def load(cls, path: Path) -> HostConfig:
        """Read host.json (all defaults when it is absent); HostJsonError names what is wrong."""
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except OSError as exc:
            raise HostJsonError(f"{path} cannot be read: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise HostJsonError(f"{path} is not valid JSON: {exc}") from None
        try:
            extensions = _object(_object(data, "the top level").get("extensions"), "extensions")
            queues = _object(extensions.get("queues"), "extensions.queues")
            http = _object(extensions.get("http"), "extensions.http")
        except ValueError as exc:
            raise HostJsonError(f"{path}: {exc}") from None
        try:
            options = _queue_options(queues)
        except ValueError as exc:
            raise HostJsonError(f"{path}: extensions.queues: {exc}") from None
        return cls(queues=options, route_prefix=str(http.get("routeprefix", "api")).strip("/"))


def _object(value: Any, where: str) -> dict[str, Any]:
    """A JSON object with its keys in lower case ({} for a missing one); ValueError when it is something else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object, not {value!r}")
    return {str(key).lower(): item for key, item in value.items()}


def _queue_options(raw: dict[str, Any]) -> QueueOptions:
    """The options of `extensions.queues` (keys in lower case); ValueError names a wrong value."""
    batch_size = _bounded_int(raw, "batchSize", 16, 1, 32)
    encoding = str(raw.get("messageencoding", "base64")).lower()
    if encoding not in ENCODINGS:
        raise ValueError(f"messageEncoding must be base64 or none, not {encoding!r}")
    threshold_default = (os.cpu_count() or 1) * batch_size // 2
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=_bounded_int(raw, "newBatchThreshold", threshold_default, 0, 10_000),
        max_dequeue_count=_bounded_int(raw, "maxDequeueCount", 5, 1, 10_000),
        visibility_timeout=parse_timespan(raw.get("visibilitytimeout", "00:00:00")),
        max_polling_interval=max(MIN_POLLING_SECONDS, parse_timespan(raw.get("maxpollinginterval", "00:01:00"))),
        message_encoding=encoding,
    )


def _bounded_int(raw: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """raw[name] (a whole number, or one written as text, as the host takes it) within low..high."""
    value = raw.get(name.lower(), default)
    number = int(value) if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value) else value
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return number
