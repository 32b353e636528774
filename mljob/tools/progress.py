"""Live progress of a job on the terminal, read from its status.json (the same progress the web app sees)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from mljob.status import JobStatus

POLL_SECONDS = 0.25


def follow(
    read_status: Callable[[], JobStatus],
    *,
    alive: Callable[[], bool] | None = None,
    stream: TextIO | None = None,
    poll: float = POLL_SECONDS,
) -> JobStatus:
    """Show a progress bar (step, percent, elapsed time) until the job ends; returns its last status.

    With `alive`, follow until `alive()` turns false (a run in this process), else until a final status.
    `stream` defaults to sys.stderr as it is at the call.
    """
    with tqdm(total=100, file=stream or sys.stderr, unit="%", bar_format="{desc:<40} {bar} {n:3.0f}% {elapsed}") as bar:
        while True:
            was_alive = alive() if alive is not None else True
            status = read_status()
            bar.set_description_str(f"{status.jobname}: {status.progress.step or status.status.value}")
            bar.n = status.progress.percent
            bar.refresh()
            if not was_alive or (alive is None and status.is_final):
                return status
            time.sleep(poll)


def run_with_progress(run: Callable[[], JobStatus], read_status: Callable[[], JobStatus], **kwargs) -> JobStatus:
    """Run `run()` in a thread while following the job's status.json; returns (or raises) what `run` did."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["status"] = run()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="mljob-run", daemon=True)
    worker.start()
    follow(read_status, alive=worker.is_alive, **kwargs)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["status"]  # type: ignore[return-value]
