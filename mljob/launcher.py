"""Launchers: the ways a job stored in a ResultsFileStore gets run: in this process, via the job queue,
or by asking a function app's /api/enqueue over HTTP."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from mljob.errors import InvalidInput, JobNotFound, JobNotReady, LaunchError
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus

if TYPE_CHECKING:
    from mljob.queue import JobQueue

log = logging.getLogger(__name__)


class Launcher(Protocol):
    """Starts the run of a job whose inputs are already in the store."""

    def launch(self, jobname: str) -> JobStatus | None:
        """Start (or, for in-process launchers, do) the run; returns the final status when known."""
        ...


class LocalLauncher:
    """Runs the job right here, in this process, and returns when it has ended."""

    def __init__(self, store: ResultsFileStore, data_path: str | Path, settings: Settings | None = None):
        """`settings` (default: the documented defaults) give the lease staleness, cache budget and callback hosts."""
        self.store = store
        self.settings = dataclasses.replace(settings or Settings(), data_path=Path(data_path))

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLauncher:
        """A launcher over JOBS_PATH and DATA_PATH, honouring every other setting too."""
        return cls(ResultsFileStore.from_settings(settings), settings.require_data_path(), settings)

    def launch(self, jobname: str) -> JobStatus:
        """Run the job to its end under its run lease (JobBusy if a run elsewhere holds it); no retries."""
        from mljob.lifecycle import run_job

        return run_job(self.store, jobname, self.settings)


class QueueLauncher:
    """Puts the job on the job queue (all-or-nothing, marks it `queued`); the queue trigger runs it later."""

    def __init__(self, queue: JobQueue, store: ResultsFileStore):
        self.queue = queue
        self.store = store

    def launch(self, jobname: str) -> None:
        """Enqueue the job; raises JobNotReady if it is queued, running or completed already."""
        from mljob.enqueue import enqueue_jobs

        enqueue_jobs(self.store, self.queue, [jobname])


class UrlLauncher:
    """Asks a function app to queue the job: POST {"jobname": ...} to its /api/enqueue URL.

    The function key goes in the `x-functions-key` header; it is never logged or shown in errors (nor is
    a `?code=` query of the URL). Redirects are not followed, so the key is never sent elsewhere.
    """

    def __init__(self, enqueue_url: str, function_key: str | None = None, timeout: float = 30):
        parts = urlsplit(enqueue_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("the enqueue URL must be an http:// or https:// URL")
        self.enqueue_url = enqueue_url
        self.function_key = function_key or None
        self.timeout = timeout
        # for messages and logs: no query (it may hold ?code=KEY), no user:password
        self.shown_url = f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    def __repr__(self) -> str:
        return f"UrlLauncher({self.shown_url!r}, key={'set' if self.function_key else 'none'})"

    def launch(self, jobname: str) -> None:
        """POST the job name; returns when the app has queued it, else raises an MljobError saying why."""
        import requests

        from mljob.job import validate_jobname

        body = json.dumps({"jobname": validate_jobname(jobname)})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.function_key:
            headers["x-functions-key"] = self.function_key
        try:
            response = requests.post(
                self.enqueue_url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise LaunchError(
                f"the enqueue endpoint {self.shown_url} did not answer within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise LaunchError(f"could not reach the enqueue endpoint {self.shown_url} ({type(exc).__name__})") from None
        with response:
            status = response.status_code
            detail, from_app = _error_text(response) if not 200 <= status < 300 else ("", False)
        if 200 <= status < 300:
            log.info("job %s handed to %s (HTTP %d)", jobname, self.shown_url, status)
            return
        said = f": {detail}" if detail else ""
        where = f"{self.shown_url} answered HTTP {status}"
        if status in (400, 413, 422):
            raise InvalidInput(f"job {jobname} was refused: {where}{said}")
        if status == 404 and from_app:
            raise JobNotFound(f"job {jobname} was not found by the app: {where}{said}")
        if status == 404:
            raise LaunchError(f"{where} (Not Found){said}: is the enqueue URL right (e.g. https://APP/api/enqueue)?")
        if status == 409:
            raise JobNotReady(f"job {jobname} cannot be queued now: {where}{said}")
        if status in (401, 403):
            given = "the function key given was refused" if self.function_key else "no function key was given"
            raise LaunchError(f"{where}: {given}{said}")
        if 300 <= status < 400:
            raise LaunchError(f"{where} (a redirect, not followed){said}: use the final enqueue URL")
        raise LaunchError(f"job {jobname} was not queued: {where}{said}")


def _error_text(response) -> tuple[str, bool]:
    """The JSON `error` of an answer (and True), else an excerpt of its text (and False): one line, <= 300 chars."""
    try:
        data = response.json()
    except ValueError:
        data = None
    from_app = isinstance(data, dict) and isinstance(data.get("error"), str) and bool(data["error"].strip())
    text = " ".join((data["error"] if from_app else response.text).split())  # type: ignore[index]
    return text[:300] + ("..." if len(text) > 300 else ""), from_app
