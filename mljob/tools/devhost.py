"""`mljob serve`: a local DEVELOPMENT server for a Python v2-model Azure Functions app.

It is NOT the Azure Functions host: no dynamic concurrency, no functionTimeout, no scale controller,
no extension bundle, and only HTTP and queue triggers. It imports function_app.py, serves its HTTP
routes under /api with the standard library, and runs its queue triggers against Azure Storage queues
(Azurite locally), honouring host.json `extensions.queues`. Several `mljob serve` processes may share
one queue: every message is received with a visibility lease that is renewed while its function runs.
It answers CORS from CORS_ALLOWED_ORIGINS as Azure's platform CORS does: it answers preflights itself,
before the method and key checks, and sends Access-Control-Allow-Origin to allowed origins only.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import importlib.util
import inspect
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mljob import messages, supervisor
from mljob.errors import DevHostError, HostJsonError, MljobError
from mljob.host_config import MIN_POLLING_SECONDS, HostConfig, QueueOptions
from mljob.settings import Settings

log = logging.getLogger("mljob.tools.devhost")

BANNER = (
    "DEVELOPMENT server, not the Azure Functions host (no dynamic concurrency, no functionTimeout, "
    "no scale controller; HTTP and queue triggers only)"
)
MAX_BODY_BYTES = 1_000_000  # at least; a web-app request may carry MAX_INPUT_BYTES of genes, as JSON (see DevHost)
GRACE_SECONDS = 10.0
EXIT_OK, EXIT_USAGE = 0, 2


# --- settings and host.json ------------------------------------------------------------------


def load_local_settings(app_dir: Path) -> list[str]:
    """Put local.settings.json "Values" into os.environ unless already set there, as `func start` does."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return []
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise DevHostError(f"{path} is not a valid local.settings.json: {exc}") from None
    if not isinstance(values, dict):
        raise DevHostError(f'{path}: "Values" must be an object of setting names and values')
    added = []
    for name, value in values.items():
        if name not in os.environ and value is not None:
            os.environ[name] = value if isinstance(value, str) else json.dumps(value)
            added.append(name)
    return added


# --- the function app ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppFunction:
    """One function of the app: its name, bindings (as the host indexes them) and Python function."""

    name: str
    bindings: list[dict[str, Any]]
    function: Callable[..., Any]

    @property
    def trigger(self) -> dict[str, Any]:
        """The binding whose type ends with "Trigger" (empty when there is none)."""
        return next((b for b in self.bindings if str(b.get("type", "")).endswith("Trigger")), {})


def load_app(app_dir: Path) -> list[AppFunction]:
    """Import app_dir/function_app.py as `function_app` and index its functions (get_functions, once)."""
    from azure.functions.decorators.function_app import FunctionRegister

    path = app_dir / "function_app.py"
    if not path.is_file():
        raise DevHostError(f"{path} not found: --app-dir must be the folder holding function_app.py")
    folder = str(app_dir.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("function_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise DevHostError(
            f"importing {path} failed: {type(exc).__name__}: {exc} ({frame.filename}:{frame.lineno})"
        ) from None
    app = getattr(module, "app", None)
    if not isinstance(app, FunctionRegister):
        apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
        if len(apps) != 1:
            raise DevHostError(f"{path} must define one azure.functions.FunctionApp (found {len(apps)})")
        app = apps[0]
    return [
        AppFunction(fn.get_function_name(), json.loads(fn.get_function_json())["bindings"], fn.get_user_function())
        for fn in app.get_functions()
    ]


def call_function(function: Callable[..., Any], param: str, value: Any) -> Any:
    """Call a user function with its trigger argument (running it to completion when it is async)."""
    result = function(**{param: value})
    return asyncio.run(result) if inspect.iscoroutine(result) else result


# --- HTTP triggers ---------------------------------------------------------------------------

_ROUTE_PARAM = re.compile(r"\{(\*?)([A-Za-z_]\w*)(\?)?(?::[^}]*)?\}")


def compile_route(template: str) -> re.Pattern[str]:
    """A regex for an ASP.NET-style route template: {name}, {name?}, {*rest}; constraints are ignored."""
    parts = []
    for segment in template.strip("/").split("/") if template.strip("/") else []:
        whole = _ROUTE_PARAM.fullmatch(segment)
        if whole and whole[1]:
            parts.append(f"(?:/(?P<{whole[2]}>.*))?")
        elif whole and whole[3]:
            parts.append(f"(?:/(?P<{whole[2]}>[^/]+))?")
        else:
            pattern, pos = "/", 0
            for match in _ROUTE_PARAM.finditer(segment):
                pattern += re.escape(segment[pos : match.start()]) + f"(?P<{match[2]}>[^/]+)"
                pos = match.end()
            parts.append(pattern + re.escape(segment[pos:]))
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)


@dataclass(frozen=True)
class HttpRoute:
    """An httpTrigger function served under /<routePrefix>/<route>."""

    name: str
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    auth_level: str
    param: str
    function: Callable[..., Any]

    @classmethod
    def from_function(cls, fn: AppFunction) -> HttpRoute:
        """The route of an httpTrigger function."""
        trigger = fn.trigger
        template = trigger.get("route") or fn.name
        methods = trigger.get("methods")
        return cls(
            name=fn.name,
            template=template,
            pattern=compile_route(template),
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            auth_level=str(trigger.get("authLevel", "function")).lower(),
            param=trigger["name"],
            function=fn.function,
        )


# --- CORS, as Azure's platform CORS answers it ------------------------------------------------

_ORIGIN = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:?#@\[\]]+)(?::(?P<port>\d+))?"
)
_HEADER_NAMES = re.compile(r"[A-Za-z0-9-]+(?:\s*,\s*[A-Za-z0-9-]+)*")
ANY_METHOD = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
DEFAULT_ALLOW_HEADERS = "Content-Type, x-functions-key"
EXPOSE_HEADERS = "Location, Retry-After"
PREFLIGHT_MAX_AGE = 600


def origin_key(origin: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) of an origin, scheme and host lower-cased; None when it is not an origin."""
    match = _ORIGIN.fullmatch(origin.strip().rstrip("/"))
    if not match:
        return None
    return match["scheme"].lower(), match["host"].lower(), match["port"] or ""


@dataclass(frozen=True)
class CorsPolicy:
    """The origins browsers may call the app from (CORS_ALLOWED_ORIGINS), parsed once."""

    any_origin: bool = False
    origins: tuple[str, ...] = ()  # as written (spaces and a trailing / stripped), for the log
    keys: frozenset[tuple[str, str, str]] = frozenset()  # their origin_key, to compare with

    @classmethod
    def parse(cls, text: str | None) -> CorsPolicy:
        """Comma-separated origins, `*` for any; empty or None: none. DevHostError names an entry that is no origin."""
        entries = [entry.strip().rstrip("/") for entry in (text or "").split(",")]
        entries = [entry for entry in entries if entry]
        for entry in entries:
            if entry != "*" and origin_key(entry) is None:
                raise DevHostError(
                    f"CORS_ALLOWED_ORIGINS: {entry!r} is not an origin such as https://app.example.org "
                    "(scheme, host, optional port; no path) or *"
                )
        origins = tuple(dict.fromkeys(entry for entry in entries if entry != "*"))
        keys = frozenset(key for origin in origins if (key := origin_key(origin)))
        return cls(any_origin="*" in entries, origins=origins, keys=keys)

    def allows(self, origin: str | None) -> bool:
        """Whether a request's Origin header may read the answer (case-insensitive scheme and host, exact port)."""
        if not origin:
            return False
        if self.any_origin:
            return True
        return origin_key(origin) in self.keys

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.any_origin:
            return "CORS: any origin (*)"
        if self.origins:
            return "CORS: allowed origins " + ", ".join(self.origins)
        return "CORS: no origin allowed"

    def allow_origin(self, origin: str) -> str:
        """The Access-Control-Allow-Origin value for an allowed origin: `*`, or the origin as the browser sent it."""
        return "*" if self.any_origin else origin


def is_preflight(method: str, headers: Any) -> bool:
    """A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method."""
    return method == "OPTIONS" and bool(headers.get("origin")) and bool(headers.get("access-control-request-method"))


def allow_methods(routes: list[HttpRoute]) -> str:
    """Access-Control-Allow-Methods for a path: the methods of its routes, then OPTIONS."""
    methods: set[str] = set()
    for route in routes:
        methods |= route.methods or set(ANY_METHOD)
    return ", ".join([*sorted(methods - {"OPTIONS"}), "OPTIONS"])


def allow_headers(requested: str | None) -> str:
    """Access-Control-Allow-Headers: the requested header names when they are plain names, else the defaults."""
    if requested and _HEADER_NAMES.fullmatch(requested.strip()):
        return ", ".join(name.strip() for name in requested.split(","))
    return DEFAULT_ALLOW_HEADERS


def preflight_headers(
    policy: CorsPolicy, origin: str, routes: list[HttpRoute], requested: str | None
) -> list[tuple[str, str]]:
    """The headers of a 204 preflight answer: the Allow-* set for an allowed origin, only Vary otherwise."""
    if not policy.allows(origin):
        return [("Vary", "Origin")]
    return [
        ("Access-Control-Allow-Origin", policy.allow_origin(origin)),
        ("Access-Control-Allow-Methods", allow_methods(routes)),
        ("Access-Control-Allow-Headers", allow_headers(requested)),
        ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE)),
        ("Vary", "Origin"),
    ]


def response_headers(policy: CorsPolicy, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers of an actual answer: ACAO, Expose-Headers and Vary for an allowed origin; none otherwise."""
    if origin is None or not policy.allows(origin):
        return []
    return [
        ("Access-Control-Allow-Origin", policy.allow_origin(origin)),
        ("Access-Control-Expose-Headers", EXPOSE_HEADERS),
        ("Vary", "Origin"),
    ]


def with_cors(headers: list[tuple[str, str]], cors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` with the host's CORS headers: a function's own Access-Control-* headers are dropped (the host's
    CORS takes precedence, as the platform's does in Azure) and Origin is merged into its Vary."""
    out = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
    vary = [v for k, v in cors if k == "Vary"]
    if vary:
        existing = [v for k, v in out if k.lower() == "vary"]
        names = dict.fromkeys(n.strip() for v in [*existing, *vary] for n in v.split(",") if n.strip())
        out = [(k, v) for k, v in out if k.lower() != "vary"]
        cors = [(k, v) for k, v in cors if k != "Vary"] + [("Vary", ", ".join(names))]
    return out + cors


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], devhost: DevHost) -> None:
        self.devhost = devhost
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a call of the matching function (one log line per request)."""

    server: _Server
    protocol_version = "HTTP/1.1"
    _cors: list[tuple[str, str]]  # the CORS headers of the answer being made, set per request

    def do_GET(self) -> None:
        started = time.monotonic()
        status = self._dispatch()
        path = urlsplit(self.path).path
        log.info("%s %s %d %.0f ms", self.command, path, status, (time.monotonic() - started) * 1000)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def _dispatch(self) -> int:
        devhost = self.server.devhost
        self._cors = response_headers(devhost.cors, self.headers.get("origin"))
        if "transfer-encoding" in self.headers:
            return self._send_json(411, {"error": "send the body with a Content-Length, not chunked"}, close=True)
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            return self._send_json(400, {"error": "Content-Length is not a number"}, close=True)
        if length > devhost.max_body_bytes or length < 0:
            most = devhost.max_body_bytes
            return self._send_json(
                413, {"error": f"request body is {length:,} bytes; the most accepted is {most:,}"}, close=True
            )
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        found = devhost.find_route(url.path)
        if not found:
            return self._send_json(404, {"error": f"no function is served at {url.path}"})
        if is_preflight(self.command, self.headers):  # before the method and key checks: a preflight has no key
            return self._preflight([route for route, _ in found])
        chosen = next(((r, m) for r, m in found if r.methods is None or self.command in r.methods), None)
        if chosen is None:
            allowed = ", ".join(sorted(set().union(*(r.methods or () for r, _ in found))))
            return self._send_json(
                405,
                {"error": f"method {self.command} not allowed at {url.path}; allowed: {allowed}"},
                {"Allow": allowed},
            )
        route, match = chosen
        if not devhost.authorized(route, self.headers.get("x-functions-key") or params.get("code")):
            return self._send_json(401, {"error": "this function needs a key: x-functions-key header or ?code="})
        return self._call(route, match, url.geturl(), params, body)

    def _preflight(self, routes: list[HttpRoute]) -> int:
        """Answer a CORS preflight here, as Azure's platform CORS does: 204, no body, Allow-* when allowed."""
        requested = self.headers.get("access-control-request-headers")
        self._cors = preflight_headers(self.server.devhost.cors, self.headers["origin"], routes, requested)
        return self._send(204, b"", [])

    def _call(self, route: HttpRoute, match: re.Match[str], target: str, params: dict[str, str], body: bytes) -> int:
        import azure.functions as func

        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        host = self.headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
        request = func.HttpRequest(
            self.command,
            f"http://{host}{target}",
            headers=headers,
            params=params,
            route_params={k: unquote(v) for k, v in match.groupdict().items() if v is not None},
            body=body,
        )
        try:
            response = call_function(route.function, route.param, request)
            if isinstance(response, str):
                response = func.HttpResponse(response)
            if not isinstance(response, func.HttpResponse):
                raise TypeError(f"function {route.name} returned {type(response).__name__}, not an HttpResponse")
        except Exception:
            log.exception("function %s raised", route.name)
            return self._send_json(500, {"error": "internal error"})
        out = list(response.headers.items())
        if not any(key.lower() == "content-type" for key, _ in out):
            mimetype = response.mimetype
            text = mimetype.startswith("text/")
            out.append(("Content-Type", f"{mimetype}; charset={response.charset}" if text else mimetype))
        return self._send(response.status_code, response.get_body() or b"", out)

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, close: bool = False
    ) -> int:
        out = [("Content-Type", "application/json"), *(headers or {}).items()]
        if close:
            self.close_connection = True
            out.append(("Connection", "close"))
        return self._send(status, json.dumps(body).encode(), out)

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> int:
        """Send one answer with the host's CORS headers; a 204 or 304 has neither body nor Content-Length."""
        self.send_response(status)
        for key, value in with_cors(headers, self._cors):
            if key.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(key, value)
        bodyless = status in (204, 304)
        if not bodyless:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not bodyless:
            self.wfile.write(body)
        return status


# --- queue triggers --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueTrigger:
    """A queueTrigger function with its queue name and connection string resolved from the environment."""

    name: str
    queue_name: str
    connection_setting: str
    connection_string: str
    param: str
    function: Callable[..., Any]

    @classmethod
    def from_function(cls, fn: AppFunction) -> QueueTrigger:
        """Resolve %SETTING% in queueName and the `connection` setting; DevHostError when one is missing."""
        trigger = fn.trigger

        def setting(match: re.Match[str]) -> str:
            value = os.environ.get(match[1], "").strip()
            if not value:
                raise DevHostError(
                    f"queue trigger {fn.name}: app setting {match[1]} (queueName {trigger['queueName']}) is not set"
                )
            return value

        queue_name = re.sub(r"%([^%]+)%", setting, trigger["queueName"])
        connection = trigger.get("connection") or "AzureWebJobsStorage"
        value = os.environ.get(connection, "").strip()
        if not value:
            raise DevHostError(
                f"queue trigger {fn.name}: connection setting {connection} is not set; set it to a storage "
                "connection string in the environment or local.settings.json Values"
            )
        return cls(fn.name, queue_name, connection, value, trigger["name"], fn.function)


class _Pool:
    """A fixed set of daemon threads, so that stopping after the grace period never waits on a function."""

    def __init__(self, size: int) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        for number in range(size):
            threading.Thread(target=self._work, name=f"function-{number}", daemon=True).start()

    def submit(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    def _work(self) -> None:
        while True:
            self._tasks.get()()


class _Lease:
    """Keeps a received message invisible while its function runs: renews every third of the lease."""

    def __init__(self, client: Any, message: Any, seconds: int) -> None:
        self._client, self._id, self._seconds = client, message.id, seconds
        self._pop_receipt = message.pop_receipt
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._renew, name=f"lease-{message.id}", daemon=True).start()

    def _renew(self) -> None:
        from azure.core.exceptions import AzureError

        while not self._done.wait(self._seconds / 3):
            with self._lock:
                if self._done.is_set():
                    return
                try:
                    receipt = self._client.update_message(
                        self._id, self._pop_receipt, visibility_timeout=self._seconds
                    ).pop_receipt
                except AzureError as exc:
                    log.warning("message %s: renewing its lease failed (%s); another host may take it", self._id, exc)
                    return
                self._pop_receipt = receipt

    def abandon(self) -> None:
        """Stop renewing: the message comes back when the lease ends."""
        self._done.set()

    def delete(self) -> bool:
        """Stop renewing and delete the message; False when that failed (the lease was lost)."""
        return self._finish(lambda receipt: self._client.delete_message(self._id, receipt))

    def release(self, visibility_timeout: float) -> bool:
        """Stop renewing and make the message visible again after `visibility_timeout` seconds."""
        seconds = round(visibility_timeout)
        return self._finish(lambda receipt: self._client.update_message(self._id, receipt, visibility_timeout=seconds))

    def _finish(self, action: Callable[[str], Any]) -> bool:
        from azure.core.exceptions import AzureError

        self._done.set()
        with self._lock:
            try:
                action(self._pop_receipt)
            except AzureError as exc:
                log.warning("message %s: %s (its lease was lost; another host may process it)", self._id, exc)
                return False
        return True


class QueueListener:
    """Polls one queue for one queue-triggered function, as the Functions host's queue listener does."""

    def __init__(self, trigger: QueueTrigger, options: QueueOptions, lease_seconds: int, pool: _Pool) -> None:
        from azure.storage.queue import LinearRetry, QueueClient

        self.trigger, self.options, self.lease_seconds = trigger, options, lease_seconds
        self.poison_name = f"{trigger.queue_name}-poison"
        # short retries (the SDK's default backoff is 15 s and more): a lease renewal is due every lease/3
        retry = LinearRetry(backoff=1, retry_total=2, random_jitter_range=1)
        try:
            self._client = QueueClient.from_connection_string(
                trigger.connection_string, trigger.queue_name, retry_policy=retry
            )
            self._poison = QueueClient.from_connection_string(
                trigger.connection_string, self.poison_name, retry_policy=retry
            )
        except ValueError as exc:
            raise DevHostError(
                f"{trigger.connection_setting} is not a valid storage connection string: {exc}"
            ) from None
        self._pool = pool
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self.in_flight = 0
        self._thread = threading.Thread(target=self._poll, name=f"queue-{trigger.name}", daemon=True)

    def start(self) -> None:
        """Start polling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; functions already running carry on."""
        self._stop.set()
        with self._idle:
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no function of this listener runs; False after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self.in_flight == 0, max(timeout, 0))

    def _poll(self) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        delay, problem = MIN_POLLING_SECONDS, ""
        while not self._stop.is_set():
            with self._idle:  # a new batch once in-flight messages drop to newBatchThreshold
                self._idle.wait_for(lambda: self.in_flight <= self.options.new_batch_threshold or self._stop.is_set())
            if self._stop.is_set():
                return
            try:
                messages = list(
                    self._client.receive_messages(
                        max_messages=self.options.batch_size,
                        messages_per_page=self.options.batch_size,
                        visibility_timeout=self.lease_seconds,
                    )
                )
                problem = ""
            except AzureError as exc:
                now = "does not exist yet" if isinstance(exc, ResourceNotFoundError) else f"cannot be read: {exc}"
                if now != problem:
                    log.warning("queue %s %s; polling until it can be read", self.trigger.queue_name, now)
                problem, messages = now, []
            for message in messages:
                with self._idle:
                    self.in_flight += 1
                self._pool.submit(lambda message=message: self._process(message))
            if messages:
                delay = MIN_POLLING_SECONDS
                continue
            self._stop.wait(delay)
            delay = min(delay * 2, self.options.max_polling_interval)

    def _process(self, message: Any) -> None:
        started = time.monotonic()
        lease = _Lease(self._client, message, self.lease_seconds)
        try:
            outcome = self._run(message, lease)
        except Exception:  # a storage call failed: the message comes back when its lease ends
            log.exception("queue %s: message %s could not be handled", self.trigger.queue_name, message.id)
            outcome = "error; it comes back when its lease ends"
        finally:
            lease.abandon()
            with self._idle:
                self.in_flight -= 1
                self._idle.notify_all()
        log.info(
            "queue %s: message %s dequeue_count %d: %s (%.0f ms)",
            self.trigger.queue_name,
            message.id,
            message.dequeue_count,
            outcome,
            (time.monotonic() - started) * 1000,
        )

    def _run(self, message: Any, lease: _Lease) -> str:
        from azure.functions.queue import QueueMessage

        count, most = message.dequeue_count, self.options.max_dequeue_count
        if count > most:
            return self._to_poison(message, lease, f"dequeue_count {count} is over maxDequeueCount {most}")
        try:
            body = messages.from_wire(message.content, self.options.message_encoding)
        except ValueError:
            log.error(
                "queue %s: message %s is not valid base64 (host.json messageEncoding is base64: send messages "
                "with TextBase64EncodePolicy, or set messageEncoding to none); moving it to %s",
                self.trigger.queue_name,
                message.id,
                self.poison_name,
            )
            return self._to_poison(message, lease, "not valid base64")
        argument = QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        try:
            call_function(self.trigger.function, self.trigger.param, argument)
        except Exception as exc:  # an MljobError's message is complete (the function logged its cause): no traceback
            failed = f"function {self.trigger.name} failed on message {message.id} (try {count} of {most})"
            log.error("%s: %s", failed, exc, exc_info=not isinstance(exc, MljobError))
            if count >= most:
                return self._to_poison(message, lease, f"failed {count} times")
            retry = self.options.visibility_timeout
            return f"failed; retry in {retry:g} s" if lease.release(retry) else "failed; lease lost"
        return "done" if lease.delete() else "done, but the delete failed: it may be processed again"

    def _to_poison(self, message: Any, lease: _Lease, why: str) -> str:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._poison.create_queue()
        except ResourceExistsError:
            pass
        self._poison.send_message(message.content)
        lease.delete()
        return f"{why}; moved to {self.poison_name}"


# --- the host --------------------------------------------------------------------------------


class DevHost:
    """Serves one function app: HTTP routes and queue listeners. `start()`, `port`, `stop()`."""

    def __init__(self, app_dir: Path, host: str = "127.0.0.1", port: int = 7071) -> None:
        """Load settings, host.json and the app, and bind the port; DevHostError says what is wrong, and a
        malformed setting raises its SettingsError before the app is imported (nothing is served)."""
        app_dir = Path(app_dir)
        self.local_settings = load_local_settings(app_dir)
        self.settings = Settings.from_env()
        self.cors = CorsPolicy.parse(self.settings.cors_allowed_origins)
        # The Functions host takes bodies up to 100 MB; this one, enough for gpz-ml's genes (MAX_INPUT_BYTES as JSON).
        self.max_body_bytes = max(MAX_BODY_BYTES, 2 * self.settings.max_input_bytes)
        try:
            self.config = HostConfig.load(app_dir / "host.json")
        except HostJsonError as exc:
            raise DevHostError(str(exc)) from None
        self.routes: list[HttpRoute] = []
        triggers: list[QueueTrigger] = []
        self.skipped: list[str] = []
        for fn in load_app(app_dir):
            kinds = {str(b.get("type")) for b in fn.bindings} - {"http"}
            if kinds == {"httpTrigger"}:
                self.routes.append(HttpRoute.from_function(fn))
            elif kinds == {"queueTrigger"}:
                triggers.append(QueueTrigger.from_function(fn))
            else:
                self.skipped.append(f"{fn.name} ({', '.join(sorted(kinds))})")
        self.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        pool = _Pool(len(triggers) * self.config.queues.max_in_flight)
        self.listeners = [
            QueueListener(t, self.config.queues, self.settings.message_lease_seconds, pool) for t in triggers
        ]
        try:
            self._server = _Server((host, port), self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DevHostError(f"port {port} on {host} is taken: stop what uses it or pass --port") from None
            raise DevHostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._started = False

    @property
    def port(self) -> int:
        """The port the HTTP server listens on (useful with port 0)."""
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL of the server."""
        return f"http://{self._server.server_address[0]}:{self.port}"

    def find_route(self, path: str) -> list[tuple[HttpRoute, re.Match[str]]]:
        """Every route whose template matches a request path (literal routes first)."""
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        if prefix and path.lower() != prefix.lower() and not path.lower().startswith(prefix.lower() + "/"):
            return []
        rest = path[len(prefix) :] or "/"
        return [(route, match) for route in self.routes if (match := route.pattern.match(rest))]

    def authorized(self, route: HttpRoute, key: str | None) -> bool:
        """Whether a request may call `route`: ANONYMOUS always; others need MLJOB_FUNCTION_KEY when it is set."""
        expected = self.settings.function_key
        if expected is None or route.auth_level == "anonymous":
            return True
        return hmac.compare_digest((key or "").encode(), expected.encode())

    def start(self) -> None:
        """Log what is served, then serve HTTP and poll the queues in background threads."""
        log.info("mljob serve: %s", BANNER)
        log.info("listening on %s", self.url)
        if self.local_settings:
            log.info("from local.settings.json: %s", ", ".join(self.local_settings))
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        for route in self.routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "any method"
            log.info("  %s: [%s] %s%s/%s (%s)", route.name, methods, self.url, prefix, route.template, route.auth_level)
        q = self.config.queues
        for listener in self.listeners:
            log.info(
                "  %s: queueTrigger on %s (%s); batchSize %d, newBatchThreshold %d, maxDequeueCount %d, "
                "visibilityTimeout %g s, maxPollingInterval %g s, messageEncoding %s, lease %d s",
                listener.trigger.name,
                listener.trigger.queue_name,
                listener.trigger.connection_setting,
                q.batch_size,
                q.new_batch_threshold,
                q.max_dequeue_count,
                q.visibility_timeout,
                q.max_polling_interval,
                q.message_encoding,
                listener.lease_seconds,
            )
        for skipped in self.skipped:
            log.warning("  %s: not served (mljob serve runs HTTP and queue triggers only)", skipped)
        if self.settings.function_key is None and any(r.auth_level != "anonymous" for r in self.routes):
            log.warning("MLJOB_FUNCTION_KEY is not set: FUNCTION-level routes are open, as under `func start`")
        log.info("%s", self.cors.describe())
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()
        self._started = True
        for listener in self.listeners:
            listener.start()

    def stop(self, grace_seconds: float = GRACE_SECONDS) -> None:
        """Stop polling and serving; wait up to `grace_seconds` for running queue functions."""
        for listener in self.listeners:
            listener.stop()
        if self._started:
            self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + grace_seconds
        for listener in self.listeners:
            if not listener.wait_idle(deadline - time.monotonic()):
                log.warning(
                    "%s: %d function(s) still running after %g s; their messages come back when their lease ends",
                    listener.trigger.name,
                    listener.in_flight,
                    grace_seconds,
                )
        supervisor.shutdown()  # idle job processes; a running one ends with its run
        log.info("stopped")


def serve(host: str = "127.0.0.1", port: int = 7071, app_dir: Path = Path(".")) -> int:
    """Run the development host until SIGINT/SIGTERM: 0 after a clean stop, 2 when the app cannot be served (a
    malformed setting included: one line on stderr that names it, and nothing is served)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        devhost = DevHost(app_dir, host=host, port=port)
    except MljobError as exc:
        print(f"mljob serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        devhost.start()
        while not stopping.wait(0.5):
            pass
        log.info("stopping: no new requests or messages; waiting up to %g s for running functions", GRACE_SECONDS)
    finally:
        devhost.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK
