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

`convert_ids` (POST /api/gpz-convert-ids) is a light request: no job folder, the same watch (its own time
limit, JOB_MEMORY_MB, crash containment; nothing to cancel), so this process never imports the ML stack.
Light requests have job processes of their own: one is started when none is idle and then stays idle for
the next call (MAX_LIGHT of them), so a conversion never waits for a running job, and a job never finds
its warm process busy with a conversion (its cache keeps the job's network; the light one's holds the ID
conversions). A job that finds no job process idle takes an idle light one rather than start one. At most
MAX_LIGHT light requests run at once; one that finds no free place within LIGHT_WAIT_SECONDS is refused
with TooManyConversions (HTTP 503). Supervisor and job process speak the typed messages of
mljob.job_protocol.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from mljob.errors import (
    JobError,
    JobProcessDied,
    JobWorkFailed,
    MljobError,
    RunCancelled,
    RunOutOfMemory,
    RunTimedOut,
    TooManyConversions,
)
from mljob.job_protocol import (
    Completed,
    Converted,
    ConvertIds,
    Failed,
    Message,
    Outcome,
    OutOfMemory,
    Preload,
    Ready,
    Refused,
    Request,
    RunJob,
    decode,
    encode,
)
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.25  # how often a running child's answer, life, memory and deadline are looked at
CANCEL_CHECK_SECONDS = 1.0  # how often the job folder is asked for its cancel marker (a file on a share)
GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
READY_SECONDS = 300.0  # a new child imports the ML stack before it says it is ready
MAX_IDLE = 2  # job processes kept waiting for the next run
MAX_LIGHT = 1  # convert-ids requests at once, and job processes kept for them (the host held one ML stack before)
LIGHT_WAIT_SECONDS = 10.0  # the longest a convert-ids request waits for its place
LIGHT_TIMEOUT_SECONDS = 60  # a convert-ids request's time limit (JOB_TIMEOUT_SECONDS when that is smaller)
_CGROUP_EVENTS = Path("/sys/fs/cgroup/memory.events")
CHILD_CODE = "import sys; from mljob.job_process import main; sys.exit(main())"  # a new interpreter, not a fork


class JobProcessHandle:
    """One child interpreter running `mljob.job_process`; `send` hands it a request, `answer` reads its outcome."""

    def __init__(self, preload: Preload | None = None, *, light: bool = False) -> None:
        """`preload`: backend data the child loads into its warm cache before it says it is ready; `light`: it
        serves light requests (convert-ids)."""
        path = os.pathsep.join(p for p in sys.path if p)  # the child finds modules where this process does
        env = {**os.environ, "PYTHONPATH": path}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, *([encode(preload)] if preload else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.ready = False
        self.light = light

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        """Wait for the child's `ready` line (it has imported the ML stack); JobProcessDied if it never comes."""
        if self.ready:
            return
        try:
            message = self._read(timeout)
        except (OSError, ValueError):
            message = None
        if not isinstance(message, Ready):
            self.stop(0)
            raise JobProcessDied(f"the job process did not start (exit code {self._proc.poll()}); see the host's log")
        self.ready = True

    def send(self, request: Request) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(encode(request) + "\n")
        self._proc.stdin.flush()

    def answer(self, timeout: float) -> Outcome | None:
        """The child's outcome when one arrives within `timeout` seconds, else None (ValueError: not one)."""
        message = self._read(timeout)
        if message is not None and not isinstance(message, Outcome):
            raise ValueError(f"the job process answered {type(message).__name__}, not an outcome")
        return message

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

    def _read(self, timeout: float) -> Message | None:
        stdout: IO[str] | None = self._proc.stdout
        if stdout is None or stdout.closed:
            return None
        ready, _, _ = select.select([stdout], [], [], max(timeout, 0))
        if not ready:
            return None
        line = stdout.readline()
        return decode(line) if line.strip() else None

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
_light_places = threading.BoundedSemaphore(MAX_LIGHT)


@dataclass(frozen=True)
class _Limits:
    """What a request may take, how a stop is put in words, and whether it was cancelled."""

    seconds: float
    memory_mb: int
    timed_out: Callable[[float], str]  # the message, from the seconds it ran
    out_of_memory: Callable[[str, float | None], str]  # from what happened and the most memory seen
    cancelled: Callable[[], bool] = lambda: False


def prestart(settings: Settings | None = None, wait: bool = False) -> None:
    """Start a job process now (it imports the ML stack in the background), so the first run finds one ready;
    with the settings' PRELOAD it also fills its warm cache with that data. With `wait`, return once it is ready."""
    preload = None
    targets = settings.preload_targets() if settings is not None else []
    if targets and settings.data_path and settings.data_cache_mb > 0:
        preload = Preload(data_path=str(settings.data_path), targets=targets, cache_mb=settings.data_cache_mb)
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
    with _lock:
        _busy += 1
        share = 1 / _busy  # of the instance, for the job's estimated cost
    memory = partial(_memory_advice, settings)
    timed_out = partial(_job_timed_out, settings.job_timeout_seconds)
    limits = _Limits(
        settings.job_timeout_seconds,
        settings.job_memory_mb,
        timed_out,
        memory,
        partial(store.cancel_requested, jobname),
    )
    request = RunJob(
        jobs_path=str(store.root),
        max_genes=store.max_genes,
        max_bytes=store.max_bytes,
        jobname=jobname,
        settings=settings.to_dict(),
        instance_share=share,
    )
    try:
        with _job_process(light=False) as process:
            if on_process is not None:
                on_process(process.pid)
            outcome = _watch(process, request, limits)
    finally:
        with _lock:
            _busy -= 1
    if isinstance(outcome, Completed):
        return outcome.summary
    raise _failure(outcome, "a job", memory)


def convert_ids(genes: list[str], species: str, settings: Settings) -> dict[str, Any]:
    """GenePlexus's load_genes on `genes` for `species` (mljob.science.convert_ids), as a light request to a job
    process: its warm cache, JOB_MEMORY_MB and crash containment, and a time limit of min(JOB_TIMEOUT_SECONDS,
    LIGHT_TIMEOUT_SECONDS) from the moment the process is ready. Returns input_count, convert_ids, table_summary
    and df_convert_out.

    Raises SettingsError (no DATA_PATH), JobError (no backend data for the species), RunOutOfMemory,
    RunTimedOut, JobProcessDied, JobWorkFailed, or TooManyConversions when no place frees within
    LIGHT_WAIT_SECONDS.
    """
    request = ConvertIds(
        genes=list(genes),
        species=species,
        data_path=str(settings.require_data_path()),
        cache_mb=settings.data_cache_mb,
        fast=bool(settings.fast_path),
    )
    seconds = min(settings.job_timeout_seconds, LIGHT_TIMEOUT_SECONDS)
    memory = partial(_convert_memory_advice, settings)
    limits = _Limits(seconds, settings.job_memory_mb, partial(_convert_timed_out, seconds), memory)
    if not _light_places.acquire(timeout=LIGHT_WAIT_SECONDS):
        raise TooManyConversions(
            f"the server is busy converting other gene lists; try again in {LIGHT_WAIT_SECONDS:g} s"
        )
    try:
        with _job_process(light=True) as process:
            outcome = _watch(process, request, limits)
    finally:
        _light_places.release()
    if isinstance(outcome, Converted):
        return outcome.result
    raise _failure(outcome, "a gene-ID conversion", memory, prefix="the gene-ID conversion failed: ")


def _failure(outcome: Outcome, what: str, memory: Callable[[str, float | None], str], prefix: str = "") -> MljobError:
    """The error for an outcome other than the one the request wanted (`what` names the request)."""
    match outcome:
        case Refused(message):
            return JobError(message)
        case OutOfMemory(message):
            return RunOutOfMemory(memory(message, None))
        case Failed(error):
            return JobWorkFailed(prefix + error)
    return JobWorkFailed(f"the job process answered {what} with {type(outcome).__name__}")


@contextmanager
def _job_process(*, light: bool) -> Iterator[JobProcessHandle]:
    """A ready job process for one request; kept for the next one when the request ended with an outcome."""
    process = _acquire(light)
    reusable = False
    try:
        process.wait_ready()
        yield process
        reusable = True
    finally:
        _release(process, reusable)


def _watch(process: JobProcessHandle, request: Request, limits: _Limits) -> Outcome:
    """Send the request and watch the child until it answers, dies, or must be stopped."""
    started = time.monotonic()
    deadline = started + limits.seconds
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
                raise RunOutOfMemory(limits.out_of_memory("the kernel's OOM killer stopped the job's process", peak))
            raise JobProcessDied(_death(code))
        peak = max(peak, process.rss_mb())
        now = time.monotonic()
        if limits.memory_mb and peak > limits.memory_mb:
            process.stop(0)
            raise RunOutOfMemory(limits.out_of_memory("the job's process went over JOB_MEMORY_MB", peak))
        if now >= next_cancel_check:
            next_cancel_check = now + CANCEL_CHECK_SECONDS
            if limits.cancelled():
                process.stop()
                raise RunCancelled(f"cancelled by request after {now - started:.0f} s of running; no results were kept")
        if now >= deadline:
            process.stop()
            raise RunTimedOut(limits.timed_out(now - started))


def _acquire(light: bool) -> JobProcessHandle:
    """The most recently idle job process of the request's kind (a job takes a light one rather than none), or a
    new one."""
    with _lock:
        _idle[:] = [process for process in _idle if process.alive()]
        kind = [process for process in _idle if process.light == light]
        usable = kind or ([] if light else _idle)
        if usable:
            process = usable[-1]
            _idle.remove(process)
            process.light = light  # (a light process that takes a job holds its network from now on)
            return process
    return JobProcessHandle(light=light)


def _release(process: JobProcessHandle, reusable: bool) -> None:
    """Keep a healthy child for the next request of its kind (MAX_IDLE, MAX_LIGHT); a stopped, dead or surplus
    one is let go."""
    if reusable and process.alive():
        with _lock:
            kept = sum(other.light == process.light for other in _idle)
            if kept < (MAX_LIGHT if process.light else MAX_IDLE):
                _idle.append(process)
                return
        process.close()
    else:
        process.stop(0)


def _job_timed_out(limit: int, ran: float) -> str:
    return (
        f"the run was stopped after {ran:,.0f} s: JOB_TIMEOUT_SECONDS ({limit:,} s) is the most a "
        "run may take; no results were kept. Use fewer genes or result species, or ask the operator to "
        "raise JOB_TIMEOUT_SECONDS (host.json's functionTimeout must stay above it)"
    )


def _convert_timed_out(limit: float, ran: float) -> str:
    return (
        f"the gene-ID conversion was stopped after {ran:,.0f} s: {limit:,.0f} s is the most it may take "
        f"(JOB_TIMEOUT_SECONDS, at most {LIGHT_TIMEOUT_SECONDS} s). Send fewer genes"
    )


def _convert_memory_advice(settings: Settings, what: str, peak: float | None) -> str:
    return f"the gene-ID conversion ran out of memory: {what} ({_memory_seen(settings, peak)}). Send fewer genes"


def _memory_advice(settings: Settings, what: str, peak: float | None) -> str:
    return (
        f"the job ran out of memory: {what} ({_memory_seen(settings, peak)}, the warm data cache included). "
        "Use a plan with more memory (e.g. EP2 or EP3), or a smaller job (fewer genes or result species)"
    )


def _memory_seen(settings: Settings, peak: float | None) -> str:
    limit = f"JOB_MEMORY_MB is {settings.job_memory_mb:,} MB" if settings.job_memory_mb else "no JOB_MEMORY_MB is set"
    return limit + (f"; the most seen was {peak:,.0f} MB" if peak else "")


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
