"""The web app's routes over real HTTP: the real function_app under `mljob serve` + Azurite + real GenePlexus.

gpz-convert-ids and gpz-ml answer the reference's contract for the three networks, the four gene-set
collections, Human -> Mouse and negatives; every gpz-ml call is a persisted, queued job; the waiting rules
(202, a failed job's status, WEB_MAX_WAITING); gzip.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import uuid
from pathlib import Path

import pytest
import requests
from devhost_process import FAST_HOST_JSON, DevHostProcess, app_copy, wait_for
from webapp_contract import check_convert, check_ml, equals_result_files

from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore

pytestmark = pytest.mark.slow
FRONT_END = "http://localhost:5173"  # Vite's dev server


class Host:
    """One `mljob serve` of the real app over a jobs folder and a queue of its own."""

    def __init__(self, tmp: Path, azurite, data_path: Path, **env: str) -> None:
        self.jobs = tmp / "jobs"
        self.jobs.mkdir()
        self.store = ResultsFileStore(self.jobs)
        queue = f"web-{uuid.uuid4().hex[:10]}"
        JobQueue(azurite.connection_string, queue).ensure()
        environment = {
            **{k: v for k, v in os.environ.items() if k not in ("MLJOB_FUNCTION_KEY", "CORS_ALLOWED_ORIGINS")},
            "DATA_PATH": str(data_path),
            "JOBS_PATH": str(self.jobs),
            "QUEUECONNECTIONSTRING": azurite.connection_string,
            "QUEUE_NAME": queue,
            "MESSAGE_LEASE_SECONDS": "5",
            "LEASE_STALE_SECONDS": "5",
            **env,
        }
        self.process = DevHostProcess(tmp, environment, app_copy(tmp / "app", FAST_HOST_JSON))
        self.url = self.process.url + "/api"

    def ml(self, headers: dict[str, str] | None = None, stream: bool = False, **fields) -> requests.Response:
        """POST /api/gpz-ml as the web app does (Human, STRING, Combined unless `fields` say otherwise)."""
        request = {"name": "web test", "negatives": [], "sp_trn": "Human", "sp_res": "Human", "net_type": "STRING"}
        request.update({"gsc": "Combined", **fields})
        return requests.post(f"{self.url}/gpz-ml", json=request, headers=headers, stream=stream, timeout=180)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def host(tmp_path_factory, azurite, data_path):
    """Default web settings (WEB_WAIT_SECONDS 200) on the small synthetic data; the front end's dev origin allowed."""
    server = Host(tmp_path_factory.mktemp("web"), azurite, data_path, CORS_ALLOWED_ORIGINS=FRONT_END)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_host(tmp_path_factory, azurite, slow_data):
    """Jobs slower than WEB_WAIT_SECONDS (1 s); at most 2 calls waiting at once."""
    server = Host(tmp_path_factory.mktemp("web-slow"), azurite, slow_data, WEB_WAIT_SECONDS="1", WEB_MAX_WAITING="2")
    yield server
    server.stop()


# --- gpz-convert-ids ----------------------------------------------------------------------------------------


def test_convert_ids_over_http(host, demo_genes):
    answer = requests.post(f"{host.url}/gpz-convert-ids", json={"genes": demo_genes, "sp_trn": "Human"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    check_convert(answer.json())
    assert answer.json()["input_count"] == len(demo_genes)
    bad = requests.post(f"{host.url}/gpz-convert-ids", data=b"{", timeout=60)
    assert bad.status_code == 400 and "not JSON" in bad.json()["message"]
    assert list(host.jobs.iterdir()) == []  # no job


def test_the_browser_may_call_from_an_allowed_origin_only(host, demo_genes):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    for route in ("gpz-convert-ids", "gpz-ml"):
        allowed = requests.options(f"{host.url}/{route}", headers={"Origin": FRONT_END, **preflight}, timeout=30)
        assert allowed.status_code == 204 and allowed.headers["Access-Control-Allow-Origin"] == FRONT_END
        assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
        other = requests.options(
            f"{host.url}/{route}", headers={"Origin": "https://evil.example", **preflight}, timeout=30
        )
        assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers
    request = {"genes": demo_genes, "sp_trn": "Human"}
    answer = requests.post(f"{host.url}/gpz-convert-ids", json=request, headers={"Origin": FRONT_END}, timeout=60)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == FRONT_END
    elsewhere = requests.post(
        f"{host.url}/gpz-convert-ids", json=request, headers={"Origin": "https://evil.example"}, timeout=60
    )
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


# --- gpz-ml: the contract ---------------------------------------------------------------------------------------

CASES = {
    "string-go": {"net_type": "STRING", "gsc": "GO"},
    "biogrid-monarch": {"net_type": "BioGRID", "gsc": "Monarch"},
    "imp-mondo": {"net_type": "IMP", "gsc": "Mondo"},
    "string-combined": {"net_type": "STRING", "gsc": "Combined"},
    "human-to-mouse": {"net_type": "IMP", "gsc": "GO", "sp_res": "Mouse"},
    "negatives": {"net_type": "STRING", "gsc": "Combined", "negatives": ["HSYN300", "HSYN299", "HSYN298"]},
}


@pytest.mark.parametrize("case", list(CASES))
def test_ml_answers_the_contract_from_a_persisted_queued_job(host, demo_genes, case):
    answer = host.ml(genes=demo_genes, **CASES[case])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    check_ml(body, CASES[case]["net_type"])
    jobname = body["jobname"]
    assert jobname.startswith("web-test-") and answer.headers["Location"] == f"/api/jobs/{jobname}"
    equals_result_files(body, host.jobs / jobname)
    status = requests.get(f"{host.url}/jobs/{jobname}", timeout=30).json()  # the job persists
    assert status["status"] == "completed" and "report.html" in status["results"]
    assert [h["status"] for h in status["history"]][:3] == ["created", "queued", "running"]  # through the queue
    config = json.loads((host.jobs / jobname / "job_config.json").read_text())
    assert (config["features"], config["gsc_trn"], config["gsc_res"]) == (
        "SixSpeciesN2V",
        CASES[case]["gsc"],
        [CASES[case]["gsc"]],
    )
    negatives = CASES[case].get("negatives")
    assert (host.jobs / jobname / "input_negatives.txt").is_file() is bool(negatives)


def test_gzip_when_accepted_and_the_same_json(host, demo_genes):
    plain = host.ml(genes=demo_genes, gsc="GO", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    zipped = host.ml(genes=demo_genes, gsc="GO", headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip" and len(raw) < len(plain.content)
    first, second = json.loads(plain.content), json.loads(gzip.decompress(raw))
    assert {k: v for k, v in first.items() if k != "jobname"} == {k: v for k, v in second.items() if k != "jobname"}


def test_a_failing_job_answers_its_status_and_reason(host):
    answer = host.ml(genes=[f"NOPE{i}" for i in range(20)])
    assert answer.status_code == 500, answer.text
    body = answer.json()
    assert set(body) == {"message", "jobname"} and "too few of your genes" in body["message"]
    assert json.loads((host.jobs / body["jobname"] / "status.json").read_text())["status"] == "failed"


def test_bad_requests_are_refused_before_a_job_exists(host, demo_genes):
    before = set(host.jobs.iterdir())
    answer = host.ml(genes=demo_genes, net_type="GIANT-TN")
    assert answer.status_code == 400 and "net_type: 'GIANT-TN' is not allowed" in answer.json()["message"]
    big = requests.post(f"{host.url}/gpz-ml", data=b'{"genes": ["' + b"A" * 1_000_001 + b'"]}', timeout=30)
    assert big.status_code == 413  # refused before it is parsed (by mljob serve's own body limit, or ours)
    assert set(host.jobs.iterdir()) == before


# --- gpz-ml: waiting ------------------------------------------------------------------------------------------


def test_a_job_slower_than_the_wait_gives_202_then_completes(slow_host, demo_genes):
    answer = slow_host.ml(genes=demo_genes)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"jobname", "status_url"} and body["status_url"] == f"/api/jobs/{body['jobname']}"

    def completed() -> bool:
        return requests.get(slow_host.process.url + body["status_url"], timeout=30).json()["status"] == "completed"

    wait_for(completed, 120, "the job to complete after its 202")


def test_one_call_more_than_web_max_waiting_gets_503(slow_host, demo_genes):
    answers: list[requests.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def call() -> None:
        start.wait()
        answer = slow_host.ml(genes=demo_genes)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    codes = sorted(a.status_code for a in answers)
    assert codes.count(503) == 1, codes
    [refused] = [a for a in answers if a.status_code == 503]
    assert int(refused.headers["Retry-After"]) > 0 and "try again" in refused.json()["message"]
    names = [a.json()["jobname"] for a in answers if a.status_code != 503]
    assert len(names) == 2 and len(list(slow_host.jobs.iterdir())) >= 2  # the refused call made no job
    wait_for(lambda: all(slow_host.store.read_status(n).is_final for n in names), 180, "the accepted jobs to end")
