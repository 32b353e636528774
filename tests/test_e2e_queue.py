"""End to end: the real function_app under `mljob serve` + Azurite, over real HTTP, with real GenePlexus.

enqueue → queue → run → completed; poison after maxDequeueCount; kill -9 mid-job; duplicates; three hosts.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from devhost_process import FAST_HOST_JSON, DevHostProcess, app_copy, wait_for

from mljob.job import parse_config
from mljob.results_store import ResultsFileStore
from mljob.status import State

pytestmark = pytest.mark.slow  # `mljob serve` subprocesses + Azurite + GenePlexus: `make test-fast` leaves these out

MAX_TRIES = FAST_HOST_JSON["extensions"]["queues"]["maxDequeueCount"]


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    """The real function_app.py beside a host.json with test-sized retry delays and polling."""
    return app_copy(tmp_path_factory.mktemp("app"), FAST_HOST_JSON)


class Setup:
    """A jobs folder, a fresh queue and the environment for hosts that serve them."""

    def __init__(self, tmp: Path, azurite, data_path: Path, app_dir: Path):
        self.tmp, self.app_dir = tmp, app_dir
        (tmp / "jobs").mkdir()
        self.store = ResultsFileStore(tmp / "jobs")
        self.queue = f"e2e-{uuid.uuid4().hex[:10]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "MLJOB_FUNCTION_KEY"},
            "DATA_PATH": str(data_path),
            "JOBS_PATH": str(self.store.root),
            "QUEUECONNECTIONSTRING": azurite.connection_string,
            "QUEUE_NAME": self.queue,
            "MESSAGE_LEASE_SECONDS": "2",
            "LEASE_STALE_SECONDS": "3",
        }
        self.client = QueueClient.from_connection_string(
            azurite.connection_string, self.queue, message_encode_policy=TextBase64EncodePolicy()
        )
        self.client.create_queue()
        self.poison = QueueClient.from_connection_string(azurite.connection_string, f"{self.queue}-poison")
        self.hosts: list[DevHostProcess] = []

    def host(self, **env: str) -> DevHostProcess:
        host = DevHostProcess(self.tmp, {**self.env, **env}, self.app_dir)
        self.hosts.append(host)
        return host

    def job(self, name: str, genes: list[str]) -> str:
        self.store.create_job(parse_config({"jobname": name}), genes)
        return name

    def poison_count(self) -> int:
        """Messages in the poison queue; 0 while the host has not created it (it does so on the first move)."""
        try:
            return self.poison.get_queue_properties().approximate_message_count
        except ResourceNotFoundError:
            return 0

    def wait_final(self, names: list[str], timeout: float = 120) -> None:
        def all_final() -> bool:
            return all(self.store.read_status(n).is_final for n in names)

        wait_for(all_final, timeout, f"jobs {names} to end")

    def runs(self, name: str) -> int:
        """How many runs of the job started (each appends 'run N started' to status history)."""
        return sum(1 for h in self.store.read_status(name).history if h.message.startswith("run "))


@pytest.fixture
def setup(tmp_path, azurite, data_path, app_dir):
    env = Setup(tmp_path, azurite, data_path, app_dir)
    yield env
    for host in env.hosts:
        if host.proc.poll() is None:
            host.kill()


def test_enqueue_over_http_runs_jobs_to_completed(setup, demo_genes):
    host = setup.host()
    for name in ("legacy-call", "jobname-call", "webapp-json", "webapp-bare"):
        setup.job(name, demo_genes)
    # the predecessor's web app: requests.post(url, data=json.dumps(...)) with no Content-Type header
    legacy = requests.post(f"{host.url}/api/enqueue", data=json.dumps({"jobnames": ["legacy-call"]}), timeout=30)
    assert legacy.status_code == 202, legacy.text
    assert "Content-Type" not in legacy.request.headers
    modern = requests.post(f"{host.url}/api/enqueue", json={"jobname": "jobname-call"}, timeout=30)
    assert modern.status_code == 202 and modern.json()["accepted"] == ["jobname-call"]
    # a web app putting messages on the queue itself with a plain azure-storage-queue client
    setup.client.send_message(json.dumps({"jobname": "webapp-json"}))
    setup.client.send_message("webapp-bare")
    names = ["legacy-call", "jobname-call", "webapp-json", "webapp-bare"]
    setup.wait_final(names)
    for name in names:
        answer = requests.get(f"{host.url}/api/jobs/{name}", timeout=30).json()
        assert answer["status"] == "completed" and answer["code"] == 200, answer
        assert "top_genes.json" in answer["results"] and setup.runs(name) == 1
    again = requests.post(f"{host.url}/api/enqueue", json={"jobname": "legacy-call"}, timeout=30)
    assert again.status_code == 409 and "error" in again.json()
    unknown = requests.post(f"{host.url}/api/enqueue", json={"jobname": "no-such-job"}, timeout=30)
    assert unknown.status_code == 404
    assert requests.get(f"{host.url}/api/health", timeout=30).json()["ok"] is True


def test_a_job_failing_every_try_ends_failed_in_poison(setup, demo_genes, data_path, tmp_path):
    broken = tmp_path / "broken-data"
    shutil.copytree(data_path, broken)
    (broken / "Data__Human__SixSpeciesN2V__STRING.npy").write_bytes(b"garbage")
    host = setup.host(DATA_PATH=str(broken))
    setup.job("always-fails", demo_genes)
    assert requests.post(f"{host.url}/api/enqueue", json={"jobname": "always-fails"}, timeout=30).status_code == 202
    setup.wait_final(["always-fails"], timeout=180)
    status = setup.store.read_status("always-fails")
    assert status.status is State.FAILED and f"failed on each of {MAX_TRIES} tries" in status.message
    assert status.attempt == MAX_TRIES and not setup.store.has_results("always-fails")
    wait_for(lambda: setup.poison_count() == 1, 60, "the poison message")
    [message] = setup.poison.receive_messages()
    assert json.loads(base64.b64decode(message.content)) == {"jobname": "always-fails"}


def test_a_killed_host_loses_no_job(tmp_path, azurite, slow_data, app_dir, demo_genes):
    setup = Setup(tmp_path, azurite, slow_data, app_dir)
    first = setup.host()
    setup.job("crash-job", demo_genes)
    assert requests.post(f"{first.url}/api/enqueue", json={"jobname": "crash-job"}, timeout=30).status_code == 202

    def fitting() -> bool:
        return setup.store.read_status("crash-job").progress.step in ("fitting", "predicting")

    wait_for(fitting, 60, "the job to be mid-run")
    first.kill()
    assert setup.store.read_status("crash-job").status is State.RUNNING
    second = setup.host()
    try:
        setup.wait_final(["crash-job"], timeout=120)
        status = setup.store.read_status("crash-job")
        assert status.status is State.COMPLETED and status.attempt == 2, status.message
        folder = setup.store.job_path("crash-job")
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
        info = setup.store.read_job_info("crash-job")
        assert set(info["result_files"]) == set(setup.store.list_results("crash-job"))
        assert setup.store.read_result_json("crash-job", "top_genes.json")["results"]["Human-Combined"]
    finally:
        second.kill()


def test_duplicate_deliveries_run_a_job_once(setup, demo_genes):
    setup.job("twice-job", demo_genes)
    setup.job("twin-job", demo_genes)
    for _ in range(2):
        setup.client.send_message(json.dumps({"jobname": "twice-job"}))
    setup.host()
    setup.wait_final(["twice-job"])
    # two hosts given the same job at the same moment
    setup.host()
    for _ in range(2):
        setup.client.send_message("twin-job")
    setup.wait_final(["twin-job"])
    wait_for(lambda: setup.client.get_queue_properties().approximate_message_count == 0, 30, "the queue to drain")
    for name in ("twice-job", "twin-job"):
        status = setup.store.read_status(name)
        assert status.status is State.COMPLETED and status.attempt == 1 and setup.runs(name) == 1


def test_three_hosts_drain_thirty_jobs_each_exactly_once(setup, demo_genes):
    names = [setup.job(f"scale-{i:02d}", demo_genes) for i in range(30)]
    hosts = [setup.host() for _ in range(3)]
    for batch in (names[:10], names[10:]):
        answer = requests.post(f"{hosts[0].url}/api/enqueue", json={"jobnames": batch}, timeout=30)
        assert answer.status_code == 202, answer.text
    setup.wait_final(names, timeout=240)
    for name in names:
        status = setup.store.read_status(name)
        assert status.status is State.COMPLETED and status.attempt == 1 and setup.runs(name) == 1, name
    busy = [h for h in hosts if "completed" in h.log()]
    assert len(busy) >= 2, "the work was not shared"
    wait_for(lambda: setup.client.get_queue_properties().approximate_message_count == 0, 30, "the queue to drain")
