"""The job queue's wire format: one message per job, the JSON text {"jobname": "..."}, base64-encoded on the wire.

The Azure Functions host decodes base64 (host.json messageEncoding) and hands the function the bytes;
so does `mljob serve`. `decode` also accepts {"jobid": "..."} and the predecessor's bare job name.
Senders use `to_wire`, hosts `from_wire`, the queue trigger `decode`.
"""

from __future__ import annotations

import base64
import binascii
import json

from mljob.errors import InvalidInput
from mljob.job import jobnames_from, validate_jobname

MAX_MESSAGE_BYTES = 4096  # a job message is ~100 bytes; anything much longer is not one
ENCODINGS = ("base64", "none")  # host.json extensions.queues.messageEncoding


def encode(jobname: str) -> str:
    """The message text for a job: `{"jobname": "..."}`."""
    return json.dumps({"jobname": validate_jobname(jobname)})


def to_wire(jobname: str) -> str:
    """The message content as it is put on the queue: `encode(jobname)`, base64-encoded."""
    return base64.b64encode(encode(jobname).encode("utf-8")).decode("ascii")


def from_wire(content: str | None, encoding: str = "base64") -> bytes:
    """The message body a queue function receives, from the content on the queue; ValueError if not base64."""
    text = content or ""
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("the message is not valid base64") from None


def decode(body: str | bytes) -> str:
    """The job name in a message body: `{"jobname": ...}`, `{"jobid": ...}` or a bare job name.

    Raises InvalidInput, saying what is wrong, for anything else.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidInput(_too_long(len(raw)))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"queue message is not UTF-8 text (bad byte at position {exc.start})") from None
    elif isinstance(body, str):
        text = body
        if len(text) > MAX_MESSAGE_BYTES:
            raise InvalidInput(_too_long(len(text.encode("utf-8", "replace"))))
    else:
        raise InvalidInput(f"queue message must be text, got {type(body).__name__}")
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        raise InvalidInput('queue message is empty; expected {"jobname": "..."} or a job name')
    if text[0] in "{[":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
            raise InvalidInput(f"queue message looks like JSON but is not valid JSON: {_shown(text)}") from None
        if isinstance(data, dict):  # senders pad names with spaces; the name itself is checked strictly
            data = {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}
        return jobnames_from(data, what="queue message", lists=False)[0]
    try:
        return validate_jobname(text)
    except InvalidInput as exc:
        raise InvalidInput(f'queue message is neither {{"jobname": "..."}} nor a job name: {exc}') from None


def _too_long(size: int) -> str:
    return f'queue message is {size:,} bytes; a job message is {{"jobname": "..."}} (at most {MAX_MESSAGE_BYTES:,})'


def _shown(text: str) -> str:
    return ascii(text) if len(text) <= 80 else ascii(text[:80]) + "..."
