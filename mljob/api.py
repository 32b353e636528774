"""The HTTP API's logic, independent of Azure Functions: each call returns (HTTP status, JSON body).

function_app.py only turns requests into these calls and their answers into HttpResponses.
"""

from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from typing import Any

import mljob
from mljob.errors import InvalidInput, JobExists, JobNotFound, JobNotReady, MljobError, SettingsError
from mljob.job import validate_jobname
from mljob.queue import MAX_JOBS_PER_CALL, JobQueue, QueueUnavailable
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]
MAX_BODY_BYTES = 1_000_000
_ENQUEUE_KEYS = {"jobname", "jobid", "jobnames", "rerun"}


def error_answer(exc: Exception) -> Answer:
    """The HTTP status and JSON error body for an exception (its message is meant for the caller)."""
    if isinstance(exc, QueueUnavailable):
        return 503, {"error": str(exc)}
    if isinstance(exc, SettingsError):
        log.error("server misconfigured: %s", exc)
        return 500, {"error": f"the server is misconfigured: {exc}"}
    if isinstance(exc, InvalidInput):
        return 400, {"error": str(exc)}
    if isinstance(exc, JobNotFound):
        return 404, {"error": str(exc)}
    if isinstance(exc, (JobExists, JobNotReady)):
        return 409, {"error": str(exc)}
    if isinstance(exc, MljobError):
        return 400, {"error": str(exc)}
    log.exception("internal error")
    return 500, {"error": "internal error; see the function app's log"}


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body (Content-Type is not required); InvalidInput otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"request body is {len(body):,} bytes; the most accepted is {MAX_BODY_BYTES:,}")
    if not body.strip():
        raise InvalidInput('request body is empty; send JSON like {"jobname": "mygenes-8e3jt5kz"}')
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise InvalidInput('request body is not JSON; send JSON like {"jobname": "mygenes-8e3jt5kz"}') from None
    if not isinstance(data, dict):
        raise InvalidInput(f'request body must be a JSON object like {{"jobname": "..."}}, not {type(data).__name__}')
    return data


def jobnames_from(data: dict[str, Any]) -> list[str]:
    """The job names of an enqueue body: "jobname", "jobid" (the same) or "jobnames" (a list)."""
    unknown = sorted(set(data) - _ENQUEUE_KEYS)
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; allowed: jobname (or jobid), jobnames, rerun")
    given = [key for key in ("jobname", "jobid", "jobnames") if key in data]
    if len(given) != 1:
        raise InvalidInput('give exactly one of "jobname", "jobid" or "jobnames"')
    if given[0] != "jobnames":
        return [validate_jobname(data[given[0]])]
    names = data["jobnames"]
    if not isinstance(names, list) or not names:
        raise InvalidInput('"jobnames" must be a non-empty list of job names')
    if len(names) > MAX_JOBS_PER_CALL:
        raise InvalidInput(f'"jobnames" lists {len(names):,} jobs; the most in one call is {MAX_JOBS_PER_CALL:,}')
    return [validate_jobname(name) for name in names]


def enqueue(body: bytes, settings: Settings) -> Answer:
    """POST /api/enqueue: validate every job, then queue them all, or none (202 with the accepted names)."""
    try:
        data = parse_body(body)
        names = jobnames_from(data)
        rerun = data.get("rerun", False)
        if not isinstance(rerun, bool):
            raise InvalidInput('"rerun" must be true or false')
        store = _store(settings)
        accepted = JobQueue.from_settings(settings).enqueue(store, names, rerun=rerun)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    log.info("enqueued %d job(s): %s", len(accepted), ", ".join(accepted))
    return 202, {"accepted": accepted, "status": State.QUEUED.value, "code": 202}


def job_status(jobname: str, settings: Settings) -> Answer:
    """GET /api/jobs/{jobname}: status.json, plus the result files once completed."""
    try:
        store = _store(settings)
        validate_jobname(jobname)
        if not store.exists(jobname):
            raise JobNotFound(f"job {jobname} not found")
        answer = store.read_status(jobname).model_dump(mode="json")
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    if answer["status"] == State.COMPLETED.value:
        answer["results"] = store.list_results(jobname)
    return 200, answer


def run_now(jobname: str | None, body: bytes, settings: Settings) -> Answer:
    """testfn: run a job synchronously in this process (developers only) and answer its final status."""
    from mljob.lease import RunLease
    from mljob.run_geneplexus import run_geneplexus

    try:
        if not jobname:
            names = jobnames_from({k: v for k, v in parse_body(body).items() if k != "rerun"})
            if len(names) != 1:
                raise InvalidInput(f'testfn runs one job at a time; {len(names)} were named (use "jobname")')
            jobname = names[0]
        store = _store(settings)
        validate_jobname(jobname)
        if not store.exists(jobname):
            raise JobNotFound(f"job {jobname} not found")
        data_path = settings.require_data_path()
        with RunLease(store, jobname, stale_after=settings.lease_stale_seconds):
            final = run_geneplexus(jobname, store, data_path)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    return 200, final.model_dump(mode="json")


def health(settings: Settings) -> Answer:
    """GET /api/health: versions and whether DATA_PATH and JOBS_PATH are reachable folders."""
    paths = {
        "data_path": settings.data_path is not None and settings.data_path.is_dir(),
        "jobs_path": settings.jobs_path is not None and settings.jobs_path.is_dir(),
    }
    versions = {"mljob": mljob.__version__, "python": platform.python_version()}
    for package in ("geneplexus", "azure-functions"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    ok = all(paths.values())
    return (200 if ok else 503), {
        "ok": ok,
        "versions": versions,
        "reachable": paths,
        "queue_name": settings.queue_name,
        "queue_configured": bool(settings.queue_connection_string),
    }


def _store(settings: Settings) -> ResultsFileStore:
    return ResultsFileStore(
        settings.require_jobs_path(), max_genes=settings.max_input_genes, max_bytes=settings.max_input_bytes
    )
