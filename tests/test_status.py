"""Job status: states, codes, history, timestamps and the callback summary."""

from __future__ import annotations

import json

import pytest

from mljob.status import CODES, FINAL_STATES, JobStatus, Progress, State


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (State.CREATED, 201),
        (State.QUEUED, 202),
        (State.RUNNING, 102),
        (State.COMPLETED, 200),
        (State.FAILED, 500),
        (State.TIMEOUT, 504),
        (State.CANCELLED, 410),
    ],
)
def test_codes(state, code):
    assert CODES[state] == code


def test_every_state_has_a_code_and_the_values_are_lower_case():
    assert set(CODES) == set(State)
    assert [s.value for s in State] == [
        "created",
        "queued",
        "running",
        "completed",
        "failed",
        "timeout",
        "cancelled",
    ]


def test_final_states():
    assert {State.COMPLETED, State.FAILED, State.TIMEOUT, State.CANCELLED} == FINAL_STATES


def test_new():
    status = JobStatus.new("my-job")
    assert status.jobname == "my-job"
    assert status.status is State.CREATED
    assert status.code == 201
    assert status.message == "job created"
    assert status.created == status.updated
    assert status.created.tzinfo is not None
    assert status.started is None
    assert status.finished is None
    assert status.attempt == 0
    assert status.progress == Progress()
    assert len(status.history) == 1
    assert status.history[0].status is State.CREATED
    assert status.history[0].code == 201
    assert not status.is_final


@pytest.mark.parametrize("state", list(State))
def test_every_advance_appends_one_history_entry(state):
    status = JobStatus.new("my-job").advance(State.QUEUED, "queued")
    after = status.advance(state, "moved", progress=Progress(step="s", percent=10), attempt=3)
    assert len(after.history) == len(status.history) + 1
    assert after.history[:-1] == status.history
    entry = after.history[-1]
    assert entry.status is state
    assert entry.code == CODES[state]
    assert entry.message == "moved"
    assert entry.time == after.updated
    assert entry.attempt == 3
    assert after.status is state
    assert after.code == CODES[state]


def test_advance_returns_a_copy():
    status = JobStatus.new("my-job")
    status.advance(State.RUNNING)
    assert status.status is State.CREATED
    assert len(status.history) == 1


def test_progress_updates_within_a_state_append_history_too():
    status = JobStatus.new("my-job").advance(State.RUNNING, "started")
    for percent in (10, 50, 90):
        status = status.advance(State.RUNNING, "step", progress=Progress(step=f"p{percent}", percent=percent))
    assert len(status.history) == 5
    assert [e.percent for e in status.history] == [0, 0, 10, 50, 90]
    assert status.history[-1].step == "p90"
    assert status.progress == Progress(step="p90", percent=90)


def test_running_sets_started():
    status = JobStatus.new("my-job").advance(State.QUEUED)
    assert status.started is None
    running = status.advance(State.RUNNING, "run 1 started")
    assert running.started == running.updated
    assert running.finished is None
    assert not running.is_final


def test_a_progress_update_keeps_started():
    running = JobStatus.new("my-job").advance(State.RUNNING)
    later = running.advance(State.RUNNING, progress=Progress(step="train", percent=40))
    assert later.started == running.started


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_final_states_set_finished(state):
    running = JobStatus.new("my-job").advance(State.RUNNING)
    done = running.advance(state, "over")
    assert done.finished == done.updated
    assert done.started == running.started
    assert done.is_final


def test_a_rerun_resets_finished():
    failed = JobStatus.new("my-job").advance(State.RUNNING).advance(State.FAILED, "boom")
    again = failed.advance(State.RUNNING, "run 2 started", attempt=2)
    assert again.finished is None
    assert again.started == again.updated
    assert not again.is_final


@pytest.mark.parametrize("state", [State.CREATED, State.QUEUED])
def test_requeue_clears_started_finished_and_progress(state):
    done = JobStatus.new("my-job").advance(State.RUNNING, progress=Progress(step="x", percent=70))
    done = done.advance(State.COMPLETED)
    back = done.advance(state)
    assert back.started is None
    assert back.finished is None
    assert back.progress == Progress()


def test_attempt_is_carried():
    status = JobStatus.new("my-job").advance(State.RUNNING, attempt=2)
    assert status.attempt == 2
    status = status.advance(State.RUNNING, progress=Progress(step="x", percent=5))
    assert status.attempt == 2
    status = status.advance(State.FAILED, "boom")
    assert status.attempt == 2
    assert [e.attempt for e in status.history] == [0, 2, 2, 2]


def test_progress_percent_is_checked():
    with pytest.raises(ValueError, match="100"):
        Progress(percent=101)
    with pytest.raises(ValueError, match="0"):
        Progress(percent=-1)


def test_json_round_trip():
    status = (
        JobStatus.new("my-job")
        .advance(State.QUEUED, "queued")
        .advance(State.RUNNING, "run 1", progress=Progress(step="train", percent=30), attempt=1)
        .advance(State.COMPLETED, "done", progress=Progress(step="done", percent=100))
    )
    text = status.model_dump_json(indent=2)
    again = JobStatus.model_validate_json(text)
    assert again == status
    assert again.status is State.COMPLETED
    data = json.loads(text)
    assert data["status"] == "completed"
    assert data["code"] == 200
    assert [e["status"] for e in data["history"]] == ["created", "queued", "running", "completed"]


@pytest.mark.parametrize("state", list(State))
def test_summary_is_exactly_jobname_status_code(state):
    status = JobStatus.new("my-job").advance(state, "a message")
    summary = status.summary()
    assert summary == {"jobname": "my-job", "status": state.value, "code": CODES[state]}
    assert type(summary["status"]) is str
    json.dumps(summary)
