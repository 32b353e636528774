"""A throw-away Azurite for tests: free loopback ports picked at run time, in-memory data, always stopped.

    with running_azurite(tmp_dir) as server:
        JobQueue(server.connection_string, "q1").ensure()
        with server.outage():      # stopped inside, restarted (same ports, empty) after
            ...

Azurite itself comes from node_modules (`npm ci`, pinned in package.json); the launch details are shared
with scripts/azurite.py. With in-memory persistence a restart starts empty: queues must be created again.
"""

from __future__ import annotations

import atexit
import importlib.util
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "azurite.py"
_spec = importlib.util.spec_from_file_location("mljob_scripts_azurite", _SCRIPT)
assert _spec is not None and _spec.loader is not None
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)

AzuriteError = _script.AzuriteError
ACCOUNT_KEY: str = _script.ACCOUNT_KEY
ACCOUNT_NAME: str = _script.ACCOUNT_NAME


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free on 127.0.0.1 right now (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((_script.HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class AzuriteServer:
    """One Azurite process on loopback; `start()` / `stop()` may be called again (same ports each time)."""

    def __init__(self, location: Path, *, in_memory: bool = True):
        self.location = Path(location)
        self.in_memory = in_memory
        self.log = self.location / "azurite.log"
        self.blob_port = self.queue_port = self.table_port = 0
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def ports(self) -> list[int]:
        return [self.blob_port, self.queue_port, self.table_port]

    @property
    def connection_string(self) -> str:
        """The development connection string (Blob, Queue and Table endpoints) for this server."""
        return _script.connection_string(*self.ports)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> AzuriteServer:
        """Start Azurite and wait until it answers; picks free ports the first time, reuses them after."""
        if self.running:
            return self
        _script.require_azurite()
        self.location.mkdir(parents=True, exist_ok=True)
        first = not self.queue_port
        for attempt in range(3 if first else 1):
            if first:
                self.blob_port, self.queue_port, self.table_port = free_ports(3)
            try:
                self._launch()
                return self
            except AzuriteError as exc:
                # another process may have taken a port between picking and binding: pick again
                if attempt == 2 or not first or "EADDRINUSE" not in str(exc):
                    raise
        return self

    def _launch(self) -> None:
        busy = [port for port in self.ports if _script.port_answers(port)]
        if busy:  # wording as Azurite's own, so that a first start picks other ports
            raise AzuriteError(f"listen EADDRINUSE: ports {busy} on 127.0.0.1 are in use by another program")
        cmd = _script.command(*self.ports, self.location, in_memory=self.in_memory)
        started = time.monotonic()
        with self.log.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.location,
                preexec_fn=_script.pdeathsig_preexec,
            )
        try:
            _script.wait_until_listening(self._proc, self.ports, self.log)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop Azurite (SIGTERM, then SIGKILL); nothing happens when it is not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        # the ports must be closed before a test relies on the outage
        deadline = time.monotonic() + 5
        while any(_script.port_answers(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.05)

    @contextmanager
    def outage(self) -> Iterator[AzuriteServer]:
        """Azurite is stopped inside the block and running again after it (even when the block fails)."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"AzuriteServer(queue_port={self.queue_port}, {state})"


@contextmanager
def running_azurite(location: Path, *, in_memory: bool = True) -> Iterator[AzuriteServer]:
    """A started AzuriteServer, always stopped at the end; pytest.fail with the fix when it is not installed."""
    server = AzuriteServer(location, in_memory=in_memory)
    atexit.register(server.stop)  # also when the session is interrupted before teardown
    try:
        server.start()
    except AzuriteError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
