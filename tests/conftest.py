"""Shared pytest fixtures: an isolated home for pystow, synthetic backend data made once per session, Azurite,
a headless browser."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# geneplexus writes $PYSTOW_HOME/README.md on import; keep it out of the user's home.
os.environ.setdefault("PYSTOW_HOME", tempfile.mkdtemp(prefix="mljob-pystow-"))

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def data_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic backend data set (Human + Mouse), made once; tests must not change it."""
    from mljob.tools.synthetic_data import make_backend_data

    path = tmp_path_factory.mktemp("backend-data")
    make_backend_data(path)
    return path


@pytest.fixture(scope="session")
def slow_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data (Human only) big enough that a job runs for a few seconds: room to kill a host or stop
    Azurite mid-run, or to outlast WEB_WAIT_SECONDS. Made once; tests must not change it."""
    from mljob.tools.synthetic_data import make_backend_data

    path = tmp_path_factory.mktemp("slow-data")
    make_backend_data(path, species=["Human"], n_genes=4000, dim=256)
    return path


@pytest.fixture
def jobs_path(tmp_path: Path) -> Path:
    """An empty jobs folder."""
    path = tmp_path / "jobs"
    path.mkdir()
    return path


@pytest.fixture
def store(jobs_path: Path):
    """A ResultsFileStore over an empty jobs folder."""
    from mljob.results_store import ResultsFileStore

    return ResultsFileStore(jobs_path)


@pytest.fixture
def demo_genes() -> list[str]:
    """The bundled demo gene set (most of one community of the synthetic data, plus unknown symbols)."""
    return (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """A real Azurite for the whole session (in memory, free loopback ports); always stopped at the end.

    Has .connection_string, .queue_port, .stop(), .start() (same ports; starts empty) and `with azurite.outage():`.
    """
    from azurite import running_azurite  # tests/azurite.py

    with running_azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's Chromium, headless, driven by Playwright, for one test module (each test opens its own
    context; not for the session: Playwright's sync API keeps an event loop running in this thread, and later
    tests that call asyncio.run would fail). Needs a Chromium binary (Debian: `apt-get install chromium`) and
    `pip install playwright`, never `playwright install`; the test is skipped, with the reason, when either is
    missing."""
    if CHROMIUM is None:
        pytest.skip("no Chromium binary found (Debian: apt-get install chromium)")
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def fault(monkeypatch):
    """fault(step, action, argument[, jobname]): the next job processes of this test do `action` when a
    job's status.json shows `step` (test-only hooks, tests/job_process_hooks); fault(None) ends that.
    Job processes are started afresh either way."""
    from mljob import supervisor

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "job_process_hooks"))

    def set_fault(step: str | None, action: str = "", argument: str = "", jobname: str = "") -> None:
        supervisor.shutdown()
        if step is None:
            monkeypatch.delenv("MLJOB_FAULT", raising=False)
        else:
            monkeypatch.setenv("MLJOB_FAULT", "|".join([step, action, argument, *([jobname] if jobname else [])]))

    yield set_fault
    supervisor.shutdown()


@pytest.fixture(autouse=True)
def _away_from_the_checkout(tmp_path_factory, monkeypatch) -> None:
    """Every test runs in a folder of its own: a local.settings.json that a developer made in the checkout
    (as the README shows) must not reach the tests' `mljob` commands."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
