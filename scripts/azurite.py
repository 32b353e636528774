#!/usr/bin/env python3
"""Start, stop or check a local Azurite (Azure Storage emulator: Blob, Queue, Table) for mljob development.

    python3 scripts/azurite.py start  [--port-base 10000] [--location .azurite/data]
    python3 scripts/azurite.py status
    python3 scripts/azurite.py stop
    python3 scripts/azurite.py connection-string    # just the string, e.g. for QUEUECONNECTIONSTRING="$(...)"

Azurite comes from node_modules (`npm ci` installs the version pinned in package.json). It listens on
127.0.0.1 only: blob on PORT_BASE, queue on PORT_BASE+1, table on PORT_BASE+2. Its pid file and log are
in .azurite/ (git-ignored); its data in --location (default .azurite/data, kept across restarts).
`start` prints the development connection string (for QUEUECONNECTIONSTRING and AzureWebJobsStorage).
Exit codes: 0 ok (status: running), 1 not running (status) or failed, 2 bad usage.

Stdlib only; tests/azurite.py reuses the functions below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"
STATE_DIR = REPO / ".azurite"
PID_FILE = STATE_DIR / "azurite.pid"
LOG_FILE = STATE_DIR / "azurite.log"
HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 10000
START_TIMEOUT = 30.0

# Azurite's well-known development account; public, documented, and valid only against the emulator.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    """Azurite is not installed, or did not start."""


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = HOST) -> str:
    """The development connection string for an Azurite on these ports (one line)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT_NAME};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT_NAME};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT_NAME};"
    )


def require_azurite() -> Path:
    """The azurite executable from node_modules, or AzuriteError saying how to install it."""
    if not AZURITE_BIN.exists():
        raise AzuriteError(
            f"Azurite is not installed ({AZURITE_BIN} is missing): "
            f"run `npm ci` in {REPO} (needs node >= 20 and npm; `make test` does it for you)"
        )
    if shutil.which("node") is None:
        raise AzuriteError("node is not on PATH: Azurite needs Node.js (>= 20) to run")
    return AZURITE_BIN


def command(
    blob_port: int, queue_port: int, table_port: int, location: Path, *, in_memory: bool = False
) -> list[str]:
    """The azurite command line: loopback only, no telemetry, quiet, lenient about headers and API versions.

    Data go to `location`, or stay in memory with `in_memory` (then start the process with cwd=location).
    """
    cmd = [
        str(require_azurite()),
        "--blobHost", HOST, "--blobPort", str(blob_port),
        "--queueHost", HOST, "--queuePort", str(queue_port),
        "--tableHost", HOST, "--tablePort", str(table_port),
        "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent",
    ]  # fmt: skip
    # Azurite refuses --location together with --inMemoryPersistence ("not supported"): run it in `location`.
    cmd += ["--inMemoryPersistence"] if in_memory else ["--location", str(location)]
    return cmd


def port_answers(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_listening(proc: subprocess.Popen, ports: list[int], log: Path, timeout: float = START_TIMEOUT) -> None:
    """Wait until every port answers; AzuriteError (with the log's tail) if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise AzuriteError(f"Azurite exited with code {proc.returncode} while starting:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise AzuriteError(f"Azurite did not answer on ports {pending} within {timeout:.0f} s:\n{log_tail(log)}")
        if port_answers(pending[0]):
            pending.pop(0)
        else:
            time.sleep(0.05)
    if proc.poll() is not None:  # a port answered, but not for Azurite
        raise AzuriteError(f"Azurite exited with code {proc.returncode} while starting:\n{log_tail(log)}")


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log file, indented, or a note that it is empty."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or f"    ({log} is empty)"


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None


def pdeathsig_preexec() -> None:
    """In the child before exec (Linux): get SIGTERM when the parent dies, so a killed test run leaves no Azurite.

    Looked up once in the parent: the child only makes the one C call (nothing is imported after fork).
    """
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process, then SIGKILL it if it is still there after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


# --- the command line: a background Azurite with a pid file ------------------------------------


def _read_state() -> dict | None:
    """The pid file's content when it names a live Azurite process, else None (a stale pid file is removed)."""
    try:
        state = json.loads(PID_FILE.read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        PID_FILE.unlink(missing_ok=True)
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "azurite" if _alive(pid) else ""
    if not _alive(pid) or "azurite" not in cmdline:
        PID_FILE.unlink(missing_ok=True)
        return None
    return state


def _print_running(state: dict, intro: str) -> None:
    ports = state["ports"]
    print(f"{intro} (pid {state['pid']}; blob {ports[0]}, queue {ports[1]}, table {ports[2]})")
    print(f"data: {state['location']}")
    print(f"log: {LOG_FILE}")
    print("connection string (QUEUECONNECTIONSTRING / AzureWebJobsStorage):")
    print(connection_string(*ports))


def cmd_start(args: argparse.Namespace) -> int:
    state = _read_state()
    if state:
        _print_running(state, "Azurite is already running")
        return 0
    ports = [args.port_base, args.port_base + 1, args.port_base + 2]
    busy = [p for p in ports if port_answers(p)]
    if busy:
        print(f"azurite: ports {busy} on {HOST} are in use by another program; try --port-base N", file=sys.stderr)
        return 1
    location = (args.location or STATE_DIR / "data").resolve()
    location.mkdir(parents=True, exist_ok=True)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = command(*ports, location)
    started = time.monotonic()
    with LOG_FILE.open("ab") as log, open(os.devnull, "rb") as devnull:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=devnull, stdout=log, stderr=log, cwd=location, start_new_session=True)
    try:
        wait_until_listening(proc, ports, LOG_FILE)
    except AzuriteError:
        terminate(proc.pid)
        raise
    state = {"pid": proc.pid, "ports": ports, "location": str(location)}
    PID_FILE.write_text(json.dumps(state) + "\n")
    _print_running(state, f"Azurite started in {time.monotonic() - started:.1f} s")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    state = _read_state()
    if not state:
        print("Azurite is not running")
        return 0
    terminate(int(state["pid"]))
    PID_FILE.unlink(missing_ok=True)
    print(f"Azurite stopped (pid {state['pid']})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = _read_state()
    if not state:
        print("Azurite is not running")
        return 1
    _print_running(state, "Azurite is running")
    return 0


def cmd_connection_string(args: argparse.Namespace) -> int:
    state = _read_state()
    if not state:
        print("azurite: Azurite is not running (start it: python3 scripts/azurite.py start)", file=sys.stderr)
        return 1
    print(connection_string(*state["ports"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/azurite.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start Azurite in the background (does nothing if it runs already)")
    start.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, help="blob port; queue +1, table +2")
    start.add_argument("--location", type=Path, help="data folder (default .azurite/data)")
    start.set_defaults(handler=cmd_start)
    sub.add_parser("stop", help="stop the Azurite started by `start`").set_defaults(handler=cmd_stop)
    sub.add_parser("status", help="say whether it runs (exit 0) or not (exit 1)").set_defaults(handler=cmd_status)
    sub.add_parser("connection-string", help="print only the connection string of the running Azurite").set_defaults(
        handler=cmd_connection_string
    )
    args = parser.parse_args(argv)
    if args.command == "start" and not 1024 <= args.port_base <= 65533:
        parser.error("--port-base must be between 1024 and 65533")
    try:
        return args.handler(args)
    except AzuriteError as exc:
        print(f"azurite: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
