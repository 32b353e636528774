"""Every setting of mljob/settings.py, set to a non-default value, is honoured by every entry point it concerns.

One table: a setting, its non-default value, and the entry points that must honour it. Each entry point
runs one job once (a 12,028-gene, 1.09 MB gene list, so both input limits must be the raised ones; a
stale run lease planted 30 s ago, which only LEASE_STALE_SECONDS=5 lets a run take over; a callback to
127.0.0.1, which only CALLBACK_ALLOWED_HOSTS lets through); each (setting, entry point) pair is then
one test case checking what that setting changes.

Entry points: HTTP enqueue → queue worker and testfn (the real function_app under `mljob serve` + Azurite),
`mljob submit --run`, `mljob run`, `mljob enqueue` (the CLI in-process), LocalLauncher (library: the
Settings object is passed in, not read from the environment), `python -m mljob.run_geneplexus` (a process),
and the web app's anonymous `gpz-ml` and `gpz-convert-ids` (under the same `mljob serve`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from devhost_process import FAST_HOST_JSON, REPO, DevHostProcess, app_copy, wait_for

from mljob import messages
from mljob.job import parse_config
from mljob.launcher import LocalLauncher
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings, env_names
from mljob.status import State
from mljob.tools import cli

pytestmark = pytest.mark.slow

KEY = "settings-table-key"
FILLER = 12_000  # unknown genes of 90 characters: 12,028 genes, 1.09 MB in all
STALE_LEASE_AGE = 30  # seconds: stale for LEASE_STALE_SECONDS=5, fresh for the default 120

HTTP, TESTFN, SUBMIT, RUN, ENQUEUE, LAUNCHER, MODULE, GPZ_ML, GPZ_CONVERT = (
    "http-enqueue-worker",
    "testfn",
    "mljob-submit",
    "mljob-run",
    "mljob-enqueue",
    "local-launcher",
    "python-m-run-geneplexus",
    "gpz-ml",
    "gpz-convert-ids",
)
ORIGIN = "http://table.example.org"
RUNS = (HTTP, TESTFN, SUBMIT, RUN, LAUNCHER, MODULE)  # entry points that run the job
LEASED = (HTTP, TESTFN, RUN, LAUNCHER, MODULE)  # ... on a job with a stale lease planted (submit makes its job)


@dataclass
class Outcome:
    """What one entry point did with its job."""

    jobname: str
    store: ResultsFileStore
    answers: dict[str, Any] = field(default_factory=dict)  # what the entry point said (HTTP codes, exit codes, ...)

    def status(self) -> State:
        return self.store.read_status(self.jobname).status

    def info(self) -> dict[str, Any]:
        return self.store.read_job_info(self.jobname)

    def log(self) -> str:
        return self.store.read_log(self.jobname)


class World:
    """A jobs folder, the environment with every setting non-default, a callback server, and the outcomes."""

    def __init__(self, tmp: Path, data_path: Path, azurite) -> None:
        self.tmp, self.data_path = tmp, data_path
        self.jobs = tmp / "jobs"
        self.jobs.mkdir()
        self.queue_name = "settings-table"
        self.env = {
            "DATA_PATH": str(data_path),
            "JOBS_PATH": str(self.jobs),
            "MAX_INPUT_GENES": "20000",
            "MAX_INPUT_BYTES": "2000000",
            "QUEUECONNECTIONSTRING": azurite.connection_string,
            "QUEUE_NAME": self.queue_name,
            "LEASE_STALE_SECONDS": "5",
            "MLJOB_FUNCTION_KEY": KEY,
            "MESSAGE_LEASE_SECONDS": "17",
            "DATA_CACHE_MB": "64",
            "PRELOAD": "Human:STRING:Combined",
            "FAST_PATH": "0",
            "CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            "JOB_TIMEOUT_SECONDS": "900",
            "JOB_MEMORY_MB": "16000",
            "PLAN_PRICE_PER_HOUR": "3.6",
            "WEB_WAIT_SECONDS": "1",
            "WEB_MAX_WAITING": "1",
            "CORS_ALLOWED_ORIGINS": ORIGIN,
        }
        self.store = ResultsFileStore(self.jobs, max_genes=20_000, max_bytes=2_000_000)
        genes = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
        self.genes = genes + [f"NOTAGENE{i:06d}" + "x" * 76 for i in range(FILLER)]
        self.genes_file = tmp / "genes.txt"
        self.genes_file.write_text("\n".join(self.genes) + "\n")
        self.callbacks: list[str] = []
        self.outcomes: dict[str, Outcome] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def callback_url(self, jobname: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/cb/{jobname}"

    def job(self, entry: str, *, stale_lease: bool = True) -> str:
        """A probe job for an entry point, with a callback and (usually) a stale lease planted in it."""
        name = f"probe-{entry}"
        config = parse_config({"jobname": name, "callback_url": self.callback_url(name), "num_nodes": 10})
        self.store.create_job(config, self.genes)
        if stale_lease:
            record = {"owner": "dead-host:1:x", "pid": 1, "heartbeat": time.time() - STALE_LEASE_AGE}
            self.store.lease_path(name).write_text(json.dumps(record))
        return name

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                world.callbacks.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the entry points ----------------------------------------------------------------------------


def run_http_and_testfn(world: World) -> None:
    """POST /api/enqueue (then the queue worker runs it) and GET /api/testfn, under `mljob serve`."""
    JobQueue(world.env["QUEUECONNECTIONSTRING"], world.queue_name).ensure()
    queued, direct = world.job(HTTP), world.job(TESTFN)
    app_dir = app_copy(world.tmp / "app", FAST_HOST_JSON)
    host = DevHostProcess(world.tmp, {**os.environ, **world.env}, app_dir)
    try:
        enqueue_url = f"{host.url}/api/enqueue"
        http = world.outcomes[HTTP] = Outcome(queued, world.store)
        http.answers["no key"] = requests.post(enqueue_url, json={"jobname": queued}, timeout=30).status_code
        answer = requests.post(enqueue_url, json={"jobname": queued}, headers={"x-functions-key": KEY}, timeout=30)
        http.answers["with key"] = answer.status_code
        wait_for(lambda: world.store.read_status(queued).is_final, 120, "the queued job to end")
        testfn = world.outcomes[TESTFN] = Outcome(direct, world.store)
        testfn_url = f"{host.url}/api/testfn?jobname={direct}"
        testfn.answers["no key"] = requests.get(testfn_url, timeout=120).status_code
        testfn.answers["with key"] = requests.get(testfn_url, headers={"x-functions-key": KEY}, timeout=120).status_code
        preflight = requests.options(
            enqueue_url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}, timeout=30
        )
        http.answers["preflight"] = (preflight.status_code, preflight.headers.get("Access-Control-Allow-Origin"))
        run_web_app(world, host.url)
    finally:
        assert host.stop() == 0
    http.answers["serve log"] = testfn.answers["serve log"] = host.log()


def run_web_app(world: World, url: str) -> None:
    """POST /api/gpz-convert-ids and /api/gpz-ml (anonymous) with the 12,028 genes.

    The queue worker is held first by a job whose run lease looks live (it goes stale after
    LEASE_STALE_SECONDS): gpz-ml's job stays queued, so WEB_WAIT_SECONDS (1) ends its wait with a 202,
    and a second gpz-ml call meanwhile is one more than WEB_MAX_WAITING (1).
    """
    converted = requests.post(f"{url}/api/gpz-convert-ids", json={"genes": world.genes, "sp_trn": "Human"}, timeout=60)
    world.outcomes[GPZ_CONVERT] = Outcome("", world.store, {"convert": converted.status_code, "body": converted.json()})
    blocker = world.job("blocker", stale_lease=False)
    record = {"owner": "live-elsewhere:1:x", "pid": 1, "heartbeat": time.time()}
    world.store.lease_path(blocker).write_text(json.dumps(record))
    JobQueue.from_settings(Settings.from_env(world.env)).send(blocker)
    request = {"name": "table", "genes": world.genes, "negatives": [], "sp_trn": "Human", "sp_res": "Human",
               "net_type": "STRING", "gsc": "Combined"}  # fmt: skip
    before = set(world.jobs.iterdir())
    first: dict[str, requests.Response] = {}
    caller = threading.Thread(
        target=lambda: first.update(answer=requests.post(f"{url}/api/gpz-ml", json=request, timeout=120))
    )
    caller.start()
    wait_for(lambda: set(world.jobs.iterdir()) - before, 60, "gpz-ml's job folder")
    second = requests.post(f"{url}/api/gpz-ml", json=request, timeout=120)
    caller.join(120)
    answer = first["answer"]
    jobname = answer.json()["jobname"]
    world.outcomes[GPZ_ML] = Outcome(jobname, world.store, {"first": answer.status_code, "second": second.status_code})
    wait_for(lambda: world.store.read_status(jobname).is_final, 120, "gpz-ml's job to end")


def run_cli(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mljob submit --run`, `mljob run` and `mljob enqueue`, in-process, settings from the environment."""
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    submitted = f"probe-{SUBMIT}"
    code = cli.main(
        ["submit", str(world.genes_file), "--name", submitted, "--callback-url", world.callback_url(submitted), "--run"]
    )
    world.outcomes[SUBMIT] = Outcome(submitted, world.store, {"exit": code})
    ran = world.job(RUN)
    world.outcomes[RUN] = Outcome(ran, world.store, {"exit": cli.main(["run", ran, "--quiet"])})
    queued = world.job(ENQUEUE, stale_lease=False)
    JobQueue(world.env["QUEUECONNECTIONSTRING"], world.queue_name).ensure()
    code = cli.main(["enqueue", queued])
    peeked = JobQueue.from_settings(Settings.from_env(world.env)).client.peek_messages(max_messages=32)
    names = [messages.decode(messages.from_wire(m.content)) for m in peeked]
    world.outcomes[ENQUEUE] = Outcome(queued, world.store, {"exit": code, "queued": names})


def run_launcher(world: World) -> None:
    """LocalLauncher.from_settings(settings): a library caller passes the Settings it read."""
    settings = Settings.from_env(world.env)
    name = world.job(LAUNCHER)
    LocalLauncher.from_settings(settings).launch(name)
    world.outcomes[LAUNCHER] = Outcome(name, world.store)


def run_module(world: World) -> None:
    """`python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH`, a real process with the environment."""
    name = world.job(MODULE)
    command = [sys.executable, "-m", "mljob.run_geneplexus", name, str(world.jobs), str(world.data_path)]
    done = subprocess.run(command, env={**os.environ, **world.env}, capture_output=True, text=True, timeout=300)
    world.outcomes[MODULE] = Outcome(name, world.store, {"exit": done.returncode, "stderr": done.stderr})


@pytest.fixture(scope="module")
def world(tmp_path_factory, data_path, azurite) -> World:
    world = World(tmp_path_factory.mktemp("settings-table"), data_path, azurite)
    with pytest.MonkeyPatch.context() as monkeypatch:
        run_http_and_testfn(world)
        run_cli(world, monkeypatch)
        run_launcher(world)
        run_module(world)
    yield world
    world.close()


# --- what each setting changes -------------------------------------------------------------------


def completed(world: World, outcome: Outcome) -> None:
    assert outcome.status() is State.COMPLETED, outcome.store.read_status(outcome.jobname).message
    assert outcome.answers.get("exit", 0) == 0, outcome.answers


def check_jobs_path(world: World, entry: str) -> None:
    outcome = world.outcomes[entry]
    if entry == GPZ_CONVERT:
        assert outcome.answers["convert"] == 200
        return
    assert (world.jobs / outcome.jobname / "status.json").is_file()
    if entry in RUNS:
        completed(world, outcome)


def check_data_path(world: World, entry: str) -> None:
    if entry == GPZ_CONVERT:  # it read the ID conversions of DATA_PATH
        assert world.outcomes[entry].answers["convert"] == 200
        return
    assert world.outcomes[entry].info()["data_path"] == str(world.data_path)


def check_input_limits(world: World, entry: str) -> None:
    """12,028 genes (> 10,000) in 1.09 MB (> 1,000,000 bytes): accepted, and run, with the raised limits only."""
    outcome = world.outcomes[entry]
    if entry == ENQUEUE:
        assert outcome.answers["exit"] == 0 and outcome.status() is State.QUEUED
        return
    if entry == GPZ_CONVERT:
        assert outcome.answers["convert"] == 200 and outcome.answers["body"]["input_count"] == len(world.genes)
        return
    completed(world, outcome)
    assert outcome.info()["input_count"] == len(world.genes)


def check_queue(world: World, entry: str) -> None:
    outcome = world.outcomes[entry]
    if entry == ENQUEUE:
        assert outcome.answers["queued"] == [outcome.jobname]  # on QUEUE_NAME in the account of the connection
    elif entry == GPZ_ML:
        completed(world, outcome)  # queued by the job service, run by the worker listening on %QUEUE_NAME%
    else:
        assert outcome.answers["with key"] == 202
        completed(world, outcome)  # the worker listens on %QUEUE_NAME% of QUEUECONNECTIONSTRING


def check_lease(world: World, entry: str) -> None:
    """A lease whose heartbeat is 30 s old is stale only when LEASE_STALE_SECONDS (5) is honoured."""
    outcome = world.outcomes[entry]
    completed(world, outcome)
    lease = outcome.store.lease_path(outcome.jobname)
    wait_for(lambda: not lease.exists(), 5, "the lease to be released just after the final status")


def check_function_key(world: World, entry: str) -> None:
    answers = world.outcomes[entry].answers
    assert answers["no key"] == 401 and answers["with key"] in (200, 202), answers


def check_job_limits(world: World, entry: str) -> None:
    """The run's limits, as its supervisor applied them, are in job.log."""
    assert "time limit 900 s, memory limit 16000 MB" in world.outcomes[entry].log()


def check_price(world: World, entry: str) -> None:
    """estimated_cost = seconds x PLAN_PRICE_PER_HOUR (3.6 $/h: a cent a second) / 3600 x the instance share."""
    info = world.outcomes[entry].info()
    assert 0 < info["estimated_cost"] <= info["total_seconds"] * 3.6 / 3600 + 1e-6


def check_web_wait(world: World, entry: str) -> None:
    """The worker was held: with WEB_WAIT_SECONDS=1 gpz-ml answered 202; the default 200 s would have seen 200."""
    outcome = world.outcomes[entry]
    assert outcome.answers["first"] == 202
    completed(world, outcome)


def check_web_max_waiting(world: World, entry: str) -> None:
    assert world.outcomes[entry].answers["second"] == 503  # one more than WEB_MAX_WAITING=1


def check_cors(world: World, entry: str) -> None:
    answers = world.outcomes[entry].answers
    assert answers["preflight"] == (204, ORIGIN) and f"CORS: allowed origins {ORIGIN}" in answers["serve log"]


def check_message_lease(world: World, entry: str) -> None:
    assert "lease 17 s" in world.outcomes[entry].answers["serve log"]


def check_data_cache(world: World, entry: str) -> None:
    assert "data cache 64 MB" in world.outcomes[entry].log()


def check_preload(world: World, entry: str) -> None:
    """The host filled a job process's warm cache when it started: the first job it ran read no file itself."""
    outcome = world.outcomes[entry]
    assert "PRELOAD Human:STRING:Combined: " in outcome.answers["serve log"]
    completed(world, outcome)
    assert outcome.info()["data_cache"]["misses"] == 0, outcome.info()["data_cache"]


def check_fast_path(world: World, entry: str) -> None:
    """FAST_PATH=0: the job ran GenePlexus's own code, as its job_info.json records."""
    outcome = world.outcomes[entry]
    completed(world, outcome)
    assert outcome.info()["fast_path"] is False


def check_callback_hosts(world: World, entry: str) -> None:
    outcome = world.outcomes[entry]
    completed(world, outcome)
    path = f"/cb/{outcome.jobname}"
    wait_for(lambda: path in world.callbacks, 10, "the callback, sent just after the final status")
    assert world.callbacks.count(path) == 1, world.callbacks


# setting: (what it changes, the entry points that must honour it)
TABLE: dict[str, tuple[Callable[[World, str], None], tuple[str, ...]]] = {
    "DATA_PATH": (check_data_path, (HTTP, TESTFN, SUBMIT, RUN, LAUNCHER, GPZ_ML, GPZ_CONVERT)),  # module: argument
    "JOBS_PATH": (check_jobs_path, (HTTP, TESTFN, SUBMIT, RUN, ENQUEUE, LAUNCHER, GPZ_ML)),  # module: argument
    "MAX_INPUT_GENES": (
        check_input_limits,
        (HTTP, TESTFN, SUBMIT, RUN, ENQUEUE, LAUNCHER, MODULE, GPZ_ML, GPZ_CONVERT),
    ),
    "MAX_INPUT_BYTES": (
        check_input_limits,
        (HTTP, TESTFN, SUBMIT, RUN, ENQUEUE, LAUNCHER, MODULE, GPZ_ML, GPZ_CONVERT),
    ),
    "QUEUECONNECTIONSTRING": (check_queue, (HTTP, ENQUEUE, GPZ_ML)),
    "QUEUE_NAME": (check_queue, (HTTP, ENQUEUE, GPZ_ML)),
    "LEASE_STALE_SECONDS": (check_lease, LEASED),
    "MLJOB_FUNCTION_KEY": (check_function_key, (HTTP, TESTFN)),
    "MESSAGE_LEASE_SECONDS": (check_message_lease, (HTTP,)),
    "DATA_CACHE_MB": (check_data_cache, (*RUNS, GPZ_ML)),
    "PRELOAD": (check_preload, (HTTP,)),  # a host's start (function_app); the CLI and the library run one job
    "FAST_PATH": (check_fast_path, (*RUNS, GPZ_ML)),
    "CALLBACK_ALLOWED_HOSTS": (check_callback_hosts, RUNS),  # a gpz-ml job has no callback_url
    "JOB_TIMEOUT_SECONDS": (check_job_limits, (*RUNS, GPZ_ML)),
    "JOB_MEMORY_MB": (check_job_limits, (*RUNS, GPZ_ML)),
    "PLAN_PRICE_PER_HOUR": (check_price, (*RUNS, GPZ_ML)),
    "WEB_WAIT_SECONDS": (check_web_wait, (GPZ_ML,)),
    "WEB_MAX_WAITING": (check_web_max_waiting, (GPZ_ML,)),
    "CORS_ALLOWED_ORIGINS": (check_cors, (HTTP,)),
}
CASES = [(setting, entry) for setting, (_, entries) in TABLE.items() for entry in entries]


def test_the_table_names_every_setting_with_a_non_default_value(world: World):
    assert sorted(TABLE) == sorted(env_names())
    defaults = Settings()
    honoured = Settings.from_env(world.env)
    for name in env_names():
        field_name = next(f for f in Settings.__dataclass_fields__.values() if f.metadata["env"] == name).name
        assert getattr(honoured, field_name) != getattr(defaults, field_name), name


@pytest.mark.parametrize(("setting", "entry"), CASES, ids=[f"{s}-{e}" for s, e in CASES])
def test_entry_point_honours_setting(world: World, setting: str, entry: str):
    check, _ = TABLE[setting]
    check(world, entry)
