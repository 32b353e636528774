"""Fault injection with real processes and a real Azurite: after every fault no job is lost, none completes
twice, no results/ is partial and every status.json parses.

- the worker (a real process running queue_trigger.handle_message) is SIGKILLed at each step of a run;
- Azurite is stopped during an enqueue and during a run under `mljob serve`;
- a backend file is truncated or removed mid-run;
- the callback server is down, slow or answers 500;
- the jobs root (a real tmpfs, when it can be mounted) runs out of space or turns read-only.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from devhost_process import FAST_HOST_JSON, REPO, DevHostProcess, app_copy, wait_for

from mljob import api, callback, queue_trigger
from mljob.errors import JobWorkFailed
from mljob.job import parse_config
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

pytestmark = pytest.mark.slow  # real processes killed, Azurite stopped: `make test-fast` leaves these out

# --- helpers ---------------------------------------------------------------------------------


def make_job(store: ResultsFileStore, name: str, genes: list[str], **params) -> str:
    store.create_job(parse_config({"jobname": name, **params}), genes)
    return name


def completions(store: ResultsFileStore, name: str) -> int:
    return sum(1 for h in store.read_status(name).history if h.status is State.COMPLETED)


def check_invariants(store: ResultsFileStore, expected_results: set[str] | None = None) -> None:
    """Every status.json parses; a results/ folder is complete (the expected files); no job completed twice."""
    for name in store.list_jobs():
        json.loads((store.job_path(name) / "status.json").read_bytes())
        store.read_status(name)
        if store.has_results(name) and expected_results is not None:
            assert set(store.list_results(name)) == expected_results, f"partial results/ in job {name}"
        assert completions(store, name) <= 1, f"job {name} completed twice"


def process(settings: Settings, name: str, dequeue_count: int = 1, max_dequeue_count: int = 5) -> str:
    return queue_trigger.handle_message(
        json.dumps({"jobname": name}),
        message_id=f"fault-{dequeue_count}",
        dequeue_count=dequeue_count,
        max_dequeue_count=max_dequeue_count,
        settings=settings,
    )


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory, data_path, demo_genes_module) -> set[str]:
    """The result files of one undisturbed run on the default data: what a complete results/ holds."""
    store = ResultsFileStore(tmp_path_factory.mktemp("reference"))
    make_job(store, "reference", demo_genes_module)
    settings = Settings(data_path=data_path, jobs_path=store.root)
    assert process(settings, "reference") == "completed"
    return set(store.list_results("reference"))


@pytest.fixture(scope="module")
def demo_genes_module() -> list[str]:
    return (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()


# --- SIGKILL at each step ----------------------------------------------------------------------

# One helper process imports mljob and GenePlexus once, then forks one real worker process per kill point.
# Each runs queue_trigger.handle_message on its job's message; at its kill point it writes a marker file and
# sleeps: the test sees the marker (and status.json's progress.step), then SIGKILLs that process.
# One helper process forks one real worker process per kill point. Each runs queue_trigger.handle_message on its
# job's message; the job's work runs in the worker's job process (mljob.supervisor), where the fault hooks
# of tests/job_process_hooks (MLJOB_FAULT) write a marker at the kill point and wait: the test sees the
# marker (and status.json's progress.step), then SIGKILLs that worker; its job process goes with it.
# The "starting" and "callback" points are in the worker itself (the lifecycle's own steps).
CHILD = r"""
import os, sys, time
from pathlib import Path
import mljob.lifecycle as lc
from mljob import queue_trigger
from mljob.settings import Settings

def run(name, where, marker):
    def freeze(*args, **kwargs):
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)

    if where == "callback":                  # `completed` is written; the callback is being sent
        lc.callback.notify = freeze
    elif where == "starting":                # the worker marked the job running; its job process is not asked yet
        lc.supervisor.supervise_job = freeze
    else:
        action = {"saving:mid-write": "freeze-after-web-files", "saving:results-renamed": "freeze-before-job-info"}
        step = "saving" if where.startswith("saving:") else where
        os.environ["MLJOB_FAULT"] = f"{step}|{action.get(where, 'freeze')}|{marker}"
    queue_trigger.handle_message('{"jobname": "%s"}' % name, message_id="doomed", dequeue_count=1,
                           max_dequeue_count=5, settings=Settings.from_env())

children = []
for spec in sys.argv[1:]:
    name, where, marker = spec.split("|")
    pid = os.fork()
    if pid == 0:
        try:
            run(name, where, marker)
        finally:
            os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""
HOOKS = Path(__file__).resolve().parent / "job_process_hooks"

KILL_POINTS = [
    "starting",
    "checking inputs",
    "loading genes",
    "fitting",
    "predicting",
    "similarities",
    "network",
    "saving",
    "saving:mid-write",
    "saving:results-renamed",
    "callback",
]


def test_worker_killed_at_each_step(tmp_path, data_path, demo_genes_module, reference_results):
    """A real worker process per kill point, all at once; each SIGKILLed there; then each job is redelivered."""
    store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
    env = {
        **os.environ,
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(store.root),
        "LEASE_STALE_SECONDS": "1",
        "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
    }
    (tmp_path / "child.py").write_text(CHILD)
    points = {}
    for i, where in enumerate(KILL_POINTS):
        points[make_job(store, f"kill-{i:02d}", demo_genes_module)] = (where, tmp_path / f"marker-{i}")
    specs = [f"{name}|{where}|{marker}" for name, (where, marker) in points.items()]
    log = tmp_path / "children.log"
    parent = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), *specs],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        for name, (where, marker) in points.items():
            wait_for(
                lambda marker=marker: marker.exists() or parent.poll() is not None,
                120,
                f"worker of {name} to reach {where}",
            )
            assert marker.exists(), log.read_text()
            status = store.read_status(name)  # what the web app sees at the moment of the kill
            if ":" not in where and where != "callback":
                assert (status.status, status.progress.step) == (State.RUNNING, where)
            os.kill(int(marker.read_text()), signal.SIGKILL)
        parent.wait(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()

    check_invariants(store, reference_results)
    for name, (where, _) in points.items():
        status = store.read_status(name)
        if where == "callback":
            assert status.status is State.COMPLETED
        else:
            assert status.status is State.RUNNING, (where, status)
            assert (store.has_results(name) and where == "saving:results-renamed") or not store.has_results(name)

    # the queue redelivers each message: the dead run's lease goes stale, the job runs again and completes once
    settings = Settings(data_path=data_path, jobs_path=store.root, lease_stale_seconds=1)
    for name, (where, _) in points.items():
        outcome = process(settings, name, dequeue_count=2)
        assert outcome == ("skipped" if where == "callback" else "completed"), (where, store.read_status(name))
        assert process(settings, name, dequeue_count=3) == "skipped"  # and once more: still once
        status = store.read_status(name)
        assert status.status is State.COMPLETED and completions(store, name) == 1
        assert set(store.list_results(name)) == reference_results
        assert not list(store.job_path(name).glob(".staging-*"))
        # a run killed while its callback is sent has released its lease already (released right after `completed`)
        assert not store.lease_path(name).exists()
        store.read_job_info(name)
    check_invariants(store, reference_results)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- Azurite down ------------------------------------------------------------------------------


@pytest.fixture
def queue_settings(tmp_path, azurite, data_path):
    store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
    settings = Settings(
        data_path=data_path,
        jobs_path=store.root,
        queue_connection_string=azurite.connection_string,
        queue_name=f"fault-{uuid.uuid4().hex[:8]}",
    )
    JobQueue.from_settings(settings).ensure()
    return store, settings


def test_azurite_down_during_enqueue(queue_settings, azurite, demo_genes_module):
    store, settings = queue_settings
    names = [make_job(store, f"down-{i}", demo_genes_module) for i in range(3)]
    with azurite.outage():
        code, answer = api.enqueue(json.dumps({"jobnames": names}).encode(), settings)
        assert code == 503 and "none of the 3 jobs was enqueued" in answer["error"]
        assert {store.read_status(n).status for n in names} == {State.CREATED}
    queue = JobQueue.from_settings(settings)
    queue.ensure()  # in-memory Azurite restarts empty
    assert queue.client.peek_messages(max_messages=32) == []
    check_invariants(store)


def test_azurite_stops_between_two_messages_of_one_enqueue(queue_settings, azurite, demo_genes_module, monkeypatch):
    """The first message is sent, then Azurite dies: 503, nothing marked queued, and the job can be enqueued later."""
    store, settings = queue_settings
    names = [make_job(store, f"half-{i}", demo_genes_module) for i in range(3)]
    original = JobQueue.send
    sent = []
    lock = threading.Lock()
    first_done = threading.Event()

    def send_then_die(self, jobname):
        # enqueue sends from a few threads at once: the first send completes, then Azurite stops
        with lock:
            first = not sent
            sent.append(jobname)
        if first:
            try:
                return original(self, jobname)
            finally:
                first_done.set()
        first_done.wait(30)
        with lock:
            azurite.stop()  # a no-op once stopped
        return original(self, jobname)

    monkeypatch.setattr(JobQueue, "send", send_then_die)
    try:
        code, answer = api.enqueue(json.dumps({"jobnames": names}).encode(), settings)
    finally:
        azurite.start()
    monkeypatch.setattr(JobQueue, "send", original)
    assert code == 503, answer
    assert "no job was left marked queued" in answer["error"] and "half-0" in answer["error"]
    assert {store.read_status(n).status for n in names} == {State.CREATED}
    # Azurite is back (empty): the same request now succeeds, once
    JobQueue.from_settings(settings).ensure()
    assert api.enqueue(json.dumps({"jobnames": names}).encode(), settings)[0] == 202
    assert {store.read_status(n).status for n in names} == {State.QUEUED}
    assert len(JobQueue.from_settings(settings).client.peek_messages(max_messages=32)) == 3
    check_invariants(store)


def test_azurite_down_during_a_run_under_mljob_serve(tmp_path, azurite, slow_data, demo_genes_module):
    store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
    queue_name = f"fault-{uuid.uuid4().hex[:8]}"
    app = app_copy(tmp_path / "app", FAST_HOST_JSON)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLJOB_FUNCTION_KEY"},
        "DATA_PATH": str(slow_data),
        "JOBS_PATH": str(store.root),
        "QUEUECONNECTIONSTRING": azurite.connection_string,
        "QUEUE_NAME": queue_name,
        "MESSAGE_LEASE_SECONDS": "2",
        "LEASE_STALE_SECONDS": "3",
    }
    settings = Settings.from_env(env)
    JobQueue.from_settings(settings).ensure()
    host = DevHostProcess(tmp_path, env, app)
    try:
        name = make_job(store, "azurite-dies", demo_genes_module)
        assert api.enqueue(json.dumps({"jobname": name}).encode(), settings)[0] == 202
        wait_for(lambda: store.read_status(name).status is State.RUNNING, 60, "the job to start")
        with azurite.outage():
            wait_for(lambda: store.read_status(name).is_final, 120, "the job to end while Azurite is down")
        status = store.read_status(name)
        assert status.status is State.COMPLETED, status.message
        # Azurite is back (empty): the host keeps polling and runs the next job
        JobQueue.from_settings(settings).ensure()
        after = make_job(store, "after-outage", demo_genes_module)
        assert api.enqueue(json.dumps({"jobname": after}).encode(), settings)[0] == 202
        wait_for(lambda: store.read_status(after).is_final, 120, "a job enqueued after the outage")
        assert store.read_status(after).status is State.COMPLETED
        assert host.proc.poll() is None
    finally:
        host.stop()
    assert completions(store, name) == 1 and completions(store, after) == 1
    check_invariants(store)


# --- backend data damaged mid-run --------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_backend_file_damaged_mid_run(tmp_path, data_path, demo_genes_module, reference_results, fault, damage):
    data = tmp_path / "data"
    shutil.copytree(data_path, data)
    store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
    name = make_job(store, "damaged", demo_genes_module)
    victim = data / "Data__Human__SixSpeciesN2V__STRING.npy"
    good = victim.read_bytes()
    fault("loading genes", "truncate" if damage == "truncated" else "remove", str(victim))
    settings = Settings(data_path=data, jobs_path=store.root, lease_stale_seconds=2)
    with pytest.raises(Exception) as raised:  # first try: re-raised for the queue to redeliver
        process(settings, name, dequeue_count=1, max_dequeue_count=2)
    status = store.read_status(name)
    assert status.status is State.QUEUED and "try 1 failed" in status.message, status.message
    assert str(raised.value) in status.message  # the error in the job process, e.g. ValueError: ...
    assert not store.has_results(name) and not store.lease_path(name).exists()
    fault(None)
    # the last try (the file still damaged) marks the job failed with the reason
    if damage == "truncated":  # an unexpected error: on the last try the job is marked failed, then re-raised
        with pytest.raises(Exception):  # noqa: B017 (whatever numpy raises for a truncated file)
            process(settings, name, dequeue_count=2, max_dequeue_count=2)
        expected = "failed on each of 2 tries; last error: "
    else:  # a missing file is found before the run starts: failed at once, with the file named
        assert process(settings, name, dequeue_count=2, max_dequeue_count=2) == "failed"
        expected = "GenePlexus backend data for Human/STRING is missing from"
    status = store.read_status(name)
    assert status.status is State.FAILED and expected in status.message, status.message
    check_invariants(store, reference_results)
    # the data is repaired and the job enqueued again: it completes, once
    victim.write_bytes(good)
    assert process(settings, name) == "completed"
    assert completions(store, name) == 1
    check_invariants(store, reference_results)


# --- the callback server misbehaves -------------------------------------------------------------


class _Callback(BaseHTTPRequestHandler):
    mode = "500"
    hits: ClassVar[list[str]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Callback.hits.append(self.path)
        if _Callback.mode == "slow":
            threading.Event().wait(2)  # (time.sleep is patched out by the test)
        self.send_response(500 if _Callback.mode == "500" else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode", ["down", "slow", "500"])
def test_callback_misbehaves_and_the_job_still_completes(tmp_path, data_path, demo_genes_module, monkeypatch, mode):
    monkeypatch.setattr("mljob.callback.time.sleep", lambda s: None)
    monkeypatch.setattr(callback, "post_status", functools.partial(callback.post_status, timeout=0.5))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    port = server.server_port
    _Callback.mode, _Callback.hits = mode, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    if mode == "down":
        server.server_close()
    else:
        thread.start()
    try:
        store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
        name = make_job(store, f"cb-{mode}", demo_genes_module, callback_url=f"http://127.0.0.1:{port}/done")
        settings = Settings(data_path=data_path, jobs_path=store.root, callback_allowed_hosts="127.0.0.1")
        assert process(settings, name) == "completed"
    finally:
        if mode != "down":
            server.shutdown()
            server.server_close()
    assert store.read_status(name).status is State.COMPLETED
    problem = {"down": "ConnectionError", "slow": "ReadTimeout", "500": "HTTP 500"}[mode]  # the short timeout held
    assert f"callback for job cb-{mode} failed after 3 tries ({problem})" in store.read_log(name)
    assert len(_Callback.hits) == (0 if mode == "down" else 3)
    assert completions(store, name) == 1


# --- the disk of the jobs root: full or read-only (a real tmpfs) --------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MB tmpfs for the jobs root; skipped where it cannot be mounted (not root, no CAP_SYS_ADMIN)."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_mid_run(small_fs, data_path, demo_genes_module, reference_results, fault):
    store = ResultsFileStore(small_fs)
    name = make_job(store, "full-disk", demo_genes_module)
    fault("saving", "fill", str(small_fs))  # the job process fills the disk when `saving` starts
    settings = Settings(data_path=data_path, jobs_path=store.root, lease_stale_seconds=2)
    with pytest.raises(OSError) as raised:  # not even a status can be written: the host retries the message
        process(settings, name, dequeue_count=1)
    assert raised.value.errno == errno.ENOSPC
    fault(None)
    status = store.read_status(name)  # the last status written before the disk filled, intact
    assert (status.status, status.progress.step) == (State.RUNNING, "saving")
    assert not store.has_results(name) and not list(store.job_path(name).glob(".staging-*"))
    check_invariants(store, reference_results)
    (small_fs / ".filler").unlink()  # space comes back; the redelivered message completes the job, once
    time.sleep(2.1)  # the failed run's lease file could not be removed only if unlink failed; let it go stale
    assert process(settings, name, dequeue_count=2) == "completed"
    assert completions(store, name) == 1
    check_invariants(store, reference_results)


def test_no_space_for_results_only_ends_failed_on_the_last_try(tmp_path, data_path, demo_genes_module, fault):
    """Simulated (a hook in the job process): the results cannot be written (ENOSPC) but status.json can:
    a clear `failed`."""
    fault("saving", "no-space")
    store = ResultsFileStore(_mkdir(tmp_path / "jobs"))
    name = make_job(store, "no-space", demo_genes_module)
    settings = Settings(data_path=data_path, jobs_path=store.root)
    with pytest.raises(JobWorkFailed, match="No space left on device"):
        process(settings, name, dequeue_count=1, max_dequeue_count=2)
    assert store.read_status(name).status is State.QUEUED
    with pytest.raises(JobWorkFailed, match="No space left on device"):
        process(settings, name, dequeue_count=2, max_dequeue_count=2)
    status = store.read_status(name)
    assert status.status is State.FAILED
    assert "failed on each of 2 tries; last error: OSError: [Errno 28] No space left on device" in status.message
    assert not store.has_results(name) and not list(store.job_path(name).glob(".staging-*"))
    check_invariants(store)


def test_read_only_jobs_root(small_fs, data_path, demo_genes_module, reference_results):
    store = ResultsFileStore(small_fs)
    name = make_job(store, "read-only", demo_genes_module)
    before = (store.job_path(name) / "status.json").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        settings = Settings(data_path=data_path, jobs_path=store.root, lease_stale_seconds=2)
        with pytest.raises(OSError) as raised:  # nothing can be written: the host retries, then poisons
            process(settings, name)
        assert raised.value.errno == errno.EROFS
        assert (store.job_path(name) / "status.json").read_bytes() == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert process(settings, name, dequeue_count=2) == "completed"
    assert completions(store, name) == 1
    check_invariants(store, reference_results)
