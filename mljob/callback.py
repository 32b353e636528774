"""Tell a web app that a job has ended: one JSON POST to the job's callback_url, never failing the job."""

from __future__ import annotations

import logging
import time

from mljob.errors import InvalidInput
from mljob.results_store import ResultsFileStore
from mljob.status import JobStatus

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
TRIES = 3


def post_status(url: str, status: JobStatus, *, timeout: float = TIMEOUT_SECONDS, tries: int = TRIES) -> bool:
    """POST {"jobname","status","code"} to `url`; retry a few times; log and return False on failure."""
    import requests  # imported on first use: keeps function_app's cold start short

    body = status.summary()
    for attempt in range(1, tries + 1):
        try:
            response = requests.post(url, json=body, timeout=timeout, allow_redirects=False)
            if response.status_code < 300:
                log.info("callback for job %s answered %s", status.jobname, response.status_code)
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500:
                break
        except requests.RequestException as exc:
            problem = type(exc).__name__
        if attempt < tries:
            time.sleep(0.5 * 2 ** (attempt - 1))
    log.warning(
        "callback for job %s failed after %d tries (%s); the job itself is unaffected", status.jobname, attempt, problem
    )
    return False


def notify(store: ResultsFileStore, status: JobStatus) -> None:
    """POST a job's final status to the callback_url of its config, if it has one."""
    try:
        url = store.read_config(status.jobname).callback_url
    except InvalidInput:
        return
    if url:
        post_status(url, status)
