"""The console's routes: GET /api/jobs (filters, paging, a stable cursor), report and result files, the queue and
its poison queue (requeue), `mljob list` and `mljob poison`; and, over real HTTP with a key, 401 for every
route without it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from urllib.parse import urlencode

import azure.functions as func
import pytest
import requests
from app_functions import app_functions
from azure.storage.queue import QueueClient
from devhost_process import DevHostProcess, app_copy

from mljob import messages
from mljob.job import parse_config
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.status import State
from mljob.tools.cli import main as cli

STATES = [State.CREATED, State.QUEUED, State.RUNNING, State.COMPLETED, State.FAILED, State.TIMEOUT, State.CANCELLED]


@pytest.fixture
def env(monkeypatch, data_path, jobs_path, azurite):
    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("JOBS_PATH", str(jobs_path))
    monkeypatch.setenv("QUEUECONNECTIONSTRING", azurite.connection_string)
    monkeypatch.setenv("QUEUE_NAME", f"console-{uuid.uuid4().hex[:10]}")
    return monkeypatch


def call(name: str, *, url: str = "http://localhost/api/x", route: dict | None = None, body: bytes = b"", method="GET"):
    request = func.HttpRequest(method, url, body=body, route_params=route or {})
    response = app_functions()[name].get_user_function()(request)
    return response.status_code, response.get_body(), dict(response.headers)


def jobs_answer(**query) -> tuple[int, dict]:
    pairs = [(k, v) for k, values in query.items() for v in (values if isinstance(values, list) else [values])]
    status, body, _ = call("list_jobs", url=f"http://localhost/api/jobs?{urlencode(pairs)}")
    return status, json.loads(body)


def make_jobs(store: ResultsFileStore, count: int, prefix: str = "job") -> list[str]:
    names = []
    for i in range(count):
        name = f"{prefix}-{i:03d}"
        store.create_job(parse_config({"jobname": name}), ["CDK1"])
        state = STATES[i % len(STATES)]
        if state is not State.CREATED:
            store.update_status(name, state, f"now {state.value}")
        names.append(name)
    return names


# --- GET /api/jobs -------------------------------------------------------------------------------------------


def test_jobs_newest_first_in_pages_of_limit(env, store):
    names = make_jobs(store, 120)
    seen, after, pages = [], None, 0
    while True:
        status, answer = jobs_answer(limit=50, **({"after": after} if after else {}))
        assert status == 200 and len(answer["jobs"]) <= 50
        seen += [job["jobname"] for job in answer["jobs"]]
        pages += 1
        after = answer["next"]
        if after is None:
            break
    assert pages == 3 and seen == list(reversed(names))  # newest first, each once
    job = jobs_answer(limit=1)[1]["jobs"][0]
    assert set(job) == {"jobname", "status", "code", "message", "created", "updated", "progress", "attempt", "seconds"}
    assert jobs_answer()[1]["next"] is not None and len(jobs_answer()[1]["jobs"]) == 50  # the default limit


def test_jobs_filters(env, store):
    make_jobs(store, 21)
    make_jobs(store, 5, prefix="other")
    status, answer = jobs_answer(status=["failed", "timeout"], limit=500)
    assert status == 200 and {j["status"] for j in answer["jobs"]} == {"failed", "timeout"}
    expected = [i for i in range(21) if STATES[i % 7] in (State.FAILED, State.TIMEOUT)] + [4]  # other-004 failed
    assert len(answer["jobs"]) == len(expected)
    assert jobs_answer(status="failed,timeout", limit=500)[1] == answer  # comma-separated works too
    others = jobs_answer(prefix="other", limit=500)[1]["jobs"]
    assert [j["jobname"] for j in others] == [f"other-{i:03d}" for i in reversed(range(5))]
    finished = [j for j in jobs_answer(limit=500)[1]["jobs"] if j["status"] == "completed"]
    assert all(j["seconds"] is None or j["seconds"] >= 0 for j in finished)


def test_the_cursor_stays_stable_while_new_jobs_arrive(env, store):
    make_jobs(store, 60)
    first = jobs_answer(limit=25)[1]
    second_before = jobs_answer(limit=25, after=first["next"])[1]
    make_jobs(store, 10, prefix="later")  # newer than every job listed so far
    second_after = jobs_answer(limit=25, after=first["next"])[1]
    assert second_after == second_before
    assert [j["jobname"] for j in jobs_answer(limit=10)[1]["jobs"]] == [f"later-{i:03d}" for i in reversed(range(10))]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"limit": 0}, "limit must be a whole number from 1 to 500"),
        ({"limit": 501}, "limit must be a whole number from 1 to 500"),
        ({"limit": "many"}, "limit must be a whole number"),
        ({"after": "not-a-cursor"}, "invalid cursor"),
        ({"status": "exploded"}, "unknown status 'exploded'"),
    ],
)
def test_jobs_refuses_bad_queries(env, store, query, words):
    status, answer = jobs_answer(**query)
    assert status == 400 and words in answer["error"]


def test_jobs_reads_status_heads_and_shows_an_unreadable_job(env, store):
    make_jobs(store, 3)
    (store.job_path("job-001") / "status.json").write_text("{broken")
    jobs = {j["jobname"]: j for j in jobs_answer()[1]["jobs"]}
    assert jobs["job-001"]["status"] == "unreadable" and "corrupt" in jobs["job-001"]["message"]
    long = store.update_status("job-002", State.FAILED, "x" * 20_000)  # history pushed past the head
    assert jobs_answer(prefix="job-002")[1]["jobs"][0]["message"] == long.message


def test_mljob_list_uses_the_same_listing(env, store, capsys):
    make_jobs(store, 12)
    assert cli(["list", "--status", "failed", "--status", "cancelled"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert {line.split()[1] for line in lines} == {"failed", "cancelled"} and len(lines) == 3
    assert cli(["list", "--limit", "4"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        f"job-{i:03d}" for i in (11, 10, 9, 8)
    ]


# --- the report and result files -------------------------------------------------------------------------------


@pytest.fixture
def completed(env, store, data_path, demo_genes) -> str:
    store.create_job(parse_config({"jobname": "done-job"}), demo_genes)
    assert run_geneplexus("done-job", store, data_path).status is State.COMPLETED
    return "done-job"


def test_report_is_404_until_the_job_completes(env, store, demo_genes):
    store.create_job(parse_config({"jobname": "early-job"}), demo_genes)
    status, body, _ = call("job_report", route={"jobname": "early-job"})
    assert status == 404 and "has no results: it is created" in json.loads(body)["error"]
    assert call("job_report", route={"jobname": "no-such-job"})[0] == 404


def test_report_is_html_with_a_strict_policy(completed):
    status, body, headers = call("job_report", route={"jobname": completed})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src" not in policy and "unsafe-inline" not in policy
    text = body.decode()
    for kind in ("script", "style"):
        for inline in re.findall(rf"<{kind}(?:\s[^>]*)?>(.*?)</{kind}>", text, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy  # the page's own script and style, nothing else


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("top_genes.json", "application/json"),
        ("All-Genes/Human-Combined/df_probs.tsv", "text/tab-separated-values; charset=utf-8"),
        ("All-Genes/Human-Combined/isolated_genes.txt", "text/plain; charset=utf-8"),
        ("All-Genes/clf.joblib", "application/octet-stream"),
        ("report.html", "text/html; charset=utf-8"),
    ],
)
def test_result_files_with_their_content_type(completed, store, path, kind):
    status, body, headers = call("job_file", route={"jobname": completed, "path": path})
    assert status == 200 and headers["Content-Type"] == kind
    assert body == store.result_path(completed, path).read_bytes()


def test_job_log_tail_and_paths_that_lead_out(completed, store, tmp_path):
    status, body, headers = call(
        "job_file", url="http://localhost/api/x?tail=2", route={"jobname": completed, "path": "job.log"}
    )
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode() == "".join(store.read_log(completed).splitlines(keepends=True)[-2:])
    for path in ("../status.json", "/etc/passwd", "All-Genes/../../job_config.json"):
        assert call("job_file", route={"jobname": completed, "path": path})[0] == 400, path
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (store.job_path(completed) / "results" / "link.txt").symlink_to(secret)
    status, body, _ = call("job_file", route={"jobname": completed, "path": "link.txt"})
    assert status == 400 and b"do not serve" not in body
    assert call("job_file", route={"jobname": completed, "path": "nothing.json"})[0] == 404


# --- the queue and its poison queue ------------------------------------------------------------------------------


def poison(env_queue: str, azurite, name: str) -> None:
    """Put a job's message on the poison queue, as the host does after maxDequeueCount failed tries."""
    client = QueueClient.from_connection_string(azurite.connection_string, f"{env_queue}-poison")
    client.send_message(messages.to_wire(name))


def test_queue_counts_and_the_oldest_poison_messages(env, store, azurite, monkeypatch):
    queue_name = __import__("os").environ["QUEUE_NAME"]
    JobQueue(azurite.connection_string, queue_name).ensure()
    make_jobs(store, 2)
    poison(queue_name, azurite, "job-000")
    QueueClient.from_connection_string(azurite.connection_string, f"{queue_name}-poison").send_message("!!junk")
    status, body, _ = call("queue_status")
    answer = json.loads(body)
    assert status == 200 and answer["queue"] == {"name": queue_name, "count": 0}
    assert answer["poison"]["count"] == 2 and answer["poison"]["name"] == f"{queue_name}-poison"
    [good, junk] = answer["poison"]["oldest"]
    assert good["jobname"] == "job-000" and good["id"] and good["inserted"]
    assert junk["jobname"] is None and "base64" in junk["error"]


def test_requeue_from_poison_all_or_nothing(env, store, azurite, capsys):
    queue_name = __import__("os").environ["QUEUE_NAME"]
    queue = JobQueue(azurite.connection_string, queue_name)
    queue.ensure()
    names = make_jobs(store, 3, prefix="sick")
    for name in names[:2]:
        store.update_status(name, State.FAILED, "failed on each of 3 tries")
        poison(queue_name, azurite, name)
    status, body, _ = call(
        "requeue_poison", method="POST", body=json.dumps({"jobnames": [names[0], names[2]]}).encode()
    )
    assert status == 404 and names[2] in json.loads(body)["error"]  # sick-002 has no poison message: nothing moved
    assert queue.counts() == (0, 2) and store.read_status(names[0]).status is State.FAILED
    status, body, _ = call("requeue_poison", method="POST", body=json.dumps({"jobnames": [names[0]]}).encode())
    assert (status, json.loads(body)["requeued"]) == (202, [names[0]])
    assert store.read_status(names[0]).status is State.QUEUED and queue.counts() == (1, 1)
    assert cli(["poison", "list"]) == 0 and names[1] in capsys.readouterr().out
    assert cli(["poison", "requeue", "--all"]) == 0 and capsys.readouterr().out.split() == [names[1]]
    assert queue.counts() == (2, 0)
    assert cli(["poison", "requeue"]) == 2  # neither names nor --all
    for bad in (b"{}", b'{"all": false}', b'{"all": true, "jobnames": ["x-1"]}', b"[]"):
        assert call("requeue_poison", method="POST", body=bad)[0] == 400, bad


# --- security, over real HTTP ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_console_route_needs_the_key_and_reveals_nothing(tmp_path, azurite, data_path, jobs_path):
    key = "console-key-" + uuid.uuid4().hex
    environment = {
        **{k: v for k, v in __import__("os").environ.items() if k != "MLJOB_FUNCTION_KEY"},
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(jobs_path),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": f"sec-{uuid.uuid4().hex[:8]}",
        "MLJOB_FUNCTION_KEY": key,
    }
    ResultsFileStore(jobs_path).create_job(parse_config({"jobname": "real-job"}), ["CDK1"])
    host = DevHostProcess(tmp_path, environment, app_copy(tmp_path / "app"))
    try:
        routes = [
            ("GET", "/api/jobs"),
            ("GET", "/api/console"),
            ("GET", "/api/queue"),
            ("POST", "/api/queue/poison/requeue"),
            *[
                (method, path.format(name=name))
                for name in ("real-job", "no-such-job")
                for method, path in (
                    ("GET", "/api/jobs/{name}"),
                    ("GET", "/api/jobs/{name}/report"),
                    ("GET", "/api/jobs/{name}/files/job.log"),
                    ("POST", "/api/jobs/{name}/cancel"),
                )
            ],
        ]
        answers = set()
        for method, path in routes:
            for headers in ({}, {"x-functions-key": "wrong"}):
                answer = requests.request(method, host.url + path, headers=headers, timeout=30)
                assert answer.status_code == 401 and answer.headers["Content-Type"] == "application/json", path
                answers.add(answer.text)
        assert len(answers) == 1  # the same answer for a job that exists and one that does not
        assert requests.get(f"{host.url}/api/jobs?code={key}", timeout=30).status_code == 200
        assert requests.get(f"{host.url}/api/queue/poison/requeue?code={key}", timeout=30).status_code == 405
    finally:
        host.stop()
    assert key not in host.log()  # never logged, though it came in URLs
