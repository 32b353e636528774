"""Job folders that were tampered with: missing or corrupt status.json, links out of the jobs root,
results/ without a completed status. Nothing outside the job's folder may change, and no secret leaks.
"""

from __future__ import annotations

import os

import pytest
from conftest import call, process

from mljob.status import State


def status_answer(name: str = "t-job") -> tuple[int, dict]:
    return call("job_status", method="GET", url=f"http://localhost/api/jobs/{name}", route_params={"jobname": name})


def enqueue_answer(name: str = "t-job") -> tuple[int, dict]:
    return call("enqueue", body=f'{{"jobname": "{name}"}}'.encode())


@pytest.mark.parametrize(
    ("content", "status_text"),
    [
        (None, "job t-job has no status.json"),
        (b"{not json", "status.json of job t-job is corrupt or unreadable"),
        (b"", "status.json of job t-job is corrupt or unreadable"),
        (b'{"jobname": "t-job", "status": "exploded"}', "status.json of job t-job is corrupt or unreadable"),
        (b'{"jobname": "other-job", "status": "completed"}', "status.json of job t-job is corrupt or unreadable"),
    ],
    ids=["missing", "corrupt", "empty", "bad-state", "other-job"],
)
def test_missing_or_corrupt_status(world, content, status_text):
    world.job("t-job")
    path = world.folder("t-job") / "status.json"
    path.unlink() if content is None else path.write_bytes(content)
    world.mark()
    assert status_answer() == (400, {"error": status_text})
    code, answer = enqueue_answer()  # valid job: it reaches the (closed) queue; nothing is marked queued
    assert code == 503 and "nothing was enqueued" in answer["error"]
    assert world.changed() == []
    assert process(world, "t-job") == "completed"  # the run starts the status anew
    status = world.store.read_status("t-job")
    assert status.status is State.COMPLETED
    assert "status.json was missing or corrupt; started anew" in [h.message for h in status.history]
    assert world.changed(allowed_job="t-job") == []


def test_job_folder_linking_out_of_the_root(world):
    os.symlink(world.outside / "dir", world.jobs / "t-job")
    world.mark()
    refused = "job folder t-job is a link that leads out of the jobs folder; refused"
    assert status_answer() == (400, {"error": refused})
    assert enqueue_answer() == (400, {"error": refused})
    assert call("testfn", params={"jobname": "t-job"}) == (400, {"error": refused})
    assert process(world, "t-job") == "dropped"
    assert world.changed() == []


@pytest.mark.parametrize(
    ("filename", "target", "enqueue_text", "outcome", "reason"),
    [
        ("status.json", "status.json", "status.json in job t-job leads out", "dropped", None),
        ("input_genes.txt", "secret.txt", "input_genes.txt in job t-job leads out", "failed", "input_genes.txt in job"),
        ("job_config.json", "secret.txt", "job_config.json in job t-job leads out", "failed", "job_config.json in job"),
        ("input_negatives.txt", "secret.txt", "input_negatives.txt in job t-job leads out", "failed", "leads out"),
        ("results", "dir", None, "failed", "results in job t-job leads out of the job folder"),
        ("job_info.json", "secret.txt", None, "failed", "job_info.json in job t-job leads out"),
        ("job.log", "secret.txt", None, "failed", "tampered with: job.log in job t-job leads out"),
        ("run.lock", "secret.txt", None, "failed", "tampered with: run.lock in job t-job leads out"),
    ],
)
def test_file_linking_out_of_the_job(world, filename, target, enqueue_text, outcome, reason):
    world.job("t-job")
    link = world.folder("t-job") / filename
    if link.exists():
        link.unlink()
    os.symlink(world.outside / target, link)
    world.mark()
    code, answer = enqueue_answer()
    if enqueue_text:
        assert (code, answer) == (400, {"error": f"{enqueue_text} of the job folder; refused"})
    else:
        assert code == 503 and "nothing was enqueued" in answer["error"]
    assert world.changed() == []
    assert process(world, "t-job") == outcome
    if reason:
        status = world.store.read_status("t-job")
        assert status.status is State.FAILED and reason in status.message, status.message
        assert "do not touch" not in status.message
    assert (world.outside / "secret.txt").read_text() == "do not touch\n"
    assert world.changed(allowed_job="t-job") == []


def test_results_without_a_completed_status(world):
    world.job("t-job")
    planted = world.folder("t-job") / "results"
    planted.mkdir()
    (planted / "top_genes.json").write_text('{"planted": true}')
    world.mark()
    code, answer = status_answer()
    assert code == 200 and answer["status"] == "created" and "results" not in answer
    assert process(world, "t-job") == "completed"
    assert world.store.read_result_json("t-job", "top_genes.json") != {"planted": True}
    assert "report.html" in world.store.list_results("t-job")
    assert world.changed(allowed_job="t-job") == []


def test_completed_job_is_not_queued_or_run_again(world):
    world.job("t-job")
    assert process(world, "t-job") == "completed"
    world.mark()
    assert enqueue_answer() == (
        409,
        {"error": "job t-job is completed; nothing was enqueued (ask for a re-run to queue it again)"},
    )
    assert process(world, "t-job") == "skipped"
    assert world.changed() == []
