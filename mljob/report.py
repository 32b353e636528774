"""report.html: one self-contained HTML page per job for biologists (parameters, input genes, scores, results).

The page needs no server and no network: inline CSS, a small inline script (sortable tables) and inline SVG
networks drawn here. The only external links are to NCBI Gene. Everything read from the job is HTML-escaped.
Importing this module stays cheap: TSVs are read with `csv`; networkx (numpy) is imported only to draw.
"""

from __future__ import annotations

import csv
import heapq
import html
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mljob
from mljob.errors import JobNotFound, JobNotReady
from mljob.results import MODEL
from mljob.results_store import (
    CONFIG_FILE,
    JOB_INFO_FILE,
    RESULTS_DIR,
    STATUS_FILE,
    atomic_write,
)

REPORT_FILE = "report.html"
TOP_TERMS_SHOWN = 20
DEFAULT_NUM_NODES = 50
LAYOUT_SEED = 7
NCBI_GENE_URL = "https://www.ncbi.nlm.nih.gov/gene/"
NOT_MAPPED = "Could Not be mapped to Entrez"
KNOWN_COLOUR = "#d55e00"  # orange-red: your genes (Okabe-Ito palette, colour-blind safe)
NOVEL_COLOUR = "#0072b2"  # blue: new candidates

GSC_NAMES = {
    "GO": "Gene Ontology biological processes",
    "Monarch": "Monarch phenotypes",
    "Mondo": "Mondo diseases",
    "Combined": "GO, Monarch and Mondo combined",
}

# job_config.json keys shown in the parameter table: label and what the parameter does, in words.
PARAMETERS = {
    "net_type": ("Network", "the molecular network whose gene embeddings the model learns from"),
    "features": ("Features", "the kind of network embedding used as gene features"),
    "sp_trn": ("Training species", "the species of your input genes"),
    "gsc_trn": ("Training gene sets", "the gene-set collection used to pick negative (unrelated) genes"),
    "sp_res": ("Result species", "the species in which genes are ranked"),
    "gsc_res": ("Result gene sets", "the collection(s) of terms compared with your model"),
    "min_num_pos": ("Minimum genes", "at least this many of your genes must be in the network"),
    "min_num_pos_cv": ("Minimum genes for cross-validation", "fewer genes in the network skip cross-validation"),
    "num_folds": ("Cross-validation folds", "how many parts your genes are split into to test the model"),
    "cross_validate": ("Cross-validation", "whether the model was tested on held-out genes"),
    "random_state": ("Random seed", "makes the run repeatable"),
    "num_nodes": ("Top genes shown", "how many top-ranked genes are listed and drawn as a network"),
    "clust_method": ("Clustering", "whether your genes were first split into clusters"),
    "clust_min_size": ("Minimum cluster size", "smallest cluster that gets its own model"),
}
_NOT_SHOWN = {"jobname", "created", "callback_url"}  # in the header, or not a science parameter (and a URL)


# --- public API ------------------------------------------------------------------------------


def render_report(
    config: dict[str, Any],
    info: dict[str, Any] | None,
    results_dir: Path,
    *,
    status: dict[str, Any] | None = None,
) -> str:
    """The report as one HTML page, from the job's config, job_info (may be None) and a results folder.

    `results_dir` may be the staging folder of a run that is not finished yet; `status` (status.json)
    is optional and only adds the job's state to the header.
    """
    results_dir = Path(results_dir)
    jobname = str(config.get("jobname", "")) or "job"
    results = _result_folders(config, info, results_dir)
    sections = [
        ("parameters", "Parameters"),
        ("input-genes", "Input genes"),
        ("cross-validation", "Model performance"),
        *[(_anchor(key), _result_title(key)) for key in results],
    ]
    body = [
        _header(jobname, config, info, status),
        _cluster_note(results_dir),
        _nav(sections),
        _parameters_section(config, info),
        _input_section(config, info, results_dir),
        _cv_section(config, info, results_dir),
        *[_result_section(key, folder, config) for key, folder in results.items()],
        _footer(info),
    ]
    return _page(f"GenePlexus report: {jobname}", "\n".join(body))


def write_report(job_dir: Path) -> Path:
    """Write `results/report.html` of a completed job folder (atomically) and return its path."""
    job_dir = Path(job_dir)
    if not (job_dir / CONFIG_FILE).is_file():
        raise JobNotFound(f"{job_dir} is not a job folder (no {CONFIG_FILE})")
    results_dir = job_dir / RESULTS_DIR
    if not results_dir.is_dir():
        raise JobNotReady(f"job {job_dir.name} has no results yet; a report needs a completed job")
    config = _read_json(job_dir / CONFIG_FILE) or {}
    info = _read_json(job_dir / JOB_INFO_FILE)
    status = _read_json(job_dir / STATUS_FILE)
    path = results_dir / REPORT_FILE
    atomic_write(path, render_report(config, info, results_dir, status=status))
    return path


# --- reading the job's files -------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a GenePlexus TSV (pandas to_csv, sep TAB) as dicts; [] when the file is missing."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    except FileNotFoundError:
        return []


def _top_rows(path: Path, top: int) -> tuple[list[dict[str, str]], int]:
    """The `top` best-ranked rows of a df_probs TSV and how many rows it has; only those rows become dicts.

    A realistic table has ~19,000 rows: parsing each into a dict and sorting them all was the report's main cost.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, [])
            if "Rank" not in header:
                return [], 0
            rank = header.index("Rank")
            rows = list(reader)
    except FileNotFoundError:
        return [], 0
    best = heapq.nsmallest(top, rows, key=lambda row: _float(row[rank]) or math.inf)
    return [dict(zip(header, row, strict=False)) for row in best], len(rows)


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _result_folders(config: dict[str, Any], info: dict[str, Any] | None, results_dir: Path) -> dict[str, Path]:
    """`{Species}-{GSC}` → its folder, in the order of sp_res (job_info's order when known)."""
    model_dir = results_dir / MODEL
    found = (
        {p.name: p for p in model_dir.iterdir() if p.is_dir() and (p / "df_probs.tsv").is_file()}
        if model_dir.is_dir()
        else {}
    )
    species, gscs = _as_list(config.get("sp_res")), _as_list(config.get("gsc_res"))
    if len(gscs) == 1:
        gscs = gscs * len(species)
    expected = [str(k) for k in _as_list((info or {}).get("results"))] or [
        f"{s}-{g}" for s, g in zip(species, gscs, strict=False)
    ]
    order = {key: i for i, key in enumerate(expected)}
    return {key: found[key] for key in sorted(found, key=lambda k: (order.get(k, len(order)), k))}


# --- page parts ----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _anchor(key: str) -> str:
    return "result-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)


def _result_title(key: str) -> str:
    species, _, gsc = key.partition("-")
    return f"{species} genes, {gsc}" if gsc else key


def _header(jobname: str, config: dict[str, Any], info: dict[str, Any] | None, status: dict[str, Any] | None) -> str:
    lines = [f"<h1>GenePlexus results <span class=jobname>{_e(jobname)}</span></h1>"]
    facts = []
    if status:
        facts.append(f"Status: <strong>{_e(status.get('status', ''))}</strong>")
        if status.get("finished"):
            facts.append(f"finished {_e(_when(status['finished']))}")
    elif config.get("created"):
        facts.append(f"created {_e(_when(config['created']))}")
    if info and info.get("total_seconds") is not None:
        facts.append(f"run time {_e(_float(info['total_seconds']))} s")
    if facts:
        lines.append(f"<p class=meta>{', '.join(facts)}</p>")
    if status and status.get("message"):
        lines.append(f"<p class=message>{_e(status['message'])}</p>")
    lines.append(
        "<p>GenePlexus trained a model on your genes using their positions in a molecular network, then "
        "ranked every gene of the network by how much it resembles your genes. Genes ranked near the top "
        "that are not in your list are candidates worth a closer look.</p>"
    )
    return f"<header>{''.join(lines)}</header>"


def _cluster_note(results_dir: Path) -> str:
    """A pointer to the per-cluster models (clust_method), which this page does not show."""
    clusters = sorted(p.name for p in results_dir.glob("Cluster-*") if p.is_dir())
    if not clusters:
        return ""
    return (
        f"<p class=note>Your genes were also split into {len(clusters)} clusters, each with its own model "
        f"({_e(', '.join(clusters))}). This page shows the model of all your genes ({_e(MODEL)}); the cluster "
        "results are in the job's results folder.</p>"
    )


def _when(stamp: Any) -> str:
    """An ISO time stamp in a friendly form (UTC)."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _nav(sections: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="#{_e(anchor)}">{_e(title)}</a></li>' for anchor, title in sections)
    return f"<nav><h2 class=toc>Contents</h2><ol>{items}</ol></nav>"


def _parameters_section(config: dict[str, Any], info: dict[str, Any] | None) -> str:
    rows = []
    for key, value in config.items():
        if key in _NOT_SHOWN:
            continue
        label, meaning = PARAMETERS.get(key, (key, ""))
        rows.append(
            f"<tr><th scope=row>{_e(label)}</th><td><code>{_e(_show(value))}</code></td>"
            f"<td>{_e(meaning)}</td><td class=key>{_e(key)}</td></tr>"
        )
    table = (
        "<table class=params><thead><tr><th>Parameter</th><th>Value</th><th>Meaning</th><th>Name in the config</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    versions = (info or {}).get("versions") or {}
    soft = ", ".join(f"{_e(k)} {_e(v)}" for k, v in versions.items())
    extra = f"<p class=note>Software: {soft}.</p>" if soft else ""
    return f'<section id="parameters"><h2>Parameters</h2>{table}{extra}</section>'


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _input_section(config: dict[str, Any], info: dict[str, Any] | None, results_dir: Path) -> str:
    rows = _read_tsv(results_dir / "df_convert_out.tsv")
    net = str(config.get("net_type", "STRING"))
    species = str(config.get("sp_trn", "Human"))
    head = '<section id="input-genes"><h2>Input genes</h2>'
    if not rows:
        return head + "<p>The gene conversion table (df_convert_out.tsv) is not available.</p></section>"
    net_columns = [c for c in rows[0] if c.startswith("In ") and c.endswith("?")]
    train_column = f"In {net}?"
    genes: dict[str, dict[str, bool]] = {}
    for row in rows:
        gene = genes.setdefault(row.get("Original ID", ""), {"found": False, "in_net": False})
        gene["found"] |= _mapped(row)
        gene["in_net"] |= row.get(train_column) == "Y"
    missing = [g for g, v in genes.items() if not v["found"]]
    found = len(genes) - len(missing)
    in_net = sum(v["in_net"] for v in genes.values())
    summary = (
        f"<p class=summary>You gave <strong>{len(genes)}</strong> genes: <strong>{found}</strong> were recognised as "
        f"{_e(species)} genes, <strong>{len(missing)}</strong> were not found, and <strong>{in_net}</strong> are in "
        f"the {_e(net)} network used for training.</p>"
    )
    if missing:
        summary += "<p class=missing-list>Not found: " + ", ".join(f"<code>{_e(g)}</code>" for g in missing) + "</p>"
    positives = (info or {}).get("positive_genes") or {}
    if positives.get("in_network") is not None:
        summary += (
            f"<p>The model was trained with <strong>{_e(positives['in_network'])}</strong> of your genes as positive "
            f"examples and {_e(positives.get('negatives_used', '?'))} unrelated genes as negative examples.</p>"
        )
    networks = (info or {}).get("network_summary") or []
    if networks:
        parts = [
            f"{_e(n.get('Network'))}: {_e(n.get('PositiveGenes'))} of {_e(n.get('NetworkGenes'))} genes"
            for n in networks
        ]
        summary += f"<p class=note>Your genes in each {_e(species)} network: {'; '.join(parts)}.</p>"
    header = [
        _th("Your ID", "text"),
        _th("Entrez ID", "text"),
        _th("Gene name", "text"),
        *[_th(c, "text") for c in net_columns],
    ]
    body = []
    for row in rows:
        ok = _mapped(row)
        entrez = row.get("Entrez ID", "")
        cells = [
            f"<td>{_e(row.get('Original ID', ''))}</td>",
            f"<td>{_gene_link(entrez, entrez)}</td>" if ok else "<td class=notfound>not found</td>",
            f"<td>{_e(row.get('Gene Name', ''))}</td>" if ok else "<td>—</td>",
            *[_yes_no(row.get(c, "")) for c in net_columns],
        ]
        body.append(f"<tr{'' if ok else ' class=missing'}>{''.join(cells)}</tr>")
    table = _table("sortable convert", header, body)
    return f"{head}{summary}<details open><summary>Conversion table ({len(rows)} rows)</summary>{table}</details>" + (
        "</section>"
    )


def _mapped(row: dict[str, str]) -> bool:
    entrez = (row.get("Entrez ID") or "").strip()
    return bool(entrez) and entrez != NOT_MAPPED


def _yes_no(value: str) -> str:
    if value == "Y":
        return "<td class=yes>yes</td>"
    if value == "N":
        return "<td class=no>no</td>"
    return f"<td>{_e(value)}</td>"


def _cv_scores(info: dict[str, Any] | None, results_dir: Path) -> list[float | None] | None:
    """avgps from job_info.json, else from the model's model_level_config.json (a staging folder has no info)."""
    if info is not None and "avgps" in info:
        avgps = info["avgps"]
    else:
        avgps = (_read_json(results_dir / MODEL / "model_level_config.json") or {}).get("avgps")
    if not isinstance(avgps, list):
        return None
    return [_float(v) for v in avgps]


def _cv_section(config: dict[str, Any], info: dict[str, Any] | None, results_dir: Path) -> str:
    head = '<section id="cross-validation"><h2>Model performance (cross-validation)</h2>'
    meaning = (
        "<p>To check the model, GenePlexus splits your genes into parts (folds), trains on all but one part and "
        "measures how high the held-out genes are ranked. The score is <strong>log2(auPRC / prior)</strong>: the "
        "precision of the ranking compared with picking genes at random. <strong>0</strong> means no better than "
        "chance; each <strong>+1</strong> doubles the precision over chance (1 = 2×, 2 = 4×, 3 = 8× better); "
        "a negative score is worse than chance.</p>"
    )
    scores = _cv_scores(info, results_dir)
    if scores is None and info is None:
        return f"{head}<p>Cross-validation scores are not available for this job.</p></section>"
    valid = [s for s in (scores or []) if s is not None]
    if not valid:
        if config.get("cross_validate") is False:
            why = "it was turned off for this job (cross_validate = no)"
        else:
            why = (
                f"fewer than {_e(config.get('min_num_pos_cv', 15))} of your genes are in the network "
                "(min_num_pos_cv), too few to hold some out"
            )
        return (
            f"{head}<p class=skipped><strong>Cross-validation was skipped</strong>: {why}. The genes are still "
            "ranked, but there is no estimate of how well the model recovers your genes.</p>"
            f"{meaning}</section>"
        )
    mean = sum(valid) / len(valid)
    rows = [f"<tr><th scope=row>Fold {i}</th>{_score_cells(s)}</tr>" for i, s in enumerate(scores or [], start=1)]
    rows.append(f"<tr class=mean><th scope=row>Mean</th>{_score_cells(mean)}</tr>")
    table = (
        "<table class=cv><thead><tr><th>Fold</th><th>log2(auPRC/prior)</th><th>Precision over chance</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    verdict = (
        f"<p class=summary>Mean score <strong>{mean:.2f}</strong>: the held-out genes were found with about "
        f"<strong>{2**mean:.1f}×</strong> the precision expected by chance.</p>"
    )
    return f"{head}{verdict}{meaning}{table}</section>"


def _score_cells(score: float | None) -> str:
    if score is None:
        return "<td>—</td><td>—</td>"
    return f"<td class=num>{score:.2f}</td><td class=num>{2**score:.1f}×</td>"


def _result_section(key: str, folder: Path, config: dict[str, Any]) -> str:
    species, _, gsc = key.partition("-")
    top = int(_float(config.get("num_nodes")) or DEFAULT_NUM_NODES)
    genes, ranked = _top_rows(folder / "df_probs.tsv", top)
    known = sum(r.get("Known/Novel") == "Known" for r in genes)
    cross = species != str(config.get("sp_trn", species))
    known_means = f"the {_e(species)} orthologs of your genes" if cross else "your input genes"
    intro = (
        f"<p class=summary>All {ranked} {_e(species)} genes of the network were ranked; the top "
        f"<strong>{len(genes)}</strong> are shown. <strong>{known}</strong> of them are <span class='badge known'>"
        f"Known</span> ({known_means}), <strong>{len(genes) - known}</strong> are <span class='badge novel'>Novel"
        "</span> candidates.</p>"
    )
    parts = [
        f'<section id="{_e(_anchor(key))}" class=result><h2>{_e(_result_title(key))}</h2>',
        f"<p class=note>Result species {_e(species)}; terms from {_e(GSC_NAMES.get(gsc, gsc))}.</p>",
        intro,
        f"<h3>Top {len(genes)} predicted genes</h3>",
        "<p class=note>Click a column header to sort. <em>Probability</em>: the model's score for the gene (0–1); "
        "<em>Z-score</em>: how many standard deviations the score lies above the average of all genes; "
        "<em>P-adjusted</em>: its significance, corrected for testing every gene. Symbols link to NCBI Gene.</p>",
        _genes_table(genes),
        "<h3>Network of the top genes</h3>",
        _network_figure(key, genes, _read_tsv(folder / "df_edge.tsv")),
        "<h3>Most similar terms</h3>",
        "<p class=note>GenePlexus compares your model with models trained on the genes of each term; the most "
        "similar terms hint at the biology your genes share.</p>",
        _terms_table(_read_tsv(folder / "df_sim.tsv")),
        "</section>",
    ]
    return "\n".join(parts)


def _genes_table(genes: list[dict[str, str]]) -> str:
    header = [
        _th("Rank", "number", sort="ascending"),
        _th("Symbol", "text"),
        _th("Name", "text"),
        _th("Probability", "number"),
        _th("Z-score", "number"),
        _th("P-adjusted", "number"),
        _th("Known/Novel", "text"),
    ]
    body = []
    for r in genes:
        label = "Known" if r.get("Known/Novel") == "Known" else "Novel"
        body.append(
            "<tr>"
            f"{_num_cell(r.get('Rank'), '{:.0f}')}"
            f"<td class=symbol>{_gene_link(r.get('Entrez', ''), r.get('Symbol', ''))}</td>"
            f"<td>{_e(r.get('Name', ''))}</td>"
            f"{_num_cell(r.get('Probability'), '{:.3f}')}"
            f"{_num_cell(r.get('Z-score'), '{:.2f}')}"
            f"{_num_cell(r.get('P-adjusted'), '{:.2g}')}"
            f"<td><span class='badge {label.lower()}'>{label}</span></td>"
            "</tr>"
        )
    return _table("sortable genes", header, body)


def _terms_table(terms: list[dict[str, str]]) -> str:
    terms = sorted(terms, key=lambda r: _float(r.get("Rank")) or math.inf)[:TOP_TERMS_SHOWN]
    if not terms:
        return "<p>No term similarities are available.</p>"
    header = [
        _th("Rank", "number", sort="ascending"),
        _th("Type", "text"),
        _th("ID", "text"),
        _th("Name", "text"),
        _th("Similarity", "number"),
        _th("Z-score", "number"),
        _th("P-adjusted", "number"),
    ]
    body = [
        "<tr>"
        f"{_num_cell(r.get('Rank'), '{:.0f}')}"
        f"<td>{_e(r.get('Task', ''))}</td><td><code>{_e(r.get('ID', ''))}</code></td><td>{_e(r.get('Name', ''))}</td>"
        f"{_num_cell(r.get('Similarity'), '{:.3f}')}"
        f"{_num_cell(r.get('Z-score'), '{:.2f}')}"
        f"{_num_cell(r.get('P-adjusted'), '{:.2g}')}"
        "</tr>"
        for r in terms
    ]
    return _table("sortable terms", header, body)


def _th(label: str, kind: str, *, sort: str | None = None) -> str:
    aria = f' aria-sort="{sort}"' if sort else ""
    return f'<th data-type="{kind}"{aria}><button type=button>{_e(label)}</button></th>'


def _table(css_class: str, header: Iterable[str], body: Iterable[str]) -> str:
    return (
        f'<div class=scroll><table class="{css_class}"><thead><tr>{"".join(header)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _num_cell(value: Any, fmt: str) -> str:
    number = _float(value)
    if number is None:
        return '<td class=num data-sort="">—</td>'
    return f'<td class=num data-sort="{number!r}">{_e(fmt.format(number))}</td>'


def _gene_link(entrez: str, text: str) -> str:
    entrez = str(entrez).strip()
    if entrez.isdigit():
        return f'<a href="{NCBI_GENE_URL}{entrez}" title="NCBI Gene {entrez}">{_e(text)}</a>'
    return _e(text)


# --- the network picture -------------------------------------------------------------------------


def _network_figure(key: str, genes: list[dict[str, str]], edges: list[dict[str, str]]) -> str:
    if not genes:
        return "<p>No genes to draw.</p>"
    svg, connected, isolated = network_svg(genes, edges, title=f"Network of the top genes, {_result_title(key)}")
    caption = (
        f"The top {len(genes)} genes and the {connected} network links among them (thicker lines: stronger links). "
        "Hover over a gene for its rank and probability; click it to open NCBI Gene."
    )
    if isolated:
        which = "1 gene has" if isolated == 1 else f"{isolated} genes have"
        caption += f" {which} no link to the other top genes (shown at the bottom)."
    return f"<figure class=network>{svg}<figcaption>{caption}</figcaption></figure>"


def network_svg(
    genes: list[dict[str, str]],
    edges: list[dict[str, str]],
    *,
    title: str = "Network of the top genes",
    width: int = 900,
) -> tuple[str, int, int]:
    """An inline SVG of the genes (df_probs rows) and the links among them (df_edge rows).

    Each group of linked genes is laid out by networkx's spring_layout (fixed seed: the same picture every
    time) in its own box, the largest group first; genes without links are put in rows below.
    Returns (svg, number of links drawn, number of isolated genes).
    """
    import networkx as nx  # numpy inside: imported only when a report is drawn

    ids = [str(g.get("Entrez", "")) for g in genes]
    by_id = dict(zip(ids, genes, strict=True))
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    for edge in edges:
        a, b = str(edge.get("Node1", "")), str(edge.get("Node2", ""))
        if a in by_id and b in by_id and a != b:
            weight = _float(edge.get("Weight"))
            graph.add_edge(a, b, weight=1.0 if weight is None else weight)
    isolated = [n for n in ids if graph.degree(n) == 0]

    margin, legend_height, row_height, column_width = 16, 34, 30, 110
    pos, bottom = _pack_components(nx, graph, ids, left=margin, top=legend_height, width=width - 2 * margin)
    columns = max(1, (width - 2 * margin) // column_width)
    iso_top = bottom + (34 if isolated else 0)
    for i, node in enumerate(isolated):
        row, col = divmod(i, columns)
        pos[node] = (margin + 10 + col * column_width, iso_top + row * row_height + row_height / 2)
    total_height = max(iso_top + math.ceil(len(isolated) / columns) * row_height, bottom) + 10

    weights = [d["weight"] for _, _, d in graph.edges(data=True)]
    w_max = max(weights, default=1.0) or 1.0
    out = [
        f'<svg class=network-svg viewBox="0 0 {width} {total_height:.0f}" width="{width}" height="{total_height:.0f}" '
        f'role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        _legend(),
        '<g class="edges">',
    ]
    for a, b, d in sorted(graph.edges(data=True), key=lambda e: e[2]["weight"]):
        share = max(0.0, d["weight"]) / w_max
        (xa, ya), (xb, yb) = pos[a], pos[b]
        out.append(
            f'<line x1="{xa:.1f}" y1="{ya:.1f}" x2="{xb:.1f}" y2="{yb:.1f}" '
            f'stroke-width="{0.4 + 2.6 * share:.2f}" stroke-opacity="{0.15 + 0.45 * share:.2f}">'
            f"<title>{_e(by_id[a].get('Symbol', a))} – {_e(by_id[b].get('Symbol', b))}: weight {d['weight']:.3g}"
            "</title></line>"
        )
    out.append("</g>")
    if isolated:
        out.append(
            f'<text class="iso-label" x="{margin}" y="{iso_top - 12:.1f}">Not linked to the other top genes:</text>'
        )
    out.append('<g class="nodes">')
    for node in ids:
        gene = by_id[node]
        x, y = pos[node]
        known = gene.get("Known/Novel") == "Known"
        symbol = gene.get("Symbol", node)
        prob = _float(gene.get("Probability"))
        score = f", probability {prob:.3f}" if prob is not None else ""
        tip = f"{symbol}: rank {gene.get('Rank', '?')}{score}, {'known' if known else 'novel'}"
        circle = (
            f'<circle class="node {"known" if known else "novel"}" cx="{x:.1f}" cy="{y:.1f}" r="7" '
            f'data-entrez="{_e(node)}"><title>{_e(tip)}</title></circle>'
            f'<text x="{x + 10:.1f}" y="{y + 4:.1f}">{_e(symbol)}</text>'
        )
        if node.isdigit():
            circle = f'<a href="{NCBI_GENE_URL}{node}">{circle}</a>'
        out.append(circle)
    out.append("</g></svg>")
    return "".join(out), graph.number_of_edges(), len(isolated)


def _pack_components(
    nx: Any, graph: Any, order: list[str], *, left: float, top: float, width: float
) -> tuple[dict[str, tuple[float, float]], float]:
    """Positions of the linked genes: one box per connected group, packed in rows; and the bottom y used."""
    rank = {node: i for i, node in enumerate(order)}
    groups = [sorted(c, key=rank.__getitem__) for c in nx.connected_components(graph) if len(c) > 1]
    groups.sort(key=lambda g: (-len(g), rank[g[0]]))
    pad, label_room = 14.0, 62.0
    pos: dict[str, tuple[float, float]] = {}
    x, y, shelf = left, top, 0.0
    for group in groups:
        side = max(130.0, 90.0 * math.sqrt(len(group)))
        box_w, box_h = min(width, 1.5 * side), min(560.0, side)
        if x + box_w > left + width + 0.5 and x > left:
            x, y, shelf = left, y + shelf, 0.0
        sub = nx.Graph()
        sub.add_nodes_from(group)
        sub.add_edges_from(graph.subgraph(group).edges(data=True))
        layout = nx.spring_layout(sub, seed=LAYOUT_SEED, weight="weight", k=3.0 / math.sqrt(len(group)))
        for node, (fx, fy) in _spread(group, layout).items():
            pos[node] = (x + pad + fx * (box_w - 2 * pad - label_room), y + pad + fy * (box_h - 2 * pad))
        x += box_w
        shelf = max(shelf, box_h)
    return pos, y + shelf


def _spread(nodes: list[str], layout: dict[str, Any], share: float = 0.4) -> dict[str, tuple[float, float]]:
    """Layout coordinates scaled to 0..1, blended with their ranks so that dense clusters open up."""
    spread: dict[str, list[float]] = {node: [] for node in nodes}
    last = max(1, len(nodes) - 1)
    for axis in (0, 1):
        values = {node: float(layout[node][axis]) for node in nodes}
        low, high = min(values.values()), max(values.values())
        ranked = sorted(nodes, key=lambda n: (values[n], n))
        for i, node in enumerate(ranked):
            scaled = 0.5 if high == low else (values[node] - low) / (high - low)
            spread[node].append(scaled if len(nodes) < 3 else (1 - share) * scaled + share * i / last)
    return {node: (xy[0], xy[1]) for node, xy in spread.items()}


def _legend() -> str:
    """Known/novel key at the top left; rounded squares, so that every <circle> is a gene."""
    return (
        '<g class="legend">'
        f'<rect x="24" y="10" width="14" height="14" rx="7" fill="{KNOWN_COLOUR}"/>'
        '<text x="44" y="21">Known (your genes)</text>'
        f'<rect x="190" y="10" width="14" height="14" rx="7" fill="{NOVEL_COLOUR}"/>'
        '<text x="210" y="21">Novel (candidates)</text>'
        "</g>"
    )


# --- the page ----------------------------------------------------------------------------------


def _footer(info: dict[str, Any] | None) -> str:
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = (info or {}).get("versions") or {}
    version, geneplexus = _e(versions.get("mljob", mljob.__version__)), _e(versions.get("geneplexus", "3"))
    return (
        f"<footer>Report made {made} by mljob {version} with GenePlexus {geneplexus}. This page works offline; "
        "only the links to NCBI Gene need an internet connection.</footer>"
    )


_CSS = f"""
:root {{ --known: {KNOWN_COLOUR}; --novel: {NOVEL_COLOUR}; --line: #d8dee4; --zebra: #f5f7fa; --head: #e8eef5; }}
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.45; }}
h1 {{ font-size: 1.7rem; margin: 0 0 .3rem; }}
h1 .jobname {{ font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.3rem; color: #555; }}
h2 {{ font-size: 1.35rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2.2rem; }}
h2.toc {{ font-size: 1rem; border: 0; margin: 0 0 .3rem; }}
h3 {{ font-size: 1.1rem; margin-top: 1.6rem; }}
nav {{ background: var(--zebra); border: 1px solid var(--line); border-radius: 6px; padding: .7rem 1rem; }}
nav ol {{ margin: 0; padding-left: 1.4rem; columns: 2; }}
a {{ color: #0550ae; }}
.meta, .note {{ color: #57606a; font-size: .92rem; }}
.message {{ background: #eef6ee; border-left: 4px solid #2da44e; padding: .4rem .7rem; }}
.summary {{ font-size: 1.02rem; }}
.skipped {{ background: #fff8e5; border-left: 4px solid #d4a72c; padding: .4rem .7rem; }}
.missing-list code {{ background: #ffebe9; padding: 0 .25rem; border-radius: 3px; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; min-width: 50%; }}
th, td {{ border: 1px solid var(--line); padding: .28rem .55rem; text-align: left; vertical-align: top; }}
thead th {{ background: var(--head); position: sticky; top: 0; }}
tbody tr:nth-child(even) {{ background: var(--zebra); }}
tbody tr.missing {{ background: #ffebe9; }}
td.notfound {{ color: #a40e26; font-weight: 600; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.yes {{ color: #1a7f37; }} td.no {{ color: #a40e26; }}
td.key {{ font-family: ui-monospace, Menlo, Consolas, monospace; color: #57606a; font-size: .8rem; }}
tr.mean {{ font-weight: 600; }}
th button {{ all: unset; cursor: pointer; font-weight: 600; }}
th button:focus-visible {{ outline: 2px solid #0969da; }}
th[aria-sort=ascending] button::after {{ content: " ▲"; font-size: .7em; }}
th[aria-sort=descending] button::after {{ content: " ▼"; font-size: .7em; }}
.badge {{ display: inline-block; border-radius: 9px; padding: 0 .5rem; color: #fff; font-size: .8rem; }}
.badge.known {{ background: var(--known); }} .badge.novel {{ background: var(--novel); }}
figure.network {{ margin: .5rem 0; border: 1px solid var(--line); border-radius: 6px; padding: .5rem;
  overflow-x: auto; }}
figure.network svg {{ max-width: 100%; height: auto; display: block; }}
figcaption {{ color: #57606a; font-size: .88rem; margin-top: .3rem; }}
svg .edges line {{ stroke: #6e7781; }}
svg .node {{ stroke: #fff; stroke-width: 1.5; }}
svg .node.known {{ fill: var(--known); }} svg .node.novel {{ fill: var(--novel); }}
svg text {{ font-size: 11px; fill: #1f2328; paint-order: stroke; stroke: #fff; stroke-width: 3px;
  stroke-linejoin: round; }}
svg .legend text, svg .iso-label {{ font-size: 12px; }}
footer {{ margin-top: 3rem; border-top: 1px solid var(--line); padding-top: .6rem; color: #57606a;
  font-size: .82rem; }}
@media print {{ nav {{ display: none; }} thead th {{ position: static; }} }}
"""

_JS = """
(function () {
  function key(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) return raw;
    var n = parseFloat(raw);
    return isNaN(n) ? null : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var numeric = th.getAttribute("data-type") === "number";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          if (x === null || y === null) return (x === null) - (y === null);
          var order = numeric ? x - y : x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="mljob">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )
