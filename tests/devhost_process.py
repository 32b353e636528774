"""`mljob serve` as a real subprocess, for the tests: started on a free port, its URL read from its log."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# host.json queue settings for tests: 3 tries, no delay between them, quick polling.
FAST_HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {
            "batchSize": 1,
            "newBatchThreshold": 0,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:00",
            "maxPollingInterval": "00:00:00.200",
            "messageEncoding": "base64",
        }
    },
}


def app_copy(folder: Path, host_json: dict | None = None) -> Path:
    """`folder` made an app folder: the real function_app.py beside the repo's host.json, or `host_json`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "function_app.py", folder / "function_app.py")
    if host_json is None:
        shutil.copy(REPO / "host.json", folder / "host.json")
    else:
        (folder / "host.json").write_text(json.dumps(host_json))
    return folder


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class DevHostProcess:
    """One `mljob serve --port 0` subprocess; its log goes to a file, its URL is read from the log."""

    def __init__(self, tmp: Path, env: dict[str, str], app_dir: Path | None = None) -> None:
        # by default a copy of the app: a developer's local.settings.json in the checkout stays out of the tests
        app_dir = app_dir or app_copy(tmp / f"app-{uuid.uuid4().hex[:6]}")
        self.log_path = tmp / f"host-{uuid.uuid4().hex[:6]}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mljob", "serve", "--port", "0", "--app-dir", str(app_dir)],
                env=env,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.url = ""
        wait_for(self._ready, 20, f"the dev host to listen (log: {self.log_path})")

    def _ready(self) -> bool:
        for line in self.log().splitlines():
            if "listening on http://" in line:
                self.url = line.split("listening on ")[1].strip()
                return True
        assert self.proc.poll() is None, f"the dev host exited: {self.log()}"
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
