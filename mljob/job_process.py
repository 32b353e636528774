"""The job process: a long-lived child that does the GenePlexus work of jobs, one at a time, for its supervisor.

`main()` runs in a fresh interpreter that `mljob.supervisor` starts (never a fork of the host process, which may
hold gRPC or HTTP server threads). It imports the ML stack once (and, with a `Preload` argument, fills its
warm cache), says `Ready`, then reads one request per line on stdin and answers one outcome line each
(the messages of mljob.job_protocol):

    RunJob      -> Completed | Refused (bad input, too few genes) | OutOfMemory | Failed (traceback in job.log)
    ConvertIds  -> Converted | Refused (no backend data) | OutOfMemory | Failed (traceback in the host's log)

The warm backend-data cache lives here and serves request after request. A job writes progress to
status.json and its log lines to job.log; a ConvertIds touches no job folder. The supervisor alone decides
how a request ends. The process exits when its input closes or its supervisor dies.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TextIO

from mljob import backend_data, manifest
from mljob.errors import InvalidInput, JobError
from mljob.job_log import job_log
from mljob.job_protocol import (
    Completed,
    Converted,
    ConvertIds,
    Failed,
    JsonText,
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
from mljob.report import ReportData, render_report
from mljob.result_files import REPORT_FILE
from mljob.results_store import ResultsFileStore, atomic_write
from mljob.science import data_cache, session
from mljob.science.convert_ids import convert_ids
from mljob.science.job_info import job_info
from mljob.science.pipeline import STEP_PERCENT, analyse, save_class
from mljob.science.web_files import write_web_files
from mljob.settings import Settings
from mljob.status import Progress, State

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 0.2


def make_results(store: ResultsFileStore, jobname: str, settings: Settings, instance_share: float = 1.0) -> str:
    """Read the inputs, run the pipeline, store results/ and job_info.json; returns the completed message.

    `instance_share`: the part of the instance the job had (1 when it ran alone), for its estimated cost.
    """
    config = store.read_config(jobname)
    genes = store.read_genes(jobname)
    negatives = store.read_negatives(jobname)
    store.discard_results(jobname)
    if settings.data_path is None:
        raise JobError("the server cannot run jobs: DATA_PATH, the folder of the GenePlexus backend data, is not set")

    def progress(step: str, percent: int) -> None:
        store.update_status(jobname, State.RUNNING, step, progress=Progress(step=step, percent=percent))

    before = data_cache.CACHE.stats.hits, data_cache.CACHE.stats.misses
    cpu = time.process_time()
    result = analyse(
        config,
        genes,
        negatives,
        settings.data_path,
        on_step=progress,
        cache_mb=settings.data_cache_mb,
        fast_path=bool(settings.fast_path),
    )
    progress("saving", STEP_PERCENT["saving"])
    saving = time.perf_counter()
    with store.staging_results(jobname) as staging:
        save_class(result.gp, staging)
        web = write_web_files(result.gp, staging, top=config.num_nodes)
        info = job_info(result)
        on = settings.data_cache_mb > 0  # (turning the cache off also clears its counters)
        info["data_cache"] = {
            "budget_mb": settings.data_cache_mb,
            "hits": data_cache.CACHE.stats.hits - before[0] if on else 0,
            "misses": data_cache.CACHE.stats.misses - before[1] if on else 0,
        }
        report = render_report(ReportData.from_web(config.model_dump(mode="json"), info, web))
        atomic_write(staging / REPORT_FILE, report)
    info["seconds"]["saving"] = round(time.perf_counter() - saving, 4)
    info["total_seconds"] = round(time.time() - result.started, 3)
    info["cpu_seconds"] = round(time.process_time() - cpu, 3)  # this process's CPU time for the job
    # an estimate: the run's seconds x the plan's price per second x the share of the instance it had
    info["estimated_cost"] = round(info["total_seconds"] * settings.plan_price_per_hour / 3600 * instance_share, 6)
    info["result_files"] = store.list_results(jobname)
    store.write_job_info(jobname, info)
    return manifest.summary(info)


def handle(request: Request) -> Outcome:
    """Do one request; the outcome says how it went (never raises)."""
    if isinstance(request, ConvertIds):
        return _convert(request)
    return _run_job(request)


def _run_job(request: RunJob) -> Outcome:
    store = ResultsFileStore(request.jobs_path, max_genes=request.max_genes, max_bytes=request.max_bytes)
    jobname = request.jobname
    with job_log(store, jobname):
        try:
            settings = Settings.from_dict(request.settings)
            return Completed(make_results(store, jobname, settings, request.instance_share))
        except (JobError, InvalidInput) as exc:
            log.error("job %s failed: %s", jobname, exc)
            return Refused(str(exc))
        except MemoryError:
            log.exception("job %s: out of memory in the job process", jobname)
            return OutOfMemory("the job's process ran out of memory (MemoryError)")
        except Exception as exc:
            log.exception("job %s failed with an unexpected error", jobname)
            return Failed(f"{type(exc).__name__}: {exc}")


def _convert(request: ConvertIds) -> Outcome:
    """gpz-convert-ids's work: no job folder, so a failure's traceback goes to the host's log (stderr)."""
    try:
        text = convert_ids(
            request.genes, request.species, Path(request.data_path), cache_mb=request.cache_mb, fast=request.fast
        )
        return Converted(JsonText(text))
    except (JobError, InvalidInput) as exc:
        return Refused(str(exc))
    except MemoryError:
        _tell("gene-ID conversion: out of memory (MemoryError)")
        return OutOfMemory("the job process ran out of memory (MemoryError)")
    except Exception as exc:
        _tell(f"gene-ID conversion failed with an unexpected error:\n{traceback.format_exc()}")
        return Failed(f"{type(exc).__name__}: {exc}")


def preload(request: Preload) -> None:
    """PRELOAD: read each target's backend files into the warm cache, so that even the first job on a new
    instance is warm. A failure is logged and leaves the cache as it is: jobs then read the files themselves."""
    for target in request.targets:
        what = f"{target['sp_trn']}:{target['net_type']}:{target['gsc']}"
        started = time.perf_counter()
        try:
            names = backend_data.preload_files(target)
            count, held = data_cache.preload(request.data_path, names, request.cache_mb)
        except Exception as exc:  # missing or unreadable data: the jobs will say so in words
            _tell(f"PRELOAD {what} not loaded: {type(exc).__name__}: {exc}")
            continue
        took = time.perf_counter() - started
        _tell(f"PRELOAD {what}: {count} backend files in the warm cache in {took:.1f} s (cache {held / 2**20:.0f} MB)")


def _tell(line: str) -> None:
    """One line for the host's log (this process's stderr): no job is running, so there is no job.log."""
    print(f"mljob job process {os.getpid()}: {line}", file=sys.stderr, flush=True)


def main() -> int:
    """Serve requests from stdin until it closes (or the supervisor dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    replies = _protocol_stream()
    _exit_with_parent(os.getppid())
    session.import_stack()  # the ML stack, loaded before the first job

    if len(sys.argv) > 1:
        argument = decode(sys.argv[1])
        assert isinstance(argument, Preload), argument
        preload(argument)
    _send(replies, Ready(os.getpid()))
    for line in sys.stdin:
        if line.strip():
            request = decode(line)
            assert isinstance(request, Request), request
            _send(replies, handle(request))
    return 0


def _protocol_stream() -> TextIO:
    """The answers' channel (the original stdout); stdout itself then goes to stderr, so a stray print
    (from a library) cannot break the protocol."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return replies


def _send(stream: TextIO, message: Ready | Outcome) -> None:
    stream.write(encode(message) + "\n")
    stream.flush()


def _exit_with_parent(parent: int) -> None:
    """Leave at once when the supervisor is gone (this process is then re-parented): an orphan must not
    keep writing into a job folder that another run may take over."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
