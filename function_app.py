"""The Azure Functions app (Python v2 model): bindings and HTTP shapes only; all logic lives in mljob.

Importing this module must stay cheap (cold start): mljob's API and worker, pydantic, and above all
geneplexus, numpy and pandas are imported inside the functions, when a request or a job comes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from mljob.errors import SettingsError
from mljob.settings import Settings

if TYPE_CHECKING:
    from mljob.api import Answer, Reply
    from mljob.webapp import WebAnswer

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
def enqueue(req: func.HttpRequest) -> func.HttpResponse:
    """Queue jobs: {"jobname": "x"}, {"jobid": "x"}, {"jobnames": ["x", "y"]} or {"jobids": [...]}, optional "rerun"."""
    from mljob import api

    return _answer(api.enqueue(req.get_body(), Settings.from_env()))


@app.route(route="testfn", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def testfn(req: func.HttpRequest) -> func.HttpResponse:
    """Developers only: run a job now and answer its final status (times out in the cloud after 230 s)."""
    from mljob import api

    return _answer(api.run_now(req.params.get("jobname"), req.get_body(), Settings.from_env()))


@app.route(route="jobs/{jobname}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def job_status(req: func.HttpRequest) -> func.HttpResponse:
    """A job's status.json, plus its result files once completed."""
    from mljob import api

    return _answer(api.job_status(req.route_params.get("jobname", ""), Settings.from_env()))


@app.route(route="jobs/{jobname}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def cancel_job(req: func.HttpRequest) -> func.HttpResponse:
    """Cancel a job: created or queued at once; running within seconds, on whichever instance runs it."""
    from mljob import api

    return _answer(api.cancel(req.route_params.get("jobname", ""), Settings.from_env()))


@app.route(route="jobs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    """The jobs, newest first: ?status= (repeatable), ?prefix=, ?limit= (1-500), ?after= (the `next` cursor)."""
    from mljob import api

    return _answer(api.jobs(_query(req), Settings.from_env()))


@app.route(route="jobs/{jobname}/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def job_report(req: func.HttpRequest) -> func.HttpResponse:
    """A completed job's results/report.html (404 until it completes)."""
    from mljob import api

    return _reply(api.report(req.route_params.get("jobname", ""), Settings.from_env()))


@app.route(route="jobs/{jobname}/files/{*path}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def job_file(req: func.HttpRequest) -> func.HttpResponse:
    """One result file (a path under results/), or job.log (?tail=N lines)."""
    from mljob import api

    jobname, path = req.route_params.get("jobname", ""), req.route_params.get("path", "")
    return _reply(api.result_file(jobname, path, _query(req), Settings.from_env()))


@app.route(route="queue", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def queue_status(req: func.HttpRequest) -> func.HttpResponse:
    """Message counts of the job queue and its poison queue, and the oldest poison messages."""
    from mljob import api

    return _answer(api.queue(Settings.from_env()))


@app.route(route="queue/poison/requeue", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def requeue_poison(req: func.HttpRequest) -> func.HttpResponse:
    """{"jobnames": [...]} or {"all": true}: poisoned jobs back on the queue, all or nothing."""
    from mljob import api

    return _answer(api.requeue(req.get_body(), Settings.from_env()))


@app.route(route="console", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def console(req: func.HttpRequest) -> func.HttpResponse:
    """The operator console: one self-contained page (open it with ?code=<function key>)."""
    from mljob import console as page

    html, headers = page.render()
    return func.HttpResponse(html, status_code=200, headers=headers, mimetype="text/html", charset="utf-8")


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Anonymous, for the platform's health check: {"ok": true} (200) or {"ok": false} (503), nothing more."""
    from mljob import api

    return _answer(api.health(Settings.from_env()))


@app.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health_details(req: func.HttpRequest) -> func.HttpResponse:
    """With the key: versions, whether DATA_PATH and JOBS_PATH are reachable, the queue's configuration."""
    from mljob import api

    return _answer(api.health_details(Settings.from_env()))


@app.route(route="gpz-convert-ids", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def gpz_convert_ids(req: func.HttpRequest) -> func.HttpResponse:
    """The web app's ID conversion (GenePlexus load_genes): {"genes", "sp_trn"}; anonymous, creates no job."""
    from mljob import webapp

    return _web(webapp.convert_ids(req.get_body(), Settings.from_env()), req)


@app.route(route="gpz-ml", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def gpz_ml(req: func.HttpRequest) -> func.HttpResponse:
    """The web app's analysis: a queued job, awaited up to WEB_WAIT_SECONDS (200 results, 202 still running)."""
    from mljob import webapp

    return _web(await webapp.ml(req.get_body(), Settings.from_env()), req)


def _web(answer: WebAnswer, req: func.HttpRequest) -> func.HttpResponse:
    from mljob import webapp

    status, data, headers = webapp.encoded(answer, req.headers.get("accept-encoding", ""))
    return func.HttpResponse(data, status_code=status, headers=headers, mimetype="application/json")


@app.queue_trigger(arg_name="msg", queue_name="%QUEUE_NAME%", connection="QUEUECONNECTIONSTRING")
def process_job(msg: func.QueueMessage) -> None:
    """Run the job a queue message names; errors that a retry may fix are re-raised for the host."""
    from mljob import queue_trigger

    queue_trigger.handle_message(
        msg.get_body(),
        message_id=msg.id,
        dequeue_count=msg.dequeue_count or 1,
        max_dequeue_count=queue_trigger.max_dequeue_count(HOST_JSON),
        settings=Settings.from_env(),
    )
