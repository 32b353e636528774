"""The job report in a real browser (headless Chromium driven by Playwright): it renders, sorts, needs no network.

Needs a Chromium binary (Debian: `apt-get install chromium`) and `pip install playwright`; never
`playwright install` (the system Chromium is used). Skipped, with the reason, when either is missing.
Set MLJOB_REPORT_SCREENSHOT=/some/file.png to keep the screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mljob.job import parse_config
from mljob.report import write_report
from mljob.results_store import ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # a real browser (tests/conftest.py's `browser`): `make test-fast` leaves it out

GENES = "#result-Human-Combined table.genes"


def natural(text: str) -> list[Any]:
    """The order of JavaScript's localeCompare(..., {numeric: true, sensitivity: "base"}) for symbols like HSYN12."""
    return [(0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", text) if part]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> Path:
    """A completed demo job with its report written."""
    store = ResultsFileStore(tmp_path_factory.mktemp("browser-jobs"))
    genes = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
    store.create_job(parse_config({"jobname": "browser-job"}), genes)
    status = run_geneplexus("browser-job", store, data_path)
    assert status.status is State.COMPLETED, status.message
    return write_report(store, "browser-job").parent.parent


class Visit:
    """One page with the report open; records every request and every script error."""

    def __init__(self, browser: Any, url: str):
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        # anything but the file itself is recorded (by the listener) and refused: the test never reaches the net
        self.context.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.goto(url, wait_until="load")


@pytest.fixture
def visit(browser: Any, job: Path) -> Iterator[Visit]:
    visit = Visit(browser, (job / "results" / "report.html").as_uri())
    yield visit
    visit.context.close()


def first_symbol(page: Any) -> str:
    return page.locator(f"{GENES} tbody tr").first.locator("td.symbol").inner_text().strip()


def test_report_renders_tables_and_network_offline(visit: Visit, job: Path, tmp_path: Path):
    page = visit.page
    top = json.loads((job / "results" / "top_genes.json").read_text())["results"]["Human-Combined"]
    rows = page.locator(f"{GENES} tbody tr")
    assert rows.count() == len(top) == 50
    assert rows.first.is_visible() and rows.nth(49).locator("td.symbol").inner_text().strip() == top[-1]["symbol"]
    assert page.locator("#input-genes table tbody tr.missing").count() == 2
    assert page.locator("#result-Human-Combined table.terms tbody tr").count() == 20
    assert page.title() == "GenePlexus report: browser-job"

    svg = page.locator("#result-Human-Combined svg.network-svg")
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200, box
    circles = svg.locator("circle.node")
    assert circles.count() == 50
    node = circles.first.bounding_box()
    assert node is not None and node["width"] > 5 and node["height"] > 5, node
    assert svg.locator("line").count() > 0

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    if os.environ.get("MLJOB_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["MLJOB_REPORT_SCREENSHOT"])

    assert visit.requests == [page.url], visit.requests
    assert not visit.errors, visit.errors


def test_clicking_a_column_header_sorts_the_table(visit: Visit, job: Path):
    page = visit.page
    top = json.loads((job / "results" / "top_genes.json").read_text())["results"]["Human-Combined"]
    symbols = [g["symbol"] for g in top]
    header = page.locator(f"{GENES} thead th", has_text="Symbol")
    assert first_symbol(page) == symbols[0]

    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert first_symbol(page) == min(symbols, key=natural) != symbols[0]
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert first_symbol(page) == max(symbols, key=natural)

    probability = page.locator(f"{GENES} thead th", has_text="Probability")
    probability.locator("button").click()
    assert first_symbol(page) == min(top, key=lambda g: g["probability"])["symbol"]
    assert header.get_attribute("aria-sort") is None

    page.locator(f"{GENES} thead th", has_text="Rank").locator("button").click()
    shown = [s.strip() for s in page.locator(f"{GENES} tbody td.symbol").all_inner_texts()]
    assert shown == symbols
    assert visit.requests == [page.url] and not visit.errors, (visit.requests, visit.errors)
