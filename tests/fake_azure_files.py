"""FakeAzureFilesServer: a mock of the Azure Files REST API, because no emulator exists.

Azurite has no Azure Files service and no other emulator is available, so the tests of
``mljob.tools.share`` talk to this FAKE instead: a small ``http.server`` on 127.0.0.1 (a free port, in a
thread) that keeps shares, directories and files in memory and answers just the requests that
``azure-storage-file-share`` 12.x makes for what mljob does (learnt from the SDK source,
``azure/storage/fileshare/_generated/operations/_operations.py``):

=====================================  ==========================================================
request                                 SDK call
=====================================  ==========================================================
``PUT    /acct/share?restype=share``     ``ShareClient.create_share`` (201; 409 ShareAlreadyExists)
``GET    /acct/share?restype=share``     ``ShareClient.get_share_properties`` (200; 404)
``PUT    /acct/share/d?restype=directory``  ``create_directory`` (201; 409 ResourceAlreadyExists;
                                        404 ParentNotFound)
``GET    /acct/share/d?restype=directory``  ``get_directory_properties`` (200; 404)
``GET    ...?restype=directory&comp=list``  ``list_directories_and_files`` (XML, one page)
``PUT    /acct/share/d/f`` + ``x-ms-type: file`` + ``x-ms-content-length: N``
                                        ``create_file``: a zero-filled file of N bytes (201)
``PUT    /acct/share/d/f?comp=range`` + ``Range: bytes=a-b`` (or ``x-ms-range``) +
         ``x-ms-write: update``           ``upload_range`` (201); ``x-ms-write: clear`` zeroes
``PUT    /acct/share/d/g?comp=rename`` + ``x-ms-file-rename-source: <url of f>``
                                        ``rename_file`` (200; 409 without replace-if-exists)
``HEAD   /acct/share/d/f``                 ``get_file_properties`` (Content-Length = size)
``GET    /acct/share/d/f``                 ``download_file`` (whole file or one ``Range``)
``DELETE /acct/share/d/f``                 ``delete_file`` (202)
=====================================  ==========================================================

What it does NOT do: it never checks the SharedKey signature (any Authorization header is
accepted), ignores SMB properties, leases, metadata and conditional headers, and keeps no
snapshots. Errors carry ``x-ms-error-code`` and an XML body like the service's, so the SDK raises
its usual exceptions (ResourceNotFoundError, ResourceExistsError, HttpResponseError).

Test hooks: ``fail_next(n, status=503)`` answers the next ``n`` requests (optionally only those
matching a predicate) with that status and an error code (``ServerBusy`` by default);
``requests`` is the log of every request received (method, path, query, headers, status
answered); ``files()`` / ``directories()`` expose the stored tree; ``delay`` adds latency to every
answer.

Use it with a connection string like::

    DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=<dev key>;
    FileEndpoint=http://127.0.0.1:<port>/devstoreaccount1;
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

ACCOUNT = "devstoreaccount1"
#: Azurite's well-known development key (public; the fake does not check signatures anyway).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Request:
    """One request the fake received, and the status it answered."""

    method: str
    path: str  # inside the account, decoded: "share/dir/file"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body_length: int
    status: int = 0

    @property
    def kind(self) -> str:
        """A short name of the operation, e.g. "create_file", "put_range", "get_file_properties"."""
        comp, restype = self.query.get("comp"), self.query.get("restype")
        if restype == "share":
            return {"PUT": "create_share"}.get(self.method, "get_share_properties")
        if restype == "directory":
            if comp == "list":
                return "list_directory"
            return {"PUT": "create_directory", "DELETE": "delete_directory"}.get(
                self.method, "get_directory_properties"
            )
        if comp == "range":
            return "put_range"
        if comp == "rename":
            return "rename_file"
        return {"PUT": "create_file", "HEAD": "get_file_properties", "GET": "download_file"}.get(
            self.method, self.method.lower() + "_file"
        )


@dataclass
class _Failure:
    remaining: int
    status: int
    code: str
    match: Callable[[Request], bool] | None


@dataclass
class _Share:
    directories: set[str] = field(default_factory=lambda: {""})
    files: dict[str, bytearray] = field(default_factory=dict)


class FakeAzureFilesServer:
    """A FAKE Azure Files service in memory (see the module docstring); use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, account: str = ACCOUNT):
        self.account = account
        self.shares: dict[str, _Share] = {}
        self.requests: list[Request] = []
        self.delay = 0.0
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={DEV_KEY};"
            f"FileEndpoint={self.endpoint};"
        )

    def start(self) -> FakeAzureFilesServer:
        # serve_forever checks for shutdown() once per poll_interval (0.5 s by default): poll often so that
        # stop() returns at once instead of waiting up to half a second per fake.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-azure-files", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAzureFilesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test hooks ----------------------------------------------------------------------

    def create_share(self, name: str) -> None:
        with self._lock:
            self.shares.setdefault(name, _Share())

    def fail_next(
        self,
        n: int,
        status: int = 503,
        match: Callable[[Request], bool] | None = None,
        code: str = "ServerBusy",
    ) -> None:
        """Answer the next `n` requests (those for which `match` is true, if given) with `status` and `code`."""
        with self._lock:
            self._failures.append(_Failure(n, status, code, match))

    def files(self, share: str) -> dict[str, bytes]:
        """Every file of a share: {"dir/sub/name": content}."""
        with self._lock:
            return {path: bytes(data) for path, data in self.shares[share].files.items()}

    def directories(self, share: str) -> set[str]:
        """Every directory of a share ("" is the root)."""
        with self._lock:
            return set(self.shares[share].directories)

    def kinds(self) -> list[str]:
        """The kinds of the requests received so far, in order."""
        with self._lock:
            return [r.kind for r in self.requests]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- the service ---------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stalls

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_PUT(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def do_HEAD(self) -> None:
                fake._handle(self)

            def do_DELETE(self) -> None:
                fake._handle(self)

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts and parts[0] == self.account:
            parts = parts[1:]
        req = Request(h.command, "/".join(parts), query, headers, len(body))
        with self._lock:
            self.requests.append(req)
            failure = next((f for f in self._failures if f.remaining > 0 and (f.match is None or f.match(req))), None)
            if failure:
                failure.remaining -= 1
                status, extra, payload = failure.status, {"x-ms-error-code": failure.code}, _error(failure.code)
            else:
                try:
                    status, extra, payload = self._dispatch(req, parts, body)
                except _Error as err:
                    status, extra, payload = err.status, {"x-ms-error-code": err.code}, _error(err.code)
            req.status = status
        if self.delay:
            time.sleep(self.delay)
        h.send_response(status)
        h.send_header("x-ms-request-id", str(uuid.uuid4()))
        h.send_header("x-ms-version", headers.get("x-ms-version", "2026-10-06"))
        h.send_header("Date", formatdate(usegmt=True))
        for key, value in extra.items():
            h.send_header(key, value)
        if "Content-Length" not in extra:
            h.send_header("Content-Length", str(len(payload)))
        if payload and "Content-Type" not in extra:
            h.send_header("Content-Type", "application/xml")
        h.end_headers()
        if h.command != "HEAD" and payload:
            h.wfile.write(payload)

    def _dispatch(self, req: Request, parts: list[str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not parts:
            raise _Error(400, "InvalidUri")
        share_name, path = parts[0], "/".join(parts[1:])
        restype, comp = req.query.get("restype"), req.query.get("comp")
        if restype == "share":
            if req.method == "PUT":
                if share_name in self.shares:
                    raise _Error(409, "ShareAlreadyExists")
                self.shares[share_name] = _Share()
                return 201, _stamp(), b""
            if share_name not in self.shares:
                raise _Error(404, "ShareNotFound")
            return 200, {**_stamp(), "x-ms-share-quota": "5120"}, b""
        share = self.shares.get(share_name)
        if share is None:
            raise _Error(404, "ShareNotFound")
        parent = path.rpartition("/")[0]
        if restype == "directory":
            if comp == "list":
                return self._list(share, path, req.query)
            if req.method == "PUT":
                if path in share.directories:
                    raise _Error(409, "ResourceAlreadyExists")
                if path in share.files:
                    raise _Error(409, "ResourceTypeMismatch")
                if parent not in share.directories:
                    raise _Error(404, "ParentNotFound")
                share.directories.add(path)
                return 201, {**_stamp(), "x-ms-file-attributes": "Directory"}, b""
            if path not in share.directories:
                raise _Error(404, "ResourceNotFound")
            if req.method == "DELETE":
                if any(p.startswith(path + "/") for p in [*share.files, *share.directories]):
                    raise _Error(409, "DirectoryNotEmpty")
                share.directories.discard(path)
                return 202, {}, b""
            return 200, {**_stamp(), "x-ms-file-attributes": "Directory"}, b""
        if req.method == "PUT" and comp == "range":
            return self._put_range(share, path, req, body)
        if req.method == "PUT" and comp == "rename":
            return self._rename(share, share_name, path, req)
        if req.method == "PUT":
            if req.headers.get("x-ms-type", "").lower() != "file":
                raise _Error(400, "MissingRequiredHeader")
            if parent not in share.directories:
                raise _Error(404, "ParentNotFound")
            if path in share.directories:
                raise _Error(409, "ResourceTypeMismatch")
            share.files[path] = bytearray(int(req.headers["x-ms-content-length"]))
            return 201, _stamp(), b""
        data = share.files.get(path)
        if data is None:
            raise _Error(404, "ParentNotFound" if parent not in share.directories else "ResourceNotFound")
        if req.method == "DELETE":
            del share.files[path]
            return 202, {}, b""
        props = {**_stamp(), "x-ms-type": "File", "Content-Type": "application/octet-stream"}
        if req.method == "HEAD":
            return 200, {**props, "Content-Length": str(len(data))}, b""
        rng = req.headers.get("x-ms-range") or req.headers.get("range")
        if rng:
            start, end = _parse_range(rng)
            end = min(end, len(data) - 1)
            chunk = bytes(data[start : end + 1])
            return 206, {**props, "Content-Range": f"bytes {start}-{end}/{len(data)}"}, chunk
        return 200, props, bytes(data)

    def _put_range(self, share: _Share, path: str, req: Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        data = share.files.get(path)
        if data is None:
            raise _Error(404, "ResourceNotFound")
        start, end = _parse_range(req.headers.get("x-ms-range") or req.headers.get("range") or "")
        if end >= len(data):
            raise _Error(416, "InvalidRange")
        write = req.headers.get("x-ms-write", "").lower()
        if write == "update":
            if len(body) != end - start + 1:
                raise _Error(400, "InvalidHeaderValue")
            data[start : end + 1] = body
        elif write == "clear":
            data[start : end + 1] = bytes(end - start + 1)
        else:
            raise _Error(400, "InvalidHeaderValue")
        return 201, _stamp(), b""

    def _rename(self, share: _Share, share_name: str, path: str, req: Request) -> tuple[int, dict[str, str], bytes]:
        source = unquote(urlsplit(req.headers.get("x-ms-file-rename-source", "")).path).strip("/").split("/")
        if source and source[0] == self.account:
            source = source[1:]
        if not source or source[0] != share_name:
            raise _Error(400, "InvalidHeaderValue")
        src = "/".join(source[1:])
        if src not in share.files:
            raise _Error(404, "ResourceNotFound")
        if path.rpartition("/")[0] not in share.directories:
            raise _Error(404, "ParentNotFound")
        if path in share.files and req.headers.get("x-ms-file-rename-replace-if-exists", "").lower() != "true":
            raise _Error(409, "ResourceAlreadyExists")
        share.files[path] = share.files.pop(src)
        return 200, _stamp(), b""

    def _list(self, share: _Share, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path not in share.directories:
            raise _Error(404, "ResourceNotFound")
        prefix = f"{path}/" if path else ""
        dirs = sorted(d[len(prefix) :] for d in share.directories if d.startswith(prefix) and d != path)
        dirs = [d for d in dirs if "/" not in d]
        files = sorted((p[len(prefix) :], len(b)) for p, b in share.files.items() if p.startswith(prefix))
        files = [(n, s) for n, s in files if "/" not in n]
        entries = "".join(f"<Directory><Name>{escape(d)}</Name><Properties /></Directory>" for d in dirs)
        entries += "".join(
            f"<File><Name>{escape(n)}</Name><Properties><Content-Length>{s}</Content-Length></Properties></File>"
            for n, s in files
        )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="{escape(self.endpoint)}/" ShareName=""'
            f' DirectoryPath="{escape(path)}">'
            f"<Entries>{entries}</Entries><NextMarker /></EnumerationResults>"
        )
        return 200, {"Content-Type": "application/xml"}, xml.encode()


class _Error(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code = status, code


def _error(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
        f"<Message>{code} (fake Azure Files)</Message></Error>"
    ).encode()


def _stamp() -> dict[str, str]:
    return {"ETag": f'"0x{uuid.uuid4().hex[:15].upper()}"', "Last-Modified": formatdate(usegmt=True)}


def _parse_range(value: str) -> tuple[int, int]:
    try:
        start, end = value.split("=", 1)[1].split("-", 1)
        return int(start), int(end)
    except (IndexError, ValueError):
        raise _Error(400, "InvalidHeaderValue") from None
