"""The 2023 GenePlexus web app (krishnanlab/geneplexus_app): its enqueue call, its own job folders, "jobids".

That app makes JOB_PATH/<job>/ itself (<job>_geneset.txt, <job>_job_config.json with GenePlexus 1.x
parameters, <job>_jobstatus reading `submitted`) and POSTs '{"jobnames": ["<job>"]}' with no
Content-Type, never reading the answer. mljob cannot run such a folder: enqueue answers 400 and writes
`Failed` into <job>_jobstatus, the one file the app's pages read (docs/web-app.md). Every call goes
through the real `function_app.enqueue`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import azure.functions as func
import pytest
from app_functions import app_functions
from azure.storage.queue import QueueClient

from mljob import messages
from mljob.errors import InvalidInput, LegacyJobFolder
from mljob.job import parse_config
from mljob.results_store import ResultsFileStore
from mljob.status import State

CLOSED_PORT_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)
WEB_JOB = "tp53-set-8e3jt5kz"  # a name the 2023 app makes: a slugified prefix and 8 random a-z0-9


def expected_refusal(job: str) -> str:
    """The documented 400 message (docs/web-app.md) for a 2023 folder whose status was set to Failed."""
    return (
        f"job {job} is a job folder of the 2023 GenePlexus web app ({job}_job_config.json with GenePlexus 1.x "
        "parameters); mljob runs GenePlexus 3 job folders (job_config.json, input_genes.txt): see docs/web-app.md; "
        f"{job}_jobstatus now reads Failed; nothing was enqueued"
    )


def make_web_2023_job(jobs: Path, job: str, genes: list[str], **config) -> Path:
    """A job folder exactly as the 2023 app's JobManager writes it: three files, GenePlexus 1.x parameters."""
    folder = jobs / job
    folder.mkdir()
    (folder / f"{job}_geneset.txt").write_text("\n".join(genes))
    params = {
        "net_type": "STRING-EXP",
        "features": "Embedding",
        "GSC": "DisGeNet",
        "jobname": job,
        "jobid": job.rsplit("-", 1)[-1],
        "job_url": f"http://localhost:5000/jobs/{job}",
        "notifyaddress": "someone@example.org",
        **config,
    }
    (folder / f"{job}_job_config.json").write_text(json.dumps(params))
    (folder / f"{job}_jobstatus").write_text("submitted")
    return folder


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root: a digest of a file's content, a link's target, or "dir"."""
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            path = Path(dirpath) / entry
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = "dir"
    return seen


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def functions() -> dict:
    return app_functions()


def enqueue(functions: dict, body: str | bytes) -> tuple[int, dict]:
    """POST /api/enqueue as the 2023 app does: the body as data=, no Content-Type, no other header."""
    raw = body.encode() if isinstance(body, str) else body
    request = func.HttpRequest(method="POST", url="http://localhost/api/enqueue", body=raw)
    response = functions["enqueue"].get_user_function()(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


@pytest.fixture
def world(tmp_path: Path, data_path: Path, monkeypatch, request) -> Path:
    """tmp/jobs (JOBS_PATH) beside tmp/outside (a file a hostile link points at); returns tmp."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "target.txt").write_text("do not touch\n")
    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("JOBS_PATH", str(tmp_path / "jobs"))
    monkeypatch.setenv("QUEUE_NAME", "web-2023-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16])
    monkeypatch.setenv("QUEUECONNECTIONSTRING", CLOSED_PORT_CONNECTION)  # a send would answer 503, not 400
    return tmp_path


@pytest.fixture
def queue_world(world: Path, azurite, monkeypatch) -> Path:
    """The same, with a real queue (Azurite)."""
    monkeypatch.setenv("QUEUECONNECTIONSTRING", azurite.connection_string)
    return world


def queue_client(azurite) -> QueueClient:
    return QueueClient.from_connection_string(azurite.connection_string, os.environ["QUEUE_NAME"])


def queued_jobnames(azurite) -> list[str]:
    """The job names of the messages on the test's queue (none when the queue does not exist yet)."""
    client = queue_client(azurite)
    try:
        found = client.peek_messages(max_messages=32)
    except Exception as exc:  # ResourceNotFoundError: nothing was ever sent
        assert "QueueNotFound" in str(exc) or "does not exist" in str(exc), exc
        return []
    return sorted(messages.decode(base64.b64decode(m.content)) for m in found)


# --- the app's own job folders -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["jobnames", "jobids"])
def test_the_apps_own_call_on_its_own_folder_is_400_and_its_status_reads_failed(functions, world, demo_genes, key):
    folder = make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    before = snapshot(world)
    code, answer = enqueue(functions, f'{{"{key}": ["{WEB_JOB}"]}}')  # exactly the app's body
    assert (code, answer) == (400, {"error": expected_refusal(WEB_JOB)})
    assert (folder / f"{WEB_JOB}_jobstatus").read_text() == "Failed"
    assert changed(before, snapshot(world)) == [f"jobs/{WEB_JOB}/{WEB_JOB}_jobstatus"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{WEB_JOB}{suffix}" for suffix in ("_geneset.txt", "_job_config.json", "_jobstatus")
    )
    assert not (folder / "status.json").exists()


def test_the_refusal_is_written_once_and_said_again(functions, world, demo_genes):
    folder = make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    enqueue(functions, f'{{"jobnames": ["{WEB_JOB}"]}}')
    before = snapshot(world)
    code, answer = enqueue(functions, f'{{"jobname": "{WEB_JOB}", "rerun": true}}')
    assert (code, answer) == (400, {"error": expected_refusal(WEB_JOB)})
    assert (folder / f"{WEB_JOB}_jobstatus").read_text() == "Failed"
    assert changed(before, snapshot(world)) == []


def test_a_mixed_call_sends_nothing_and_marks_only_the_2023_folder(functions, queue_world, demo_genes, azurite):
    store = ResultsFileStore(queue_world / "jobs")
    store.create_job(parse_config({"jobname": "mljob-job"}), demo_genes)
    make_web_2023_job(queue_world / "jobs", WEB_JOB, demo_genes)
    before = snapshot(queue_world)
    for names in (["mljob-job", WEB_JOB], [WEB_JOB, "mljob-job"]):
        code, answer = enqueue(functions, json.dumps({"jobnames": names}))
        assert (code, answer) == (400, {"error": expected_refusal(WEB_JOB)})
        assert queued_jobnames(azurite) == []
        assert store.read_status("mljob-job").status is State.CREATED
        assert changed(before, snapshot(queue_world)) == [f"jobs/{WEB_JOB}/{WEB_JOB}_jobstatus"]
    assert (queue_world / "jobs" / WEB_JOB / f"{WEB_JOB}_jobstatus").read_text() == "Failed"


def test_every_2023_folder_a_refused_call_names_reads_failed(functions, world, demo_genes):
    other = "brca-genes-q7w2x9zk"
    for job in (WEB_JOB, other):
        make_web_2023_job(world / "jobs", job, demo_genes)
    code, answer = enqueue(functions, json.dumps({"jobids": [WEB_JOB, other]}))
    assert (code, answer) == (400, {"error": expected_refusal(WEB_JOB)})
    for job in (WEB_JOB, other):
        assert (world / "jobs" / job / f"{job}_jobstatus").read_text() == "Failed"
    # an unknown job named first decides the answer (404), and the 2023 folder still learns it failed
    (world / "jobs" / other / f"{other}_jobstatus").write_text("submitted")
    code, answer = enqueue(functions, json.dumps({"jobnames": ["no-such-job", other]}))
    assert code == 404 and answer["error"] == "job no-such-job not found; nothing was enqueued"
    assert (world / "jobs" / other / f"{other}_jobstatus").read_text() == "Failed"


def test_a_status_file_linked_out_of_the_folder_is_refused_and_not_written_through(functions, world, demo_genes):
    folder = make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    status_file = folder / f"{WEB_JOB}_jobstatus"
    status_file.unlink()
    status_file.symlink_to(world / "outside" / "target.txt")
    before = snapshot(world)
    code, answer = enqueue(functions, f'{{"jobnames": ["{WEB_JOB}"]}}')
    assert code == 400
    assert answer["error"] == f"{WEB_JOB}_jobstatus in job {WEB_JOB} leads out of the job folder; refused"
    assert (world / "outside" / "target.txt").read_text() == "do not touch\n"
    assert status_file.is_symlink()
    assert changed(before, snapshot(world)) == []


def test_a_status_file_that_is_a_folder_is_refused(functions, world, demo_genes):
    folder = make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    (folder / f"{WEB_JOB}_jobstatus").unlink()
    (folder / f"{WEB_JOB}_jobstatus").mkdir()
    before = snapshot(world)
    code, answer = enqueue(functions, f'{{"jobnames": ["{WEB_JOB}"]}}')
    assert (code, answer) == (400, {"error": f"{WEB_JOB}_jobstatus in job {WEB_JOB} is not a file; refused"})
    assert changed(before, snapshot(world)) == []


def test_a_job_the_apps_own_runner_completed_keeps_its_status(functions, world, demo_genes):
    folder = make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    (folder / f"{WEB_JOB}_jobstatus").write_text("Completed")
    before = snapshot(world)
    code, answer = enqueue(functions, f'{{"jobnames": ["{WEB_JOB}"]}}')
    assert code == 400
    assert answer["error"].endswith(
        f"see docs/web-app.md; {WEB_JOB}_jobstatus says the job completed and was left as it is; nothing was enqueued"
    )
    assert changed(before, snapshot(world)) == []


def test_the_store_tells_a_2023_folder_from_an_mljob_one(world, demo_genes):
    store = ResultsFileStore(world / "jobs")
    make_web_2023_job(world / "jobs", WEB_JOB, demo_genes)
    store.create_job(parse_config({"jobname": "mljob-job"}), demo_genes)
    (world / "jobs" / "empty-job").mkdir()
    assert store.is_legacy_folder(WEB_JOB)
    assert not store.is_legacy_folder("mljob-job") and not store.is_legacy_folder("empty-job")
    with pytest.raises(LegacyJobFolder, match=r"see docs/web-app\.md"):
        store.read_config(WEB_JOB)
    with pytest.raises(InvalidInput, match=r"job empty-job has no job_config\.json") as refused:
        store.read_config("empty-job")
    assert not isinstance(refused.value, LegacyJobFolder)
    before = snapshot(world)
    for name in ("mljob-job", "empty-job"):
        with pytest.raises(InvalidInput, match="is not a job folder of the 2023 GenePlexus web app"):
            store.mark_legacy_failed(name)
    assert changed(before, snapshot(world)) == []
    assert store.mark_legacy_failed(WEB_JOB) is True
    assert (world / "jobs" / WEB_JOB / f"{WEB_JOB}_jobstatus").read_text() == "Failed"


# --- "jobids", the app's other name for "jobnames" --------------------------------------------------


def test_jobids_on_mljob_job_folders_works_exactly_like_jobnames(functions, queue_world, demo_genes, azurite):
    store = ResultsFileStore(queue_world / "jobs")
    for name in ("ids-one", "ids-two", "names-one", "names-two"):
        store.create_job(parse_config({"jobname": name}), demo_genes)
    by_ids = enqueue(functions, '{"jobids": ["ids-one", "ids-two", "ids-one"]}')
    by_names = enqueue(functions, '{"jobnames": ["names-one", "names-two", "names-one"]}')
    assert by_ids == (202, {"accepted": ["ids-one", "ids-two"], "status": "queued", "code": 202})
    assert by_names == (202, {"accepted": ["names-one", "names-two"], "status": "queued", "code": 202})
    assert queued_jobnames(azurite) == ["ids-one", "ids-two", "names-one", "names-two"]
    assert all(store.read_status(n).status is State.QUEUED for n in ("ids-one", "ids-two"))
    code, answer = enqueue(functions, '{"jobids": ["ids-one"]}')
    assert code == 409 and "job ids-one is queued; nothing was enqueued" in answer["error"]
    assert enqueue(functions, '{"jobids": ["ids-one"], "rerun": true}')[0] == 202


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"jobids": []}', '"jobids" must be a non-empty list of job names'),
        ('{"jobids": "ok-job"}', '"jobids" must be a non-empty list of job names'),
        (
            '{"jobids": ["ok-job"], "jobnames": ["ok-job"]}',
            'give exactly one of "jobname", "jobid", "jobnames" or "jobids"',
        ),
        ('{"jobids": ["../x"]}', "invalid job name '../x'"),
        ('{"jobids": ["no-such-job"]}', "job no-such-job not found; nothing was enqueued"),
    ],
)
def test_jobids_is_checked_like_jobnames(functions, world, demo_genes, body, error):
    ResultsFileStore(world / "jobs").create_job(parse_config({"jobname": "ok-job"}), demo_genes)
    before = snapshot(world)
    code, answer = enqueue(functions, body)
    assert code in (400, 404) and error in answer["error"]
    assert changed(before, snapshot(world)) == []


@pytest.mark.parametrize("body", ['{"jobids": ["ok-job"]}', '{"jobnames": ["ok-job"]}'])
def test_queue_messages_still_refuse_name_lists(body):
    key = json.loads(body).popitem()[0]
    with pytest.raises(InvalidInput, match=rf"unknown field\(s\) {key}"):
        messages.decode(body)
