"""Job control: the GenePlexus work of every run goes to a supervised child process (mljob.job_process).

The supervisor (the process that took the job: the Functions worker, `mljob serve`, `mljob run`) keeps a
few long-lived job processes and hands each run to one of them, so the imported ML stack and the warm
backend-data cache carry over from job to job. While a run works it watches the child, a few times a
second, and stops it (SIGTERM, then SIGKILL after a short grace) when:

- it runs past JOB_TIMEOUT_SECONDS                      -> RunTimedOut   (`timeout`, final)
- someone cancelled the job (its cancel marker appears)  -> RunCancelled  (`cancelled`, final)
- its resident memory goes over JOB_MEMORY_MB           -> RunOutOfMemory (`failed`, not retried)

A child that dies of itself is reported as RunOutOfMemory when the kernel's OOM killer took it (the
cgroup's oom_kill count rose), else as JobProcessDied (a crash: the retry policy applies). A child that
was stopped or died is never reused; the next run gets a fresh one. Children are started as new
interpreters (`python -c "... mljob.job_process.main()"`), never forked from this process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mljob.errors import JobError, JobProcessDied, JobWorkFailed, RunCancelled, RunOutOfMemory, RunTimedOut
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.25  # how often a running child's answer, life, memory and deadline are looked at
CANCEL_CHECK_SECONDS = 1.0  # how often the job folder is asked for its cancel marker (a file on a share)
GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
READY_SECONDS = 300.0  # a new child imports the ML stack before it says it is ready
MAX_IDLE = 2  # job processes kept waiting for the next run
_CGROUP_EVENTS = Path("/sys/fs/cgroup/memory.events")
CHILD_CODE = "import sys; from mljob.job_process import main; sys.exit(main())"  # a new interpreter, not a fork


class JobProcessHandle:
    """One child interpreter running `mljob.job_process`; `run` hands it a request and returns its answer."""

    def __init__(self, preload: dict[str, Any] | None = None) -> None:
        """`preload`: backend data the child loads into its warm cache before it says it is ready."""
        path = os.pathsep.join(p for p in sys.path if p)  # the child finds modules where this process does
        env = {**os.environ, "PYTHONPATH": path}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, *([json.dumps(preload)] if preload else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.ready = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        """Wait for the child's `ready` line (it has imported the ML stack); JobProcessDied if it never comes."""
        if self.ready:
            return
        message = self._read(timeout)
        if not (message or {}).get("ready"):
            self.stop(0)
            raise JobProcessDied(f"the job process did not start (exit code {self._proc.poll()}); see the host's log")
        self.ready = True

    def send(self, request: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any] | None:
        """The child's answer when one arrives within `timeout` seconds, else None."""
        return self._read(timeout)

    def returncode(self) -> int | None:
        return self._proc.poll()

    def rss_mb(self) -> float:
        """The child's resident memory now, in MB (0 when it cannot be read)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
        return 0.0

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; waits until the child is gone."""
        if self.alive():
            self._proc.terminate()
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close_pipes()

    def close(self) -> None:
        """Let an idle child go: its input closes and it leaves."""
        self._close_pipes()
        try:
            self._proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop(0)

    def _read(self, timeout: float) -> dict[str, Any] | None:
        stdout: IO[str] | None = self._proc.stdout
        if stdout is None or stdout.closed:
            return None
        ready, _, _ = select.select([stdout], [], [], max(timeout, 0))
        if not ready:
            return None
        line = stdout.readline()
        return json.loads(line) if line.strip() else None

    def _close_pipes(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass


_idle: list[JobProcessHandle] = []
_lock = threading.Lock()
_busy = 0  # runs in progress in this process (each in its own job process)


def prestart(settings: Settings | None = None, wait: bool = False) -> None:
    """Start a job process now (it imports the ML stack in the background), so the first run finds one ready;
    with the settings' PRELOAD it also fills its warm cache with that data. With `wait`, return once it is ready."""
    preload = None
    targets = settings.preload_targets() if settings is not None else []
    if targets and settings.data_path and settings.data_cache_mb > 0:
        preload = {"data_path": str(settings.data_path), "targets": targets, "cache_mb": settings.data_cache_mb}
    with _lock:
        if preload or not _idle:
            _idle.append(JobProcessHandle(preload))
        process = _idle[-1]
    if wait:
        process.wait_ready()


def supervise_job(
    store: ResultsFileStore,
    jobname: str,
    settings: Settings,
    *,
    on_process: Callable[[int], None] | None = None,
) -> str:
    """Do a job's work in a job process under the settings' limits; returns its completed message.

    Raises JobError (bad input, too few genes: not retried), RunOutOfMemory, RunTimedOut, RunCancelled,
    JobProcessDied or JobWorkFailed (see the module's docstring). `on_process(pid)` is told which child
    runs the job. The time limit starts once the child is ready.
    """
    global _busy
    process = _acquire()
    reusable = False
    with _lock:
        _busy += 1
        share = 1 / _busy  # of the instance, for the job's estimated cost
    try:
        process.wait_ready()
        if on_process is not None:
            on_process(process.pid)
        request = {
            "jobs_path": str(store.root),
            "max_genes": store.max_genes,
            "max_bytes": store.max_bytes,
            "jobname": jobname,
            "settings": settings.to_dict(),
            "instance_share": share,
        }
        answer = _watch(process, request, settings, lambda: store.cancel_requested(jobname))
        reusable = True
    finally:
        with _lock:
            _busy -= 1
        _release(process, reusable)
    outcome = answer.get("outcome")
    if outcome == "completed":
        return str(answer["summary"])
    if outcome == "refused":
        raise JobError(str(answer["message"]))
    if outcome == "memory":
        raise RunOutOfMemory(_memory_advice(str(answer["message"]), settings, None))
    raise JobWorkFailed(str(answer.get("error", "the job process gave no answer")))


def _watch(
    process: JobProcessHandle, request: dict[str, Any], settings: Settings, cancelled: Callable[[], bool]
) -> dict[str, Any]:
    """Send the request and watch the child until it answers, dies, or must be stopped."""
    started = time.monotonic()
    deadline = started + settings.job_timeout_seconds
    next_cancel_check = started + CANCEL_CHECK_SECONDS
    oom_kills = _oom_kills()
    peak = 0.0
    process.send(request)
    while True:
        try:
            answer = process.answer(WATCH_SECONDS)
        except (OSError, ValueError):  # a broken pipe or a half line: the child is dying
            answer = None
        if answer is not None:
            return answer
        code = process.returncode()
        if code is not None:
            if _oom_kills() > oom_kills:
                what = "the kernel's OOM killer stopped the job's process"
                raise RunOutOfMemory(_memory_advice(what, settings, peak))
            raise JobProcessDied(_death(code))
        peak = max(peak, process.rss_mb())
        now = time.monotonic()
        if settings.job_memory_mb and peak > settings.job_memory_mb:
            process.stop(0)
            raise RunOutOfMemory(_memory_advice("the job's process went over JOB_MEMORY_MB", settings, peak))
        if now >= next_cancel_check:
            next_cancel_check = now + CANCEL_CHECK_SECONDS
            if cancelled():
                process.stop()
                raise RunCancelled(f"cancelled by request after {now - started:.0f} s of running; no results were kept")
        if now >= deadline:
            process.stop()
            limit = settings.job_timeout_seconds
            raise RunTimedOut(
                f"the run was stopped after {now - started:,.0f} s: JOB_TIMEOUT_SECONDS ({limit:,} s) is the most a "
                "run may take; no results were kept. Use fewer genes or result species, or ask the operator to "
                "raise JOB_TIMEOUT_SECONDS (host.json's functionTimeout must stay above it)"
            )


def _acquire() -> JobProcessHandle:
    with _lock:
        while _idle:
            process = _idle.pop()
            if process.alive():
                return process
    return JobProcessHandle()


def _release(process: JobProcessHandle, reusable: bool) -> None:
    """Keep a healthy child for the next run; a stopped, dead or surplus one is let go."""
    if reusable and process.alive():
        with _lock:
            if len(_idle) < MAX_IDLE:
                _idle.append(process)
                return
        process.close()
    else:
        process.stop(0)


def _memory_advice(what: str, settings: Settings, peak: float | None) -> str:
    limit = f"JOB_MEMORY_MB is {settings.job_memory_mb:,} MB" if settings.job_memory_mb else "no JOB_MEMORY_MB is set"
    seen = f"; the most seen was {peak:,.0f} MB" if peak else ""
    return (
        f"the job ran out of memory: {what} ({limit}{seen}, the warm data cache included). "
        "Use a plan with more memory (e.g. EP2 or EP3), or a smaller job (fewer genes or result species)"
    )


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the job's process died of {name} (signal {-code})"
    return f"the job's process exited unexpectedly with code {code}"


def _oom_kills() -> int:
    """The kernel's count of OOM kills in this cgroup (v2), or 0 where it cannot be read."""
    try:
        for line in _CGROUP_EVENTS.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


@atexit.register
def shutdown() -> None:
    """Let every idle job process go (at exit, or when a host stops); running ones end with their runs."""
    with _lock:
        idle = list(_idle)
        _idle.clear()
    for process in idle:
        process.close()
