"""The operator console in a real browser (headless Chromium driven by Playwright) against a real `mljob serve`
with a function key, a real Azurite and real job processes: it lists and filters jobs, shows a running job's
progress move, cancels, re-runs and requeues from poison through its dialog, shows job text as text, requests
nothing off the loopback host, and shows no data without the key. With MLJOB_WRITE_SCREENSHOTS=1 it renews
docs/console.png.

Two hosts share one jobs folder: the page's host (its queue; `slow-job` rests 6 s at its fitting step) and a
second host on a queue of its own, where `hang-job` hangs at fitting until it is cancelled from the page (the
cancel marker in the job folder reaches whichever host runs a job). Jobs are slowed or made to hang by the
test-only hooks of tests/job_process_hooks (MLJOB_FAULT), in the job processes.

Needs a Chromium binary (Debian: `apt-get install chromium`) and `pip install playwright`; never
`playwright install` (the system Chromium is used). Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.storage.queue import QueueClient
from devhost_process import FAST_HOST_JSON, DevHostProcess, app_copy, wait_for

from mljob import messages
from mljob.job import parse_config
from mljob.queue import JobQueue
from mljob.results_store import ResultsFileStore
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent
HOOKS = Path(__file__).resolve().parent / "job_process_hooks"
SCREENSHOT = REPO / "docs" / "console.png"
pytestmark = pytest.mark.slow  # real hosts, job processes and a browser: `make test-fast` leaves it out
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
expect = playwright_api.expect

KEY = "console-key-" + uuid.uuid4().hex
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
GENES = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
WAIT_MS = 30_000


class World:
    """The jobs folder, the page's host (`host`, its queue `queue`) and the second host (`hanger`)."""

    def __init__(self, tmp: Path, azurite: Any, data_path: Path) -> None:
        (tmp / "jobs").mkdir()
        self.store = ResultsFileStore(tmp / "jobs")
        self.connection = azurite.connection_string
        suffix = uuid.uuid4().hex[:8]
        self.queue = JobQueue(self.connection, f"jobprocessing-{suffix}")
        self.hang_queue = JobQueue(self.connection, f"hanging-{suffix}")
        for queue in (self.queue, self.hang_queue):
            queue.ensure()
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("MLJOB_FUNCTION_KEY", "MLJOB_FAULT")},
            "DATA_PATH": str(data_path),
            "JOBS_PATH": str(self.store.root),
            "QUEUECONNECTIONSTRING": self.connection,
            "MLJOB_FUNCTION_KEY": KEY,
            "MESSAGE_LEASE_SECONDS": "5",
            "LEASE_STALE_SECONDS": "5",
            "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
        }
        app = app_copy(tmp / "app", FAST_HOST_JSON)
        self.hosts: list[DevHostProcess] = []
        self.host = self._start(tmp, app, env, self.queue.name, "fitting|sleep|6|slow-job")
        self.hanger = self._start(tmp, app, env, self.hang_queue.name, "fitting|hang||hang-job")

    def _start(self, tmp: Path, app: Path, env: dict[str, str], queue: str, fault: str) -> DevHostProcess:
        host = DevHostProcess(tmp, {**env, "QUEUE_NAME": queue, "MLJOB_FAULT": fault}, app)
        self.hosts.append(host)
        return host

    @property
    def url(self) -> str:
        return self.host.url

    def job(self, name: str, genes: list[str] = GENES) -> str:
        self.store.create_job(parse_config({"jobname": name, "num_nodes": 10}), genes)
        return name

    def post(self, path: str, body: dict[str, Any] | None = None, host: DevHostProcess | None = None) -> Any:
        url = f"{(host or self.host).url}/api/{path}"
        return requests.post(url, json=body, headers={"x-functions-key": KEY}, timeout=60)

    def enqueue(self, name: str, host: DevHostProcess | None = None) -> None:
        answer = self.post("enqueue", {"jobname": name}, host)
        assert answer.status_code == 202, answer.text

    def status(self, name: str) -> Any:
        return self.store.read_status(name)

    def wait_status(self, name: str, *states: State, timeout: float = 60) -> None:
        wait_for(lambda: self.status(name).status in states, timeout, f"job {name} to be {'/'.join(states)}")

    def poison(self, name: str) -> None:
        """`name` as a job whose every try failed: marked failed, its message on the poison queue."""
        self.store.update_status(name, State.FAILED, "failed on each of 3 tries: the job process died of SIGKILL")
        QueueClient.from_connection_string(self.connection, self.queue.poison_name).send_message(messages.to_wire(name))

    def close(self) -> None:
        for host in self.hosts:
            if host.proc.poll() is None:
                host.kill()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, azurite: Any, data_path: Path) -> Iterator[World]:
    """Both hosts, and jobs in most states: completed, failed (for real), created, cancelled, running (hanging on
    the second host), queued (behind it) and poisoned."""
    world = World(tmp_path_factory.mktemp("console"), azurite, data_path)
    try:
        for name in ("done-alpha", "done-beta", "few-genes"):
            world.enqueue(world.job(name, GENES if name != "few-genes" else GENES[:3]))
        world.enqueue(world.job("hang-job"), world.hanger)
        world.wait_status("hang-job", State.RUNNING)
        world.enqueue(world.job("later-job"), world.hanger)  # queued behind hang-job
        world.job("waiting-job")
        world.job("stopped-job")
        assert world.post("jobs/stopped-job/cancel").status_code == 200
        world.poison(world.job("poisoned-job"))
        for name in ("done-alpha", "done-beta", "few-genes"):
            world.wait_status(name, State.COMPLETED, State.FAILED)
        assert world.status("done-beta").status is State.COMPLETED
        assert world.status("few-genes").status is State.FAILED
        wait_for(lambda: world.status("hang-job").progress.step == "fitting", 60, "hang-job to hang at fitting")
        yield world
    finally:
        world.close()


class Visit:
    """A browser context on the console: records every request (of every tab), dialog and script error; a
    request off the loopback host is refused (and still recorded)."""

    def __init__(self, browser: Any, world: World) -> None:
        self.world = world
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=False)
        origin = world.url.rstrip("/")
        self.context.route(re.compile(rf"^(?!{re.escape(origin)}/).*"), lambda route: route.abort())
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.watch(self.page)

    def watch(self, page: Any) -> None:
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def script_errors(self) -> list[str]:
        """Errors but Chromium's own line for each answer of 4xx (401, 404, 409 are answers the page shows)."""
        return [e for e in self.errors if not e.startswith("Failed to load resource: the server responded")]

    def open(self, query: str = f"?code={KEY}") -> Any:
        return self.page.goto(f"{self.world.url}/api/console{query}", wait_until="load")

    def row(self, name: str) -> Any:
        return self.page.locator(f'#jobs tbody tr[data-job="{name}"]')

    def badge(self, name: str) -> Any:
        return self.row(name).locator(".badge")

    def act(self, name: str, action: str, expected_status: int) -> None:
        """Click a job's action button, confirm in the dialog, and see the app's answer in the action list."""
        self.row(name).locator(f'button[data-action="{action}"]').click()
        dialog = self.page.locator("dialog#confirm")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(name)
        dialog.locator("#confirm-yes").click()
        expect(dialog).to_be_hidden()
        expect(self.page.locator("#activity li").first).to_contain_text(f"HTTP {expected_status}", timeout=WAIT_MS)

    def close(self) -> None:
        self.context.close()
        hosts = {urlsplit(url).hostname for url in self.requests}
        assert hosts <= {"127.0.0.1"}, self.requests  # nothing left the loopback host
        assert not self.dialogs, self.dialogs  # no alert(), confirm() or prompt() ever opened
        assert not self.script_errors(), self.errors  # no script error, no CSP violation ("Refused to ...")


@pytest.fixture
def visit(browser: Any, world: World) -> Iterator[Visit]:
    visit = Visit(browser, world)
    yield visit
    visit.close()


def shown_jobs(visit: Visit) -> list[str]:
    return visit.page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)")


def test_the_page_lists_the_jobs_and_the_queue(visit: Visit, world: World):
    answer = visit.open()
    assert answer.status == 200 and answer.headers["content-security-policy"].startswith("default-src 'none'")
    for name, status in [
        ("done-alpha", "completed"),
        ("done-beta", "completed"),
        ("few-genes", "failed"),
        ("hang-job", "running"),
        ("later-job", "queued"),
        ("waiting-job", "created"),
        ("stopped-job", "cancelled"),
        ("poisoned-job", "failed"),
    ]:
        expect(visit.badge(name)).to_have_text(status, timeout=WAIT_MS)
    assert shown_jobs(visit)[:2] == ["poisoned-job", "stopped-job"]  # newest first
    expect(visit.row("few-genes").locator(".message")).to_contain_text("genes")  # why it failed, in words
    expect(visit.row("done-alpha").locator(".bar")).to_have_attribute("aria-valuenow", "100")
    expect(visit.row("hang-job").locator(".step")).to_have_text("fitting · 20%")
    expect(visit.page.locator("#poison-count")).to_have_text("1")
    expect(visit.page.locator("#queue-name")).to_have_text(world.queue.name)
    expect(visit.page.locator("#poison-table tbody tr")).to_have_count(1)
    expect(visit.page.locator("#poison-table tbody")).to_contain_text("poisoned-job")
    # actions by state: a report for completed jobs, cancel for unfinished ones, re-run for ended ones
    buttons = {
        name: visit.row(name).locator("button").evaluate_all("bs => bs.map(b => b.dataset.action)")
        for name in ("done-alpha", "few-genes", "hang-job", "waiting-job", "stopped-job", "poisoned-job")
    }
    assert buttons == {
        "done-alpha": ["report", "log"],
        "few-genes": ["log", "rerun"],
        "hang-job": ["log", "cancel"],
        "waiting-job": ["log", "cancel"],
        "stopped-job": ["log", "rerun"],
        "poisoned-job": ["log", "rerun", "requeue"],
    }


def test_the_log_panel_and_the_report(visit: Visit, world: World):
    visit.open()
    visit.row("done-alpha").locator('button[data-action="log"]').click()
    panel = visit.page.locator("#log-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#log-job")).to_have_text("done-alpha")
    expect(panel.locator("pre")).to_contain_text("done-alpha", timeout=WAIT_MS)
    tail = world.store.read_log("done-alpha").splitlines()[-1]
    expect(panel.locator("pre")).to_contain_text(tail)
    panel.locator("#log-close").click()
    expect(panel).to_be_hidden()

    with visit.context.expect_page() as opened:
        visit.row("done-alpha").locator('button[data-action="report"]').click()
    report = opened.value
    visit.watch(report)
    report.wait_for_load_state("load")
    assert urlsplit(report.url).path == "/api/jobs/done-alpha/report"
    assert report.title() == "GenePlexus report: done-alpha"
    report.close()


def test_the_screenshot_for_the_readme(visit: Visit, world: World):
    """docs/console.png: jobs in most states (one running, one queued, a poisoned one), at 1280x800."""
    visit.open()
    expect(visit.badge("hang-job")).to_have_text("running", timeout=WAIT_MS)
    expect(visit.badge("later-job")).to_have_text("queued")
    expect(visit.page.locator("#poison-count")).to_have_text("1")
    visit.page.evaluate("document.fonts.ready")
    shot = visit.page.screenshot(full_page=False)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("MLJOB_WRITE_SCREENSHOTS"):  # MLJOB_WRITE_SCREENSHOTS=1 pytest ... renews docs/console.png
        SCREENSHOT.write_bytes(shot)


def test_a_filter_narrows_the_list(visit: Visit, world: World):
    visit.open()
    expect(visit.badge("done-alpha")).to_have_text("completed", timeout=WAIT_MS)
    everything = shown_jobs(visit)
    visit.page.locator('#status-filter input[value="completed"]').check()
    expect(visit.page.locator("#jobs tbody tr")).to_have_count(2, timeout=WAIT_MS)
    assert sorted(shown_jobs(visit)) == ["done-alpha", "done-beta"]
    visit.page.locator('#status-filter input[value="failed"]').check()  # two statuses: either
    expect(visit.page.locator("#jobs tbody tr")).to_have_count(4, timeout=WAIT_MS)
    assert sorted(shown_jobs(visit)) == ["done-alpha", "done-beta", "few-genes", "poisoned-job"]
    visit.page.locator("#prefix").fill("done-b")  # and a name prefix
    expect(visit.page.locator("#jobs tbody tr")).to_have_count(1, timeout=WAIT_MS)
    assert shown_jobs(visit) == ["done-beta"]
    visit.page.locator("#prefix").fill("")
    for box in ("completed", "failed"):
        visit.page.locator(f'#status-filter input[value="{box}"]').uncheck()
    expect(visit.page.locator("#jobs tbody tr")).to_have_count(len(everything), timeout=WAIT_MS)


def test_a_running_jobs_progress_bar_moves(visit: Visit, world: World):
    world.enqueue(world.job("slow-job"))
    visit.open()
    row, bar = visit.row("slow-job"), visit.row("slow-job").locator(".bar")
    fill = bar.locator(".fill")
    expect(bar).to_have_attribute("aria-valuenow", "20", timeout=WAIT_MS)  # resting 6 s at fitting
    expect(visit.badge("slow-job")).to_have_text("running")
    expect(row.locator(".step")).to_have_text("fitting · 20%")
    assert fill.evaluate("e => e.style.width") == "20%"
    row.evaluate("r => { r.dataset.seen = 'before'; }")  # a mark on this very row element
    expect(bar).not_to_have_attribute("aria-valuenow", "20", timeout=WAIT_MS)
    expect(visit.badge("slow-job")).to_have_text("completed", timeout=WAIT_MS)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    assert fill.evaluate("e => e.style.width") == "100%"
    assert row.get_attribute("data-seen") == "before"  # updated in place: the same row, no reload
    visit.page.wait_for_timeout(800)  # the bar's width eases in
    whole, filled = bar.bounding_box(), fill.bounding_box()
    assert whole and filled and filled["width"] == pytest.approx(whole["width"], abs=1), (whole, filled)
    assert world.status("slow-job").status is State.COMPLETED


def test_cancel_and_rerun_from_the_page(visit: Visit, world: World):
    visit.open()
    expect(visit.badge("hang-job")).to_have_text("running", timeout=WAIT_MS)
    # a dialog kept closed sends nothing
    visit.row("hang-job").locator('button[data-action="cancel"]').click()
    visit.page.locator("#confirm-no").click()
    expect(visit.page.locator("dialog#confirm")).to_be_hidden()
    assert world.status("hang-job").status is State.RUNNING

    visit.act("hang-job", "cancel", 200)  # runs on the other host: the cancel marker stops it
    expect(visit.page.locator("#activity li").first).to_contain_text("cancelled by request")
    expect(visit.badge("hang-job")).to_have_text("cancelled", timeout=WAIT_MS)
    assert world.status("hang-job").status is State.CANCELLED

    visit.act("hang-job", "rerun", 202)  # on the page's host this time, where it does not hang
    expect(visit.badge("hang-job")).to_have_text("completed", timeout=WAIT_MS)
    status = world.status("hang-job")
    assert status.status is State.COMPLETED and status.attempt == 2

    visit.act("waiting-job", "cancel", 200)  # a created job is cancelled at once
    expect(visit.badge("waiting-job")).to_have_text("cancelled", timeout=WAIT_MS)
    expect(visit.row("waiting-job").locator('button[data-action="rerun"]')).to_be_visible()


def test_a_poisoned_job_is_requeued_from_the_page(visit: Visit, world: World):
    visit.open()
    expect(visit.page.locator("#poison-count")).to_have_text("1", timeout=WAIT_MS)
    visit.act("poisoned-job", "requeue", 202)
    expect(visit.badge("poisoned-job")).to_have_text("completed", timeout=WAIT_MS)
    expect(visit.page.locator("#poison-count")).to_have_text("0", timeout=WAIT_MS)
    expect(visit.page.locator("#poison-box")).to_be_hidden()
    assert world.status("poisoned-job").status is State.COMPLETED
    assert world.queue.peek_poison() == []


def test_job_text_is_shown_as_text(visit: Visit, world: World):
    name = world.job("xss-job")
    world.store.update_status(name, State.FAILED, XSS)
    visit.open()
    message = visit.row(name).locator(".message")
    expect(message).to_have_text(XSS, timeout=WAIT_MS)  # the characters, visible
    expect(message).to_be_visible()
    assert visit.page.locator("#jobs tbody script, #jobs tbody img").count() == 0
    visit.page.wait_for_timeout(500)
    assert not [url for url in visit.requests if urlsplit(url).path.endswith("/x")]  # no <img src=x> was made
    # Visit.close: no dialog opened (no alert), no script error


def test_more_pages_on_with_the_cursor(visit: Visit, world: World):
    for i in range(55):
        world.job(f"bulk-{i:02d}", GENES[:20])
    visit.open()
    visit.page.locator("#prefix").fill("bulk-")
    visit.page.locator("#prefix").press("Enter")  # applied at once (typing alone waits 0.3 s for more)
    rows = visit.page.locator("#jobs tbody tr")
    expect(rows).to_have_count(50, timeout=WAIT_MS)  # one page
    assert shown_jobs(visit)[0] == "bulk-54"
    visit.page.locator("#more").click()
    expect(rows).to_have_count(55, timeout=WAIT_MS)
    expect(visit.page.locator("#more")).to_be_hidden()
    visit.page.wait_for_timeout(3500)  # a poll later: both pages are still shown, in order
    assert shown_jobs(visit) == [f"bulk-{i:02d}" for i in reversed(range(55))]


def test_without_the_key_the_page_shows_no_data(visit: Visit, world: World):
    for query in ("", "?code=wrong-key"):  # the host refuses the page itself
        answer = visit.open(query)
        assert answer.status == 401 and "key" in json.loads(answer.text())["error"]
        assert visit.page.locator("#jobs").count() == 0

    # the page served (the key in a header of that one request only), its calls without a valid key
    visit.page.route(
        re.compile(r".*/api/console(\?.*)?$"),
        lambda route: route.continue_(headers={**route.request.headers, "x-functions-key": KEY}),
    )
    for query in ("", "?code=wrong-key"):
        assert visit.open(query).status == 200
        auth = visit.page.locator("#auth")
        expect(auth).to_be_visible(timeout=WAIT_MS)
        expect(auth).to_contain_text("This console needs the function key")
        expect(auth).to_contain_text("/api/console?code=<key>")
        expect(visit.page.locator("#jobs tbody tr")).to_have_count(0)
        expect(visit.page.locator("#queue-count")).to_have_text("—")
        expect(visit.page.locator("#poison-box")).to_be_hidden()
        assert "done-alpha" not in visit.page.locator("body").inner_text()
        assert visit.page.locator("#refresh").is_disabled()
    assert KEY not in visit.page.content()  # the key never entered the page
