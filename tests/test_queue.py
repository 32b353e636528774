"""The job queue against a real Azurite (started by tests/azurite.py), and the queue and URL launchers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import azurite as azurite_helper
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from azurite import ACCOUNT_KEY, AzuriteServer, running_azurite

from mljob import enqueue, messages
from mljob.errors import (
    InvalidInput,
    JobNotFound,
    JobNotReady,
    LaunchError,
    MljobError,
    QueueUnavailable,
    SettingsError,
)
from mljob.job import parse_config
from mljob.job_manager import JobManager
from mljob.launcher import QueueLauncher, UrlLauncher
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def azurite_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    """An Azurite for this module (the session-wide `azurite` fixture in conftest.py can replace it)."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


def queue_name_for(test_name: str) -> str:
    """A valid queue name of its own for each test (<= 56 characters, leaving room for -poison)."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:36].strip("-")
    return f"t-{slug}-{hashlib.sha1(test_name.encode()).hexdigest()[:8]}"


@pytest.fixture
def queue(azurite_local: AzuriteServer, request: pytest.FixtureRequest) -> JobQueue:
    """A JobQueue of its own (created, empty) for the calling test."""
    job_queue = JobQueue(azurite_local.connection_string, queue_name_for(request.node.name))
    job_queue.ensure()
    return job_queue


def make_job(store: ResultsFileStore, name: str, genes: list[str]) -> str:
    store.create_job(parse_config({"jobname": name}), genes)
    return name


def name_in(content: str) -> str:
    """The job name in a message's content on the wire, decoded as the Functions host would (base64, then ours)."""
    return messages.decode(messages.from_wire(content))


def visible_names(queue: JobQueue) -> list[str]:
    """The job names of the visible messages."""
    return [name_in(m.content) for m in queue.client.peek_messages(max_messages=32)]


def message_count(queue: JobQueue) -> int:
    """Every message in the queue, hidden ones included."""
    return queue.client.get_queue_properties().approximate_message_count


def states(store: ResultsFileStore, names: list[str]) -> list[State]:
    return [store.read_status(n).status for n in names]


# --- messages ----------------------------------------------------------------------------------


def test_encode_is_json_with_the_jobname():
    assert json.loads(messages.encode("my-genes-8e3jt5kz")) == {"jobname": "my-genes-8e3jt5kz"}
    with pytest.raises(InvalidInput):
        messages.encode("Not A Name")


@pytest.mark.parametrize(
    "body",
    [
        '{"jobname": "my-genes-8e3jt5kz"}',
        '{"jobid": "my-genes-8e3jt5kz"}',
        '  {"jobname": " my-genes-8e3jt5kz "}\n',
        "my-genes-8e3jt5kz",
        "  my-genes-8e3jt5kz\r\n",
        b'{"jobname": "my-genes-8e3jt5kz"}',
        b"my-genes-8e3jt5kz\n",
        "\ufeffmy-genes-8e3jt5kz",
    ],
)
def test_decode_accepts_json_jobid_and_bare_names(body):
    assert messages.decode(body) == "my-genes-8e3jt5kz"


def test_decode_round_trips_encode():
    assert messages.decode(messages.encode("8e3jt5kz")) == "8e3jt5kz"
    assert messages.decode("12345678") == "12345678"  # a bare name of digits is a name, not a JSON number


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe\x00a", "not UTF-8"),
        ("", "empty"),
        ("   \n", "empty"),
        ("My Genes!", "neither"),
        ("../../etc/passwd", "neither"),
        ('"my-genes-8e3jt5kz"', "neither"),
        ('{"jobname": 5}', "must be a string"),
        ('{"jobname": null}', "must be a string"),
        ('{"name": "my-genes-8e3jt5kz"}', "unknown field(s) name"),
        ('{"jobname": "my-genes-8e3jt5kz", "extra": 1}', "unknown field(s) extra"),
        ('{"jobname": "abc-12345678", "jobid": "abc-12345678"}', "jobid"),
        ("{}", 'give exactly one of "jobname" or "jobid"'),
        ('["my-genes-8e3jt5kz"]', "got a list"),
        ('{"jobnames": ["my-genes-8e3jt5kz"]}', "unknown field(s) jobnames"),
        ("{not json", "not valid JSON"),
        ('{"jobname": "Bad_Name"}', "invalid job name"),
        ("a" * 65536, "bytes"),
        (b"a" * (64 * 1024), "bytes"),
    ],
)
def test_decode_refuses_junk_clearly(body, expected):
    with pytest.raises(InvalidInput, match=re.escape(expected)) as info:
        messages.decode(body)
    assert len(str(info.value)) < 400


def test_decode_refuses_non_text():
    with pytest.raises(InvalidInput, match="must be text"):
        messages.decode(None)  # type: ignore[arg-type]
    assert len(messages.encode("a" * 63)) < messages.MAX_MESSAGE_BYTES


# --- the queue and its wire format -------------------------------------------------------------


def test_job_queue_messages_are_base64_on_the_wire(queue: JobQueue, azurite_local: AzuriteServer):
    sent = queue.send("my-genes-8e3jt5kz")
    assert sent.id and sent.pop_receipt
    plain = QueueClient.from_connection_string(azurite_local.connection_string, queue.name)  # no decode policy
    [raw] = plain.peek_messages()
    assert raw.id == sent.id
    assert raw.content != messages.encode("my-genes-8e3jt5kz")
    decoded = base64.b64decode(raw.content, validate=True)
    assert json.loads(decoded) == {"jobname": "my-genes-8e3jt5kz"}
    assert messages.decode(decoded) == "my-genes-8e3jt5kz"
    assert messages.from_wire(raw.content) == decoded and messages.to_wire("my-genes-8e3jt5kz") == raw.content


@pytest.mark.parametrize("text", ['{"jobname": "web-8e3jt5kz"}', "web-8e3jt5kz", '{"jobid": "web-8e3jt5kz"}'])
def test_messages_put_by_a_web_app_decode(queue: JobQueue, azurite_local: AzuriteServer, text: str):
    web_app = QueueClient.from_connection_string(
        azurite_local.connection_string, queue.name, message_encode_policy=TextBase64EncodePolicy()
    )
    web_app.send_message(text)
    assert visible_names(queue) == ["web-8e3jt5kz"]


def test_ensure_creates_the_queue_and_its_poison_queue_and_is_idempotent(azurite_local: AzuriteServer):
    job_queue = JobQueue(azurite_local.connection_string, "ensure-me")
    assert job_queue.poison_name == "ensure-me-poison"
    job_queue.ensure()
    job_queue.ensure()
    assert job_queue.client.get_queue_properties().name == "ensure-me"
    assert job_queue.poison_client.get_queue_properties().name == "ensure-me-poison"


def test_send_creates_a_missing_queue(azurite_local: AzuriteServer):
    job_queue = JobQueue(azurite_local.connection_string, "created-on-send")
    job_queue.send("abc-12345678")
    assert visible_names(job_queue) == ["abc-12345678"]


def test_from_settings_uses_the_connection_string_and_queue_name(azurite_local: AzuriteServer):
    settings = Settings.from_env({"QUEUECONNECTIONSTRING": azurite_local.connection_string, "QUEUE_NAME": "from-env"})
    job_queue = JobQueue.from_settings(settings)
    assert (job_queue.name, job_queue.poison_name) == ("from-env", "from-env-poison")
    assert JobQueue.from_settings(settings) is job_queue  # one per process: its connections are reused
    with pytest.raises(SettingsError, match="QUEUECONNECTIONSTRING is not set"):
        JobQueue.from_settings(Settings.from_env({}))


def test_proxy_variables_are_honoured(azurite_local: AzuriteServer, monkeypatch):
    """HTTP(S)_PROXY and NO_PROXY are read once, when the queue is made (not on every call), and used."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once closed
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    through_proxy = JobQueue(azurite_local.connection_string, "via-proxy", timeout=1, retries=0)
    with pytest.raises(QueueUnavailable):
        through_proxy.ensure()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = JobQueue(azurite_local.connection_string, "via-proxy", timeout=1, retries=0)
    direct.ensure()
    monkeypatch.delenv("NO_PROXY")
    direct.send("abc-12345678")  # what was read at creation holds


def test_defaults_and_bad_settings_are_reported_without_the_key():
    assert JobQueue(f"AccountName=a;AccountKey={ACCOUNT_KEY}").name == "jobprocessing"
    for bad in ("", f"AccountKey={ACCOUNT_KEY}", f"nonsense{ACCOUNT_KEY}"):
        with pytest.raises(SettingsError) as info:
            JobQueue(bad)
        assert ACCOUNT_KEY not in str(info.value) and ACCOUNT_KEY[:12] not in str(info.value)
    for name in ("Jobs", "a", "job_processing", "a--b", "x" * 57):
        with pytest.raises(SettingsError, match="invalid queue name"):
            JobQueue(f"AccountName=a;AccountKey={ACCOUNT_KEY}", name)


def test_importing_the_queue_module_is_light():
    code = (
        "import sys, mljob.queue\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'pandas', 'geneplexus', 'azure'})\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- enqueue: all or nothing -------------------------------------------------------------------


def test_enqueue_marks_every_job_queued_and_sends_one_message_each(store, demo_genes, queue: JobQueue):
    names = [make_job(store, n, demo_genes) for n in ("a-11111111", "b-22222222", "c-33333333")]
    assert enqueue.enqueue_jobs(store, queue, [*names, names[0], names[1]]) == names  # duplicates dropped, in order
    assert sorted(visible_names(queue)) == sorted(names)
    assert message_count(queue) == 3
    for name in names:
        status = store.read_status(name)
        assert (status.status, status.code, status.message) == (State.QUEUED, 202, "queued for processing")
        assert [h.status for h in status.history] == [State.CREATED, State.QUEUED]
    on_disk = json.loads((store.job_path(names[0]) / "status.json").read_text())
    assert on_disk["status"] == "queued" and on_disk["history"][-1]["status"] == "queued"


def test_enqueue_accepts_failed_jobs(store, demo_genes, queue: JobQueue):
    name = make_job(store, "failed-11111111", demo_genes)
    store.update_status(name, State.FAILED, "boom")
    assert enqueue.enqueue_jobs(store, queue, [name]) == [name]
    assert states(store, [name]) == [State.QUEUED]


def test_unknown_job_in_the_list_sends_nothing(store, demo_genes, queue: JobQueue):
    known = make_job(store, "known-11111111", demo_genes)
    with pytest.raises(JobNotFound, match="missing-22222222"):
        enqueue.enqueue_jobs(store, queue, [known, "missing-22222222"])
    assert message_count(queue) == 0
    assert states(store, [known]) == [State.CREATED]
    assert len(store.read_status(known).history) == 1


@pytest.mark.parametrize("bad", ["Bad Name", "../escape", "", "a", " known-11111111", 42, None])
def test_bad_name_in_the_list_sends_nothing(store, demo_genes, queue: JobQueue, bad):
    known = make_job(store, "known-11111111", demo_genes)
    with pytest.raises(InvalidInput):
        enqueue.enqueue_jobs(store, queue, [known, bad])
    assert message_count(queue) == 0
    assert states(store, [known]) == [State.CREATED]


def test_empty_list_or_one_string_is_refused(store, queue: JobQueue):
    with pytest.raises(InvalidInput, match="no job names"):
        enqueue.enqueue_jobs(store, queue, [])
    with pytest.raises(InvalidInput, match="list"):
        enqueue.enqueue_jobs(store, queue, "abc-12345678")  # type: ignore[arg-type]


def test_unreadable_config_or_genes_sends_nothing(store, demo_genes, queue: JobQueue):
    good = make_job(store, "good-11111111", demo_genes)
    broken_config = make_job(store, "config-22222222", demo_genes)
    (store.job_path(broken_config) / "job_config.json").write_text("{not json")
    broken_genes = make_job(store, "genes-33333333", demo_genes)
    (store.job_path(broken_genes) / "input_genes.txt").write_bytes(b"\x00\x01binary")
    for broken in (broken_config, broken_genes):
        with pytest.raises(InvalidInput):
            enqueue.enqueue_jobs(store, queue, [good, broken])
    (store.job_path(good) / "input_genes.txt").unlink()
    with pytest.raises(InvalidInput, match=r"no input_genes\.txt"):
        enqueue.enqueue_jobs(store, queue, [good])
    assert message_count(queue) == 0
    assert states(store, [good, broken_config, broken_genes]) == [State.CREATED] * 3


@pytest.mark.parametrize("state", [State.QUEUED, State.RUNNING, State.COMPLETED])
def test_busy_or_completed_job_is_a_conflict_unless_rerun(store, demo_genes, queue: JobQueue, state):
    fresh = make_job(store, "fresh-11111111", demo_genes)
    busy = make_job(store, "busy-22222222", demo_genes)
    store.update_status(busy, state, "earlier")
    with pytest.raises(JobNotReady, match=f"busy-22222222 is {state.value}"):
        enqueue.enqueue_jobs(store, queue, [fresh, busy])
    assert message_count(queue) == 0
    assert states(store, [fresh, busy]) == [State.CREATED, state]

    assert enqueue.enqueue_jobs(store, queue, [fresh, busy], rerun=True) == [fresh, busy]
    assert states(store, [fresh, busy]) == [State.QUEUED, State.QUEUED]
    assert sorted(visible_names(queue)) == sorted([fresh, busy])


def test_queue_down_raises_queue_unavailable_quickly_and_marks_nothing(store, demo_genes, azurite_local):
    names = [make_job(store, n, demo_genes) for n in ("down-11111111", "down-22222222")]
    job_queue = JobQueue(azurite_local.connection_string, "outage")
    with azurite_local.outage():
        started = time.monotonic()
        with pytest.raises(QueueUnavailable) as info:
            enqueue.enqueue_jobs(store, job_queue, names)
        elapsed = time.monotonic() - started
        with pytest.raises(QueueUnavailable):
            job_queue.ensure()
    text = str(info.value)
    # the SDK's default retries would take minutes; ours give up within seconds (a bound load alone cannot break)
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert "could not be reached" in text and "'outage'" in text and "none of the 2 jobs was enqueued" in text
    assert ACCOUNT_KEY not in text and "AccountKey" not in text and ACCOUNT_KEY[:12] not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert states(store, names) == [State.CREATED, State.CREATED]
    # back up (restarted empty: in-memory Azurite): the same JobQueue works again
    assert enqueue.enqueue_jobs(store, job_queue, names) == names


def test_a_failed_send_withdraws_the_messages_already_sent(store, demo_genes, queue: JobQueue, monkeypatch):
    names = [make_job(store, n, demo_genes) for n in ("one-11111111", "two-22222222", "three-33333333")]
    real_send = queue.client.send_message
    calls = []

    def flaky_send(*args, **kwargs):
        calls.append(args)
        if name_in(args[0]) == "three-33333333":
            raise ServiceRequestError("connection reset (simulated)")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(queue.client, "send_message", flaky_send)
    with pytest.raises(QueueUnavailable, match=r"three-33333333.*none of the 3 jobs was enqueued"):
        enqueue.enqueue_jobs(store, queue, names)
    assert len(calls) == 3
    assert message_count(queue) == 0  # the two sent (hidden) messages were deleted
    assert states(store, names) == [State.CREATED] * 3


def test_every_job_is_marked_queued_before_its_message_is_sent(store, demo_genes, queue: JobQueue, monkeypatch):
    names = [make_job(store, n, demo_genes) for n in ("one-11111111", "two-22222222")]
    seen = []
    real_update = store.update_status

    def watching_update(name, state, *args, **kwargs):
        seen.append((name, name in visible_names(queue)))
        return real_update(name, state, *args, **kwargs)

    monkeypatch.setattr(store, "update_status", watching_update)
    enqueue.enqueue_jobs(store, queue, names)
    assert sorted(seen) == [(names[0], False), (names[1], False)]  # no worker can receive a job before it is queued
    assert sorted(visible_names(queue)) == sorted(names)


def test_a_message_a_worker_already_took_is_named_and_its_run_left_alone(
    store, demo_genes, queue: JobQueue, monkeypatch
):
    """A send fails after a worker received another job's message: that job is named, its status kept."""
    names = [make_job(store, n, demo_genes) for n in ("one-11111111", "two-22222222", "three-33333333")]
    real_send = queue.client.send_message
    taken = threading.Event()

    def send_then_fail(text, **kwargs):
        if name_in(text) == "three-33333333":
            taken.wait(30)
            raise ServiceRequestError("connection reset (simulated)")
        message = real_send(text, **kwargs)
        if name_in(text) == "one-11111111":  # a worker receives it and starts the job
            received = queue.client.receive_message(visibility_timeout=60)
            assert received is not None
            store.update_status(name_in(received.content), State.RUNNING, "running")
            taken.set()
        return message

    monkeypatch.setattr(queue.client, "send_message", send_then_fail)
    with pytest.raises(QueueUnavailable) as info:
        enqueue.enqueue_jobs(store, queue, names)
    text = str(info.value)
    assert "three-33333333" in text and "could not be withdrawn" in text
    running = [n for n in names if store.read_status(n).status is State.RUNNING]
    assert len(running) == 1 and running[0] in text  # the job the worker took: named, its run left alone
    assert states(store, [n for n in names if n not in running]) == [State.CREATED] * 2


def test_a_failed_status_write_withdraws_messages_and_restores_statuses(
    store, demo_genes, queue: JobQueue, monkeypatch
):
    names = [make_job(store, n, demo_genes) for n in ("one-11111111", "two-22222222")]
    store.update_status(names[0], State.FAILED, "an earlier failure")
    before = store.read_status(names[0])
    real_update = store.update_status

    def failing_update(name, *args, **kwargs):
        if name == names[1]:
            raise OSError("disk full (simulated)")
        return real_update(name, *args, **kwargs)

    monkeypatch.setattr(store, "update_status", failing_update)
    with pytest.raises(OSError, match="disk full"):
        enqueue.enqueue_jobs(store, queue, names)
    assert message_count(queue) == 0
    assert store.read_status(names[0]) == before
    assert states(store, names) == [State.FAILED, State.CREATED]


# --- launchers ---------------------------------------------------------------------------------


def test_queue_launcher_puts_the_job_on_the_queue(store, demo_genes, queue: JobQueue):
    name = make_job(store, "launch-11111111", demo_genes)
    assert QueueLauncher(queue, store).launch(name) is None
    assert visible_names(queue) == [name]
    assert states(store, [name]) == [State.QUEUED]
    with pytest.raises(JobNotReady):
        QueueLauncher(queue, store).launch(name)


def test_job_manager_with_a_queue_launcher_queues_submitted_jobs(store, demo_genes, queue: JobQueue):
    manager = JobManager(store, QueueLauncher(queue, store))
    name = manager.submit(demo_genes, {"net_type": "BioGRID"}, prefix="queued genes")
    assert name.startswith("queued-genes-")
    assert visible_names(queue) == [name]
    assert manager.status(name).status is State.QUEUED
    assert manager.config(name).net_type == "BioGRID"


class _EnqueueApp:
    """A small real HTTP server on 127.0.0.1 playing the function app's /api/enqueue."""

    def __init__(self, key: str = "the-function-key"):
        self.key = key
        self.requests: list[dict] = []
        self.answer: tuple[int, str, str] | None = None  # (status, content type, body) to force
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                app.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if app.answer:
                    self._reply(*app.answer)
                elif self.path != "/api/enqueue":
                    self._reply(404, "text/plain", "Not Found")
                elif self.headers.get("x-functions-key") != app.key:
                    self._reply(401, "application/json", '{"error": "unauthorized"}')
                else:
                    try:
                        name = json.loads(body)["jobname"]
                    except (ValueError, KeyError, TypeError):
                        self._reply(400, "application/json", '{"error": "body must be {\\"jobname\\": ...}"}')
                        return
                    self._reply(202, "application/json", json.dumps({"jobnames": [name], "status": "queued"}))

            def _reply(self, status: int, content_type: str, text: str):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if status in (301, 302, 307):
                    self.send_header("Location", text)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/enqueue"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_url_launcher_posts_the_jobname_with_the_key(caplog):
    caplog.set_level("DEBUG")
    with _EnqueueApp() as app:
        assert UrlLauncher(app.url, "the-function-key").launch("my-genes-8e3jt5kz") is None
    [request] = app.requests
    assert request["path"] == "/api/enqueue"
    assert request["headers"]["x-functions-key"] == "the-function-key"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"jobname": "my-genes-8e3jt5kz"}
    assert "the-function-key" not in caplog.text


def test_url_launcher_without_a_key_sends_no_key_header_and_reports_401():
    with _EnqueueApp() as app:
        with pytest.raises(LaunchError, match="HTTP 401: no function key was given: unauthorized"):
            UrlLauncher(app.url).launch("my-genes-8e3jt5kz")
        with pytest.raises(LaunchError, match="the function key given was refused") as info:
            UrlLauncher(app.url, "wrong-key-value").launch("my-genes-8e3jt5kz")
    assert "x-functions-key" not in {k.lower() for k in app.requests[0]["headers"]}
    assert "wrong-key-value" not in str(info.value)


def test_url_launcher_404_from_a_wrong_url_says_so():
    with _EnqueueApp() as app:
        with pytest.raises(LaunchError, match=r"answered HTTP 404 \(Not Found\): Not Found: is the enqueue URL right"):
            UrlLauncher(app.url.replace("/api/enqueue", "/api/enqeue"), "the-function-key").launch("abc-12345678")


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (404, '{"error": "job abc-12345678 not found"}', JobNotFound, r"not found by the app.*abc-12345678 not found"),
        (409, '{"error": "job abc-12345678 is running"}', JobNotReady, "HTTP 409: job abc-12345678 is running"),
        (400, '{"error": "invalid job name"}', InvalidInput, "HTTP 400: invalid job name"),
        (503, '{"error": "the queue service could not be reached"}', LaunchError, "HTTP 503: the queue service"),
        (500, "<html><body>Internal\n  Server Error</body></html>", LaunchError, "HTTP 500: <html><body>Internal Se"),
    ],
)
def test_url_launcher_reports_the_apps_error_text(status, body, error, match):
    with _EnqueueApp() as app:
        app.answer = (status, "application/json" if body.startswith("{") else "text/html", body)
        with pytest.raises(error, match=match) as info:
            UrlLauncher(app.url, "the-function-key").launch("abc-12345678")
    assert isinstance(info.value, MljobError)
    assert "the-function-key" not in str(info.value)


def test_url_launcher_does_not_follow_redirects_with_the_key():
    with _EnqueueApp() as elsewhere, _EnqueueApp() as app:
        app.answer = (307, "text/plain", elsewhere.url)
        with pytest.raises(LaunchError, match="redirect, not followed"):
            UrlLauncher(app.url, "the-function-key").launch("abc-12345678")
    assert elsewhere.requests == []


def test_url_launcher_unreachable_or_bad_url_is_a_clear_error():
    with _EnqueueApp() as app:
        url = app.url
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"could not reach the enqueue endpoint http://127\.0\.0\.1:") as info:
        UrlLauncher(url + "?code=secret-in-url", timeout=120).launch("abc-12345678")
    assert time.monotonic() - started < 60  # a refused connection fails at once: it does not wait out the timeout
    assert "secret-in-url" not in str(info.value)
    with pytest.raises(InvalidInput, match="http:// or https://"):
        UrlLauncher("ftp://example.org/api/enqueue")
    with pytest.raises(InvalidInput):
        UrlLauncher(url).launch("Not A Name")


def test_missing_azurite_fails_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(azurite_helper._script, "AZURITE_BIN", tmp_path / "node_modules" / ".bin" / "azurite")
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        with running_azurite(tmp_path):
            pass


def test_a_restart_reuses_the_ports_and_refuses_a_taken_port(tmp_path):
    with running_azurite(tmp_path) as server:
        ports = server.ports
        server.stop()
        with socket.create_server(("127.0.0.1", server.queue_port)):
            with pytest.raises(azurite_helper.AzuriteError, match="EADDRINUSE"):
                server.start()
        server.start()
        assert server.ports == ports and server.running
        JobQueue(server.connection_string, "after-restart").send("abc-12345678")
    assert not server.running
