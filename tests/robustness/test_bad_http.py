"""Bad HTTP bodies and names for enqueue, testfn and job status, each with its exact answer.

Every case also checks that nothing under the jobs root (or the folder beside it) changed, and that
the job `ok-job`, which exists, stays `created`: nothing is half-enqueued.
"""

from __future__ import annotations

import json

import pytest
from conftest import call

from mljob.status import State


def _j(value) -> bytes:
    return json.dumps(value).encode()


DEEP = b"[" * 200_000 + b"]" * 200_000

ENQUEUE_CASES = [
    # (id, body, status, text in the error)
    ("empty", b"", 400, "request body is empty"),
    ("blank", b"  \n\t ", 400, "request body is empty"),
    ("not-json", b"jobname=ok-job", 400, "request body is not JSON"),
    ("truncated-json", b'{"jobname": "ok-job"', 400, "request body is not JSON"),
    ("binary", bytes(range(256)), 400, "request body is not JSON"),
    # JSON in UTF-16 is still JSON (json.loads detects it): it gets as far as the (closed) queue
    ("utf16-json", '{"jobname": "ok-job"}'.encode("utf-16"), 503, "nothing was enqueued"),
    ("json-list", b'["ok-job"]', 400, "must be a JSON object"),
    ("json-string", b'"ok-job"', 400, "must be a JSON object"),
    ("json-null", b"null", 400, "must be a JSON object"),
    ("json-number", b"42", 400, "must be a JSON object"),
    ("deeply-nested", DEEP, 400, "request body is not JSON"),
    ("huge-body", b'{"jobname": "' + b"a" * 1_000_001 + b'"}', 413, "the most accepted is 1,000,000"),
    ("no-name", b"{}", 400, 'give exactly one of "jobname", "jobid", "jobnames" or "jobids"'),
    ("two-names", _j({"jobname": "ok-job", "jobid": "ok-job"}), 400, "give exactly one of"),
    ("unknown-key", _j({"jobname": "ok-job", "priority": 1}), 400, "unknown field(s) priority"),
    ("name-number", _j({"jobname": 5}), 400, "job name must be a string, got int"),
    ("name-null", _j({"jobname": None}), 400, "job name must be a string, got NoneType"),
    ("name-list", _j({"jobname": ["ok-job"]}), 400, "job name must be a string, got list"),
    ("name-object", _j({"jobid": {"a": 1}}), 400, "job name must be a string, got dict"),
    ("name-nan", b'{"jobname": NaN}', 400, "job name must be a string, got float"),
    ("jobnames-empty", _j({"jobnames": []}), 400, '"jobnames" must be a non-empty list'),
    ("jobnames-string", _j({"jobnames": "ok-job"}), 400, '"jobnames" must be a non-empty list'),
    ("jobnames-numbers", _j({"jobnames": [1, 2]}), 400, "job name must be a string, got int"),
    ("jobnames-10000", _j({"jobnames": [f"job-{i:05d}" for i in range(10_000)]}), 400, "lists 10,000 jobs"),
    ("dot-dot", _j({"jobname": "../ok-job"}), 400, "invalid job name '../ok-job'"),
    ("dot-dot-only", _j({"jobname": ".."}), 400, "invalid job name '..': it has 2 characters"),
    ("slash", _j({"jobname": "ok/job"}), 400, "invalid job name 'ok/job'"),
    ("absolute", _j({"jobname": "/etc/passwd"}), 400, "invalid job name '/etc/passwd'"),
    ("backslash", _j({"jobname": "ok\\job"}), 400, "invalid job name 'ok\\\\job'"),
    ("nul", _j({"jobname": "ok-job\x00"}), 400, "invalid job name 'ok-job\\x00'"),
    ("newline", _j({"jobname": "ok-job\nINJECTED"}), 400, "invalid job name 'ok-job\\nINJECTED'"),
    ("cyrillic-a", _j({"jobname": "\u043ek-job"}), 400, "invalid job name '\\u043ek-job'"),
    ("fullwidth", _j({"jobname": "\uff4fk-job"}), 400, "invalid job name '\\uff4fk-job'"),
    ("zero-width", _j({"jobname": "ok\u200b-job"}), 400, "invalid job name 'ok\\u200b-job'"),
    ("url-encoded", _j({"jobname": "ok%2Fjob"}), 400, "invalid job name 'ok%2Fjob'"),
    ("upper-case", _j({"jobname": "OK-JOB"}), 400, "invalid job name 'OK-JOB'"),
    ("double-hyphen", _j({"jobname": "ok--job"}), 400, "invalid job name 'ok--job'"),
    ("too-long", _j({"jobname": "a" * 64}), 400, "it has 64 characters"),
    ("rerun-string", _j({"jobname": "ok-job", "rerun": "yes"}), 400, '"rerun" must be true or false'),
    ("unknown-job", _j({"jobname": "no-such-job"}), 404, "job no-such-job not found; nothing was enqueued"),
    ("one-bad-of-two", _j({"jobnames": ["ok-job", "../x"]}), 400, "invalid job name '../x'"),
    ("one-unknown-of-two", _j({"jobnames": ["ok-job", "no-such-job"]}), 404, "job no-such-job not found"),
]


@pytest.mark.parametrize(("body", "status", "text"), [c[1:] for c in ENQUEUE_CASES], ids=[c[0] for c in ENQUEUE_CASES])
def test_enqueue_refuses(world, body, status, text):
    world.job("ok-job")
    world.mark()
    code, answer = call("enqueue", body=body)
    assert (code, list(answer)) == (status, ["error"]), answer
    assert text in answer["error"]
    assert len(answer["error"]) < 600  # an error names the problem; it does not echo a huge body
    assert world.store.read_status("ok-job").status is State.CREATED
    assert world.changed() == []


STATUS_CASES = [
    ("dot-dot", "..", 400, "invalid job name '..'"),
    ("encoded-traversal", "..%2f..%2fetc", 400, "invalid job name '..%2f..%2fetc'"),
    ("slash", "ok-job/../x", 400, "invalid job name 'ok-job/../x'"),
    ("nul", "ok-job\x00", 400, "invalid job name 'ok-job\\x00'"),
    ("empty", "", 400, "it has 0 characters"),
    ("look-alike", "\u043ek-job", 400, "invalid job name '\\u043ek-job'"),
    ("unknown", "no-such-job", 404, "job no-such-job not found"),
]


@pytest.mark.parametrize(("name", "status", "text"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES])
def test_job_status_refuses(world, name, status, text):
    world.job("ok-job")
    world.mark()
    code, answer = call(
        "job_status", method="GET", url=f"http://localhost/api/jobs/{name}", route_params={"jobname": name}
    )
    assert (code, list(answer)) == (status, ["error"]), answer
    assert text in answer["error"]
    assert world.changed() == []


TESTFN_CASES = [
    ("no-name", {}, b"", 400, "request body is empty"),
    ("param-traversal", {"jobname": "../ok-job"}, b"", 400, "invalid job name '../ok-job'"),
    ("param-unknown", {"jobname": "no-such-job"}, b"", 404, "job no-such-job not found"),
    ("body-not-json", {}, b"\x00\x01", 400, "request body is not JSON"),
    ("body-list", {}, b"[1]", 400, "must be a JSON object"),
    ("body-two-jobs", {}, _j({"jobnames": ["ok-job", "ok-job-2"]}), 400, "testfn runs one job"),
]


@pytest.mark.parametrize(
    ("params", "body", "status", "text"), [c[1:] for c in TESTFN_CASES], ids=[c[0] for c in TESTFN_CASES]
)
def test_testfn_refuses(world, params, body, status, text):
    world.job("ok-job")
    world.job("ok-job-2")
    world.mark()
    code, answer = call("testfn", params=params, body=body)
    assert (code, list(answer)) == (status, ["error"]), answer
    assert text in answer["error"]
    assert world.changed() == []
