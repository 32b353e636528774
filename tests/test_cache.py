"""The warm data cache: results equal uncached runs, nothing cached can be changed, threads, budget, guards."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mljob.science import data_cache as cache
from mljob.science.data_cache import CACHE, DataCache

REPO = Path(__file__).resolve().parent.parent

NEGATIVES = [f"HSG{i:05d}" for i in range(250, 270)]

PARAMETER_SETS = {
    "default": dict(),
    "cross-species": dict(sp_res=["Human", "Mouse"], gsc_res=["Combined", "Combined"]),
    "biogrid-go": dict(net_type="BioGRID", gsc_trn="GO", gsc_res="GO"),
    # after biogrid-go, so clustering gets the cached 2-column edge list and adds a column to its copy
    "biogrid-louvain": dict(net_type="BioGRID", cluster="louvain"),
    "imp": dict(net_type="IMP"),
    "negatives": dict(negatives=True),
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    CACHE.clear()
    yield
    CACHE.clear()


def run_direct(data_path: Path, genes: list[str], params: dict) -> dict:
    """Run the GenePlexus pipeline and return every output table and list, by name."""
    from geneplexus import GenePlexus

    params = dict(params)
    cluster = params.pop("cluster", None)
    negatives = params.pop("negatives", False)
    gp = GenePlexus(file_loc=str(data_path), auto_download=False, log_level="WARNING", **params)
    gp.load_genes(list(genes))
    if negatives:
        gp.load_negatives(list(NEGATIVES))
    if cluster:
        gp.cluster_input(clust_method=cluster, clust_min_size=5, clust_kwargs={})
    gp.fit(logreg_kwargs={}, min_num_pos=5, min_num_pos_cv=5)
    gp.predict()
    gp.make_sim_dfs()
    gp.make_small_edgelist(num_nodes=30)
    out: dict = {"df_convert_out": gp.df_convert_out, "table_summary": gp.table_summary}
    if negatives:
        out["df_convert_out_negatives"] = gp.df_convert_out_negatives
    for model_name, model in gp.model_info.items():
        out[f"{model_name}/avgps"] = model.avgps
        out[f"{model_name}/mdl_weights"] = model.mdl_weights
        out[f"{model_name}/pos_genes_in_net"] = model.pos_genes_in_net
        out[f"{model_name}/negative_genes"] = model.negative_genes
        out[f"{model_name}/net_genes"] = model.net_genes
        out[f"{model_name}/df_convert_out_for_model"] = model.df_convert_out_for_model
        out[f"{model_name}/neutral_gene_info"] = model.neutral_gene_info
        for res_name, res in model.results.items():
            for attr in ("df_probs", "df_sim", "df_edge", "df_edge_sym", "isolated_genes", "isolated_genes_sym"):
                out[f"{model_name}/{res_name}/{attr}"] = getattr(res, attr)
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert json.dumps(x, sort_keys=True, default=repr) == json.dumps(y, sort_keys=True, default=repr), name


def test_every_output_equals_an_uncached_run_for_several_parameter_sets(data_path, demo_genes):
    expected = {name: run_direct(data_path, demo_genes, p) for name, p in PARAMETER_SETS.items()}
    with cache.active(64) as on:
        assert on
        for round in range(2):  # the first round fills the cache, the second is served from it
            for name, params in PARAMETER_SETS.items():
                if round and name not in ("default", "cross-species"):
                    continue  # a second job after the first: two sets are enough (keeps the test fast)
                assert_same(run_direct(data_path, demo_genes, params), expected[name])
    assert CACHE.stats.hits > CACHE.stats.misses > 0
    # after two rounds of jobs, an uncached run still gives the same: nothing cached leaked into a job
    assert_same(run_direct(data_path, demo_genes, PARAMETER_SETS["cross-species"]), expected["cross-species"])


def test_patches_are_in_place_only_while_active(data_path):
    from geneplexus import _geneplexus, util

    before = (util._load_json_file, util._load_np_file, _geneplexus.pd)
    with cache.active(16):
        assert util._load_json_file is not before[0] and _geneplexus.pd is not pd
        with cache.active(16):  # nested / a second thread
            pass
        assert util._load_np_file is not before[1]
    assert (util._load_json_file, util._load_np_file, _geneplexus.pd) == before


def test_arrays_are_read_only_and_json_maps_are_fresh_copies(data_path):
    from geneplexus import util

    with cache.active(16):
        data = util.load_gene_features(str(data_path), "Human", "SixSpeciesN2V", "STRING")
        nodes = util.load_node_order(str(data_path), "Human", "STRING")
        with pytest.raises(ValueError):
            data[0, 0] = 1.0
        with pytest.raises(ValueError):
            nodes[0] = "x"
        with pytest.raises(ValueError):
            data.setflags(write=True)
        gsc = util.load_gsc(str(data_path), "Human", "Combined", "STRING")
        first_term = gsc["Term_Order"][0]
        gsc["Term_Order"].pop()
        gsc[first_term]["Genes"].append("mutated")
        gsc[first_term]["Name"] = "mutated"
        gsc["extra"] = 1
        again = util.load_gsc(str(data_path), "Human", "Combined", "STRING")
        assert type(again["Term_Order"]) is list and type(again[first_term]["Genes"]) is list
        original = json.loads((data_path / "GSC__Human__Combined__STRING.json").read_text())
        assert again == original
        edges = util.os.path.join(str(data_path), "Edgelist__Human__STRING.edg")
        from geneplexus import _geneplexus

        df = _geneplexus.pd.read_csv(edges, sep="\t", header=None, names=["Node1", "Node2", "Weight"])
        df["Weight"] = 0.0
        df2 = _geneplexus.pd.read_csv(edges, sep="\t", header=None, names=["Node1", "Node2", "Weight"])
        assert (df2["Weight"] != 0).all()
    assert CACHE.stats.hits == 2 and CACHE.stats.misses == 4


def test_pretrained_weights_are_shared_read_only_all_the_way_down(data_path):
    from geneplexus import util

    args = (str(data_path), "Human", "Combined", "STRING", "SixSpeciesN2V")
    original = json.loads((data_path / "PreTrainedWeights__Human__Combined__STRING__SixSpeciesN2V.json").read_text())
    with cache.active(64):
        first = util.load_pretrained_weights(*args)
        assert util.load_pretrained_weights(*args) is first  # no copy per job
        entry = next(iter(first.values()))
        with pytest.raises(TypeError):
            first["extra"] = {}
        with pytest.raises(TypeError):
            entry["Name"] = "mutated"
        with pytest.raises(ValueError):
            entry["Weights"][0] = 1.0
        with pytest.raises(ValueError):
            entry["Weights"].setflags(write=True)
    assert set(first) == set(original)
    for name, value in original.items():
        assert first[name]["Weights"].tolist() == value["Weights"]  # the very floats json.load read
        assert {k: (list(v) if type(v) is tuple else v) for k, v in first[name].items() if k != "Weights"} == {
            k: v for k, v in value.items() if k != "Weights"
        }


def test_pretrained_weights_of_another_shape_are_copied_like_other_json(tmp_path):
    from geneplexus import util

    ragged = {"T1": {"Name": "a", "Weights": [0.5, 0.25]}, "T2": {"Name": "b", "Weights": [1.5]}}
    (tmp_path / "PreTrainedWeights__Human__GO__STRING__SixSpeciesN2V.json").write_text(json.dumps(ragged))
    with cache.active(16):
        first = util.load_pretrained_weights(str(tmp_path), "Human", "GO", "STRING", "SixSpeciesN2V")
        first["T1"]["Weights"].append(9.0)
        again = util.load_pretrained_weights(str(tmp_path), "Human", "GO", "STRING", "SixSpeciesN2V")
    assert again == ragged and type(again) is dict


def test_a_changed_file_is_read_again(tmp_path):
    from geneplexus import util

    (tmp_path / "m.json").write_text('{"a": [1, 2]}')
    with cache.active(16):
        assert util._load_json_file(str(tmp_path), "m.json") == {"a": [1, 2]}
        (tmp_path / "m.json").write_text('{"a": [1, 2, 3]}')
        os.utime(tmp_path / "m.json", ns=(time.time_ns() + 10**9,) * 2)
        assert util._load_json_file(str(tmp_path), "m.json") == {"a": [1, 2, 3]}
        assert len(CACHE) == 1  # the stale version was dropped
        with pytest.raises(FileNotFoundError):
            util._load_json_file(str(tmp_path), "missing.json")


def test_lru_eviction_keeps_within_the_budget(tmp_path):
    c = DataCache(budget_bytes=250)
    for name in "abcd":
        (tmp_path / name).write_text(name)
        c.get(str(tmp_path / name), "x", lambda n=name: n, lambda v: (v, 100))
    assert c.used_bytes == 200 and c.stats.evictions == 2
    c.get(str(tmp_path / "c"), "x", lambda: pytest.fail("c should be cached"), lambda v: (v, 100))
    c.get(str(tmp_path / "a"), "x", lambda: "a", lambda v: (v, 100))  # evicts d, the least recently used
    c.get(str(tmp_path / "c"), "x", lambda: pytest.fail("c should still be cached"), lambda v: (v, 100))
    assert c.get(str(tmp_path / "a"), "x", lambda: "big", lambda v: (v, 1000)) == "a"
    (tmp_path / "e").write_text("e")
    assert c.get(str(tmp_path / "e"), "x", lambda: "big", lambda v: (v, 1000)) == "big"  # too big: not stored
    assert c.stats.uncacheable == 1 and c.used_bytes == 200


def test_two_threads_asking_at_once_load_once(tmp_path):
    c = DataCache(budget_bytes=10**6)
    (tmp_path / "f").write_text("f")
    loads = []
    start = threading.Barrier(8)

    def load():
        loads.append(1)
        time.sleep(0.2)
        return "value"

    results = []

    def ask():
        start.wait()
        results.append(c.get(str(tmp_path / "f"), "x", load, lambda v: (v, 10)))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1] and results == ["value"] * 8


def test_a_failed_load_is_not_cached_and_waiters_try_again(tmp_path):
    c = DataCache(budget_bytes=10**6)
    (tmp_path / "f").write_text("f")
    with pytest.raises(OSError):
        c.get(str(tmp_path / "f"), "x", lambda: (_ for _ in ()).throw(OSError("disk")), lambda v: (v, 1))
    assert c.get(str(tmp_path / "f"), "x", lambda: "ok", lambda v: (v, 1)) == "ok"


def test_jobs_in_threads_share_the_cache_and_give_identical_results(data_path, demo_genes):
    expected = run_direct(data_path, demo_genes, PARAMETER_SETS["cross-species"])
    got, errors = [], []

    def job():
        try:
            with cache.active(64):
                got.append(run_direct(data_path, demo_genes, PARAMETER_SETS["cross-species"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for result in got:
        assert_same(result, expected)


def test_zero_turns_it_off_and_releases_memory(data_path, demo_genes):
    from geneplexus import util

    with cache.active(64):
        run_direct(data_path, demo_genes, {})
    assert len(CACHE) > 0
    with cache.active(0) as on:
        assert not on and len(CACHE) == 0
        assert util._load_json_file.__module__ == "geneplexus.util"


def test_budget_comes_from_the_caller():
    with cache.active(0) as on:
        assert not on
    with cache.active(8) as on:
        assert on and CACHE.budget_bytes == 8 * 1024 * 1024


def test_another_geneplexus_version_turns_it_off_with_one_warning(monkeypatch, caplog):
    import geneplexus

    monkeypatch.setattr(geneplexus, "__version__", "3.1.0")
    monkeypatch.setattr(cache.supported, "warned", False)
    with caplog.at_level(logging.WARNING, logger="mljob.science.data_cache"):
        for _ in range(3):
            with cache.active(64) as on:
                assert not on
    warnings = [r for r in caplog.records if r.name == "mljob.science.data_cache"]
    assert len(warnings) == 1 and "3.1.0" in warnings[0].getMessage()


def test_runner_jobs_use_the_cache_and_match_uncached_jobs(store, data_path, demo_genes):
    from mljob.job import parse_config
    from mljob.run_geneplexus import run_geneplexus
    from mljob.settings import Settings
    from mljob.status import State

    tables = {}
    for mb in (0, 64, 64):  # DATA_CACHE_MB
        name = f"cache-job-{len(tables)}"
        store.create_job(parse_config({"jobname": name, "sp_res": ["Human", "Mouse"]}), demo_genes, None)
        settings = Settings(data_cache_mb=mb)
        assert run_geneplexus(name, store, data_path, settings=settings).status is State.COMPLETED
        results = store.job_path(name) / "results" / "All-Genes"
        tables[name] = {p.relative_to(results).as_posix(): p.read_text() for p in sorted(results.rglob("*.tsv"))}
    first, *rest = tables.values()
    assert len(first) >= 8
    assert all(t == first for t in rest)
    # the jobs run in a long-lived job process: its cache served the third job (job_info.json says so)
    caches = [store.read_job_info(name)["data_cache"] for name in tables]
    assert caches[0] == {"budget_mb": 0, "hits": 0, "misses": 0}
    assert caches[2]["budget_mb"] == 64 and caches[2]["hits"] > 0


def test_import_is_light():
    code = (
        "import sys, mljob.science.data_cache; "
        "print(sorted(m for m in ('numpy', 'pandas', 'geneplexus') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
