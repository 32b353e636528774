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
from mljob import service
from mljob.errors import (
    InvalidInput,
    JobExists,
    JobNotFound,
    JobNotReady,
    MljobError,
    RequestTooLarge,
    ServiceUnavailable,
    SettingsError,
)
from mljob.job import jobnames_from, json_type
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]
MAX_BODY_BYTES = 1_000_000

# The HTTP status of each error class (the first that matches); other MljobErrors are 400.
HTTP_STATUS: list[tuple[type[MljobError], int]] = [
    (ServiceUnavailable, 503),
    (SettingsError, 500),
    (RequestTooLarge, 413),
    (InvalidInput, 400),
    (JobNotFound, 404),
    (JobExists, 409),
    (JobNotReady, 409),
]


def error_answer(exc: Exception) -> Answer:
    """The HTTP status and JSON error body for an exception (its message is meant for the caller)."""
    if not isinstance(exc, MljobError):
        log.exception("internal error")
        return 500, {"error": "internal error; see the function app's log"}
    status = next((code for kind, code in HTTP_STATUS if isinstance(exc, kind)), 400)
    if isinstance(exc, SettingsError):
        log.error("server misconfigured: %s", exc)
        return status, {"error": f"the server is misconfigured: {exc}"}
    return status, {"error": str(exc)}


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body (Content-Type is not required); InvalidInput otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLarge(f"request body is {len(body):,} bytes; the most accepted is {MAX_BODY_BYTES:,}")
    if not body.strip():
        raise InvalidInput('request body is empty; send JSON like {"jobname": "mygenes-8e3jt5kz"}')
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise InvalidInput('request body is not JSON; send JSON like {"jobname": "mygenes-8e3jt5kz"}') from None
    if not isinstance(data, dict):
        raise InvalidInput(f'request body must be a JSON object like {{"jobname": "..."}}, got a {json_type(data)}')
    return data


def enqueue(body: bytes, settings: Settings) -> Answer:
    """POST /api/enqueue: validate every job, then queue them all, or none (202 with the accepted names)."""
    try:
        data = parse_body(body)
        names = jobnames_from(data, what="request body", also=("rerun",))
        rerun = data.get("rerun", False)
        if not isinstance(rerun, bool):
            raise InvalidInput('"rerun" must be true or false')
        store = ResultsFileStore.from_settings(settings)
        accepted = service.enqueue(store, JobQueue.from_settings(settings), names, rerun=rerun)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    return 202, {"accepted": accepted, "status": State.QUEUED.value, "code": 202}


def job_status(jobname: str, settings: Settings) -> Answer:
    """GET /api/jobs/{jobname}: status.json, plus the result files once completed."""
    try:
        store = ResultsFileStore.from_settings(settings)
        store.require_job(jobname)
        answer = store.read_status(jobname).model_dump(mode="json")
        if answer["status"] == State.COMPLETED.value:
            answer["results"] = store.list_results(jobname)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    return 200, answer


def run_now(jobname: str | None, body: bytes, settings: Settings) -> Answer:
    """testfn: run a job synchronously in this process (developers only) and answer its final status."""
    from mljob.lifecycle import run_job

    try:
        if not jobname:
            names = jobnames_from(parse_body(body), what="request body", also=("rerun",))
            if len(names) != 1:
                raise InvalidInput(f'testfn runs one job at a time; {len(names)} were named (use "jobname")')
            jobname = names[0]
        store = ResultsFileStore.from_settings(settings)
        store.require_job(jobname)
        final = run_job(store, jobname, settings)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    return 200, final.model_dump(mode="json")


def cancel(jobname: str, settings: Settings) -> Answer:
    """POST /api/jobs/{jobname}/cancel: 200 with the cancelled status, 202 while its run stops, 409 when finished."""
    from mljob.lifecycle import cancel_job

    try:
        status = cancel_job(ResultsFileStore.from_settings(settings), jobname, settings)
    except Exception as exc:  # every error becomes a JSON answer
        return error_answer(exc)
    answer = status.model_dump(mode="json")
    if status.status is State.CANCELLED:
        return 200, answer
    return 202, {**answer, "message": "cancel requested: the run stops within seconds"}


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
