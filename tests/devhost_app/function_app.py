"""A tiny v2-model function app for tests/test_devhost.py: HTTP routes and one queue trigger."""

import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    """Anonymous: always answers."""
    return func.HttpResponse(json.dumps({"pong": True}), mimetype="application/json")


@app.route(route="echo/{name}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """FUNCTION level: the route parameter, query parameters and body back as JSON."""
    answer = {"name": req.route_params["name"], "params": dict(req.params), "body": req.get_body().decode()}
    return func.HttpResponse(
        json.dumps(answer), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json"
    )


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    """Always raises."""
    raise RuntimeError("boom: a deliberate test error")


@app.queue_trigger(arg_name="msg", queue_name="%TEST_QUEUE%", connection="TEST_QUEUE_CONN")
def record(msg: func.QueueMessage) -> None:
    """Record each try in $DEVHOST_TEST_OUT; "fail..." raises, "slow SECONDS ..." sleeps first."""
    body = msg.get_body().decode()
    _append("start", msg, body)
    if body.startswith("fail"):
        raise RuntimeError(f"failing as asked: {body}")
    if body.startswith("slow"):
        time.sleep(float(body.split()[1]))
    _append("done", msg, body)


def _append(event: str, msg: func.QueueMessage, body: str) -> None:
    line = {
        "event": event,
        "body": body,
        "dequeue_count": msg.dequeue_count,
        "id": msg.id,
        "inserted": msg.insertion_time.isoformat(),
        "pid": os.getpid(),
    }
    with open(os.environ["DEVHOST_TEST_OUT"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
