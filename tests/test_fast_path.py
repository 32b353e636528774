"""The fast path: every replacement equals GenePlexus 3.0.1's own function, and whole jobs give byte-identical results.

No column is allowed to differ, not even in the last bits of a float: the one array computation that could
round differently from GenePlexus's scalar loop, the cosine similarities of make_sim_dfs (df_sim.tsv's
Similarity, and the Z-score, P-adjusted and row order derived from it), uses np.vecdot, which calls the same
BLAS ddot per row as np.dot (checked below), so FLOAT_TOLERANT_COLUMNS is empty.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mljob.job import parse_config
from mljob.science import data_cache as cache
from mljob.science import fast_path, patching
from mljob.science.pipeline import analyse, save_class
from mljob.science.web_files import write_web_files

FLOAT_TOLERANT_COLUMNS: dict[str, set[str]] = {}  # table file name -> columns allowed to differ by <= 1e-12: none


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.CACHE.clear()
    yield
    cache.CACHE.clear()


def gpx():
    from geneplexus import _geneplexus

    return _geneplexus


def original(name: str):
    """GenePlexus's own function (the fast path is never in place outside `active`)."""
    assert fast_path.PATCH.holders == 0
    return getattr(gpx(), name)


def symbols_to_entrez(data_path: Path, genes: list[str]) -> list[str]:
    table = json.loads((data_path / "IDconversion__Human__Symbol-to-Entrez.json").read_text())
    return [table[g][0] for g in genes if g in table]


# --- the equality grid: whole jobs with the fast path on and off ----------------------------------------

NEGATIVES = [f"HSYN{i}" for i in range(150, 200)] + ["HSYN1", "HSYN10", "UNKNOWN-GENE"]  # two are positives

# Each dimension of the issue is covered by at least one case (not the cartesian product):
# networks BioGRID / IMP / STRING; gsc GO / Monarch / Mondo / Combined (training and results); Human -> Human and
# Human -> Mouse; user negatives; cross_validate off; fewer positives than min_num_pos_cv; louvain clustering;
# genes as symbols, as Entrez IDs, and mixed with unknown ones.
GRID = {
    "string-combined-symbols": dict(genes="symbols"),
    "biogrid-go-mouse-entrez-louvain": dict(
        genes="entrez",
        net_type="BioGRID",
        gsc_trn="GO",
        sp_res=["Human", "Mouse"],
        gsc_res=["GO", "GO"],
        clust_method="louvain",
        clust_min_size=5,
        min_num_pos=5,
    ),
    "imp-monarch-mouse-negatives": dict(
        genes="symbols",
        negatives=True,
        net_type="IMP",
        gsc_trn="Monarch",
        sp_res=["Mouse"],
        gsc_res=["Monarch"],
        num_nodes=20,
    ),
    "string-mondo-no-cv": dict(genes="entrez", gsc_trn="Mondo", gsc_res=["Mondo"], cross_validate=False),
    "biogrid-combined-few-genes": dict(
        genes="few", net_type="BioGRID", min_num_pos=5, min_num_pos_cv=15, sp_res=["Human", "Mouse"]
    ),
    "imp-go-mixed-negatives-louvain": dict(
        genes="mixed",
        negatives=True,
        net_type="IMP",
        gsc_trn="GO",
        sp_res=["Mouse", "Human"],
        gsc_res=["Combined", "Mondo"],
        clust_method="louvain",
        clust_min_size=5,
        min_num_pos=5,
        num_folds=4,
    ),
    "string-monarch-mouse-negatives-entrez": dict(
        genes="entrez",
        negatives=True,
        gsc_trn="Monarch",
        sp_res=["Human", "Mouse"],
        gsc_res=["Monarch", "Combined"],
        random_state=7,
    ),
}


def run_job(data_path: Path, folder: Path, case: dict, *, fast: bool, cache_mb: int) -> dict[str, bytes]:
    """A job of the grid through the real pipeline, its results/ written as the runner writes them; every file."""
    params = dict(case)
    demo = (Path(__file__).resolve().parent.parent / "mljob" / "tools" / "demo_genes.txt").read_text().split()
    genes = {
        "symbols": demo,
        "entrez": symbols_to_entrez(data_path, demo),
        "few": demo[:9],
        "mixed": demo[:10] + symbols_to_entrez(data_path, demo[10:]) + ["NOT-A-GENE", "99999999"],
    }[params.pop("genes")]
    negatives = NEGATIVES if params.pop("negatives", False) else None
    config = parse_config({"jobname": "fast-path-grid", **params})
    result = analyse(config, genes, negatives, data_path, cache_mb=cache_mb, fast_path=fast)
    assert result.fast_path is fast
    results = folder / "results"
    save_class(result.gp, results)
    write_web_files(result.gp, results, top=config.num_nodes)
    return {p.relative_to(results).as_posix(): p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


def assert_identical(expected: dict[str, bytes], got: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(expected)
    for name, content in expected.items():
        table = name.rsplit("/", 1)[-1]
        if content == got[name] or table not in FLOAT_TOLERANT_COLUMNS:
            assert got[name] == content, f"{name} differs with the fast path"
            continue
        # (not used while FLOAT_TOLERANT_COLUMNS is empty) the named columns within 1e-12, same ranks, rest equal
        a, b = (pd.read_csv(io.BytesIO(x), sep="\t") for x in (content, got[name]))
        tolerant = FLOAT_TOLERANT_COLUMNS[table]
        pd.testing.assert_frame_equal(a.drop(columns=list(tolerant)), b.drop(columns=list(tolerant)), check_exact=True)
        for column in tolerant:
            assert np.max(np.abs(a[column] - b[column])) <= 1e-12, (name, column)


@pytest.mark.parametrize("name", list(GRID))  # the whole grid takes a few seconds: not marked slow
def test_results_are_byte_identical_with_and_without_the_fast_path(name, data_path, tmp_path):
    case = GRID[name]
    expected = run_job(data_path, tmp_path / "off", case, fast=False, cache_mb=0)  # GenePlexus's own code
    assert any(n.endswith("df_probs.tsv") for n in expected) and any(n.endswith("df_sim.tsv") for n in expected)
    if case.get("clust_method"):
        assert any(n.startswith("Cluster-01/") for n in expected), "the case should make at least one cluster"
    assert_identical(expected, run_job(data_path, tmp_path / "on", case, fast=True, cache_mb=0))
    # with the warm data cache, the fast path reads the cached (shared, uncopied) JSON data: the same again
    assert_identical(expected, run_job(data_path, tmp_path / "warm", case, fast=True, cache_mb=64))


def test_runner_jobs_follow_fast_path_record_it_and_give_the_same_results(store, data_path, demo_genes):
    """FAST_PATH reaches the job process (the way DATA_CACHE_MB does); job_info.json records it."""
    from mljob.run_geneplexus import run_geneplexus
    from mljob.settings import Settings
    from mljob.status import State

    files = {}
    for flag in (0, 1):
        name = f"fast-path-{flag}"
        store.create_job(parse_config({"jobname": name, "sp_res": ["Human", "Mouse"]}), demo_genes, None)
        settings = Settings(data_cache_mb=64, fast_path=flag)
        assert run_geneplexus(name, store, data_path, settings=settings).status is State.COMPLETED
        assert store.read_job_info(name)["fast_path"] is bool(flag)
        results = store.job_path(name) / "results"
        files[flag] = {p.relative_to(results).as_posix(): p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert sorted(files[0]) == sorted(files[1])
    report = "report.html"  # shows job_info.json too: its timings (and the fast_path line) may differ
    assert {k: v for k, v in files[0].items() if k != report} == {k: v for k, v in files[1].items() if k != report}


def test_the_grid_covers_every_dimension():
    cases = GRID.values()
    assert {c.get("net_type", "STRING") for c in cases} == {"BioGRID", "IMP", "STRING"}
    gscs = {c.get("gsc_trn", "Combined") for c in cases} | {g for c in cases for g in c.get("gsc_res", [])}
    assert gscs == {"GO", "Monarch", "Mondo", "Combined"}
    assert any(c.get("sp_res", ["Human"]) == ["Human"] for c in cases)
    assert any("Mouse" in c.get("sp_res", []) for c in cases)
    assert any(c.get("negatives") for c in cases) and any(c.get("clust_method") == "louvain" for c in cases)
    assert any(c.get("cross_validate") is False for c in cases)
    assert any(c["genes"] == "few" for c in cases)  # 9 genes, min_num_pos_cv 15: no cross-validation
    assert {c["genes"] for c in cases} >= {"symbols", "entrez"}


# --- each replacement against GenePlexus's own function ---------------------------------------------------


@pytest.fixture(params=["cold", "warm"])
def cache_mode(request):
    """The replacements read JSON files through cache.shared_json: with the cache off and on."""
    if request.param == "cold":
        yield
        return
    with cache.active(64):
        yield


def both(name: str, *args, **kwargs):
    """(GenePlexus's result or exception, the fast path's result or exception) for the same call."""
    outcomes = []
    for fast in (False, True):
        with fast_path.active(fast):
            try:
                outcomes.append(getattr(gpx(), name)(*args, **kwargs))
            except Exception as exc:
                outcomes.append(exc)
    return outcomes


def assert_equal(a, b, where: str = "") -> None:
    if isinstance(a, Exception):
        assert type(b) is type(a), f"{where}: {a!r} vs {b!r}"
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
        assert a.index.equals(b.index)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype.kind == b.dtype.kind, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, tuple | list) and any(isinstance(x, pd.DataFrame | np.ndarray | list | dict) for x in a):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert type(b) is dict and list(a) == list(b), where  # same keys in the same order
        for key in a:
            assert_equal(a[key], b[key], f"{where}[{key!r}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} vs {b!r}"


def net_genes(data_path: Path, species: str = "Human", net: str = "STRING") -> np.ndarray:
    from geneplexus import util

    return util.load_node_order(str(data_path), species, net)


@pytest.mark.parametrize(
    "genes",
    [
        ["HSYN1", "HSYN10", "HSYN29"],
        ["10000001", "10000010", "99999999", "12ab", " 10000029", "١٢"],  # Entrez IDs, unknown, odd numbers
        ["ENSG90000000001", "ENSP90000000002", "ENST90000000003", "hsyn4", "NOPE", ""],
        [],
    ],
)
def test_initial_id_convert(genes, data_path, cache_mode):
    for species in ("Human", "Mouse"):
        a, b = both("_initial_id_convert", genes, str(data_path), species)
        assert_equal(a, b, "_initial_id_convert")


def test_initial_id_convert_takes_every_entrez_id_of_a_multi_mapped_symbol(tmp_path):
    from mljob.tools.synthetic_data import make_backend_data

    make_backend_data(tmp_path, species=["Human"], n_genes=100)
    path = tmp_path / "IDconversion__Human__Symbol-to-Entrez.json"
    table = json.loads(path.read_text())
    table["HSYN1"] = ["10000001", "10000002"]
    table["lower1"] = ["10000003"]
    path.write_text(json.dumps(table))
    a, b = both("_initial_id_convert", ["HSYN1", "LOWER1", "lower1"], str(tmp_path), "Human")
    assert_equal(a, b)
    assert a[0] == ["10000001", "10000002", "10000003"]


@pytest.mark.parametrize("net", ["STRING", "BioGRID"])
def test_get_negatives_on_random_positives(net, data_path, cache_mode):
    rng = np.random.default_rng(1)
    genes = net_genes(data_path, "Human", net)
    for size in (0, 1, 5, 40, len(genes)):
        pos = np.intersect1d(rng.choice(genes, size, replace=False), genes)  # as _get_genes_in_network makes them
        for negatives in (None, [], [*rng.choice(genes, 30).tolist(), "not-a-gene"], pos.tolist()):
            for gsc in ("GO", "Combined"):
                a, b = both("_get_negatives", str(data_path), "Human", net, gsc, pos, negatives)
                assert_equal(a, b, f"_get_negatives size={size} negatives={negatives is not None}")


def test_get_negatives_with_odd_terms(tmp_path):
    """Empty terms, duplicate genes, genes outside the universe, a term named like the summary key."""
    universe = [str(10000000 + i) for i in range(200)]
    rng = np.random.default_rng(2)
    gsc = {"Universe": universe, "Term_Order": []}
    for t in range(60):
        size = [0, 1, 3, 20, 80][t % 5]
        genes = rng.choice(universe, size).tolist() + (["10000000"] * 3 if t % 7 == 0 else [])
        if t % 11 == 0:
            genes.append("88888888")  # not in the universe
        term = "All Neutrals" if t == 59 else f"T{t}"
        gsc["Term_Order"].append(term)
        gsc[term] = {"Name": f"term {t}", "Task": "GO", "Genes": genes}
    (tmp_path / "GSC__Human__GO__STRING.json").write_text(json.dumps(gsc))
    for size in (0, 3, 30):
        pos = np.array(sorted(rng.choice(universe, size, replace=False)), dtype=str)
        for negatives in (None, [], universe[:50]):
            a, b = both("_get_negatives", str(tmp_path), "Human", "STRING", "GO", pos, negatives)
            assert_equal(a, b, "_get_negatives")


def test_run_sl_on_random_genes(data_path, cache_mode):
    rng = np.random.default_rng(3)
    genes = net_genes(data_path)
    for size, cv in ((20, True), (20, False), (8, True)):
        pos = np.intersect1d(rng.choice(genes, size, replace=False), genes)
        neg = np.setdiff1d(rng.choice(genes, 150, replace=False), pos)
        for scale in (False, True):
            args = (str(data_path), "Human", "STRING", "SixSpeciesN2V", pos, neg, genes, {}, 15, 3, None, 0, cv, scale)
            a, b = both("_run_sl", *args)
            assert_equal(a[0], b[0], "mdl_weights")
            assert a[1] == b[1], "avgps"
            np.testing.assert_array_equal(a[2].coef_, b[2].coef_)
            assert (a[3] is None) == (b[3] is None) == (not scale)


def test_run_sl_finds_the_first_row_of_a_repeated_gene_and_refuses_unknown_genes(data_path):
    genes = net_genes(data_path)
    repeated = np.concatenate([genes, genes[:50]])  # a NodeOrder with repeats: np.where(...)[0][0] is the first
    assert fast_path._rows_of(repeated[[3, 60, 3]], repeated) == [3, 60, 3]
    assert fast_path._rows_of([], genes) == []
    with pytest.raises(IndexError):
        fast_path._rows_of(["not-a-gene"], genes)
    args = (str(data_path), "Human", "STRING", "SixSpeciesN2V", genes[:10], np.array(["not-a-gene"]), genes)
    a, b = both("_run_sl", *args, {}, 15, 3, None, 0, True, False)
    assert isinstance(a, IndexError) and isinstance(b, IndexError)


@pytest.mark.parametrize("sp_res", ["Human", "Mouse"])
def test_make_prob_df_on_random_probabilities_with_ties(sp_res, data_path, cache_mode):
    rng = np.random.default_rng(4)
    trn = net_genes(data_path, "Human")
    n = len(net_genes(data_path, sp_res))
    for decimals in (None, 2, 0):  # 0: every probability ties with many others
        probs = rng.random(n) if decimals is None else np.round(rng.random(n), decimals)
        for size in (0, 1, 25):
            pos = np.intersect1d(rng.choice(trn, size, replace=False), trn)
            neg = np.setdiff1d(np.append(rng.choice(trn, 100), "not-a-gene"), pos)
            a, b = both("_make_prob_df", str(data_path), "Human", sp_res, "STRING", probs, pos, neg)
            assert_equal(a, b, f"_make_prob_df decimals={decimals} size={size}")


def test_make_prob_df_names_genes_without_symbol_or_name_na(tmp_path):
    from mljob.tools.synthetic_data import make_backend_data

    make_backend_data(tmp_path, species=["Human"], n_genes=100)
    for kind in ("Symbol", "Name"):
        path = tmp_path / f"IDconversion__Human__Entrez-to-{kind}.json"
        table = json.loads(path.read_text())
        first = sorted(table)
        del table[first[0]]
        table[first[1]] = ["A", "B"]  # two names: "A/B"
        path.write_text(json.dumps(table))
    genes = net_genes(tmp_path)
    probs = np.random.default_rng(5).random(len(genes))
    a, b = both("_make_prob_df", str(tmp_path), "Human", "Human", "STRING", probs, genes[:5], genes[5:20])
    assert_equal(a, b)
    assert "N/A" in set(a["Symbol"]) and "A/B" in set(a["Name"])


@pytest.mark.parametrize(("species", "gsc"), [("Human", "Combined"), ("Human", "Mondo"), ("Mouse", "Monarch")])
@pytest.mark.parametrize("block", [1024, 7])  # terms at a time (7: many blocks, the last one partial)
def test_make_sim_dfs_on_random_model_weights(species, gsc, block, data_path, cache_mode, monkeypatch):
    monkeypatch.setattr(fast_path, "_TERMS_AT_ONCE", block)
    rng = np.random.default_rng(6)
    dim = np.load(data_path / f"Data__{species}__SixSpeciesN2V__STRING.npy").shape[1]
    for weights in (rng.standard_normal(dim), rng.standard_normal(dim) * 1e-8, np.round(rng.standard_normal(dim))):
        a, b = both("_make_sim_dfs", str(data_path), weights, species, gsc, "STRING", "SixSpeciesN2V")
        assert_equal(a[0], b[0], "df_sim")


def test_make_sim_dfs_with_tied_and_zero_term_weights(tmp_path):
    from mljob.tools.synthetic_data import make_backend_data

    make_backend_data(tmp_path, species=["Human"], n_genes=100, dim=16)
    path = tmp_path / "PreTrainedWeights__Human__GO__STRING__SixSpeciesN2V.json"
    weights = json.loads(path.read_text())
    terms = list(weights)
    weights[terms[1]]["Weights"] = weights[terms[0]]["Weights"]  # two terms tie
    weights[terms[2]]["Weights"] = [0.0] * 16  # a zero vector: NaN similarity, as scipy's cosine gives
    path.write_text(json.dumps(weights))
    model = np.random.default_rng(7).standard_normal(16)
    with pytest.warns(RuntimeWarning):
        a, b = both("_make_sim_dfs", str(tmp_path), model, "Human", "GO", "STRING", "SixSpeciesN2V")
    assert_equal(a[0], b[0], "df_sim")
    assert a[0]["Similarity"].isna().any()


def test_vecdot_rounds_as_np_dot_per_row():
    """The assumption under _make_sim_dfs: np.vecdot gives, bit for bit, what np.dot gives for each row."""
    rng = np.random.default_rng(8)
    for dim in (1, 7, 32, 512, 1000):
        u, v = rng.standard_normal((300, dim)), rng.standard_normal(dim)
        assert np.array_equal(np.vecdot(u, v), [np.dot(row, v) for row in u])
        assert np.array_equal(np.vecdot(u, u), [np.dot(row, row) for row in u])


@pytest.mark.parametrize("net", ["STRING", "BioGRID", "IMP"])
@pytest.mark.parametrize("species", ["Human", "Mouse"])
def test_make_small_edgelist_on_random_rankings(net, species, data_path, cache_mode):
    rng = np.random.default_rng(9)
    genes = net_genes(data_path, species, net)
    for num_nodes in (0, 1, 10, 50, 10_000):
        df_probs = pd.DataFrame({"Entrez": rng.permutation(np.append(genes, "not-a-gene")).astype(str)})
        a, b = both("_make_small_edgelist", str(data_path), df_probs, species, net, num_nodes=num_nodes)
        assert_equal(list(a), list(b), f"_make_small_edgelist {num_nodes}")


def test_every_replacement_is_named_after_and_cites_the_function_it_replaces():
    source = Path(inspect.getfile(gpx())).read_text().splitlines()
    for name in fast_path.REPLACED:
        doc = getattr(fast_path, name).__doc__
        line = int(re.search(rf"geneplexus/_geneplexus\.py:(\d+) `{name}`", doc).group(1))
        assert source[line - 1].startswith(f"def {name}("), name
        signature = inspect.signature(getattr(fast_path, name))
        assert signature == inspect.signature(original(name)), name


# --- in place only while active, on geneplexus 3.0.1 only ----------------------------------------------------


def test_geneplexus_is_pristine_after_the_block_and_between_threads():
    before = {name: getattr(gpx(), name) for name in fast_path.REPLACED}
    inside, release = threading.Barrier(3), threading.Event()

    def job():
        with fast_path.active(True) as on:
            assert on
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert all(getattr(gpx(), name) is getattr(fast_path, name) for name in fast_path.REPLACED)
    with fast_path.active(True):  # a third, nested
        pass
    assert all(getattr(gpx(), name) is getattr(fast_path, name) for name in fast_path.REPLACED)
    release.set()
    for t in threads:
        t.join()
    assert {name: getattr(gpx(), name) for name in fast_path.REPLACED} == before
    assert fast_path.PATCH.holders == 0 and not fast_path._originals


def test_off_leaves_geneplexus_untouched_and_an_error_still_restores_it():
    before = {name: getattr(gpx(), name) for name in fast_path.REPLACED}
    with fast_path.active(False) as on:
        assert not on and {name: getattr(gpx(), name) for name in fast_path.REPLACED} == before
    with pytest.raises(RuntimeError), fast_path.active(True):
        raise RuntimeError("a job failed")
    assert {name: getattr(gpx(), name) for name in fast_path.REPLACED} == before


def test_another_geneplexus_version_turns_it_off_with_one_warning(monkeypatch, caplog):
    import geneplexus

    before = {name: getattr(gpx(), name) for name in fast_path.REPLACED}
    monkeypatch.setattr(geneplexus, "__version__", "3.1.0")
    monkeypatch.setattr(fast_path.supported, "warned", False)
    with caplog.at_level(logging.WARNING, logger="mljob.science.fast_path"):
        for _ in range(3):
            with fast_path.active(True) as on:
                assert not on
                assert {name: getattr(gpx(), name) for name in fast_path.REPLACED} == before
    warnings = [r for r in caplog.records if r.name == "mljob.science.fast_path"]
    assert len(warnings) == 1 and "3.1.0" in warnings[0].getMessage() and "3.0.1" in warnings[0].getMessage()
    assert fast_path.SUPPORTED_GENEPLEXUS is patching.SUPPORTED_GENEPLEXUS


def test_a_pipeline_on_another_version_runs_geneplexus_itself(monkeypatch, data_path, demo_genes):
    import geneplexus

    monkeypatch.setattr(geneplexus, "__version__", "3.1.0")
    monkeypatch.setattr(fast_path.supported, "warned", True)  # (warned already)
    result = analyse(parse_config({"jobname": "old-version"}), demo_genes, None, data_path, fast_path=True)
    assert result.fast_path is False


def test_shared_json_is_the_cached_data_itself_while_the_cache_is_on(data_path):
    from geneplexus import util

    loc, name = str(data_path), "IDconversion__Human__Entrez-to-Symbol.json"
    cold = cache.shared_json(loc, name)
    assert type(next(iter(cold.values()))) is list  # GenePlexus's own loader's result
    with cache.active(16):
        shared = cache.shared_json(loc, name)
        assert cache.shared_json(loc, name) is shared and type(next(iter(shared.values()))) is tuple
        assert {k: list(v) for k, v in shared.items()} == cold
        copy = util._load_json_file(loc, name)  # what GenePlexus gets: a fresh copy
        assert copy == cold and copy is not shared
    assert cache.shared_json(loc, name) is not shared


def test_import_is_light():
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    code = (
        "import sys, mljob.science.fast_path; "
        "print(sorted(m for m in ('numpy', 'pandas', 'geneplexus') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"
