"""function_app.py without the Functions host: its bindings, and each function called directly."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import azure.functions as func
import pytest
from app_functions import app_functions
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient

import function_app
from mljob.errors import JobWorkFailed
from mljob.job import parse_config
from mljob.lease import RunLease
from mljob.queue_trigger import max_dequeue_count
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent
CLOSED_PORT_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


@pytest.fixture(scope="module")
def functions() -> dict:
    """The app's functions by name (get_functions works once per app object)."""
    return app_functions()


def call(functions: dict, name: str, **request) -> tuple[int, dict]:
    request.setdefault("url", f"http://localhost/api/{name}")
    request.setdefault("body", b"")
    response = functions[name].get_user_function()(func.HttpRequest(**request))
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def deliver(functions: dict, body: str | bytes, dequeue_count: int = 1, message_id: str = "m1") -> None:
    raw = body.encode() if isinstance(body, str) else body
    functions["process_job"].get_user_function()(QueueMessage(id=message_id, body=raw, dequeue_count=dequeue_count))


@pytest.fixture
def env(monkeypatch, data_path, jobs_path, request):
    queue = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("JOBS_PATH", str(jobs_path))
    monkeypatch.setenv("QUEUE_NAME", queue)
    monkeypatch.setenv("QUEUECONNECTIONSTRING", CLOSED_PORT_CONNECTION)
    monkeypatch.setenv("LEASE_STALE_SECONDS", "2")
    from mljob import queue  # the closed port refuses at once: no retries with backoff (~1 s each)

    monkeypatch.setattr(queue, "_shared_queue", lambda conn, name: queue.JobQueue(conn, name, timeout=2, retries=0))
    return monkeypatch


@pytest.fixture
def queue_env(env, azurite):
    env.setenv("QUEUECONNECTIONSTRING", azurite.connection_string)
    return env


def make_job(store, name: str, genes: list[str], **params) -> str:
    store.create_job(parse_config({"jobname": name, **params}), genes)
    return name


# --- bindings --------------------------------------------------------------------------------


def bindings(functions: dict, name: str) -> dict:
    return json.loads(functions[name].get_function_json())["bindings"][0]


def test_http_bindings(functions):
    expected = {
        "enqueue": ("enqueue", ["POST"], "FUNCTION"),
        "testfn": ("testfn", ["GET", "POST"], "FUNCTION"),
        "job_status": ("jobs/{jobname}", ["GET"], "FUNCTION"),
        "health": ("health", ["GET"], "ANONYMOUS"),
        "health_details": ("health/details", ["GET"], "FUNCTION"),
    }
    for name, (route, methods, auth) in expected.items():
        binding = bindings(functions, name)
        assert binding["type"] == "httpTrigger"
        assert binding["route"] == route and sorted(binding["methods"]) == sorted(methods)
        assert binding["authLevel"] == auth


def test_queue_binding(functions):
    binding = bindings(functions, "process_job")
    assert binding["type"] == "queueTrigger" and binding["name"] == "msg"
    assert binding["queueName"] == "%QUEUE_NAME%" and binding["connection"] == "QUEUECONNECTIONSTRING"
    assert (
        max_dequeue_count(function_app.HOST_JSON)
        == json.loads((REPO / "host.json").read_text())["extensions"]["queues"]["maxDequeueCount"]
    )


def test_import_leaves_the_science_stack_out():
    code = (
        "import sys, function_app; "
        "print([m for m in ('geneplexus', 'pandas', 'numpy', 'sklearn', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_host_json_suits_memory_heavy_jobs():
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    queues = host["extensions"]["queues"]
    assert queues["batchSize"] == 1 and queues["newBatchThreshold"] == 0
    assert queues["messageEncoding"] == "base64"
    assert {"maxDequeueCount", "visibilityTimeout", "maxPollingInterval"} <= set(queues)
    assert host["functionTimeout"]


# --- enqueue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"not json", "not JSON"),
        (b'["a-job"]', "JSON object"),
        (b'{"name": "abc"}', "unknown field"),
        (b'{"jobname": "abc", "jobnames": ["abc"]}', "exactly one"),
        (b'{"jobnames": []}', "non-empty list"),
        (b'{"jobnames": "abc"}', "non-empty list"),
        (b'{"jobname": "../etc"}', "invalid job name"),
        (b'{"jobname": 7}', "must be a string"),
        (b'{"jobname": "abc", "rerun": "yes"}', "rerun"),
        (json.dumps({"jobnames": [f"job-{i}" for i in range(1001)]}).encode(), "the most in one call"),
    ],
)
def test_enqueue_refuses_bad_bodies_with_400(functions, env, body, words):
    status, answer = call(functions, "enqueue", method="POST", body=body)
    assert status == 400 and words in answer["error"]


def test_enqueue_unknown_job_is_404_and_nothing_is_marked(functions, env, store, demo_genes):
    make_job(store, "known-job", demo_genes)
    status, answer = call(functions, "enqueue", method="POST", body=b'{"jobnames": ["known-job", "unknown-job"]}')
    assert status == 404 and "unknown-job" in answer["error"]
    assert store.read_status("known-job").status is State.CREATED


def test_enqueue_when_the_queue_is_unreachable_is_503_and_nothing_is_marked(functions, env, store, demo_genes):
    make_job(store, "lonely-job", demo_genes)
    status, answer = call(functions, "enqueue", method="POST", body=b'{"jobname": "lonely-job"}')
    assert status == 503 and "AccountKey" not in answer["error"]
    assert store.read_status("lonely-job").status is State.CREATED


def test_enqueue_queues_each_job_once(functions, queue_env, store, demo_genes, azurite):
    for name in ("job-one", "job-two"):
        make_job(store, name, demo_genes)
    status, answer = call(functions, "enqueue", method="POST", body=b'{"jobnames": ["job-one", "job-two"]}')
    assert status == 202 and answer["accepted"] == ["job-one", "job-two"]
    assert all(store.read_status(n).status is State.QUEUED for n in ("job-one", "job-two"))
    client = QueueClient.from_connection_string(azurite.connection_string, queue_env_name())
    bodies = [json.loads(base64.b64decode(m.content)) for m in client.receive_messages(max_messages=10)]
    assert sorted(b["jobname"] for b in bodies) == ["job-one", "job-two"]
    status, answer = call(functions, "enqueue", method="POST", body=b'{"jobid": "job-one"}')
    assert status == 409 and "job-one" in answer["error"]
    status, _ = call(functions, "enqueue", method="POST", body=b'{"jobid": "job-one", "rerun": true}')
    assert status == 202


def queue_env_name() -> str:
    import os

    return os.environ["QUEUE_NAME"]


# --- status, health, testfn ------------------------------------------------------------------


def test_job_status_codes(functions, env, store, demo_genes):
    status, answer = call(functions, "job_status", method="GET", route_params={"jobname": "no-such-job"})
    assert status == 404 and "not found" in answer["error"]
    status, answer = call(functions, "job_status", method="GET", route_params={"jobname": "Bad..Name"})
    assert status == 400
    make_job(store, "status-job", demo_genes)
    status, answer = call(functions, "job_status", method="GET", route_params={"jobname": "status-job"})
    assert status == 200 and answer["status"] == "created" and answer["code"] == 201 and "results" not in answer


def test_health_tells_strangers_only_ok_and_the_details_need_the_key(functions, env, tmp_path):
    assert call(functions, "health", method="GET") == (200, {"ok": True})  # anonymous: nothing more
    status, answer = call(functions, "health_details", method="GET")
    assert status == 200 and answer["ok"] and answer["reachable"] == {"data_path": True, "jobs_path": True}
    assert answer["versions"]["geneplexus"] == "3.0.1" and "AccountKey" not in json.dumps(answer)
    assert bindings(functions, "health_details")["authLevel"] == "FUNCTION"
    env.setenv("DATA_PATH", str(tmp_path / "missing"))
    assert call(functions, "health", method="GET") == (503, {"ok": False})
    status, answer = call(functions, "health_details", method="GET")
    assert status == 503 and answer["reachable"]["data_path"] is False


def test_testfn_runs_a_job_from_a_get_body_or_query(functions, env, store, demo_genes):
    make_job(store, "testfn-job", demo_genes)
    status, answer = call(functions, "testfn", method="GET", body=b'{"jobname": "testfn-job"}')
    assert status == 200 and answer["status"] == "completed"
    status, answer = call(functions, "testfn", method="POST", params={"jobname": "testfn-job"}, body=b"")
    assert status == 200 and answer["attempt"] == 2
    status, answer = call(functions, "job_status", method="GET", route_params={"jobname": "testfn-job"})
    assert "top_genes.json" in answer["results"]
    status, answer = call(functions, "testfn", method="GET", params={"jobname": "nope-job"}, body=b"")
    assert status == 404
    status, answer = call(functions, "testfn", method="GET", body=b"")
    assert status == 400


def test_testfn_refuses_a_job_running_elsewhere(functions, env, store, demo_genes):
    make_job(store, "busy-job", demo_genes)
    with RunLease(store, "busy-job", stale_after=60):
        status, answer = call(functions, "testfn", method="GET", params={"jobname": "busy-job"}, body=b"")
    assert status == 409 and "being run elsewhere" in answer["error"]


# --- the queue trigger -----------------------------------------------------------------------


def test_queue_message_json_or_bare_name_runs_the_job(functions, env, store, demo_genes):
    make_job(store, "queue-json", demo_genes)
    make_job(store, "queue-bare", demo_genes)
    deliver(functions, '{"jobname": "queue-json"}')
    deliver(functions, "queue-bare")
    assert store.read_status("queue-json").status is State.COMPLETED
    assert store.read_status("queue-bare").status is State.COMPLETED
    assert not store.lease_path("queue-json").exists()


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{not json", b'{"jobname": "../x"}', b"[1, 2]", b"no-such-job"])
def test_undecodable_or_unknown_messages_are_dropped(functions, env, store, body, caplog):
    deliver(functions, body, message_id="junk-1")
    assert "junk-1" in caplog.text and "dropped" in caplog.text
    assert store.list_jobs() == []


def test_a_completed_job_is_not_run_again(functions, env, store, demo_genes):
    make_job(store, "done-job", demo_genes)
    deliver(functions, "done-job")
    before = store.read_status("done-job")
    deliver(functions, "done-job", dequeue_count=2)
    assert store.read_status("done-job") == before


def test_a_job_held_by_a_live_run_is_not_started_twice(functions, env, store, demo_genes):
    make_job(store, "held-job", demo_genes)
    with RunLease(store, "held-job", stale_after=5):
        deliver(functions, "held-job")
        assert store.read_status("held-job").status is State.CREATED
    deliver(functions, "held-job")
    assert store.read_status("held-job").status is State.COMPLETED


def test_a_stale_lease_is_taken_over(functions, env, store, demo_genes):
    make_job(store, "stale-job", demo_genes)
    store.lease_path("stale-job").write_text(json.dumps({"owner": "dead-host:1:x", "pid": 1, "heartbeat": 0}))
    deliver(functions, "stale-job")
    assert store.read_status("stale-job").status is State.COMPLETED


def test_transient_failures_retry_then_fail_on_the_last_try(functions, env, store, demo_genes, data_path, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data_path, broken)
    (broken / "Data__Human__SixSpeciesN2V__STRING.npy").write_bytes(b"garbage")
    env.setenv("DATA_PATH", str(broken))
    make_job(store, "flaky-job", demo_genes)
    last = max_dequeue_count(function_app.HOST_JSON)
    for attempt in range(1, last):
        with pytest.raises(JobWorkFailed, match="ValueError"):
            deliver(functions, "flaky-job", dequeue_count=attempt)
        status = store.read_status("flaky-job")
        assert status.status is State.QUEUED and f"try {attempt} failed" in status.message
    with pytest.raises(JobWorkFailed, match="ValueError"):
        deliver(functions, "flaky-job", dequeue_count=last)
    status = store.read_status("flaky-job")
    assert status.status is State.FAILED and f"failed on each of {last} tries" in status.message
    assert status.attempt == last and not store.has_results("flaky-job")


def test_failures_a_retry_cannot_fix_fail_at_once(functions, env, store):
    make_job(store, "hopeless-job", [f"NOPE{i}" for i in range(20)])
    deliver(functions, "hopeless-job")
    status = store.read_status("hopeless-job")
    assert status.status is State.FAILED and "too few of your genes" in status.message
