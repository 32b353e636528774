"""Security: function keys under `mljob serve`, the callback allow-list, log injection, secrets in answers and logs."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import ClassVar

import pytest
import requests
from devhost_process import DevHostProcess, app_copy

from mljob import api, callback, queue_trigger
from mljob.job import parse_config
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus, State

ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# --- function keys under mljob serve -----------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_host(tmp_path_factory, azurite, data_path):
    tmp = tmp_path_factory.mktemp("keyed")
    app = app_copy(tmp / "app")
    (tmp / "jobs").mkdir()
    key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(tmp / "jobs"),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": f"sec-{uuid.uuid4().hex[:8]}",
        "MLJOB_FUNCTION_KEY": key,
    }
    host = DevHostProcess(tmp, env, app)
    yield host, key
    host.stop()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/enqueue"), ("GET", "/api/jobs/some-job"), ("GET", "/api/testfn?jobname=some-job")],
)
def test_function_routes_need_the_key(keyed_host, method, path):
    host, key = keyed_host
    wrong = secrets.token_urlsafe(24)
    body = b'{"jobname": "some-job"}' if method == "POST" else b""
    join = "&" if "?" in path else "?"
    for headers, query in [
        ({}, ""),
        ({"x-functions-key": wrong}, ""),
        ({}, f"{join}code={wrong}"),
        ({"x-functions-key": key[:-1]}, ""),
        ({"x-functions-key": ""}, ""),
    ]:
        response = requests.request(method, host.url + path + query, data=body, headers=headers, timeout=30)
        assert response.status_code == 401, (headers, query, response.text)
        assert "needs a key" in response.json()["error"]
    for headers, query in [({"x-functions-key": key}, ""), ({}, f"{join}code={key}")]:
        response = requests.request(method, host.url + path + query, data=body, headers=headers, timeout=30)
        assert response.status_code == 404, response.text  # past the key check: the job does not exist
    assert requests.get(f"{host.url}/api/health", timeout=30).status_code in (200, 503)  # anonymous
    log = host.log()
    assert key not in log and wrong not in log and key[:-1] not in log
    assert ACCOUNT_KEY not in log


def test_the_key_is_compared_in_constant_time(monkeypatch):
    from mljob.tools import devhost

    calls = []
    real = devhost.hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(devhost.hmac, "compare_digest", recording)
    fake = SimpleNamespace(settings=SimpleNamespace(function_key="s3cret"))
    route = SimpleNamespace(auth_level="function")
    assert devhost.DevHost.authorized(fake, route, "s3cret") is True
    assert devhost.DevHost.authorized(fake, route, "wrong") is False
    assert devhost.DevHost.authorized(fake, route, None) is False
    assert calls == [(b"s3cret", b"s3cret"), (b"wrong", b"s3cret"), (b"", b"s3cret")]


# --- callbacks: the allow-list ------------------------------------------------------------------


def resolving(monkeypatch, table: dict[str, list[str]]) -> None:
    def fake(host, port):
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    monkeypatch.setattr(callback, "_resolve", fake)


ALLOW_CASES = [
    # (url, CALLBACK_ALLOWED_HOSTS, addresses of the host, refusal text or None)
    ("https://app.example.org/cb", "", {"app.example.org": ["93.184.216.34"]}, None),
    ("https://app.example.org/cb", "app.example.org", {"app.example.org": ["93.184.216.34"]}, None),
    ("https://APP.example.org/cb", "app.example.org", {"app.example.org": ["93.184.216.34"]}, None),
    ("https://evil.example.net/cb", "app.example.org", {"evil.example.net": ["93.184.216.35"]}, "not in CALLBACK"),
    ("http://127.0.0.1:8080/cb", "", {"127.0.0.1": ["127.0.0.1"]}, "a loopback address"),
    ("http://localhost/cb", "", {"localhost": ["127.0.0.1", "::1"]}, "a loopback address"),
    ("http://[::1]/cb", "", {"::1": ["::1"]}, "a loopback address"),
    ("http://169.254.169.254/metadata", "", {"169.254.169.254": ["169.254.169.254"]}, "a link-local address"),
    ("http://10.0.0.5/cb", "", {"10.0.0.5": ["10.0.0.5"]}, "a private or reserved address"),
    ("http://192.168.1.1/cb", "", {"192.168.1.1": ["192.168.1.1"]}, "a private or reserved address"),
    ("http://0.0.0.0/cb", "", {"0.0.0.0": ["0.0.0.0"]}, "private or reserved"),
    ("http://[::ffff:127.0.0.1]/cb", "", {"::ffff:127.0.0.1": ["::ffff:127.0.0.1"]}, "a loopback address"),
    # a public name that resolves (also) to a private address: every address is checked
    ("https://rebind.example.org/", "", {"rebind.example.org": ["93.184.216.34", "10.1.2.3"]}, "resolves to 10.1.2.3"),
    ("http://127.0.0.1:8080/cb", "127.0.0.1", {"127.0.0.1": ["127.0.0.1"]}, None),
    ("http://localhost/cb", "127.0.0.1", {"localhost": ["127.0.0.1"]}, "not in CALLBACK_ALLOWED_HOSTS"),
    ("http://localhost/cb", "localhost", {"localhost": ["127.0.0.1"]}, None),
    ("http://internal.corp/cb", "internal.corp", {"internal.corp": ["10.0.0.9"]}, None),
    ("ftp://app.example.org/cb", "", {}, "scheme 'ftp' is not http or https"),
    ("file:///etc/passwd", "", {}, "scheme 'file' is not http or https"),
    ("http://user:pw@app.example.org/", "", {"app.example.org": ["93.184.216.34"]}, "carries credentials"),
    ("http:///nohost", "", {}, "names no host"),
    ("http://nowhere.invalid/", "", {}, "cannot be resolved"),
]


@pytest.mark.parametrize(("url", "allowed", "table", "refusal"), ALLOW_CASES)
def test_callback_allow_list(monkeypatch, url, allowed, table, refusal):
    resolving(monkeypatch, table)
    reason = callback.check_url(url, callback.allowed_hosts(allowed))
    if refusal is None:
        assert reason is None
    else:
        assert reason is not None and refusal in reason


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.hits.append(self.path)
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_loopback_callback_is_refused_unless_listed_and_the_job_completes(
    store, data_path, demo_genes, recorder, monkeypatch
):
    url = f"http://127.0.0.1:{recorder.server_port}/done?token=abc"
    store.create_job(parse_config({"jobname": "cb-refused", "callback_url": url}), demo_genes)
    settings = Settings(data_path=data_path, jobs_path=store.root)
    assert (
        queue_trigger.handle_message(
            "cb-refused", message_id="m", dequeue_count=1, max_dequeue_count=5, settings=settings
        )
        == "completed"
    )
    assert _Recorder.hits == []
    log = store.read_log("cb-refused")
    assert "callback for job cb-refused to 'http://127.0.0.1:" in log and "refused" in log
    assert "a loopback address" in log and "token=abc" not in log
    # listed: it goes through
    status = JobStatus.new("cb-refused").advance(State.COMPLETED, "done")
    allowed = callback.allowed_hosts("127.0.0.1")
    assert callback.post_status(f"http://127.0.0.1:{recorder.server_port}/done", status, allowed=allowed) is True
    assert _Recorder.hits == ["/done"]


def test_callback_redirects_are_not_followed(recorder, monkeypatch):
    monkeypatch.setattr("mljob.callback.time.sleep", lambda s: None)
    status = JobStatus.new("cb-redirect").advance(State.COMPLETED, "done")
    url = f"http://127.0.0.1:{recorder.server_port}/start"
    assert callback.post_status(url, status, allowed=frozenset({"127.0.0.1"})) is False
    assert _Recorder.hits == ["/start"]  # the 302 to /elsewhere was not followed (and not retried)


def test_callback_timeout_is_short():
    assert callback.TIMEOUT_SECONDS <= 10 and callback.TRIES <= 3


# --- log injection and secrets -------------------------------------------------------------------

CLOSED_PORT_CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def test_no_user_text_breaks_a_log_line_and_no_secret_is_logged(store, data_path, demo_genes, caplog):
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        data_path=data_path, jobs_path=store.root, queue_connection_string=CLOSED_PORT_CONNECTION, queue_name="sec-q"
    )
    answers = []
    # HTTP bodies with newlines and look-alike text in names
    for body in [b'{"jobname": "a\\nFAKE LINE"}', b'{"jobnames": ["ok-job", "x\\r\\nFAKE"]}', b"\n\nFAKE\n"]:
        answers.append(api.enqueue(body, settings))
    answers.append(api.job_status("ab\nFAKE", settings))
    # queue messages: hostile ids and bodies
    for message_id, body in [
        ("id\nFAKE LINE", b"x\nFAKE"),
        ("id\r\nFAKE", b'{"jobname": "no-such-job"}'),
        ("\x1b[31mred", b'{"jobname": "a\\u2028b"}'),
    ]:
        queue_trigger.handle_message(
            body, message_id=message_id, dequeue_count=1, max_dequeue_count=5, settings=settings
        )
    # a config whose error text carries user input with newlines, and gene tokens with odd characters
    store.create_job(parse_config({"jobname": "bad-cfg"}), demo_genes)
    (store.job_path("bad-cfg") / "job_config.json").write_text(
        json.dumps({"jobname": "bad-cfg", "net_type": "X\nFAKE"})
    )
    queue_trigger.handle_message("bad-cfg", message_id="m2", dequeue_count=1, max_dequeue_count=5, settings=settings)
    store.create_job(parse_config({"jobname": "odd-genes"}), ["\u202eCDK1", "GENE\u2028X", *demo_genes])
    queue_trigger.handle_message("odd-genes", message_id="m3", dequeue_count=1, max_dequeue_count=5, settings=settings)
    answers.append(api.enqueue(b'{"jobname": "odd-genes", "rerun": true}', settings))  # 503: the closed port
    answers.append(api.health(settings))

    mljob_records = [r for r in caplog.records if r.name.startswith("mljob")]
    assert mljob_records
    for record in mljob_records:
        text = record.getMessage()
        assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\u2028" not in text, text
    everything = "\n".join(r.getMessage() for r in caplog.records) + json.dumps(answers)
    for name in ("bad-cfg", "odd-genes"):
        everything += store.read_log(name) + store.read_status(name).model_dump_json()
        everything += (store.job_path(name) / "job_config.json").read_text()
    everything += json.dumps(store.read_job_info("odd-genes"))
    assert ACCOUNT_KEY not in everything and "AccountKey" not in everything
    assert ACCOUNT_KEY[:20] not in everything
    assert answers[-2][0] == 503


def test_a_bad_connection_string_is_not_echoed(store):
    leaky = "DefaultEndpointsProtocol=http;AccountName=x;AccountKey=TOPSECRETKEY==;QueueEndpoint=notaurl"
    settings = Settings(jobs_path=store.root, queue_connection_string=leaky)
    store.create_job(parse_config({"jobname": "some-job"}), ["CDK1"])
    code, answer = api.enqueue(b'{"jobname": "some-job"}', settings)
    assert code in (500, 503)
    assert "TOPSECRETKEY" not in json.dumps(answer)
    assert "TOPSECRETKEY" not in json.dumps(api.health(settings))
    assert ResultsFileStore(store.root).read_status("some-job").status is State.CREATED
