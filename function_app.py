"""The Azure Functions app (Python v2 model): bindings and HTTP shapes only; all logic lives in mljob.

Importing this module must stay cheap (cold start): mljob's API and queue trigger, pydantic, and above all
geneplexus, numpy and pandas are imported inside the functions, when a request or a job comes.

Every HTTP function reads the settings, and turns any error into an answer, in one place: `_answering`. A
malformed setting answers in words: FUNCTION-level routes with a JSON 500 that names the setting, the anonymous
ones without a setting's name or value (health: 503 {"ok": false}; gpz-*: 500 {"message": ...}). The queue
trigger logs it and leaves the message to be retried (see `process_job`).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from mljob.errors import SettingsError
from mljob.settings import Settings

if TYPE_CHECKING:
    from mljob.api import Answer, Reply
    from mljob.webapp import WebAnswer

    Logic = Callable[[func.HttpRequest, Settings], func.HttpResponse | Awaitable[func.HttpResponse]]
    Refusal = Callable[[Exception, func.HttpRequest], func.HttpResponse]

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
HOST_JSON = Path(__file__).with_name("host.json")


def _preload_at_start() -> None:
    """PRELOAD: a job process fills its warm cache while the host starts, so the first job is warm too."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:  # every function answers with it too; the host still starts
        logging.getLogger(__name__).error("mljob: %s", exc)
        return
    if settings.preload:
        from mljob import supervisor

        supervisor.prestart(settings)


_preload_at_start()


def _answering(refusal: Refusal) -> Callable[[Logic], Callable[..., object]]:
    """A decorator: `logic(req, settings)` becomes the function the host calls, `(req)` (async when the logic is),
    which reads the settings and answers any error with `refusal(exc, req)`. It keeps the logic's name and
    docstring, and has its own signature (no __wrapped__): the Functions worker indexes it by that."""

    def decorate(logic: Logic) -> Callable[..., object]:
        if inspect.iscoroutinefunction(logic):

            async def function(req: func.HttpRequest) -> func.HttpResponse:
                try:
                    return await logic(req, Settings.from_env())
                except Exception as exc:  # every error becomes an answer
                    return refusal(exc, req)

        else:

            def function(req: func.HttpRequest) -> func.HttpResponse:
                try:
                    return logic(req, Settings.from_env())
                except Exception as exc:  # every error becomes an answer
                    return refusal(exc, req)

        function.__name__, function.__qualname__, function.__doc__ = logic.__name__, logic.__qualname__, logic.__doc__
        return function

    return decorate


def _error(exc: Exception, req: func.HttpRequest) -> func.HttpResponse:
    """A FUNCTION-level route's error: JSON, with a misconfiguration named (`api.error_answer`)."""
    from mljob import api

    return _answer(api.error_answer(exc))


def _unhealthy(exc: Exception, req: func.HttpRequest) -> func.HttpResponse:
    """The anonymous health check's error: logged (`api.error_answer`), answered only 503 {"ok": false}."""
    from mljob import api

    api.error_answer(exc, anonymous=True)
    return _answer((503, {"ok": False}))


def _web_error(exc: Exception, req: func.HttpRequest) -> func.HttpResponse:
    """An anonymous web app route's error: {"message": ...}, a misconfiguration in general words."""
    from mljob import webapp

    return _web(webapp.refused(exc), req)


def _answer(answer: Answer) -> func.HttpResponse:
    status, body = answer
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _reply(reply: Reply) -> func.HttpResponse:
    status, data, headers = reply
    return func.HttpResponse(data, status_code=status, headers=headers)


def _query(req: func.HttpRequest) -> dict[str, list[str]]:
    """The query string with repeated names kept (`req.params` keeps one value per name)."""
    return parse_qs(urlsplit(req.url).query)


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def enqueue(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Queue jobs: {"jobname": "x"}, {"jobid": "x"}, {"jobnames": ["x", "y"]} or {"jobids": [...]}, optional "rerun"."""
    from mljob import api

    return _answer(api.enqueue(req.get_body(), settings))


@app.route(route="testfn", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def testfn(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Developers only: run a job now and answer its final status (times out in the cloud after 230 s)."""
    from mljob import api

    return _answer(api.run_now(req.params.get("jobname"), req.get_body(), settings))


@app.route(route="jobs/{jobname}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def job_status(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """A job's status.json, plus its result files once completed."""
    from mljob import api

    return _answer(api.job_status(req.route_params.get("jobname", ""), settings))


@app.route(route="jobs/{jobname}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def cancel_job(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Cancel a job: created or queued at once; running within seconds, on whichever instance runs it."""
    from mljob import api

    return _answer(api.cancel(req.route_params.get("jobname", ""), settings))


@app.route(route="jobs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def list_jobs(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The jobs, newest first: ?status= (repeatable), ?prefix=, ?limit= (1-500), ?after= (the `next` cursor)."""
    from mljob import api

    return _answer(api.jobs(_query(req), settings))


@app.route(route="jobs/{jobname}/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def job_report(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """A completed job's results/report.html (404 until it completes)."""
    from mljob import api

    return _reply(api.report(req.route_params.get("jobname", ""), settings))


@app.route(route="jobs/{jobname}/files/{*path}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def job_file(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """One result file (a path under results/), or job.log (?tail=N lines)."""
    from mljob import api

    jobname, path = req.route_params.get("jobname", ""), req.route_params.get("path", "")
    return _reply(api.result_file(jobname, path, _query(req), settings))


@app.route(route="queue", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def queue_status(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Message counts of the job queue and its poison queue, and the oldest poison messages."""
    from mljob import api

    return _answer(api.queue(settings))


@app.route(route="queue/poison/requeue", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def requeue_poison(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """{"jobnames": [...]} or {"all": true}: poisoned jobs back on the queue, all or nothing."""
    from mljob import api

    return _answer(api.requeue(req.get_body(), settings))


@app.route(route="console", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def console(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The operator console: one self-contained page (open it with ?code=<function key>). It needs no setting, but
    with a malformed one it answers as every FUNCTION-level route does, naming it: nothing on the page would work."""
    from mljob import console as page

    html, headers = page.render()
    return func.HttpResponse(html, status_code=200, headers=headers, mimetype="text/html", charset="utf-8")


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_answering(_unhealthy)
def health(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Anonymous, for the platform's health check: {"ok": true} (200) or {"ok": false} (503), nothing more."""
    from mljob import api

    return _answer(api.health(settings))


@app.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_answering(_error)
def health_details(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """With the key: versions, whether DATA_PATH and JOBS_PATH are reachable, the queue's configuration."""
    from mljob import api

    return _answer(api.health_details(settings))


@app.route(route="gpz-convert-ids", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_answering(_web_error)
def gpz_convert_ids(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The web app's ID conversion (GenePlexus load_genes): {"genes", "sp_trn"}; anonymous, creates no job."""
    from mljob import webapp

    return _web(webapp.convert_ids(req.get_body(), settings), req)


@app.route(route="gpz-ml", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_answering(_web_error)
async def gpz_ml(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The web app's analysis: a queued job, awaited up to WEB_WAIT_SECONDS (200 results, 202 still running)."""
    from mljob import webapp

    return _web(await webapp.ml(req.get_body(), settings), req)


def _web(answer: WebAnswer, req: func.HttpRequest) -> func.HttpResponse:
    from mljob import webapp

    status, data, headers = webapp.encoded(answer, req.headers.get("accept-encoding", ""))
    return func.HttpResponse(data, status_code=status, headers=headers, mimetype="application/json")


@app.queue_trigger(arg_name="msg", queue_name="%QUEUE_NAME%", connection="QUEUECONNECTIONSTRING")
def process_job(msg: func.QueueMessage) -> None:
    """Run the job a queue message names; errors that a retry may fix are re-raised for the host.

    A wrong deployment (a malformed setting, JOBS_PATH or DATA_PATH not a folder) is logged in one line per
    delivery and raised as a short SettingsError: the message is retried and its job is left as it is. After
    maxDequeueCount deliveries the host moves the message to the poison queue, its job still `queued`; once the
    setting is fixed, `POST /api/queue/poison/requeue` (or `mljob poison requeue`) puts it back on the queue.
    """
    from mljob import queue_trigger

    tries = msg.dequeue_count or 1, _max_dequeue_count()
    try:
        queue_trigger.handle_message(
            msg.get_body(),
            message_id=msg.id,
            dequeue_count=tries[0],
            max_dequeue_count=tries[1],
            settings=Settings.from_env(),
        )
    except SettingsError as exc:
        raise queue_trigger.misconfigured(msg.id, *tries, exc) from None


@functools.cache
def _max_dequeue_count() -> int:
    """host.json's maxDequeueCount, read once (the Functions host reads host.json when it starts, not per message)."""
    from mljob import queue_trigger

    return queue_trigger.max_dequeue_count(HOST_JSON)
