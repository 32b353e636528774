"""The HTTP API's logic, independent of Azure Functions: each call returns (HTTP status, JSON body).

function_app.py only turns requests into these calls and their answers into HttpResponses.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
import logging
import mimetypes
import platform
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, TypeVar

import mljob
from mljob import poison
from mljob.enqueue import enqueue_jobs
from mljob.errors import (
    InvalidInput,
    JobExists,
    JobNotFound,
    JobNotReady,
    JobProcessDied,
    JobWorkFailed,
    MljobError,
    RequestTooLarge,
    RunOutOfMemory,
    RunTimedOut,
    ServiceUnavailable,
    SettingsError,
)
from mljob.job import jobnames_from, json_type
from mljob.queue import JobQueue
from mljob.report import REPORT_FILE
from mljob.results_store import LOG_FILE, ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]
Reply = tuple[int, bytes, dict[str, str]]  # an answer that is not JSON: status, body, headers
MAX_BODY_BYTES = 1_000_000
JOB_REQUEST = 'a JSON object like {"jobname": "mygenes-8e3jt5kz"}'
MISCONFIGURED = "the server is misconfigured; its operator finds why in the function app's log"
T = TypeVar("T")

# The HTTP status of each error class (the first that matches); other MljobErrors are 400.
HTTP_STATUS: list[tuple[type[MljobError], int]] = [
    (ServiceUnavailable, 503),
    (SettingsError, 500),
    (RequestTooLarge, 413),
    (InvalidInput, 400),
    (JobNotFound, 404),
    (JobExists, 409),
    (JobNotReady, 409),
    (RunTimedOut, 504),  # a convert-ids past its time limit (a job's run ends in its status instead)
    (RunOutOfMemory, 500),
    (JobProcessDied, 500),
    (JobWorkFailed, 500),
]


def error_answer(exc: Exception, *, anonymous: bool = False) -> Answer:
    """The HTTP status and JSON error body for an exception (its message is meant for the caller). `anonymous`:
    the caller has no key, so a misconfiguration is logged but not described (no setting's name or value)."""
    if not isinstance(exc, MljobError):
        log.error("internal error", exc_info=exc)
        return 500, {"error": "internal error; see the function app's log"}
    status = next((code for kind, code in HTTP_STATUS if isinstance(exc, kind)), 400)
    if isinstance(exc, SettingsError):
        log.error("server misconfigured: %s", exc)
        return status, {"error": MISCONFIGURED if anonymous else f"the server is misconfigured: {exc}"}
    return status, {"error": str(exc)}


def error_reply(exc: Exception) -> Reply:
    """`error_answer` as the Reply of a route that answers files."""
    status, body = error_answer(exc)
    return status, json.dumps(body).encode(), {"Content-Type": "application/json"}


def answering(refusal: Callable[[Exception], T]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator: any exception the function raises (or its coroutine, when async) becomes `refusal(exc)`, its
    answer. The one place the API turns errors into answers."""

    def decorate(logic: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(logic):

            @functools.wraps(logic)
            async def answer_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await logic(*args, **kwargs)
                except Exception as exc:  # every error becomes an answer
                    return refusal(exc)

            return answer_async

        @functools.wraps(logic)
        def answer(*args: Any, **kwargs: Any) -> Any:
            try:
                return logic(*args, **kwargs)
            except Exception as exc:  # every error becomes an answer
                return refusal(exc)

        return answer

    return decorate


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name) or []
    return values[-1] if values else None


def _tail(text: str, lines: str | None) -> str:
    if lines is None:
        return text
    if not lines.isdigit():
        raise InvalidInput(f"tail must be a whole number of lines, got {lines!r}")
    return "".join(text.splitlines(keepends=True)[-int(lines) :]) if int(lines) else ""


def _file_headers(path: str, data: bytes) -> dict[str, str]:
    """Content type from the name (text with its charset); HTML gets a CSP that allows only its own inline
    script and style (by hash): no request leaves the page."""
    kind = mimetypes.guess_type(path)[0] or ("text/plain" if path.endswith(".log") else "application/octet-stream")
    headers = {"Content-Type": f"{kind}; charset=utf-8" if kind.startswith("text/") else kind}
    headers["X-Content-Type-Options"] = "nosniff"
    if kind == "text/html":
        headers["Content-Security-Policy"] = _html_policy(data)
    elif not kind.startswith(("text/", "application/json")):
        headers["Content-Disposition"] = f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
    return headers


def _html_policy(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    sources = {}
    for kind in ("script", "style"):
        bodies = re.findall(rf"<{kind}(?:\s[^>]*)?>(.*?)</{kind}>", text, flags=re.S)
        digests = [base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() for body in bodies]
        sources[kind] = " ".join(f"'sha256-{digest}'" for digest in digests) or "'none'"
    return (
        f"default-src 'none'; script-src {sources['script']}; style-src {sources['style']}; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )


def parse_body(
    body: bytes,
    *,
    expected: str = JOB_REQUEST,
    most_bytes: int = MAX_BODY_BYTES,
    keys: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The JSON object of a request body (Content-Type is not required), refused before parsing when over
    `most_bytes`; `expected` says what to send, `keys` (when given) are the only fields allowed. InvalidInput
    (RequestTooLarge) otherwise."""
    if len(body) > most_bytes:
        raise RequestTooLarge(f"request body is {len(body):,} bytes; the most accepted is {most_bytes:,}")
    if not body.strip():
        raise InvalidInput(f"request body is empty; send {expected}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise InvalidInput(f"request body is not JSON; send {expected}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"request body must be {expected}, got a {json_type(data)}")
    unknown = sorted(str(key) for key in set(data) - keys) if keys is not None else []
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(keys))}"[:300])
    return data


@answering(error_answer)
def enqueue(body: bytes, settings: Settings) -> Answer:
    """POST /api/enqueue: validate every job, then queue them all, or none (202 with the accepted names)."""
    data = parse_body(body)
    names = jobnames_from(data, what="request body", also=("rerun",))
    rerun = data.get("rerun", False)
    if not isinstance(rerun, bool):
        raise InvalidInput('"rerun" must be true or false')
    store = ResultsFileStore.from_settings(settings)
    accepted = enqueue_jobs(store, JobQueue.from_settings(settings), names, rerun=rerun)
    return 202, {"accepted": accepted, "status": State.QUEUED.value, "code": 202}


@answering(error_answer)
def job_status(jobname: str, settings: Settings) -> Answer:
    """GET /api/jobs/{jobname}: status.json, plus the result files once completed."""
    store = ResultsFileStore.from_settings(settings)
    store.require_job(jobname)
    answer = store.read_status(jobname).model_dump(mode="json")
    if answer["status"] == State.COMPLETED.value:
        answer["results"] = store.list_results(jobname)
    return 200, answer


@answering(error_answer)
def run_now(jobname: str | None, body: bytes, settings: Settings) -> Answer:
    """testfn: run a job synchronously in this process (developers only) and answer its final status; a
    DATA_PATH that is not a folder is the server's fault, so it refuses the call rather than fail the job."""
    from mljob.lifecycle import run_job

    if not jobname:
        names = jobnames_from(parse_body(body), what="request body", also=("rerun",))
        if len(names) != 1:
            raise InvalidInput(f'testfn runs one job at a time; {len(names)} were named (use "jobname")')
        jobname = names[0]
    settings.require_data_path()
    store = ResultsFileStore.from_settings(settings)
    store.require_job(jobname)
    return 200, run_job(store, jobname, settings).model_dump(mode="json")


@answering(error_answer)
def jobs(query: Mapping[str, list[str]], settings: Settings) -> Answer:
    """GET /api/jobs: the jobs, newest first; ?status= (repeatable), ?prefix=, ?limit= (1-500), ?after= (cursor)."""
    from mljob import job_listing

    limit_text = _one(query, "limit") or str(job_listing.DEFAULT_LIMIT)
    if not limit_text.isdigit():
        raise InvalidInput(f"limit must be a whole number from 1 to {job_listing.MAX_LIMIT}, got {limit_text!r}")
    page = job_listing.list_jobs(
        ResultsFileStore.from_settings(settings),
        statuses=job_listing.statuses_from(query.get("status", [])),
        prefix=_one(query, "prefix") or "",
        limit=int(limit_text),
        after=_one(query, "after") or None,
    )
    return 200, {"jobs": page.jobs, "next": page.next}


def report(jobname: str, settings: Settings) -> Reply:
    """GET /api/jobs/{jobname}/report: results/report.html (a strict CSP), 404 until the job completes."""
    return result_file(jobname, REPORT_FILE, {}, settings)


@answering(error_reply)
def result_file(jobname: str, path: str, query: Mapping[str, list[str]], settings: Settings) -> Reply:
    """GET /api/jobs/{jobname}/files/{path}: one result file (a path under results/, checked by the store), or
    job.log (?tail=N: its last N lines), with its content type."""
    store = ResultsFileStore.from_settings(settings)
    store.require_job(jobname)
    status = store.read_status(jobname)
    if path == LOG_FILE:
        data = _tail(store.read_log(jobname), _one(query, "tail")).encode("utf-8")
    elif status.status is not State.COMPLETED:
        raise JobNotFound(f"job {jobname} has no results: it is {status.status.value}")
    else:
        data = store.result_path(jobname, path).read_bytes()
    return 200, data, _file_headers(path, data)


@answering(error_answer)
def queue(settings: Settings) -> Answer:
    """GET /api/queue: approximate message counts of the queue and its poison queue, and the oldest poison
    messages with the jobs they name."""
    return 200, poison.overview(JobQueue.from_settings(settings))


@answering(error_answer)
def requeue(body: bytes, settings: Settings) -> Answer:
    """POST /api/queue/poison/requeue: {"jobnames": [...]} or {"all": true}: back on the queue, all or nothing."""
    data = parse_body(body)
    if data.get("all") is True and set(data) == {"all"}:
        names = None
    elif set(data) == {"jobnames"}:
        names = jobnames_from(data, what="request body")
    else:
        raise InvalidInput('send {"jobnames": ["..."]} or {"all": true}')
    store = ResultsFileStore.from_settings(settings)
    requeued = poison.requeue(store, JobQueue.from_settings(settings), names)
    return 202, {"requeued": requeued, "status": State.QUEUED.value, "code": 202}


@answering(error_answer)
def cancel(jobname: str, settings: Settings) -> Answer:
    """POST /api/jobs/{jobname}/cancel: 200 with the cancelled status, 202 while its run stops, 409 when finished."""
    from mljob.lifecycle import cancel_job

    status = cancel_job(ResultsFileStore.from_settings(settings), jobname, settings)
    answer = status.model_dump(mode="json")
    if status.status is State.CANCELLED:
        return 200, answer
    return 202, {**answer, "message": "cancel requested: the run stops within seconds"}


def health(settings: Settings) -> Answer:
    """GET /api/health (anonymous, the platform's health check): only whether this instance can run jobs."""
    status, body = health_details(settings)
    return status, {"ok": body["ok"]}


def health_details(settings: Settings) -> Answer:
    """GET /api/health/details (with the key): versions, whether DATA_PATH and JOBS_PATH are reachable folders,
    and the queue's configuration."""
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
