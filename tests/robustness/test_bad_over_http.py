"""A few of the bad inputs again, over real HTTP against `mljob serve` (+ Azurite): same answers, nothing changed."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import requests
from conftest import DEMO_GENES
from devhost_process import DevHostProcess, app_copy

from mljob.job import parse_config
from mljob.results_store import ResultsFileStore

pytestmark = pytest.mark.slow  # an `mljob serve` subprocess + Azurite: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def served(tmp_path_factory, azurite, data_path):
    tmp = tmp_path_factory.mktemp("served")
    app = app_copy(tmp / "app")
    (tmp / "jobs").mkdir()
    store = ResultsFileStore(tmp / "jobs")
    store.create_job(parse_config({"jobname": "ok-job"}), DEMO_GENES)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLJOB_FUNCTION_KEY"},
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(store.root),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": f"rob-{uuid.uuid4().hex[:8]}",
    }
    host = DevHostProcess(tmp, env, app)
    yield host, store
    host.stop()


CASES = [
    # (method, path, body, status, text in the error)
    ("POST", "/api/enqueue", b"not json", 400, "request body is not JSON"),
    ("POST", "/api/enqueue", b"", 400, "request body is empty"),
    ("POST", "/api/enqueue", b"x" * 1_200_000, 413, "request body is 1,200,000 bytes"),  # refused before parsing
    (
        "POST",
        "/api/enqueue",
        json.dumps({"jobnames": [f"j-{i:05d}" for i in range(10_000)]}).encode(),
        400,
        "10,000 jobs",
    ),
    ("POST", "/api/enqueue", json.dumps({"jobname": "../ok-job"}).encode(), 400, "invalid job name '../ok-job'"),
    ("POST", "/api/enqueue", json.dumps({"jobname": "no-such-job"}).encode(), 404, "job no-such-job not found"),
    ("GET", "/api/jobs/..%2F..%2Fetc%2Fpasswd", b"", 400, "invalid job name"),
    ("GET", "/api/jobs/ok-job%00", b"", 400, "invalid job name 'ok-job\\x00'"),
    ("GET", "/api/jobs/%D0%BEk-job", b"", 400, "invalid job name '\\u043ek-job'"),
    ("GET", "/api/jobs/no-such-job", b"", 404, "job no-such-job not found"),
    ("GET", "/api/testfn?jobname=..%2Fok-job", b"", 400, "invalid job name '../ok-job'"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), CASES)
def test_over_http(served, method, path, body, status, text):
    host, store = served
    before = sorted(p.as_posix() for p in store.root.rglob("*"))
    response = requests.request(method, host.url + path, data=body, timeout=30)
    assert response.status_code == status, response.text
    assert text in response.json()["error"]
    assert sorted(p.as_posix() for p in store.root.rglob("*")) == before
    assert store.read_status("ok-job").status.value == "created"
