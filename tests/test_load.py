"""A bounded load test (loopback only; it stops by itself): concurrent clients enqueue jobs over HTTP at
`mljob serve` (+ Azurite) while the same hosts run them; every accepted job must complete exactly once.

CI size by default (MLJOB_LOAD_REQUESTS, default 100, 20 clients, 2 hosts); MLJOB_LOAD_FULL=1 sends 1,000.
The figures are printed (run with -s) and written to $MLJOB_LOAD_REPORT when that is set.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from devhost_process import DevHostProcess, app_copy, wait_for

from mljob.job import parse_config
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

pytestmark = pytest.mark.slow  # `make test-fast` leaves the load test out

FULL = os.environ.get("MLJOB_LOAD_FULL", "") not in ("", "0")
REQUESTS = 1000 if FULL else int(os.environ.get("MLJOB_LOAD_REQUESTS", "100"))
CLIENTS = 20
HOSTS = 2
DRAIN_SECONDS = 1800 if FULL else 150
HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {
            "batchSize": 2,
            "newBatchThreshold": 0,
            "maxDequeueCount": 5,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64",
        }
    },
}


def test_enqueue_under_load(tmp_path, azurite, data_path, demo_genes):
    (tmp_path / "jobs").mkdir()
    store = ResultsFileStore(tmp_path / "jobs")
    app = app_copy(tmp_path / "app", HOST_JSON)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLJOB_FUNCTION_KEY"},
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(store.root),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": f"load-{uuid.uuid4().hex[:8]}",
        "MESSAGE_LEASE_SECONDS": "30",
        "LEASE_STALE_SECONDS": "30",
    }
    JobQueue.from_settings(Settings.from_env(env)).ensure()
    names = [f"load-{i:05d}" for i in range(REQUESTS)]
    for name in names:  # small, quick jobs: the load is on the HTTP/queue path, the hosts still run each one
        store.create_job(parse_config({"jobname": name, "cross_validate": False, "num_nodes": 10}), demo_genes)
    hosts = [DevHostProcess(tmp_path, env, app) for _ in range(HOSTS)]
    latencies: list[float] = []
    errors: list[str] = []
    accepted: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        session = requests.Session()
        for i, name in enumerate(names[k::CLIENTS]):
            url = f"{hosts[(k + i) % HOSTS].url}/api/enqueue"
            started = time.perf_counter()
            try:
                response = session.post(url, json={"jobname": name}, timeout=30)
                problem = (
                    None if response.status_code == 202 else f"{name}: HTTP {response.status_code} {response.text}"
                )
            except requests.RequestException as exc:
                problem = f"{name}: {type(exc).__name__}"
            with lock:
                latencies.append(time.perf_counter() - started)
                if problem:
                    errors.append(problem)
                else:
                    accepted.append(name)

    try:
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        send_seconds = time.perf_counter() - started
        assert not any(t.is_alive() for t in threads), "clients did not finish"

        def drained() -> bool:
            return all(store.read_status(n).is_final for n in accepted)

        wait_for(drained, DRAIN_SECONDS, "every accepted job to end")
        drain_seconds = time.perf_counter() - started
    finally:
        for host in hosts:
            host.stop()

    latencies.sort()
    figures = {
        "requests": len(latencies),
        "clients": CLIENTS,
        "hosts": HOSTS,
        "errors": len(errors),
        "accepted": len(accepted),
        "requests_per_second": round(len(latencies) / send_seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "seconds_to_send": round(send_seconds, 1),
        "seconds_until_all_completed": round(drain_seconds, 1),
        "completed": sum(store.read_status(n).status is State.COMPLETED for n in accepted),
        "completed_twice": sum(
            sum(h.status is State.COMPLETED for h in store.read_status(n).history) > 1 for n in accepted
        ),
        "runs_started": sum(
            sum(1 for h in store.read_status(n).history if h.message.startswith("run ")) for n in accepted
        ),
    }
    print("\nload figures: " + json.dumps(figures))
    if os.environ.get("MLJOB_LOAD_REPORT"):
        Path(os.environ["MLJOB_LOAD_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert errors == [], errors[:5]
    assert sorted(accepted) == names
    assert figures["completed"] == REQUESTS and figures["completed_twice"] == 0
    assert figures["runs_started"] == REQUESTS
