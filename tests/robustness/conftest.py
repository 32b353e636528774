"""Shared pieces of the bad-input corpus: a jobs root with a watched folder outside it, and callers.

Every case checks that no file outside the job's own folder changed (`World.changed`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import azure.functions as func
import pytest
from app_functions import app_functions
from azure.functions.queue import QueueMessage

from mljob import queue_trigger
from mljob.job import parse_config
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEMO_GENES = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
# Connection string of a closed port: a case that wrongly reached the queue would answer 503, not 202.
CLOSED_PORT_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)
FUNCTIONS = app_functions()


class World:
    """tmp/jobs (the jobs root) and tmp/outside (files a hostile job points at); snapshots of both."""

    def __init__(self, tmp: Path, data_path: Path):
        self.tmp = tmp
        self.jobs = tmp / "jobs"
        self.jobs.mkdir()
        self.outside = tmp / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_text("do not touch\n")
        (self.outside / "status.json").write_text('{"not": "a status"}\n')
        (self.outside / "dir").mkdir()
        (self.outside / "dir" / "keep.txt").write_text("keep\n")
        self.store = ResultsFileStore(self.jobs)
        self.data_path = data_path
        self.settings = Settings(data_path=data_path, jobs_path=self.jobs, lease_stale_seconds=2)
        self.before: dict[str, str] = {}

    def job(self, name: str, genes: list[str] | None = None, **params) -> str:
        self.store.create_job(parse_config({"jobname": name, **params}), genes or DEMO_GENES)
        return name

    def folder(self, name: str) -> Path:
        return self.jobs / name

    def snapshot(self) -> dict[str, str]:
        """Every path under tmp (jobs root and outside) with a digest of its content or link target."""
        seen: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                rel = path.relative_to(self.tmp).as_posix()
                if path.is_symlink():
                    seen[rel] = "link:" + os.readlink(path)
                elif path.is_file():
                    seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    seen[rel] = "dir"
        return seen

    def mark(self) -> None:
        self.before = self.snapshot()

    def changed(self, allowed_job: str | None = None) -> list[str]:
        """Paths added, removed or changed since mark(), leaving out those inside jobs/<allowed_job>/."""
        after = self.snapshot()
        diff = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        if allowed_job:
            inside = f"jobs/{allowed_job}"
            diff = [k for k in diff if k != inside and not k.startswith(inside + "/")]
        return diff

    def status_files_parse(self) -> None:
        for path in self.jobs.glob("*/status.json"):
            if not path.is_symlink():
                json.loads(path.read_bytes())


@pytest.fixture
def world(tmp_path, data_path, monkeypatch) -> World:
    w = World(tmp_path, data_path)
    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("JOBS_PATH", str(w.jobs))
    monkeypatch.setenv("QUEUE_NAME", "robustness")
    monkeypatch.setenv("QUEUECONNECTIONSTRING", CLOSED_PORT_CONNECTION)
    monkeypatch.setenv("LEASE_STALE_SECONDS", "2")
    monkeypatch.delenv("CALLBACK_ALLOWED_HOSTS", raising=False)
    quick_refusal(monkeypatch)
    return w


def quick_refusal(monkeypatch) -> None:
    """The queue behind the closed port refuses at once: no retries with backoff (the production client's
    ~1 s), so the many cases that reach it stay fast. Nothing else about the client changes."""
    from mljob import queue

    monkeypatch.setattr(queue, "_shared_queue", lambda conn, name: queue.JobQueue(conn, name, timeout=2, retries=0))


def call(name: str, **request) -> tuple[int, dict]:
    """Call an HTTP function of function_app directly; returns (status, parsed JSON body)."""
    request.setdefault("url", f"http://localhost/api/{name}")
    request.setdefault("body", b"")
    request.setdefault("method", "POST")
    response = FUNCTIONS[name].get_user_function()(func.HttpRequest(**request))
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def deliver(body: bytes, message_id: str = "corpus-1", dequeue_count: int = 1) -> None:
    """Hand a message body to function_app's queue function, as the host does after base64-decoding."""
    FUNCTIONS["process_job"].get_user_function()(QueueMessage(id=message_id, body=body, dequeue_count=dequeue_count))


def process(world: World, body: bytes | str, *, dequeue_count: int = 1, max_dequeue_count: int = 5) -> str:
    """queue_trigger.handle_message: what happened to one message (dropped, skipped, busy, completed, failed)."""
    return queue_trigger.handle_message(
        body,
        message_id="corpus-1",
        dequeue_count=dequeue_count,
        max_dequeue_count=max_dequeue_count,
        settings=world.settings,
    )


@pytest.fixture
def mljob_log(caplog):
    caplog.set_level(logging.INFO, logger="mljob")
    return caplog
