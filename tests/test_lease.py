"""RunLease: one run per job across processes; a dead holder's lease goes stale and is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mljob.errors import JobNotReady
from mljob.job import parse_config
from mljob.lease import RunLease

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def job(store):
    store.create_job(parse_config({"jobname": "lease-job"}), ["A1"])
    return "lease-job"


def test_one_holder_at_a_time_then_free_after_release(store, job):
    first = RunLease(store, job, stale_after=30)
    second = RunLease(store, job, stale_after=30)
    assert first.acquire()
    assert not second.acquire() and second.holder() == first.owner
    with pytest.raises(JobNotReady, match="being run elsewhere"):
        second.__enter__()
    first.release()
    assert not store.lease_path(job).exists()
    with second:
        assert store.lease_path(job).exists()
    assert not store.lease_path(job).exists()


def test_heartbeat_keeps_a_live_lease_fresh(store, job):
    holder = RunLease(store, job, stale_after=0.8)
    assert holder.acquire()
    try:
        time.sleep(1.5)  # longer than stale_after: only the heartbeat keeps it fresh
        assert not RunLease(store, job, stale_after=0.8).acquire()
    finally:
        holder.release()


def test_a_stale_lease_is_taken_over_and_the_old_holder_does_not_remove_the_new_one(store, job):
    old = RunLease(store, job, stale_after=60)
    store.lease_path(job).write_text(json.dumps({"owner": old.owner, "pid": 1, "heartbeat": time.time() - 120}))
    new = RunLease(store, job, stale_after=60)
    assert new.acquire()
    old.release()
    assert new.holder() == new.owner
    new.release()
    assert not [p for p in store.job_path(job).iterdir() if "lock" in p.name]


def test_an_empty_fresh_lock_file_counts_as_held(store, job):
    store.lease_path(job).write_text("")
    assert not RunLease(store, job, stale_after=30).acquire()


def test_a_killed_holder_loses_its_lease_after_it_goes_stale(store, job):
    code = (
        "import sys, time; from mljob.results_store import ResultsFileStore; from mljob.lease import RunLease; "
        "lease = RunLease(ResultsFileStore(sys.argv[1]), 'lease-job', stale_after=1.0); "
        "assert lease.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(store.root)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not RunLease(store, job, stale_after=1.0).acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        taker = RunLease(store, job, stale_after=1.0)
        while not taker.acquire():
            assert time.monotonic() < deadline, "the dead holder's lease never went stale"
            time.sleep(0.2)
        taker.release()
    finally:
        holder.kill()
        holder.wait()


def test_acquire_can_wait_for_a_live_holder_to_finish(store, job):
    import threading

    holder = RunLease(store, job, stale_after=30)
    assert holder.acquire()
    threading.Timer(0.5, holder.release).start()
    waiter = RunLease(store, job, stale_after=30)
    assert not waiter.acquire(wait=0.1)
    assert waiter.acquire(wait=5)
    waiter.release()
