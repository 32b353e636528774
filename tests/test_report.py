"""report.html from a real job on synthetic data: valid HTML5, self-contained, complete, escaped; the web files."""

from __future__ import annotations

import copy
import csv
import dataclasses
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mljob.errors import JobNotFound, JobNotReady, PathEscape
from mljob.job import parse_config
from mljob.network_layout import layout_network
from mljob.report import REPORT_FILE, ReportData, render_report, write_report
from mljob.result_files import INPUT_GENES_FILE, TOP_GENES_FILE, TOP_TERMS_FILE, WebFiles
from mljob.results_store import ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent
JOB = "report-job"
PARAMS = {"sp_res": ["Human", "Mouse"], "gsc_res": ["Combined", "GO"]}
RESULTS = ["Human-Combined", "Mouse-GO"]
NCBI = re.compile(r"https://www\.ncbi\.nlm\.nih\.gov/gene/\d+")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EVIL = "<script>alert('x')</script> & \"q\""
EVIL_ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;"


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


def without_run_facts(page: str) -> str:
    """The page without what may change after the run: the status lines of the header and the footer's time."""
    page = re.sub(r"<p class=(meta|message)>.*?</p>\n", "", page)
    return re.sub(r"Report made [0-9: -]+ UTC", "Report made (time)", page)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> tuple[ResultsFileStore, str]:
    """One completed two-species job (Human-Combined, Mouse-GO) on the demo genes, and the report of its run."""
    store = ResultsFileStore(tmp_path_factory.mktemp("report-jobs"))
    genes = (REPO / "mljob" / "tools" / "demo_genes.txt").read_text().split()
    store.create_job(parse_config({"jobname": JOB, **PARAMS}), genes)
    status = run_geneplexus(JOB, store, data_path)
    assert status.status is State.COMPLETED, status.message
    return store, store.result_path(JOB, REPORT_FILE).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def jobs(built: tuple[ResultsFileStore, str]) -> ResultsFileStore:
    return built[0]


@pytest.fixture(scope="module")
def job(jobs: ResultsFileStore) -> Path:
    return jobs.job_path(JOB)


@pytest.fixture(scope="module")
def report(jobs: ResultsFileStore) -> str:
    return write_report(jobs, JOB).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def data(jobs: ResultsFileStore) -> ReportData:
    return ReportData.from_store(jobs, JOB)


def test_write_report_writes_results_report_html_atomically(jobs: ResultsFileStore, job: Path, report: str):
    path = write_report(jobs, JOB)
    assert path == job / "results" / REPORT_FILE and path.stat().st_size > 10_000
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")], "temporary files left"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_is_the_same_at_run_time_and_from_the_store(built: tuple[ResultsFileStore, str], report: str):
    runtime = built[1]
    assert "Status:" not in runtime and "Status: <strong>completed</strong>" in report
    assert without_run_facts(runtime) == without_run_facts(report)


def test_from_web_and_from_store_hold_the_same_data(jobs: ResultsFileStore, data: ReportData):
    web = WebFiles(
        top_genes=jobs.read_result_json(JOB, TOP_GENES_FILE),
        top_terms=jobs.read_result_json(JOB, TOP_TERMS_FILE),
        graphs={key: jobs.read_result_json(JOB, f"All-Genes/{key}/graph.json") for key in RESULTS},
        input_genes=jobs.read_result_json(JOB, INPUT_GENES_FILE),
    )
    assert ReportData.from_web(data.config, data.info, web, data.status) == data
    assert data.config == jobs.read_config(JOB).model_dump(mode="json") and data.status["status"] == "completed"
    assert list(data.graphs) == RESULTS and data.info["results"] == RESULTS


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


def test_header_and_parameters(report: str):
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


def test_conversion_table_shows_found_and_not_found_genes(report: str, jobs: ResultsFileStore, job: Path):
    genes = (job / "input_genes.txt").read_text().split()
    inputs = jobs.read_result_json(JOB, INPUT_GENES_FILE)
    rows = inputs["df_convert_out"]
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
    assert f'<a href="https://www.ncbi.nlm.nih.gov/gene/{rows[0]["Entrez ID"]}"' in part
    assert "trained with <strong>26</strong> of your genes" in part
    summary = inputs["table_summary"]
    assert "; ".join(f"{n['Network']}: {n['PositiveGenes']} of {n['NetworkGenes']} genes" for n in summary) in part


def test_cross_validation_scores_and_their_meaning(report: str, jobs: ResultsFileStore):
    info = jobs.read_job_info(JOB)
    part = section(report, "cross-validation")
    for i, score in enumerate(info["avgps"], start=1):
        assert f"<th scope=row>Fold {i}</th><td class=num>{score:.2f}</td>" in part
    mean = info["avgps_mean"]
    assert f"Mean score <strong>{mean:.2f}</strong>" in part and f"<strong>{2**mean:.1f}×</strong>" in part
    assert "log2(auPRC / prior)" in part and "no better than" in part and "doubles the precision" in part
    assert "skipped" not in part


def test_each_result_has_its_top_genes_with_ncbi_links(report: str, jobs: ResultsFileStore, job: Path):
    top_genes = jobs.read_result_json(JOB, TOP_GENES_FILE)
    top = top_genes["results"]
    assert list(top) == RESULTS
    for key in RESULTS:
        part = section(report, f"result-{key}")
        ranked = len(tsv(job / "results" / "All-Genes" / key / "df_probs.tsv"))
        assert top_genes["ranked"][key] == ranked
        assert f"All {ranked} {key.split('-')[0]} genes of the network were ranked" in part
        genes_table = re.search(r'<table class="sortable genes">.*?</table>', part, re.S).group(0)
        assert Page(genes_table).count("tr") == len(top[key]) + 1 == 51
        symbols = re.findall(
            r"<td class=symbol><a href=\"https://www\.ncbi\.nlm\.nih\.gov/gene/(\d+)\"[^>]*>([^<]+)</a>", part
        )
        assert symbols == [(g["entrez"], g["symbol"]) for g in top[key]], key
        known = sum(g["known"] for g in top[key])
        assert genes_table.count("'badge known'>Known<") == known
        assert genes_table.count("'badge novel'>Novel<") == len(top[key]) - known
        for header in ("Symbol", "Name", "Probability", "Z-score", "Known/Novel"):
            assert f"<button type=button>{header}</button>" in genes_table
    assert "the Mouse orthologs of your genes" in section(report, "result-Mouse-GO")


def test_each_result_has_a_network_picture_with_one_circle_per_node(report: str, jobs: ResultsFileStore, job: Path):
    for key in RESULTS:
        graph = jobs.read_result_json(JOB, f"All-Genes/{key}/graph.json")
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
        isolated = (job / "results" / "All-Genes" / key / "isolated_genes_sym.txt").read_text().split()
        labels = set(svg.text)
        assert {n["symbol"] for n in graph["nodes"]} <= labels and set(isolated) <= labels
        assert "Known (your genes)" in labels and "Novel (candidates)" in labels
        widths = {float(a["stroke-width"]) for t, a in svg.tags if t == "line"}
        assert len(widths) > 1, "edge width should follow the weight"
        for _, attrs in svg.tags:
            for name in ("cx", "cy", "x1", "y1", "x2", "y2"):
                if name in attrs:
                    assert 0 <= float(attrs[name]) <= 900, (name, attrs)


def test_network_layout_is_pure_data():
    nodes = [
        {"id": str(i), "symbol": f"G{i}", "class": "Known" if i < 2 else "Novel", "probability": 0.9, "rank": i}
        for i in range(1, 7)
    ]
    links = [
        {"source": "1", "target": "2", "weight": 1.0},
        {"source": "2", "target": "3", "weight": 0.25},
        {"source": "1", "target": "1", "weight": 1.0},  # self-link: left out
        {"source": "1", "target": "99", "weight": 1.0},  # not a node: left out
    ]
    layout = layout_network({"nodes": nodes, "links": links})
    assert layout == layout_network({"nodes": nodes, "links": links}), "the same picture every time"
    assert [n.id for n in layout.nodes] == [str(i) for i in range(1, 7)]
    assert [n.id for n in layout.isolated] == ["4", "5", "6"]
    assert [(e.source.id, e.target.id, e.weight) for e in layout.edges] == [("2", "3", 0.25), ("1", "2", 1.0)]
    assert layout.edges[0].width < layout.edges[1].width and layout.edges[0].opacity < layout.edges[1].opacity
    assert layout.width == 900 and all(0 < n.x < 900 and 0 < n.y < layout.height for n in layout.nodes)
    assert min(n.y for n in layout.isolated) > max(n.y for n in layout.nodes if n not in layout.isolated)
    assert layout.nodes[0].known and not layout.nodes[2].known


def test_each_result_lists_the_20_most_similar_terms(report: str, jobs: ResultsFileStore):
    terms = jobs.read_result_json(JOB, TOP_TERMS_FILE)["results"]
    for key in RESULTS:
        part = section(report, f"result-{key}")
        table = re.search(r'<table class="sortable terms">.*?</table>', part, re.S).group(0)
        shown = terms[key][:20]
        assert Page(table).count("tr") == len(shown) + 1
        names = re.findall(r"<td><code>([^<]+)</code></td><td>([^<]+)</td>", table)
        assert names == [(t["id"], t["name"]) for t in shown]
        for header in ("Type", "ID", "Name", "Similarity", "Z-score"):
            assert f"<button type=button>{header}</button>" in table


def test_skipped_cross_validation_is_said_in_words(data: ReportData):
    off = dataclasses.replace(data, config={**data.config, "cross_validate": False}, info={**data.info, "avgps": None})
    part = section(render_report(off), "cross-validation")
    assert "Cross-validation was skipped</strong>: it was turned off" in part and "<table" not in part
    few = dataclasses.replace(data, info={**data.info, "avgps": None, "avgps_mean": None})
    part = section(render_report(few), "cross-validation")
    assert "Cross-validation was skipped" in part and "fewer than 15 of your genes" in part


def test_renders_without_job_info_status_or_the_files_of_older_jobs(data: ReportData):
    top_genes = {k: v for k, v in data.top_genes.items() if k != "ranked"}  # made before "ranked" existed
    page = render_report(dataclasses.replace(data, info=None, status=None, input_genes=None, top_genes=top_genes))
    assert "Cross-validation scores are not available" in section(page, "cross-validation")
    assert "conversion table (input_genes.json) is not available" in section(page, "input-genes")
    assert "All Human genes of the network were ranked" in section(page, "result-Human-Combined")
    assert all(f'id="result-{key}"' in page for key in RESULTS)
    assert "Status:" not in page and "clusters, each with its own model" not in page and not Page(page).errors


def test_user_supplied_text_is_escaped(store: ResultsFileStore, data_path: Path, demo_genes: list[str]):
    store.create_job(parse_config({"jobname": "escape-job"}), [*demo_genes, "<b>x</b>", "a&b\"'"])
    assert run_geneplexus("escape-job", store, data_path).status is State.COMPLETED
    page = write_report(store, "escape-job").read_text(encoding="utf-8")
    assert "<b>x</b>" not in page.lower() and "&lt;b&gt;x&lt;/b&gt;" in page.lower()
    assert "<code>A&amp;B&#34;&#39;</code>" in page  # GenePlexus upper-cases the IDs it cannot map
    parsed = Page(page)
    assert not parsed.count("b") and not parsed.errors
    assert "<B>X</B>" in " ".join(parsed.text).upper()  # shown as text


def test_term_names_symbols_and_status_messages_are_escaped(data: ReportData):
    key = "Human-Combined"
    genes, terms, graphs = copy.deepcopy(data.top_genes), copy.deepcopy(data.top_terms), copy.deepcopy(data.graphs)
    genes["results"][key][0].update(symbol=EVIL, name=EVIL)
    terms["results"][key][0]["name"] = EVIL
    graphs[key]["nodes"][0]["symbol"] = EVIL
    page = render_report(
        dataclasses.replace(
            data, top_genes=genes, top_terms=terms, graphs=graphs, status={**data.status, "message": EVIL}
        )
    )
    assert "<script>alert" not in page
    assert f"<p class=message>{EVIL_ESCAPED}</p>" in page
    part = section(page, f"result-{key}")
    assert f">{EVIL_ESCAPED}</a></td><td>{EVIL_ESCAPED}</td>" in part  # symbol and name in the genes table
    assert f"</code></td><td>{EVIL_ESCAPED}</td>" in part  # term name
    assert re.search(rf"<text [^>]*>{re.escape(EVIL_ESCAPED)}</text>", part)  # the network's label
    parsed = Page(page)
    assert parsed.count("script") == 1 and not parsed.errors
    assert EVIL in parsed.text  # shown as text


def test_write_report_needs_a_job_with_results(store: ResultsFileStore, demo_genes: list[str]):
    with pytest.raises(JobNotFound):
        write_report(store, "nowhere")
    store.create_job(parse_config({"jobname": "not-run"}), demo_genes)
    with pytest.raises(JobNotReady, match="job not-run has no results yet; a report needs a completed job"):
        write_report(store, "not-run")


def test_write_report_refuses_a_report_that_links_out_of_the_job(jobs: ResultsFileStore, job: Path, tmp_path: Path):
    outside = tmp_path / "outside.html"
    outside.write_text("not yours")
    path = job / "results" / REPORT_FILE
    saved = path.read_bytes()
    path.unlink()
    path.symlink_to(outside)
    try:
        with pytest.raises(PathEscape):
            write_report(jobs, JOB)
        assert outside.read_text() == "not yours" and path.is_symlink()
    finally:
        path.unlink()
        path.write_bytes(saved)


def test_web_files_hold_geneplexus_own_values(jobs: ResultsFileStore, data_path: Path, demo_genes: list[str]):
    """top_genes.json's "ranked" and input_genes.json are GenePlexus's numbers for the same genes, unchanged."""
    from geneplexus import GenePlexus

    gp = GenePlexus(
        file_loc=str(data_path),
        net_type="STRING",
        features="SixSpeciesN2V",
        sp_trn="Human",
        gsc_trn="Combined",
        sp_res=PARAMS["sp_res"],
        gsc_res=PARAMS["gsc_res"],
        log_level="WARNING",
    )
    gp.load_genes(list(demo_genes))
    gp.fit(cross_validate=False)
    gp.predict()
    ranked = {key: len(result.df_probs) for key, result in gp.model_info["All-Genes"].results.items()}
    assert jobs.read_result_json(JOB, TOP_GENES_FILE)["ranked"] == ranked
    inputs = jobs.read_result_json(JOB, INPUT_GENES_FILE)
    assert inputs["input_count"] == gp.input_count and isinstance(inputs["input_count"], int)
    assert inputs["convert_ids"] == list(gp.convert_ids)
    assert inputs["table_summary"] == gp.table_summary
    assert inputs["df_convert_out"] == gp.df_convert_out.to_dict("records")
    assert list(inputs["df_convert_out"][0]) == list(gp.df_convert_out.columns)
    assert all(isinstance(v, str) for row in inputs["df_convert_out"] for v in row.values())


def test_web_files_write_no_nan_or_infinity():
    """Scores GenePlexus leaves NaN or infinite become null: JSON has neither, browsers' JSON.parse fails on both."""
    import pandas as pd

    from mljob.science.web_files import graph, term_rows

    nan, inf = float("nan"), float("inf")
    similarity, z_score, p_adjusted = [inf, -inf, nan], [1.5, nan, inf], [0.01, 0.2, -inf]
    df_sim = pd.DataFrame({"Rank": [1, 2, 3], "Task": "GO", "ID": ["a", "b", "c"], "Name": "n"})
    df_sim = df_sim.assign(**{"Similarity": similarity, "Z-score": z_score, "P-adjusted": p_adjusted})
    scores = [(r["similarity"], r["z_score"], r["p_adjusted"]) for r in term_rows(df_sim, 3)]
    assert scores == [(None, 1.5, 0.01), (None, None, 0.2), (None, None, None)]
    df_probs = pd.DataFrame(
        {"Rank": [1, 2], "Entrez": ["1", "2"], "Symbol": "s", "Known/Novel": "Novel", "Probability": [inf, 0.5]}
    )
    df_edge = pd.DataFrame({"Node1": ["1"], "Node2": ["2"], "Weight": [-inf]})
    network = graph(df_probs, df_edge, 2)
    assert [n["probability"] for n in network["nodes"]] == [None, 0.5] and network["links"][0]["weight"] is None


def test_importing_the_module_stays_light():
    code = (
        "import sys, mljob.report\n"
        "heavy = sorted({'pandas', 'numpy', 'networkx', 'geneplexus', 'sklearn', 'jinja2'} & set(sys.modules))\n"
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
    page = write_report(store, "clustered").read_text(encoding="utf-8")
    clusters = sorted(p.name for p in (store.job_path("clustered") / "results").glob("Cluster-*"))
    assert clusters and f"split into {len(clusters)} clusters" in page and ", ".join(clusters) in page
    assert "<th scope=row>Clustering</th><td><code>louvain</code></td>" in page
