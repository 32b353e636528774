"""Job control with real processes: the real function_app under `mljob serve` + Azurite, real job processes.

Time limit, memory limit, crashes of the job process (SIGKILL, SIGSEGV), cancel (queued, running, from
another host), and cancel or timeout racing with completion. Jobs are made to hang, allocate memory or
wait for a signal by the test-only hooks of tests/job_process_hooks (MLJOB_FAULT), in the job processes.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from devhost_process import FAST_HOST_JSON, DevHostProcess, app_copy, wait_for

from mljob.job import parse_config
from mljob.launcher import LocalLauncher
from mljob.lifecycle import cancel_job
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

pytestmark = pytest.mark.slow

HOOKS = Path(__file__).resolve().parent / "job_process_hooks"
MAX_TRIES = FAST_HOST_JSON["extensions"]["queues"]["maxDequeueCount"]


class _Callbacks(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        _Callbacks.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def callbacks():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callbacks)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def callbacks_for(jobname: str) -> list[str]:
    """The callbacks received for a job, once the first has come (it is sent just after the final status)."""

    def received() -> list[str]:
        return [body["status"] for body in _Callbacks.bodies if body["jobname"] == jobname]

    wait_for(lambda: received() != [], 10, f"the callback of {jobname}")
    return received()


class Cluster:
    """A jobs folder and a queue, and `mljob serve` hosts over them (each with its own settings)."""

    def __init__(self, tmp: Path, azurite, data_path: Path, callbacks: str) -> None:
        self.tmp, self.callback_url = tmp, callbacks
        (tmp / "jobs").mkdir()
        self.store = ResultsFileStore(tmp / "jobs")
        self.queue = JobQueue(azurite.connection_string, f"control-{uuid.uuid4().hex[:10]}")
        self.queue.ensure()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("MLJOB_FUNCTION_KEY", "MLJOB_FAULT")},
            "DATA_PATH": str(data_path),
            "JOBS_PATH": str(self.store.root),
            "QUEUECONNECTIONSTRING": azurite.connection_string,
            "QUEUE_NAME": self.queue.name,
            "MESSAGE_LEASE_SECONDS": "5",
            "LEASE_STALE_SECONDS": "5",
            "CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
        }
        self.hosts: list[DevHostProcess] = []
        self.app = app_copy(tmp / "app", FAST_HOST_JSON)

    def host(self, **env: str) -> DevHostProcess:
        host = DevHostProcess(self.tmp, {**self.env, **env}, self.app)
        self.hosts.append(host)
        return host

    def job(self, name: str, genes: list[str]) -> str:
        config = parse_config({"jobname": name, "callback_url": f"{self.callback_url}/{name}", "num_nodes": 10})
        self.store.create_job(config, genes)
        return name

    def enqueue(self, host: DevHostProcess, name: str, **body: Any) -> requests.Response:
        return requests.post(f"{host.url}/api/enqueue", json={"jobname": name, **body}, timeout=30)

    def status(self, name: str):
        return self.store.read_status(name)

    def wait_final(self, name: str, timeout: float = 120) -> None:
        wait_for(lambda: self.status(name).is_final, timeout, f"job {name} to end")

    def job_process(self, name: str) -> int:
        """The pid of the job process running `name` (from its run lease), once it is known."""
        pids: list[int] = []

        def known() -> bool:
            try:
                record = json.loads(self.store.lease_path(name).read_text())
            except (OSError, ValueError):
                return False
            if record.get("process"):
                pids.append(record["process"])
            return bool(pids)

        wait_for(known, 60, f"the job process of {name}")
        return pids[0]

    def poison_names(self) -> list[str]:
        from mljob import messages

        try:
            peeked = self.queue.poison_client.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [messages.decode(messages.from_wire(m.content)) for m in peeked]

    def close(self) -> None:
        for host in self.hosts:
            if host.proc.poll() is None:
                host.kill()


@pytest.fixture
def cluster(tmp_path, azurite, data_path, callbacks):
    world = Cluster(tmp_path, azurite, data_path, callbacks)
    yield world
    world.close()


def history(cluster: Cluster, name: str) -> list[str]:
    return [h.status.value for h in cluster.status(name).history]


def final_states(cluster: Cluster, name: str) -> list[str]:
    return [s for s in history(cluster, name) if s in ("completed", "failed", "timeout", "cancelled")]


def assert_no_partial_results(cluster: Cluster, name: str) -> None:
    folder = cluster.store.job_path(name)
    assert not (folder / "results").exists() and not (folder / "job_info.json").exists()
    assert not list(folder.glob(".staging-*")) and not list(folder.glob(".*.tmp"))


# --- time limit -----------------------------------------------------------------------------------------


def test_a_run_past_the_time_limit_ends_timeout_and_the_host_runs_the_next_job(cluster, demo_genes):
    host = cluster.host(JOB_TIMEOUT_SECONDS="2", MLJOB_FAULT="fitting|hang||slow-job")
    slow, quick = cluster.job("slow-job", demo_genes), cluster.job("quick-job", demo_genes)
    assert cluster.enqueue(host, slow).status_code == 202
    cluster.wait_final(slow)
    status = cluster.status(slow)
    assert (status.status, status.code) == (State.TIMEOUT, 504)
    assert "JOB_TIMEOUT_SECONDS (2 s)" in status.message and "stopped after" in status.message
    ran = (status.finished - status.started).total_seconds()
    print(f"\njob control figures: a run with a 2 s limit ended `timeout` {ran:.2f} s after it started")
    assert_no_partial_results(cluster, slow)
    lease = cluster.store.lease_path(slow)
    wait_for(lambda: not lease.exists(), 5, "the lease to be released just after the final status")
    assert final_states(cluster, slow) == ["timeout"] and callbacks_for(slow) == ["timeout"]
    assert cluster.enqueue(host, quick).status_code == 202  # the same host, a fresh job process
    cluster.wait_final(quick)
    assert cluster.status(quick).status is State.COMPLETED
    assert cluster.poison_names() == []  # a timeout is final: its message was completed, not retried


# --- memory limit ---------------------------------------------------------------------------------------


def test_a_job_over_the_memory_limit_fails_with_the_reason_and_the_host_survives(cluster, demo_genes):
    host = cluster.host(JOB_MEMORY_MB="900", MLJOB_FAULT="fitting|allocate|3000|greedy-job")
    greedy, next_job = cluster.job("greedy-job", demo_genes), cluster.job("next-job", demo_genes)
    assert cluster.enqueue(host, greedy).status_code == 202
    cluster.wait_final(greedy)
    status = cluster.status(greedy)
    assert status.status is State.FAILED and "ran out of memory" in status.message
    assert "JOB_MEMORY_MB is 900 MB" in status.message and "the most seen was" in status.message
    print(f"\njob control figures: memory: {status.message}")
    assert "larger plan" in status.message or "more memory" in status.message
    assert status.attempt == 1 and final_states(cluster, greedy) == ["failed"]  # not retried
    assert_no_partial_results(cluster, greedy)
    assert requests.get(f"{host.url}/api/health", timeout=10).status_code == 200  # the host survives
    assert cluster.enqueue(host, next_job).status_code == 202
    cluster.wait_final(next_job)
    assert cluster.status(next_job).status is State.COMPLETED


# --- crashes of the job process -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_crashed_job_process_is_retried_and_the_job_completes(cluster, demo_genes, tmp_path, sig):
    once = tmp_path / "fired"
    name = f"crash-{sig.name.lower()}"
    host = cluster.host(MLJOB_FAULT=f"fitting|hang-once|{once}|{name}")
    cluster.job(name, demo_genes)
    after = cluster.job(f"after-{name}", demo_genes)
    assert cluster.enqueue(host, name).status_code == 202
    wait_for(once.exists, 60, "the job to hang")
    os.kill(cluster.job_process(name), sig)
    cluster.wait_final(name)
    status = cluster.status(name)
    assert status.status is State.COMPLETED and status.attempt == 2, status.message
    tried = [h.message for h in status.history if h.status is State.QUEUED and "try 1 failed" in h.message]
    assert tried and f"died of {sig.name}" in tried[0]
    assert f"died of {sig.name}" in cluster.store.read_log(name)
    assert final_states(cluster, name) == ["completed"] and callbacks_for(name) == ["completed"]
    assert cluster.enqueue(host, after).status_code == 202  # the host survived; the next job runs
    cluster.wait_final(after)
    assert cluster.status(after).status is State.COMPLETED


def test_a_job_process_crashing_on_every_try_goes_to_poison(cluster, demo_genes):
    host = cluster.host(MLJOB_FAULT="fitting|hang||doomed-job")
    name = cluster.job("doomed-job", demo_genes)
    assert cluster.enqueue(host, name).status_code == 202
    for attempt in range(1, MAX_TRIES + 1):

        def hanging(attempt: int = attempt) -> bool:
            status = cluster.status(name)
            return status.attempt == attempt and status.progress.step == "fitting"

        wait_for(hanging, 60, f"try {attempt} to hang")
        os.kill(cluster.job_process(name), signal.SIGSEGV)
    cluster.wait_final(name)
    status = cluster.status(name)
    assert status.status is State.FAILED and f"failed on each of {MAX_TRIES} tries" in status.message
    assert "died of SIGSEGV" in status.message
    wait_for(lambda: cluster.poison_names() == [name], 30, "the message in the poison queue")
    assert callbacks_for(name) == ["failed"]


# --- cancel ----------------------------------------------------------------------------------------------


def test_a_cancelled_queued_job_is_never_run(cluster, demo_genes):
    name = cluster.job("queued-job", demo_genes)
    from mljob import enqueue

    enqueue.enqueue_jobs(cluster.store, cluster.queue, [name])  # queued; no host is running yet
    settings = Settings(jobs_path=cluster.store.root, callback_allowed_hosts="127.0.0.1")
    status = cancel_job(cluster.store, name, settings)
    assert (status.status, status.code) == (State.CANCELLED, 410) and "before it ran" in status.message
    assert cancel_job(cluster.store, name, settings) == status  # twice: the same answer
    host = cluster.host()
    wait_for(lambda: "skipped: job queued-job is cancelled already" in host.log(), 60, "the message to come")
    assert history(cluster, name) == ["created", "queued", "cancelled"]  # it never ran
    assert callbacks_for(name) == ["cancelled"]
    again = cluster.enqueue(host, name, rerun=True)  # a cancelled job can run again; attempts keep counting
    assert again.status_code == 202
    cluster.wait_final(name)
    assert cluster.status(name).status is State.COMPLETED and cluster.status(name).attempt == 1


@pytest.mark.parametrize("where", ["same-host", "other-host"])
def test_cancel_a_running_job_over_http(cluster, demo_genes, where):
    name = f"running-{where}"
    hosts = [cluster.host(MLJOB_FAULT=f"fitting|hang||{name}") for _ in range(2 if where == "other-host" else 1)]
    cluster.job(name, demo_genes)
    assert cluster.enqueue(hosts[0], name).status_code == 202
    wait_for(lambda: cluster.status(name).progress.step == "fitting", 60, "the job to run")
    owner = json.loads(cluster.store.lease_path(name).read_text())["pid"]  # the host whose worker runs it
    other = next(h for h in hosts if h.proc.pid != owner) if where == "other-host" else hosts[0]
    started = time.monotonic()
    answer = requests.post(f"{other.url}/api/jobs/{name}/cancel", timeout=60)
    print(f"\njob control figures: cancel of a running job ({where}) answered in {time.monotonic() - started:.2f} s")
    assert answer.status_code == 200, answer.text  # cancelled within the 15 s a cancel request waits
    body = answer.json()
    assert (body["status"], body["code"]) == ("cancelled", 410) and "cancelled by request" in body["message"]
    assert_no_partial_results(cluster, name)
    assert final_states(cluster, name) == ["cancelled"] and callbacks_for(name) == ["cancelled"]
    again = requests.post(f"{other.url}/api/jobs/{name}/cancel", timeout=60)
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")  # the same answer


def test_cancel_answers_for_finished_and_unknown_jobs(cluster, demo_genes):
    host = cluster.host()
    name = cluster.job("done-job", demo_genes)
    assert cluster.enqueue(host, name).status_code == 202
    cluster.wait_final(name)
    before = cluster.status(name)
    answer = requests.post(f"{host.url}/api/jobs/{name}/cancel", timeout=30)
    assert answer.status_code == 409 and "is completed" in answer.json()["error"]
    assert cluster.status(name) == before
    assert requests.post(f"{host.url}/api/jobs/no-such-job/cancel", timeout=30).status_code == 404


# --- races with completion ---------------------------------------------------------------------------------


def one_final_state_and_whole_or_no_results(store: ResultsFileStore, name: str, reference: set[str]) -> str:
    states = [h.status.value for h in store.read_status(name).history]
    finals = [s for s in states if s in ("completed", "failed", "timeout", "cancelled")]
    assert len(finals) == 1, states
    results = set(store.list_results(name))
    assert results == (reference if finals[0] == "completed" else set()), (finals, results)
    assert not store.cancel_requested(name) and not list(store.job_path(name).glob(".staging-*"))
    return finals[0]


def test_cancel_racing_with_completion_ends_in_exactly_one_final_state(tmp_path, data_path, demo_genes, fault):
    """Cancels sent at every moment of a run (in this process): one final state, results/ whole or absent."""
    store = ResultsFileStore(tmp_path)
    settings = Settings(data_path=data_path, jobs_path=tmp_path, data_cache_mb=64)
    launcher = LocalLauncher(store, data_path, settings)
    store.create_job(parse_config({"jobname": "reference"}), demo_genes)
    started = time.monotonic()
    launcher.launch("reference")
    run = 2.0 + time.monotonic() - started  # a run's length on this machine now, with the rest below
    reference = set(store.list_results("reference"))
    fault("similarities", "sleep", "2")  # every job rests 2 s before its similarities step
    seen = set()
    for i, share in enumerate([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 2.0]):
        delay = share * run
        name = f"race-{i}"
        store.create_job(parse_config({"jobname": name}), demo_genes)
        runner = threading.Thread(target=launcher.launch, args=(name,))
        runner.start()
        wait_for(lambda name=name: store.read_status(name).status is not State.CREATED, 30, "the run to start")
        time.sleep(delay)
        try:
            cancel_job(store, name, settings)
        except Exception as exc:  # it completed first: 409
            assert "is completed" in str(exc)
        runner.join(60)
        seen.add(one_final_state_and_whole_or_no_results(store, name, reference))
    assert seen == {"cancelled", "completed"}, seen  # both ends of the race happened


def test_timeout_racing_with_completion_ends_in_exactly_one_final_state(tmp_path, data_path, demo_genes, fault):
    """Runs of about the time limit (1 s): one final state, results/ whole or absent, whichever wins."""
    store = ResultsFileStore(tmp_path)
    settings = Settings(data_path=data_path, jobs_path=tmp_path, data_cache_mb=64)
    for name in ("cold", "reference"):  # the second run is warm: its length is what the rests below add to
        store.create_job(parse_config({"jobname": name}), demo_genes)
        started = time.monotonic()
        LocalLauncher(store, data_path, settings).launch(name)
        work = time.monotonic() - started
    reference = set(store.list_results("reference"))
    tight = Settings(data_path=data_path, jobs_path=tmp_path, data_cache_mb=64, job_timeout_seconds=1)
    seen = set()
    for i, past in enumerate([-0.8, -0.5, -0.3, -0.1, 0.2, 0.5]):  # seconds past the limit, without the rest
        fault("similarities", "sleep", f"{max(0.0, 1.0 - work + past):.2f}")
        name = f"tight-{i}"
        store.create_job(parse_config({"jobname": name}), demo_genes)
        LocalLauncher(store, data_path, tight).launch(name)
        seen.add(one_final_state_and_whole_or_no_results(store, name, reference))
    assert seen == {"completed", "timeout"}, seen
