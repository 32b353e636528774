"""gpz-convert-ids in a job process (mljob.supervisor.convert_ids): the host never loads the ML stack; a
conversion does not wait for a running job; its own limits (places, wait, time, memory, crashes).

Real job processes, the test-only fault hooks of tests/job_process_hooks (MLJOB_FAULT), and over HTTP a real
`mljob serve` with Azurite.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from devhost_process import DevHostProcess, wait_for
from webapp_contract import check_convert

from mljob import supervisor, webapp
from mljob.errors import JobProcessDied, RunOutOfMemory, RunTimedOut
from mljob.job import new_jobname, parse_config
from mljob.queue import JobQueue
from mljob.settings import Settings
from mljob.status import State

ML_STACK = ("/numpy/", "/pandas/", "/scipy/", "/sklearn/")


@pytest.fixture(autouse=True)
def _fresh_job_processes():
    supervisor.shutdown()
    yield
    supervisor.shutdown()


def ml_libraries(pid: int) -> set[str]:
    """The ML stack's packages that have a shared object mapped into the process `pid`."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {part.strip("/") for line in maps.splitlines() if ".so" in line for part in ML_STACK if part in line}


def children(pid: int) -> list[int]:
    """The child processes of `pid` (started from any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def job_processes() -> list[int]:
    """This process's job processes."""
    return [pid for pid in children(os.getpid()) if b"mljob.job_process" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def genes_request(genes: list[str]) -> bytes:
    return json.dumps({"genes": genes, "sp_trn": "Human"}).encode()


# --- over HTTP: the host process ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_host_never_loads_the_ml_stack(tmp_path, azurite, data_path, demo_genes):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    queue = f"convert-{uuid.uuid4().hex[:10]}"
    JobQueue(azurite.connection_string, queue).ensure()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("MLJOB_FUNCTION_KEY", "CORS_ALLOWED_ORIGINS")},
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(jobs),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": queue,
    }
    host = DevHostProcess(tmp_path, environment)
    try:
        url = f"{host.url}/api"
        converted = requests.post(f"{url}/gpz-convert-ids", json={"genes": demo_genes, "sp_trn": "Human"}, timeout=120)
        assert converted.status_code == 200, converted.text
        check_convert(converted.json())
        request = {"name": "maps", "genes": demo_genes, "negatives": [], "sp_trn": "Human", "sp_res": "Human",
                   "net_type": "STRING", "gsc": "Combined"}  # fmt: skip
        answer = requests.post(f"{url}/gpz-ml", json=request, timeout=180)
        assert answer.status_code == 200, answer.text[:300]
        assert ml_libraries(host.proc.pid) == set(), "the host process loaded the ML stack"
        job_processes = children(host.proc.pid)
        assert job_processes, "the host keeps its job processes"
        assert all(ml_libraries(pid) == {"numpy", "pandas", "scipy", "sklearn"} for pid in job_processes)
    finally:
        host.stop()


# --- in this process: places, waits and limits -------------------------------------------------------------


@pytest.fixture
def settings(data_path: Path, jobs_path: Path) -> Settings:
    return Settings(data_path=data_path, jobs_path=jobs_path)


def test_a_conversion_does_not_wait_for_a_running_job(fault, store, settings, demo_genes):
    name = new_jobname("long")
    store.create_job(parse_config({"jobname": name}), demo_genes)
    fault("fitting", "hang", "", name)
    supervisor.prestart(wait=True)
    ended: list[BaseException | str] = []

    def job() -> None:
        try:
            ended.append(supervisor.supervise_job(store, name, settings))
        except BaseException as exc:
            ended.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    wait_for(lambda: store.read_status(name).progress.step == "fitting", 60, "the job to reach fitting")
    for _ in range(2):  # the first starts a job process of its own; the second finds it idle
        started = time.monotonic()
        status, answer, _ = webapp.convert_ids(genes_request(demo_genes), settings)
        assert status == 200 and answer["input_count"] == len(demo_genes), answer
        assert thread.is_alive() and store.read_status(name).status is State.RUNNING
    assert time.monotonic() - started < 5, "the second conversion found the idle job process"
    store.request_cancel(name)
    thread.join(30)
    assert not thread.is_alive() and type(ended[0]).__name__ == "RunCancelled", ended


@pytest.mark.slow
def test_jobs_keep_their_warm_job_process(store, settings, demo_genes):
    """Conversions have a job process of their own: the next job finds its warm one, not a busy or cold one."""
    pids = []
    for round_ in range(2):
        name = new_jobname(f"warm-{round_}")
        store.create_job(parse_config({"jobname": name}), demo_genes)
        supervisor.supervise_job(store, name, settings, on_process=pids.append)
        assert supervisor.convert_ids(demo_genes, "Human", settings)["input_count"] == len(demo_genes)
    assert pids[0] == pids[1]
    assert len(job_processes()) == 2  # the job's and the conversions'


@pytest.mark.slow
def test_a_conversion_waits_a_bounded_time_for_its_place(fault, tmp_path, data_path, demo_genes, monkeypatch):
    marker = tmp_path / "converting"
    fault("convert-ids", "freeze", str(marker))  # the first conversion holds the one place (MAX_LIGHT) ...
    monkeypatch.setattr(supervisor, "LIGHT_WAIT_SECONDS", 0.5)
    settings = Settings(data_path=data_path, job_timeout_seconds=3)  # ... until its time limit stops it
    first = threading.Thread(target=webapp.convert_ids, args=(genes_request(demo_genes), settings))
    first.start()
    try:
        wait_for(marker.exists, 60, "the first conversion to run")
        started = time.monotonic()
        status, answer, headers = webapp.convert_ids(genes_request(demo_genes), settings)
        assert time.monotonic() - started < 3
        assert status == 503 and answer["message"] == (
            "the server is busy converting other gene lists; try again in 0.5 s"
        ), answer
        assert headers["Retry-After"]
    finally:
        first.join(60)


@pytest.mark.slow
def test_a_conversion_has_a_time_limit(fault, data_path, demo_genes):
    fault("convert-ids", "hang")
    settings = Settings(data_path=data_path, job_timeout_seconds=2)  # below the 60 s of a conversion's own
    with pytest.raises(RunTimedOut, match="the gene-ID conversion was stopped after 2 s: 2 s is the most"):
        supervisor.convert_ids(demo_genes, "Human", settings)
    fault(None)
    assert supervisor.convert_ids(demo_genes, "Human", settings)["input_count"] == len(demo_genes)


@pytest.mark.slow
def test_a_conversion_over_job_memory_mb_is_stopped(fault, data_path, demo_genes):
    fault("convert-ids", "allocate", "2000")
    settings = Settings(data_path=data_path, job_memory_mb=600)
    with pytest.raises(RunOutOfMemory, match=r"gene-ID conversion ran out of memory.*JOB_MEMORY_MB is 600 MB"):
        supervisor.convert_ids(demo_genes, "Human", settings)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("action", "argument", "limits", "status", "said"),
    [
        ("hang", "", {"job_timeout_seconds": 1}, 504, "the gene-ID conversion was stopped after 1 s"),
        ("allocate", "2000", {"job_memory_mb": 600}, 500, "the gene-ID conversion ran out of memory"),
    ],
    ids=["time-limit", "memory-limit"],
)
def test_a_conversion_stopped_by_a_limit_is_answered_with_its_status(
    fault, data_path, demo_genes, action, argument, limits, status, said
):
    fault("convert-ids", action, argument)
    code, answer, _ = webapp.convert_ids(genes_request(demo_genes), Settings(data_path=data_path, **limits))
    assert code == status and answer["message"].startswith(said), answer


@pytest.mark.slow
def test_a_crashed_conversion_leaves_the_host_standing(fault, tmp_path, data_path, demo_genes):
    marker = tmp_path / "frozen"
    fault("convert-ids", "freeze", str(marker))
    settings = Settings(data_path=data_path)

    def kill_when_frozen() -> None:
        wait_for(marker.exists, 60, "the conversion to freeze")
        (pid,) = job_processes()
        os.kill(pid, signal.SIGSEGV)

    crash = threading.Thread(target=kill_when_frozen)
    crash.start()
    with pytest.raises(JobProcessDied, match="died of SIGSEGV"):
        supervisor.convert_ids(demo_genes, "Human", settings)
    crash.join(10)
    fault(None)
    assert supervisor.convert_ids(demo_genes, "Human", settings)["input_count"] == len(demo_genes)


# --- what is computed, and how it travels --------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("species", ["Human", "Mouse"])
def test_the_json_text_is_input_genes(data_path, demo_genes, species, fast):
    """convert_ids's text (df_convert_out written by pandas) decodes to web_files.input_genes, as a job's
    input_genes.json has it."""
    from mljob.science.convert_ids import input_genes_json
    from mljob.science.session import open_geneplexus
    from mljob.science.web_files import input_genes

    genes = demo_genes if species == "Human" else [g.replace("HSYN", "MSYN") for g in demo_genes]
    params = {"net_type": "STRING", "features": "SixSpeciesN2V", "sp_trn": species, "gsc_trn": "GO",
              "sp_res": [species], "gsc_res": ["GO"]}  # fmt: skip
    with open_geneplexus(data_path, params, cache_mb=0, fast=fast) as opened:
        opened.gp.load_genes([*genes, 'Ünïcode/"quoted"'])
        expected = input_genes(opened.gp)
        assert json.loads(input_genes_json(opened.gp)) == expected
        opened.gp.df_convert_out = opened.gp.df_convert_out.astype(object)
        opened.gp.df_convert_out.loc[0, "Entrez ID"] = 5  # not all text: cell by cell, as input_genes does
        assert json.loads(input_genes_json(opened.gp)) == input_genes(opened.gp)


def test_every_message_goes_through_one_line_and_back():
    from mljob.job_protocol import (
        Completed,
        Converted,
        ConvertIds,
        Failed,
        JsonText,
        OutOfMemory,
        Preload,
        Ready,
        Refused,
        RunJob,
        decode,
        encode,
    )

    messages = [
        Preload("/data", [{"sp_trn": "Human", "net_type": "STRING", "gsc": "GO"}], 64),
        RunJob("/jobs", 100, 1000, "a-job", {"data_cache_mb": 64}, 0.5),
        ConvertIds(["CDK1", "Ünï\n"], "Human", "/data", 64, True),
        Ready(12),
        Completed("done"),
        Refused("no"),
        OutOfMemory("oom"),
        Failed("ValueError: x"),
        Converted({"input_count": 1, "df_convert_out": [{"Original ID": "A"}]}),
    ]
    for message in messages:
        line = encode(message)
        assert "\n" not in line and json.loads(line)["kind"] and decode(line) == message
    raw = Converted(JsonText('{"input_count": 1}'))
    assert encode(raw) == '{"kind":"converted","result":{"input_count": 1}}'  # as it is, not a string
    assert decode(encode(raw)) == Converted({"input_count": 1})
    for bad in ('{"kind": "nope"}', "[1]", '{"kind": "ready"}', '{"kind": "ready", "pid": 1, "x": 2}', "{"):
        with pytest.raises(ValueError):
            decode(bad)
