"""Bad queue messages: each is dropped with its reason logged, and nothing under the jobs root changes."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import deliver, process

from mljob.status import State

MESSAGE_CASES = [
    # (id, body after the host's base64 decoding, text in the log)
    ("empty", b"", "queue message is empty"),
    ("blank", b" \n ", "queue message is empty"),
    ("not-utf8", b"\xff\xfe\x00junk", "queue message is not UTF-8 text"),
    ("base64-of-junk", base64.b64decode(base64.b64encode(bytes(range(128, 256)))), "is not UTF-8 text"),
    ("still-base64", base64.b64encode(b'{"jobname": "ok-job"}'), "neither"),
    ("json-no-name", b'{"job": "ok-job"}', "unknown field(s) job"),
    ("json-empty-object", b"{}", 'give exactly one of "jobname" or "jobid"'),
    ("json-list", b'["ok-job"]', "got a list"),
    ("json-null-name", b'{"jobname": null}', "job name must be a string, got NoneType"),
    ("json-number-name", b'{"jobname": 7}', "job name must be a string, got int"),
    ("json-extra-key", b'{"jobname": "ok-job", "rerun": true}', "unknown field(s) rerun"),
    ("json-broken", b'{"jobname": "ok-job"', "looks like JSON but is not valid JSON"),
    ("json-nested-deep", b"[" * 2000 + b"]" * 2000, "looks like JSON but is not valid JSON"),
    ("64kb", json.dumps({"jobname": "ok-job", "pad": "x" * 65_536}).encode(), "queue message is 65,"),
    ("traversal", b'{"jobname": "../ok-job"}', "invalid job name '../ok-job'"),
    ("bare-traversal", b"../../etc", "invalid job name '../../etc'"),
    ("nul", b'{"jobname": "ok-job\\u0000"}', "invalid job name 'ok-job\\x00'"),
    ("look-alike", '{"jobname": "\u043ek-job"}'.encode(), "invalid job name '\\u043ek-job'"),
    ("newline-injection", b"ok-job\nINJECTED fake log line", "invalid job name 'ok-job\\nINJECTED"),
    ("unknown-job", b'{"jobname": "no-such-job"}', "job no-such-job not found"),
    ("unknown-bare", b"no-such-job", "job no-such-job not found"),
]


@pytest.mark.parametrize(("body", "text"), [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_bad_message_is_dropped(world, mljob_log, body, text):
    world.job("ok-job")
    world.mark()
    assert process(world, body) == "dropped"
    dropped = [r.getMessage() for r in mljob_log.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and text in dropped[0], dropped
    assert "\n" not in dropped[0]
    assert world.store.read_status("ok-job").status is State.CREATED
    assert world.changed() == []


def test_bad_message_through_function_app_is_dropped_not_raised(world, mljob_log):
    world.job("ok-job")
    world.mark()
    deliver(b"\x00not a message", message_id="id-with\nnewline")  # returns: the host deletes the message
    assert world.changed() == []
    assert all("\n" not in r.getMessage() for r in mljob_log.records)


def test_a_good_message_still_runs(world):
    """The control case: the same world runs a good message, changing only the job's own folder."""
    world.job("ok-job")
    world.mark()
    assert process(world, b'{"jobname": "ok-job"}') == "completed"
    assert world.changed(allowed_job="ok-job") == []
    assert process(world, b"ok-job") == "skipped"  # a redelivery of a completed job
