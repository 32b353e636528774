"""report.html from a real job on synthetic data: valid HTML5, self-contained, complete, escaped."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mljob.errors import JobNotFound, JobNotReady
from mljob.job import parse_config
from mljob.report import REPORT_FILE, render_report, write_report
from mljob.results_store import ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent
JOB = "report-job"
RESULTS = ["Human-Combined", "Mouse-GO"]
NCBI = re.compile(r"https://www\.ncbi\.nlm\.nih\.gov/gene/\d+")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects the tags of a page and checks that every element is closed in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.doctype: str | None = None
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack[-2:] == ["head", "title"]:
            self.title += data
        self.text.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items()))


def section(report: str, anchor: str) -> str:
    match = re.search(rf'<section id="{re.escape(anchor)}"[^>]*>.*?</section>', report, re.S)
    assert match, f"no section #{anchor}"
    return match.group(0)


def tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> Path:
    """One completed two-species job (Human-Combined, Mouse-GO) on the demo genes."""
    store = ResultsFileStore(tmp_path_factory.mktemp("report-jobs"))
    genes = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
    config = parse_config({"jobname": JOB, "sp_res": ["Human", "Mouse"], "gsc_res": ["Combined", "GO"]})
    store.create_job(config, genes)
    status = run_geneplexus(JOB, store, data_path)
    assert status.status is State.COMPLETED, status.message
    return store.job_path(JOB)


@pytest.fixture(scope="module")
def report(job: Path) -> str:
    return write_report(job).read_text(encoding="utf-8")


def test_write_report_writes_results_report_html_atomically(job: Path, report: str):
    path = write_report(job)
    assert path == job / "results" / REPORT_FILE and path.stat().st_size > 10_000
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")], "temporary files left"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_is_valid_html5(report: str):
    page = Page(report)
    assert page.doctype is not None and page.doctype.lower() == "doctype html"
    assert not page.errors and not page.stack, (page.errors, page.stack)
    assert page.count("html", lang="en") == 1 and page.count("head") == 1 and page.count("body") == 1
    assert page.count("meta", charset="utf-8") == 1
    assert page.title == f"GenePlexus report: {JOB}"
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"


def test_report_is_self_contained(report: str):
    urls = re.findall(r"https?://[^\s\"'<>)]+", report)
    assert urls and all(NCBI.fullmatch(u) for u in urls), sorted(set(urls) - set(filter(NCBI.fullmatch, urls)))
    page = Page(report)
    ids = {a["id"] for _, a in page.tags if a.get("id")}
    for tag, attrs in page.tags:
        href = attrs.get("href")
        if href is not None:
            assert NCBI.fullmatch(href) or (href.startswith("#") and href[1:] in ids), (tag, href)
        assert "src" not in attrs, (tag, attrs)
    assert not re.search(r"\bsrc\s*=", report, re.I)
    assert page.count("script") == 1 and not page.count("link")
    for tag in ("img", "iframe", "object", "embed", "link", "base"):
        assert not page.count(tag), tag
    assert "@import" not in report and "url(" not in report


def test_header_and_parameters(report: str, job: Path):
    assert f"<h1>GenePlexus results <span class=jobname>{JOB}</span></h1>" in report
    assert "Status: <strong>completed</strong>" in report
    params = section(report, "parameters")
    for label, value in [
        ("Network", "STRING"),
        ("Result species", "Human, Mouse"),
        ("Result gene sets", "Combined, GO"),
        ("Cross-validation folds", "3"),
        ("Top genes shown", "50"),
    ]:
        assert f"<th scope=row>{label}</th><td><code>{value}</code></td>" in params, label
    assert "callback_url" not in params
    assert "geneplexus 3.0.1" in params  # software versions from job_info.json
    nav = Page(report).tags
    assert [a["href"] for t, a in nav if t == "a" and a.get("href", "").startswith("#")][:5] == [
        "#parameters",
        "#input-genes",
        "#cross-validation",
        "#result-Human-Combined",
        "#result-Mouse-GO",
    ]


def test_conversion_table_shows_found_and_not_found_genes(report: str, job: Path):
    genes = (job / "input_genes.txt").read_text().split()
    rows = tsv(job / "results" / "df_convert_out.tsv")
    part = section(report, "input-genes")
    assert (
        f"You gave <strong>{len(genes)}</strong> genes: <strong>{len(genes) - 2}</strong> were recognised as "
        f"Human genes, <strong>2</strong> were not found, and <strong>{len(genes) - 2}</strong> are in the "
        "STRING network used for training." in part
    )
    assert "Not found: <code>HSYN0</code>, <code>NOTAGENE1</code>" in part
    for gene in ("HSYN0", "NOTAGENE1"):
        assert f"<tr class=missing><td>{gene}</td><td class=notfound>not found</td>" in part
    for column in ("Your ID", "Entrez ID", "Gene name", "In STRING?", "In BioGRID?", "In IMP?"):
        assert f"<button type=button>{column}</button>" in part
    table = Page(part)
    assert table.count("tr") == len(rows) + 1
    assert table.count("tr", **{"class": "missing"}) == 2
    first = rows[0]
    assert f'<a href="https://www.ncbi.nlm.nih.gov/gene/{first["Entrez ID"]}"' in part
    assert "trained with <strong>26</strong> of your genes" in part


def test_cross_validation_scores_and_their_meaning(report: str, job: Path):
    info = json.loads((job / "job_info.json").read_text())
    part = section(report, "cross-validation")
    for i, score in enumerate(info["avgps"], start=1):
        assert f"<th scope=row>Fold {i}</th><td class=num>{score:.2f}</td>" in part
    mean = info["avgps_mean"]
    assert f"Mean score <strong>{mean:.2f}</strong>" in part and f"<strong>{2**mean:.1f}×</strong>" in part
    assert "log2(auPRC / prior)" in part and "no better than" in part and "doubles the precision" in part
    assert "skipped" not in part


def test_each_result_has_its_top_genes_with_ncbi_links(report: str, job: Path):
    top = json.loads((job / "results" / "top_genes.json").read_text())["results"]
    assert list(top) == RESULTS
    for key in RESULTS:
        part = section(report, f"result-{key}")
        genes_table = re.search(r'<table class="sortable genes">.*?</table>', part, re.S).group(0)
        assert Page(genes_table).count("tr") == len(top[key]) + 1 == 51
        symbols = re.findall(
            r"<td class=symbol><a href=\"https://www\.ncbi\.nlm\.nih\.gov/gene/(\d+)\"[^>]*>([^<]+)</a>", part
        )
        assert symbols == [(g["entrez"], g["symbol"]) for g in top[key]], key
        for gene in top[key][:10]:
            assert f">{gene['symbol']}</a>" in part
        known = sum(g["known"] for g in top[key])
        assert genes_table.count("'badge known'>Known<") == known
        assert genes_table.count("'badge novel'>Novel<") == len(top[key]) - known
        for header in ("Symbol", "Name", "Probability", "Z-score", "Known/Novel"):
            assert f"<button type=button>{header}</button>" in genes_table
    assert "the Mouse orthologs of your genes" in section(report, "result-Mouse-GO")


def test_each_result_has_a_network_picture_with_one_circle_per_node(report: str, job: Path):
    for key in RESULTS:
        folder = job / "results" / "All-Genes" / key
        graph = json.loads((folder / "graph.json").read_text())
        part = section(report, f"result-{key}")
        assert part.count("<svg") == 1 and part.count("</svg>") == 1
        svg = Page(re.search(r"<svg.*?</svg>", part, re.S).group(0))
        circles = [a for t, a in svg.tags if t == "circle"]
        assert len(circles) == len(graph["nodes"]) == 50
        assert {c["data-entrez"] for c in circles} == {n["id"] for n in graph["nodes"]}
        known = {n["id"] for n in graph["nodes"] if n["class"] == "Known"}
        assert {c["data-entrez"] for c in circles if c["class"] == "node known"} == known
        links = {frozenset((link["source"], link["target"])) for link in graph["links"]}
        assert svg.count("line") == len(links) > 0
        isolated = (folder / "isolated_genes_sym.txt").read_text().split()
        labels = set(svg.text)
        assert {n["symbol"] for n in graph["nodes"]} <= labels and set(isolated) <= labels
        assert "Known (your genes)" in labels and "Novel (candidates)" in labels
        widths = {float(a["stroke-width"]) for t, a in svg.tags if t == "line"}
        assert len(widths) > 1, "edge width should follow the weight"
        for _, attrs in svg.tags:
            for name in ("cx", "cy", "x1", "y1", "x2", "y2"):
                if name in attrs:
                    assert 0 <= float(attrs[name]) <= 900, (name, attrs)


def test_each_result_lists_the_20_most_similar_terms(report: str, job: Path):
    terms = json.loads((job / "results" / "top_terms.json").read_text())["results"]
    for key in RESULTS:
        part = section(report, f"result-{key}")
        table = re.search(r'<table class="sortable terms">.*?</table>', part, re.S).group(0)
        shown = terms[key][:20]
        assert Page(table).count("tr") == len(shown) + 1
        names = re.findall(r"<td><code>([^<]+)</code></td><td>([^<]+)</td>", table)
        assert names == [(t["id"], t["name"]) for t in shown]
        for header in ("Type", "ID", "Name", "Similarity", "Z-score"):
            assert f"<button type=button>{header}</button>" in table


def test_skipped_cross_validation_is_said_in_words(job: Path):
    config = json.loads((job / "job_config.json").read_text())
    info = json.loads((job / "job_info.json").read_text())
    results = job / "results"
    off = render_report({**config, "cross_validate": False}, {**info, "avgps": [None] * 3}, results)
    part = section(off, "cross-validation")
    assert "Cross-validation was skipped</strong>: it was turned off" in part and "<table" not in part
    few = render_report(config, {**info, "avgps": None, "avgps_mean": None}, results)
    part = section(few, "cross-validation")
    assert "Cross-validation was skipped" in part and "fewer than 15 of your genes" in part


def test_renders_from_a_staging_folder_without_job_info(job: Path, tmp_path: Path):
    staging = tmp_path / ".staging-x"
    shutil.copytree(job / "results", staging)
    (staging / REPORT_FILE).unlink(missing_ok=True)
    config = json.loads((job / "job_config.json").read_text())
    page = render_report(config, None, staging)
    info = json.loads((job / "job_info.json").read_text())
    assert f"Mean score <strong>{info['avgps_mean']:.2f}</strong>" in page  # from model_level_config.json
    assert all(f'id="result-{key}"' in page for key in RESULTS)
    assert "Status:" not in page and not Page(page).errors


def test_user_supplied_text_is_escaped(store: ResultsFileStore, data_path: Path, demo_genes: list[str]):
    store.create_job(parse_config({"jobname": "escape-job"}), [*demo_genes, "<b>x</b>", "a&b\"'"])
    assert run_geneplexus("escape-job", store, data_path).status is State.COMPLETED
    page = write_report(store.job_path("escape-job")).read_text(encoding="utf-8")
    assert "<b>x</b>" not in page.lower() and "&lt;b&gt;x&lt;/b&gt;" in page.lower()
    assert "<code>A&amp;B&quot;&#x27;</code>" in page  # GenePlexus upper-cases the IDs it cannot map
    parsed = Page(page)
    assert not parsed.count("b") and not parsed.errors
    assert "<B>X</B>" in " ".join(parsed.text).upper()  # shown as text


def test_term_names_and_symbols_from_results_are_escaped(job: Path, tmp_path: Path):
    results = tmp_path / "results"
    shutil.copytree(job / "results", results)
    folder = results / "All-Genes" / "Human-Combined"
    for name, column, value in [
        ("df_sim.tsv", "Name", "<script>alert(1)</script>"),
        ("df_probs.tsv", "Symbol", "<img src=x onerror=alert(1)>"),
    ]:
        rows = tsv(folder / name)
        rows[0][column] = value
        with (folder / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
    config = json.loads((job / "job_config.json").read_text())
    page = render_report(config, None, results)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    parsed = Page(page)
    assert parsed.count("script") == 1 and not parsed.count("img") and not parsed.errors


def test_write_report_needs_a_job_folder_with_results(store: ResultsFileStore, demo_genes: list[str], tmp_path: Path):
    with pytest.raises(JobNotFound):
        write_report(tmp_path / "nowhere")
    store.create_job(parse_config({"jobname": "not-run"}), demo_genes)
    with pytest.raises(JobNotReady, match="no results yet"):
        write_report(store.job_path("not-run"))


def test_importing_the_module_stays_light():
    code = (
        "import sys, mljob.report\n"
        "heavy = sorted({'pandas', 'numpy', 'networkx', 'geneplexus', 'sklearn'} & set(sys.modules))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_clustered_job_points_to_the_cluster_models(store: ResultsFileStore, data_path: Path, demo_genes: list[str]):
    genes = [*demo_genes, *(f"HSYN{i}" for i in range(100, 130))]
    params = {"clust_method": "louvain", "clust_min_size": 5, "min_num_pos": 5, "min_num_pos_cv": 5}
    store.create_job(parse_config({"jobname": "clustered", **params}), genes)
    assert run_geneplexus("clustered", store, data_path).status is State.COMPLETED
    page = write_report(store.job_path("clustered")).read_text(encoding="utf-8")
    clusters = sorted(p.name for p in (store.job_path("clustered") / "results").glob("Cluster-*"))
    assert clusters and f"split into {len(clusters)} clusters" in page and ", ".join(clusters) in page
    assert "<th scope=row>Clustering</th><td><code>louvain</code></td>" in page
