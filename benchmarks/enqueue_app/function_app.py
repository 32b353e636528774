"""The real function_app.py's enqueue route alone (no queue trigger), for timing POST /api/enqueue.

With the queue trigger the host would start running the 100 enqueued jobs while they are timed.
The route body is function_app.enqueue's, line for line.
"""

from __future__ import annotations

import json

import azure.functions as func

from mljob import api
from mljob.settings import Settings

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def enqueue(req: func.HttpRequest) -> func.HttpResponse:
    status, body = api.enqueue(req.get_body(), Settings.from_env())
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
