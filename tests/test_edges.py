"""Every edge answers in words: each setting malformed, every function of function_app called, and the CLI.

A FUNCTION-level route answers a JSON 500 that names the setting; an anonymous route reveals neither its name
nor its value (health: 503 {"ok": false}; gpz-*: 500 {"message": ...}); the queue trigger logs one line and
raises a SettingsError, so the host retries the message. No call touches a job because of a bad deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import typing
from dataclasses import fields
from pathlib import Path

import azure.functions as func
import pytest
from app_functions import app_functions
from azure.functions.queue import QueueMessage

from mljob.errors import SettingsError
from mljob.job import parse_config
from mljob.settings import Settings
from mljob.tools import cli

REPO = Path(__file__).resolve().parent.parent
JOB = "edge-job"
GENES = ["CDK1", "CCNB1", "MAD2L1"]
CLOSED_PORT_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)

# How each HTTP function is called: a request it would act on, so that each setting it uses is reached.
REQUESTS: dict[str, dict] = {
    "enqueue": {"method": "POST", "body": {"jobname": JOB}},
    "testfn": {"method": "POST", "params": {"jobname": JOB}},
    "job_status": {"method": "GET", "route_params": {"jobname": JOB}},
    "cancel_job": {"method": "POST", "route_params": {"jobname": JOB}},
    "list_jobs": {"method": "GET"},
    "job_report": {"method": "GET", "route_params": {"jobname": JOB}},
    "job_file": {"method": "GET", "route_params": {"jobname": JOB, "path": "job.log"}},
    "queue_status": {"method": "GET"},
    "requeue_poison": {"method": "POST", "body": {"all": True}},
    "console": {"method": "GET"},
    "health": {"method": "GET"},
    "health_details": {"method": "GET"},
    "gpz_convert_ids": {"method": "POST", "body": {"genes": GENES, "sp_trn": "Human"}},
    "gpz_ml": {
        "method": "POST",
        "body": {
            "name": "edge",
            "genes": GENES,
            "sp_trn": "Human",
            "sp_res": "Human",
            "net_type": "STRING",
            "gsc": "GO",
        },
    },
}
QUEUE_TRIGGERS = ("process_job",)
FUNCTIONS = (*REQUESTS, *QUEUE_TRIGGERS)

# Settings refused where they are read (Settings.from_env): every function meets them.
MALFORMED_BY_KIND = {int: "12abc", float: "cheap"}
MALFORMED_STRINGS = {"PRELOAD": "Nowhere:STRING:Combined"}
# Settings that are well-formed by construction, refused where they are used: (value, the functions that use them).
MISSING = "/nonexistent/mljob-edge"
USERS_OF_THE_QUEUE = ("enqueue", "queue_status", "requeue_poison", "gpz_ml")
WHERE_USED = {
    # health_details reports the folders as unreachable instead (503, test_function_app)
    "DATA_PATH": (MISSING, ("health", "testfn", "gpz_convert_ids", "process_job")),
    "JOBS_PATH": (
        MISSING,
        (
            "enqueue",
            "testfn",
            "job_status",
            "cancel_job",
            "list_jobs",
            "job_report",
            "job_file",
            "requeue_poison",
            "health",
            "gpz_ml",
            "process_job",
        ),
    ),
    "QUEUECONNECTIONSTRING": ("not-a-connection-string", USERS_OF_THE_QUEUE),
    "QUEUE_NAME": ("Not_A_Queue", USERS_OF_THE_QUEUE),
}
# Settings no function of function_app can find wrong: any text is a valid value.
NEVER_WRONG = ("MLJOB_FUNCTION_KEY", "CALLBACK_ALLOWED_HOSTS", "CORS_ALLOWED_ORIGINS")


def malformed_at_read() -> dict[str, str]:
    """{env: a malformed value} of every setting Settings.from_env refuses."""
    values = {}
    for f in fields(Settings):
        kind, env = f.metadata["kind"], f.metadata["env"]
        if kind in MALFORMED_BY_KIND:
            values[env] = MALFORMED_BY_KIND[kind]
        elif env in MALFORMED_STRINGS:
            values[env] = MALFORMED_STRINGS[env]
    return values


CASES = [
    *((env, value, name) for env, value in malformed_at_read().items() for name in FUNCTIONS),
    *((env, value, name) for env, (value, names) in WHERE_USED.items() for name in names),
]


@pytest.fixture
def deployment(monkeypatch, data_path, store, demo_genes):
    """A good deployment with one job created; the queue is a closed port (refused at once, no retries)."""
    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("JOBS_PATH", str(store.root))
    monkeypatch.setenv("QUEUE_NAME", "edges")
    monkeypatch.setenv("QUEUECONNECTIONSTRING", CLOSED_PORT_CONNECTION)
    for env in malformed_at_read():
        monkeypatch.delenv(env, raising=False)
    from mljob import queue

    monkeypatch.setattr(queue, "_shared_queue", lambda conn, name: queue.JobQueue(conn, name, timeout=2, retries=0))
    store.create_job(parse_config({"jobname": JOB}), demo_genes)
    return monkeypatch


def call_http(name: str) -> func.HttpResponse:
    request = dict(REQUESTS[name])
    body = request.pop("body", None)
    request.setdefault("url", f"http://localhost/api/{name}")
    request["body"] = json.dumps(body).encode() if body is not None else b""
    answer = app_functions()[name].get_user_function()(func.HttpRequest(**request))
    return asyncio.run(answer) if inspect.iscoroutine(answer) else answer


def auth_level(name: str) -> str:
    return json.loads(app_functions()[name].get_function_json())["bindings"][0]["authLevel"]


@pytest.mark.parametrize(("env", "value", "name"), CASES, ids=[f"{env}-{name}" for env, _, name in CASES])
def test_a_wrong_setting_is_answered_in_words(deployment, store, caplog, env, value, name):
    deployment.setenv(env, value)
    before = store.read_status(JOB)
    if name in QUEUE_TRIGGERS:
        caplog.set_level(logging.INFO)
        message = QueueMessage(id="edge-1", body=JOB.encode(), dequeue_count=2)
        with pytest.raises(SettingsError, match="retried"):
            app_functions()[name].get_user_function()(message)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, f"{env}, {name}: {[r.getMessage() for r in errors]}"
        line = errors[0].getMessage()
        assert env in line and "retried" in line and "\n" not in line and not errors[0].exc_info, (env, name, line)
    else:
        response = call_http(name)
        text = response.get_body().decode()
        if auth_level(name) == "ANONYMOUS":
            assert env not in text and value not in text, f"{env}, {name} told a stranger: {text}"
            if name == "health":
                assert (response.status_code, json.loads(text)) == (503, {"ok": False}), (env, name, text)
            else:
                answer = json.loads(text)
                assert response.status_code == 500 and "misconfigured" in answer["message"], (env, name, text)
        else:
            answer = json.loads(text)
            assert response.status_code == 500 and env in answer["error"], (env, name, response.status_code, text)
            assert "misconfigured" in answer["error"], (env, name, text)
    assert store.read_status(JOB) == before, f"{env}, {name} touched a job"


def test_every_function_of_the_app_is_called():
    assert sorted(FUNCTIONS) == sorted(app_functions()), "a function of function_app is missing from REQUESTS"


def test_every_setting_is_tried_or_cannot_be_wrong():
    tried = {*malformed_at_read(), *WHERE_USED, *NEVER_WRONG}
    assert sorted(tried) == sorted(f.metadata["env"] for f in fields(Settings))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_keeps_the_signature_the_worker_indexes(name):
    """The Functions worker reads each function's parameters and their types: one, the trigger binding's."""
    fn = app_functions()[name]
    user = fn.get_user_function()
    binding = json.loads(fn.get_function_json())["bindings"][0]
    hints = typing.get_type_hints(user)
    assert list(inspect.signature(user).parameters) == [binding["name"]] and not hasattr(user, "__wrapped__")
    assert hints[binding["name"]] is (func.QueueMessage if name in QUEUE_TRIGGERS else func.HttpRequest)
    assert user.__name__ == name and user.__doc__
    assert inspect.iscoroutinefunction(user) == (name == "gpz_ml")


# --- the CLI and `mljob serve` ------------------------------------------------------------------------

COMMAND_ARGS = {
    "demo": [],
    "make-data": ["made"],
    "submit": ["genes.txt"],
    "run": [JOB],
    "status": [JOB],
    "cancel": [JOB],
    "results": [JOB],
    "report": [JOB],
    "list": [],
    "cleanup": ["--older-than", "1", "--yes"],
    "enqueue": [JOB],
    "poison list": [],
    "poison requeue": ["--all"],
    "serve": ["--port", "0", "--app-dir", str(REPO)],
    "share upload": ["made", "data", "--share", "s"],
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command of `mljob`, subcommands spelled out ("poison list")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [leaf for name, sub in action.choices.items() for leaf in leaf_commands(sub, f"{prefix} {name}")]
    return [prefix.strip()]


def test_every_command_is_tried():
    assert sorted(COMMAND_ARGS) == sorted(leaf_commands(cli.build_parser()))


@pytest.mark.parametrize("command", COMMAND_ARGS)
def test_a_malformed_setting_stops_every_command_in_one_line(command, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOB_TIMEOUT_SECONDS", "12abc")
    assert cli.main([*command.split(), *COMMAND_ARGS[command]]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (command, out, err)
    assert "JOB_TIMEOUT_SECONDS must be a whole number, got '12abc'" in err, (command, err)
    assert list(tmp_path.iterdir()) == [], f"{command} did something"


# --- gpz-ml names only a job that exists ---------------------------------------------------------------


def test_a_busy_gpz_ml_names_no_job_and_creates_none(deployment, store, monkeypatch):
    from mljob import webapp

    monkeypatch.setattr(webapp, "_waiting", Settings().web_max_waiting)  # every place taken
    response = call_http("gpz_ml")
    answer = json.loads(response.get_body())
    assert response.status_code == 503 and response.headers["Retry-After"] and "jobname" not in answer, answer
    assert store.list_jobs() == [JOB]


def test_a_bad_gpz_ml_is_refused_as_bad_even_when_every_place_is_taken(deployment, store, monkeypatch):
    from mljob import webapp

    monkeypatch.setattr(webapp, "_waiting", Settings().web_max_waiting)  # every place taken
    monkeypatch.setitem(REQUESTS, "gpz_ml", {**REQUESTS["gpz_ml"], "body": {**REQUESTS["gpz_ml"]["body"], "gsc": "X"}})
    response = call_http("gpz_ml")
    answer = json.loads(response.get_body())
    assert response.status_code == 400 and "gsc" in answer["message"] and "jobname" not in answer, answer
    assert store.list_jobs() == [JOB]


def test_a_gpz_ml_refused_after_its_job_was_created_names_it(deployment, store):
    response = call_http("gpz_ml")  # the queue is a closed port: the job is created, not queued
    answer = json.loads(response.get_body())
    assert response.status_code == 503 and answer["jobname"] in store.list_jobs(), answer
