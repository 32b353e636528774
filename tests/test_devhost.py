"""`mljob serve` (mljob/devhost.py): real dev host subprocesses, real HTTP on loopback, real Azurite queues."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytest.importorskip("azure.functions")
pytest.importorskip("azure.storage.queue")

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from devhost_process import DevHostProcess, wait_for

from mljob.host_config import HostConfig, parse_timespan
from mljob.tools.devhost import DevHost, compile_route

REPO = Path(__file__).resolve().parent.parent
APP_DIR = REPO / "tests" / "devhost_app"
LEASE_SECONDS = 2
FUNCTION_KEY = "test-function-key-5f3a"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def azurite_conn(azurite) -> str:
    """The session's Azurite (tests/conftest.py), as a connection string."""
    return azurite.connection_string


class Queue:
    """A fresh queue with its own output file, a base64 client (as the Functions host expects) and a raw one."""

    def __init__(self, conn: str, tmp: Path) -> None:
        self.name = f"devhost-{uuid.uuid4().hex[:12]}"
        self.client = QueueClient.from_connection_string(
            conn, self.name, message_encode_policy=TextBase64EncodePolicy()
        )
        self.raw = QueueClient.from_connection_string(conn, self.name)
        self.poison = QueueClient.from_connection_string(conn, f"{self.name}-poison")
        self.client.create_queue()
        self.out = tmp / f"{self.name}.jsonl"
        self.out.touch()
        self.env = {
            **os.environ,
            "TEST_QUEUE": self.name,
            "TEST_QUEUE_CONN": conn,
            "DEVHOST_TEST_OUT": str(self.out),
            "MESSAGE_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        self.env.pop("MLJOB_FUNCTION_KEY", None)

    def records(self, body: str | None = None, event: str | None = None) -> list[dict]:
        rows = [json.loads(line) for line in self.out.read_text().splitlines()]
        return [r for r in rows if (body is None or r["body"] == body) and (event is None or r["event"] == event)]

    def count(self) -> int:
        """Messages in the queue, visible or not (0 means every message was deleted)."""
        return self.client.get_queue_properties().approximate_message_count

    def poison_count(self) -> int:
        """Messages in `<queue>-poison` (0 while it does not exist)."""
        try:
            return self.poison.get_queue_properties().approximate_message_count
        except ResourceNotFoundError:
            return 0


@pytest.fixture(scope="module")
def host(azurite_conn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevHostProcess, Queue]]:
    """One dev host for the HTTP and single-host queue tests, with MLJOB_FUNCTION_KEY set."""
    tmp = tmp_path_factory.mktemp("devhost")
    queue = Queue(azurite_conn, tmp)
    server = DevHostProcess(tmp, {**queue.env, "MLJOB_FUNCTION_KEY": FUNCTION_KEY}, APP_DIR)
    yield server, queue
    assert server.stop() == 0
    assert "stopped" in server.log()


# --- configuration, in process --------------------------------------------------------------------


def test_timespans_and_host_json_defaults(tmp_path: Path) -> None:
    assert parse_timespan("00:00:00.500") == 0.5
    assert parse_timespan("1.02:00:30") == 86400 + 7200 + 30
    with pytest.raises(ValueError):
        parse_timespan("30s")
    defaults = HostConfig.load(tmp_path / "absent.json").queues
    assert (defaults.batch_size, defaults.max_dequeue_count, defaults.message_encoding) == (16, 5, "base64")
    assert defaults.new_batch_threshold == (os.cpu_count() or 1) * 16 // 2
    assert (defaults.visibility_timeout, defaults.max_polling_interval) == (0, 60)
    (tmp_path / "host.json").write_text('{"extensions": {"queues": {"maxPollingInterval": "00:00:00.010"}}}')
    assert HostConfig.load(tmp_path / "host.json").queues.max_polling_interval == 0.1  # the host's minimum
    queues = HostConfig.load(APP_DIR / "host.json").queues
    assert (queues.max_in_flight, queues.max_dequeue_count, queues.max_polling_interval) == (1, 3, 0.5)


def test_route_templates() -> None:
    assert compile_route("jobs/{jobname}").match("/jobs/abc").groupdict() == {"jobname": "abc"}
    assert compile_route("jobs/{jobname}").match("/JOBS/abc/")
    assert not compile_route("jobs/{jobname}").match("/jobs/abc/x")
    assert compile_route("files/{id:int}/{*rest}").match("/files/3/a/b").groupdict() == {"id": "3", "rest": "a/b"}
    assert compile_route("items/{name?}").match("/items").groupdict() == {"name": None}


# --- HTTP -------------------------------------------------------------------------------------------


def test_first_log_line_says_development_server(host: tuple[DevHostProcess, Queue]) -> None:
    first = host[0].log().splitlines()[0]
    assert "DEVELOPMENT server" in first and "not the Azure Functions host" in first


def test_http_routes(host: tuple[DevHostProcess, Queue]) -> None:
    server, _ = host
    ping = requests.get(f"{server.url}/api/ping", timeout=5)
    assert (ping.status_code, ping.json()) == (200, {"pong": True})
    assert ping.headers["Content-Type"] == "application/json"

    key = {"x-functions-key": FUNCTION_KEY}
    echo = requests.post(f"{server.url}/api/echo/a%20b?x=1", data=b"hello", headers=key, timeout=5)
    assert echo.status_code == 201
    assert echo.json() == {"name": "a b", "params": {"x": "1"}, "body": "hello"}
    assert echo.headers["X-Echo"] == "yes"

    missing = requests.get(f"{server.url}/api/nothing/here", timeout=5)
    assert missing.status_code == 404 and "error" in missing.json()
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 404  # routes live under /api
    wrong_method = requests.get(f"{server.url}/api/echo/x", headers=key, timeout=5)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.json()["error"]
    assert wrong_method.headers["Allow"] == "POST"

    boom = requests.get(f"{server.url}/api/boom", timeout=5)
    assert (boom.status_code, boom.json()) == (500, {"error": "internal error"})
    most = 2 * 1_000_000  # twice MAX_INPUT_BYTES (default): room for gpz-ml's genes as JSON
    big = requests.post(f"{server.url}/api/echo/x", data=b"x" * (most + 1), headers=key, timeout=5)
    assert big.status_code == 413 and f"the most accepted is {most:,}" in big.json()["error"]

    log = server.log()
    assert "RuntimeError: boom: a deliberate test error" in log  # the traceback is in the log only
    assert "POST /api/echo/a%20b 201 " in log and "GET /api/nothing/here 404 " in log
    assert "GET /api/boom 500 " in log and "x=1" not in log


def test_function_key(host: tuple[DevHostProcess, Queue]) -> None:
    server, _ = host
    url = f"{server.url}/api/echo/k"
    no_key = requests.post(url, data=b"", timeout=5)
    assert no_key.status_code == 401 and "error" in no_key.json()
    assert requests.post(url, data=b"", headers={"x-functions-key": "wrong"}, timeout=5).status_code == 401
    assert requests.post(url, params={"code": "wrong"}, timeout=5).status_code == 401
    assert requests.post(url, headers={"x-functions-key": FUNCTION_KEY}, timeout=5).status_code == 201
    assert requests.post(url, params={"code": FUNCTION_KEY}, timeout=5).status_code == 201
    assert requests.get(f"{server.url}/api/ping", timeout=5).status_code == 200  # anonymous: no key needed
    assert FUNCTION_KEY not in server.log()


# --- queue trigger, one host ------------------------------------------------------------------------


def test_messages_are_processed_once_and_deleted(host: tuple[DevHostProcess, Queue]) -> None:
    server, queue = host
    bodies = [f"hello {uuid.uuid4().hex}" for _ in range(3)]
    for body in bodies:
        queue.client.send_message(body)
    wait_for(lambda: all(queue.records(b, "done") for b in bodies), 10, "3 messages to be processed")
    wait_for(lambda: queue.count() == 0, 5, "the messages to be deleted")
    for body in bodies:
        assert [r["dequeue_count"] for r in queue.records(body)] == [1, 1]  # one start, one done
    first = queue.records(bodies[0], "done")[0]
    assert f"message {first['id']} dequeue_count 1: done" in server.log()


def test_failing_message_is_tried_max_dequeue_count_times_then_poisoned(host: tuple[DevHostProcess, Queue]) -> None:
    server, queue = host
    body = f"fail {uuid.uuid4().hex}"
    queue.client.send_message(body)
    wait_for(lambda: queue.poison_count() == 1, 15, "the poison queue")
    assert [r["dequeue_count"] for r in queue.records(body, "start")] == [1, 2, 3]  # maxDequeueCount 3
    assert not queue.records(body, "done")
    [poisoned] = queue.poison.receive_messages(visibility_timeout=1)
    assert base64.b64decode(poisoned.content).decode() == body  # its original (base64) content
    queue.poison.delete_message(poisoned)
    assert queue.count() == 0
    assert f"failed 3 times; moved to {queue.name}-poison" in server.log()


def test_message_that_is_not_base64_goes_to_poison(host: tuple[DevHostProcess, Queue]) -> None:
    server, queue = host
    body = f"plain text, not base64! {uuid.uuid4().hex}"
    queue.raw.send_message(body)
    wait_for(lambda: queue.poison_count() == 1, 10, "the poison queue")
    [poisoned] = queue.poison.receive_messages(visibility_timeout=1)
    assert poisoned.content == body
    queue.poison.delete_message(poisoned)
    assert not queue.records(body) and queue.count() == 0
    assert "is not valid base64" in server.log()


@pytest.mark.slow  # seconds of waiting on real hosts by design: `make test-fast` leaves it out
def test_slow_message_keeps_its_lease_and_runs_once(host: tuple[DevHostProcess, Queue]) -> None:
    server, queue = host
    body = f"slow {LEASE_SECONDS * 2 + 0.5} {uuid.uuid4().hex}"
    queue.client.send_message(body)
    wait_for(lambda: queue.records(body, "start"), 10, "the slow message to start")
    while not queue.records(body, "done"):
        assert not list(queue.client.peek_messages()), "the message became visible while its function ran"
        time.sleep(0.2)
    wait_for(lambda: queue.count() == 0, 5, "the message to be deleted")
    assert [r["dequeue_count"] for r in queue.records(body)] == [1, 1]
    assert "renewing its lease failed" not in server.log()


# --- queue trigger, several hosts ---------------------------------------------------------------------


@pytest.mark.slow  # seconds of waiting on real hosts by design: `make test-fast` leaves it out
def test_message_of_a_killed_host_comes_back(azurite_conn: str, tmp_path: Path) -> None:
    queue = Queue(azurite_conn, tmp_path)
    body = f"slow 1 {uuid.uuid4().hex}"
    first = DevHostProcess(tmp_path, queue.env, APP_DIR)
    queue.client.send_message(body)
    wait_for(lambda: queue.records(body, "start"), 10, "the slow message to start")
    first.kill()
    second = DevHostProcess(tmp_path, queue.env, APP_DIR)
    try:
        wait_for(lambda: queue.records(body, "done"), LEASE_SECONDS + 8, "the message to come back")
        assert [(r["event"], r["dequeue_count"]) for r in queue.records(body)] == [
            ("start", 1),
            ("start", 2),
            ("done", 2),
        ]
        wait_for(lambda: queue.count() == 0, 5, "the message to be deleted")
    finally:
        assert second.stop() == 0


@pytest.mark.slow  # seconds of waiting on real hosts by design: `make test-fast` leaves it out
def test_two_hosts_share_a_queue(azurite_conn: str, tmp_path: Path) -> None:
    queue = Queue(azurite_conn, tmp_path)
    hosts = [DevHostProcess(tmp_path, queue.env, APP_DIR), DevHostProcess(tmp_path, queue.env, APP_DIR)]
    try:
        bodies = [f"slow 0.1 {i}" for i in range(20)]
        for body in bodies:
            queue.client.send_message(body)
        wait_for(lambda: len(queue.records(event="done")) >= 20, 30, "20 messages to be processed")
        wait_for(lambda: queue.count() == 0, 5, "the messages to be deleted")
        for body in bodies:
            assert [r["event"] for r in queue.records(body)] == ["start", "done"], body
        assert {r["pid"] for r in queue.records()} == {h.proc.pid for h in hosts}  # both took work
        for host in hosts:  # batchSize 1 + newBatchThreshold 0: one message at a time per host
            events = [r["event"] for r in queue.records() if r["pid"] == host.proc.pid]
            assert events == ["start", "done"] * (len(events) // 2)
    finally:
        assert [h.stop() for h in hosts] == [0, 0]


@pytest.mark.slow  # seconds of waiting on real hosts by design: `make test-fast` leaves it out
def test_stop_lets_a_running_function_finish(azurite_conn: str, tmp_path: Path) -> None:
    queue = Queue(azurite_conn, tmp_path)
    server = DevHostProcess(tmp_path, queue.env, APP_DIR)
    body = f"slow 1 {uuid.uuid4().hex}"
    queue.client.send_message(body)
    wait_for(lambda: queue.records(body, "start"), 10, "the slow message to start")
    assert server.stop() == 0
    assert queue.records(body, "done") and queue.count() == 0


def test_in_process_devhost_without_a_key(
    azurite_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    queue = Queue(azurite_conn, tmp_path)
    for name in ("TEST_QUEUE", "TEST_QUEUE_CONN", "DEVHOST_TEST_OUT", "MESSAGE_LEASE_SECONDS"):
        monkeypatch.setenv(name, queue.env[name])
    monkeypatch.delenv("MLJOB_FUNCTION_KEY", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "function_app", sys.modules.get("function_app"))  # restored afterwards
    caplog.set_level("INFO", logger="mljob.tools.devhost")
    devhost = DevHost(APP_DIR, port=0)
    devhost.start()
    try:
        assert requests.post(f"{devhost.url}/api/echo/open", timeout=5).status_code == 201  # no key set: open
        queue.client.send_message("in process")
        wait_for(lambda: queue.records("in process", "done"), 10, "the message to be processed")
    finally:
        devhost.stop(grace_seconds=1)
    assert "DEVELOPMENT server" in caplog.messages[0]
    assert any("MLJOB_FUNCTION_KEY is not set" in m for m in caplog.messages)


# --- settings and start-up errors ---------------------------------------------------------------------


def test_local_settings_json_fills_in_missing_settings(azurite_conn: str, tmp_path: Path) -> None:
    queue = Queue(azurite_conn, tmp_path)
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app)
    values = {"TEST_QUEUE_CONN": azurite_conn, "MLJOB_FUNCTION_KEY": "from-the-file"}
    (app / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    env = {k: v for k, v in queue.env.items() if k != "TEST_QUEUE_CONN"}
    server = DevHostProcess(tmp_path, {**env, "MLJOB_FUNCTION_KEY": "from-the-environment"}, app_dir=app)
    try:
        url = f"{server.url}/api/echo/x"
        assert requests.post(url, headers={"x-functions-key": "from-the-environment"}, timeout=5).status_code == 201
        assert requests.post(url, headers={"x-functions-key": "from-the-file"}, timeout=5).status_code == 401
        queue.client.send_message("from local settings")
        wait_for(lambda: queue.records("from local settings", "done"), 10, "the message to be processed")
    finally:
        assert server.stop() == 0


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mljob", "serve", "--app-dir", str(APP_DIR), *args]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_missing_connection_setting_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_QUEUE_CONN", "AzureWebJobsStorage")}
    result = _serve(tmp_path, {**env, "TEST_QUEUE": "q"}, "--port", "0")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "TEST_QUEUE_CONN" in line and "connection" in line


def test_taken_port_and_missing_app_exit_2(azurite_conn: str, tmp_path: Path) -> None:
    env = {**os.environ, "TEST_QUEUE": "q", "TEST_QUEUE_CONN": azurite_conn}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _serve(tmp_path, env, "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "is taken" in line
    missing = subprocess.run(
        [sys.executable, "-m", "mljob", "serve", "--app-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    [line] = missing.stderr.splitlines()
    assert "function_app.py not found" in line
