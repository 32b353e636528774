"""run_geneplexus on real GenePlexus 3 and synthetic backend data: complete jobs, failures, science check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import typing
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd
import pytest

from mljob.errors import JobWorkFailed
from mljob.job import parse_config
from mljob.lifecycle import RunPolicy
from mljob.results_store import ResultsFileStore
from mljob.run_geneplexus import run_geneplexus
from mljob.science.pipeline import STEP_PERCENT
from mljob.settings import Settings
from mljob.status import State

REPO = Path(__file__).resolve().parent.parent


def make_job(store: ResultsFileStore, name: str, genes: list[str], negatives=None, **params) -> str:
    store.create_job(parse_config({"jobname": name, **params}), genes, negatives)
    return name


def probs(store: ResultsFileStore, name: str, result: str = "Human-Combined", model: str = "All-Genes"):
    return pd.read_csv(store.job_path(name) / "results" / model / result / "df_probs.tsv", sep="\t")


def test_full_job_writes_every_documented_file(store, data_path, demo_genes):
    name = make_job(store, "full-job", demo_genes)
    status = run_geneplexus(name, store, data_path)

    assert status.status is State.COMPLETED and status.code == 200, status.message
    assert status.progress.step == "done" and status.progress.percent == 100
    assert status.attempt == 1 and status.started and status.finished
    folder = store.job_path(name)
    for file in ["job_config.json", "input_genes.txt", "status.json", "job.log", "job_info.json"]:
        assert (folder / file).is_file(), file
    results = folder / "results"
    for file in [
        "top_genes.json",
        "top_terms.json",
        "graph.json",
        "top_level_config.json",
        "df_convert_out.tsv",
        "All-Genes/model_level_config.json",
        "All-Genes/clf.joblib",
        "All-Genes/Human-Combined/df_probs.tsv",
        "All-Genes/Human-Combined/df_sim.tsv",
        "All-Genes/Human-Combined/df_edge.tsv",
        "All-Genes/Human-Combined/graph.json",
    ]:
        assert (results / file).is_file(), file
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "staging or temp files left"

    steps = [h.step for h in status.history if h.status is State.RUNNING]
    assert [s for s in STEP_PERCENT if s in steps] == [s for s in steps if s in STEP_PERCENT]
    assert {"loading genes", "fitting", "predicting", "similarities", "network", "saving"} <= set(steps)
    assert [h.status for h in status.history][:2] == [State.CREATED, State.RUNNING]

    info = json.loads((folder / "job_info.json").read_text())
    assert info["parameters"]["net_type"] == "STRING"
    assert info["versions"]["geneplexus"] == "3.0.1" and info["versions"]["python"]
    assert info["backend_files"] and all(f["bytes"] > 0 for f in info["backend_files"])
    assert {"fitting", "predicting", "saving"} <= set(info["seconds"])
    assert info["peak_memory_mb"] > 0 and info["total_seconds"] > 0
    assert len(info["avgps"]) == 3 and info["avgps_mean"] > 1
    assert info["input_count"] == len(demo_genes)
    assert info["positive_genes"]["in_network"] >= 15
    assert set(info["result_files"]) == set(store.list_results(name))

    top = json.loads((results / "top_genes.json").read_text())["results"]["Human-Combined"]
    assert len(top) == 50 and top[0]["rank"] == 1 and top[0]["probability"] >= top[-1]["probability"]
    graph = json.loads((results / "graph.json").read_text())
    ids = {n["id"] for n in graph["nodes"]}
    assert len(ids) == 50 and graph["links"]
    assert all(link["source"] in ids and link["target"] in ids for link in graph["links"])
    log = (folder / "job.log").read_text()
    assert "run 1 started" in log and "geneplexus" in log and "completed" in log


def test_peak_memory_is_the_workers_own_not_its_parents():
    """job_info's peak_memory_mb: a worker started by a big process reports its own peak (not ru_maxrss)."""
    big = b"\x01" * (400 * 2**20)  # the parent's peak, resident
    code = "from mljob.manifest import peak_rss_mb; print(peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 1 < float(out) < 200, out
    del big


def test_unknown_genes_fail_with_a_reason_in_words(store, data_path):
    name = make_job(store, "unknown-genes", [f"NOTAGENE{i}" for i in range(20)])
    status = run_geneplexus(name, store, data_path)
    assert status.status is State.FAILED and status.code == 500
    assert "too few of your genes are in the STRING network for Human" in status.message
    assert "0 of your 20 genes" in status.message and "at least 15" in status.message
    assert not store.has_results(name) and not (store.job_path(name) / "job_info.json").exists()
    assert "too few" in store.read_log(name)


def test_too_few_known_genes_says_how_many_were_found(store, data_path, demo_genes):
    name = make_job(store, "few-genes", [*demo_genes[:5], "NOTAGENE"])
    status = run_geneplexus(name, store, data_path)
    assert status.status is State.FAILED
    assert "5 of your 6 genes were found" in status.message and "at least 15" in status.message


def test_missing_backend_files_are_named_and_nothing_is_downloaded(store, data_path, demo_genes, tmp_path):
    partial = tmp_path / "partial-data"
    shutil.copytree(data_path, partial)
    (partial / "Data__Human__SixSpeciesN2V__STRING.npy").unlink()
    name = make_job(store, "no-data", demo_genes)
    status = run_geneplexus(name, store, partial)
    assert status.status is State.FAILED
    assert "Data__Human__SixSpeciesN2V__STRING.npy" in status.message and "missing" in status.message
    assert not store.has_results(name)
    assert sorted(p.name for p in partial.iterdir()) == sorted(
        p.name for p in data_path.iterdir() if p.name != "Data__Human__SixSpeciesN2V__STRING.npy"
    )


def test_missing_data_folder_fails_clearly(store, demo_genes, tmp_path):
    name = make_job(store, "no-folder", demo_genes)
    status = run_geneplexus(name, store, tmp_path / "nowhere")
    assert status.status is State.FAILED and "does not exist" in status.message


def test_tampered_config_fails_before_running(store, data_path, demo_genes):
    name = make_job(store, "bad-config", demo_genes)
    config = store.job_path(name) / "job_config.json"
    data = json.loads(config.read_text())
    data.update(sp_trn="Zebrafish", net_type="BioGRID")
    config.write_text(json.dumps(data))
    status = run_geneplexus(name, store, data_path)
    assert status.status is State.FAILED
    assert "invalid job config" in status.message and "BioGRID" in status.message
    assert not store.has_results(name)


def test_unexpected_error_fails_with_traceback_in_log_only(store, data_path, demo_genes, tmp_path):
    broken = tmp_path / "broken-data"
    shutil.copytree(data_path, broken)
    (broken / "Data__Human__SixSpeciesN2V__STRING.npy").write_bytes(b"not a numpy file")
    name = make_job(store, "broken-data", demo_genes)
    status = run_geneplexus(name, store, broken)
    assert status.status is State.FAILED
    assert "unexpected error" in status.message and "job.log" in status.message
    assert "Traceback" not in status.message and "Traceback" in store.read_log(name)
    assert not store.has_results(name)


def test_rerun_replaces_results_whole_and_counts_attempts(store, data_path, demo_genes):
    name = make_job(store, "rerun-job", demo_genes)
    first = run_geneplexus(name, store, data_path)
    first_probs = probs(store, name)
    leftover = store.job_path(name) / ".staging-crashed"
    leftover.mkdir()
    (leftover / "half.tsv").write_text("x")
    second = run_geneplexus(name, store, data_path)
    assert first.status is second.status is State.COMPLETED
    assert second.attempt == 2
    assert not leftover.exists()
    pd.testing.assert_frame_equal(probs(store, name), first_probs)
    assert [h.attempt for h in second.history if h.status is State.COMPLETED] == [1, 2]


def test_negatives_clustering_and_cross_species(store, data_path, demo_genes):
    negatives = [f"HSG{i:05d}" for i in range(250, 270)]
    name = make_job(
        store,
        "many-options",
        demo_genes,
        negatives,
        net_type="IMP",
        sp_res=["Human", "Mouse"],
        gsc_res=["GO", "Combined"],
        clust_method="louvain",
        num_nodes=20,
    )
    status = run_geneplexus(name, store, data_path)
    assert status.status is State.COMPLETED, status.message
    files = store.list_results(name)
    assert "All-Genes/Human-GO/df_probs.tsv" in files and "All-Genes/Mouse-Combined/df_probs.tsv" in files
    top = store.read_result_json(name, "top_genes.json")["results"]
    assert set(top) == {"Human-GO", "Mouse-Combined"} and len(top["Mouse-Combined"]) == 20
    info = store.read_job_info(name)
    assert info["negatives_count"] == len(negatives)
    assert "BioMart__Human__Mouse.json" in {f["name"] for f in info["backend_files"]}


def test_module_level_defaults_survive_jobs(store, data_path, demo_genes):
    from geneplexus._config import config

    before = (list(config.ALL_SPECIES), dict(config.DEFAULT_LOGREG_KWARGS), dict(config.DEFAULT_LOUVAIN_KWARGS))
    for i, params in enumerate([{"clust_method": "louvain"}, {"sp_res": ["Human", "Mouse"]}]):
        assert (
            run_geneplexus(make_job(store, f"defaults-{i}", demo_genes, **params), store, data_path).status
            is State.COMPLETED
        )
    after = (list(config.ALL_SPECIES), dict(config.DEFAULT_LOGREG_KWARGS), dict(config.DEFAULT_LOUVAIN_KWARGS))
    assert after == before


def test_two_jobs_in_one_process_equal_each_run_alone(store, data_path, demo_genes, tmp_path):
    jobs = {
        "mixed-a": {"net_type": "STRING", "gsc_trn": "GO", "num_folds": 4},
        "mixed-b": {"net_type": "BioGRID", "sp_res": ["Mouse", "Human"], "clust_method": "louvain"},
    }
    for name, params in jobs.items():
        make_job(store, name, demo_genes, **params)
        assert run_geneplexus(name, store, data_path).status is State.COMPLETED
    (tmp_path / "alone-jobs").mkdir()
    alone = ResultsFileStore(tmp_path / "alone-jobs")
    for name, params in jobs.items():
        make_job(alone, name, demo_genes, **params)
        run = subprocess.run(
            [sys.executable, "-m", "mljob.run_geneplexus", name, str(alone.root), str(data_path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
    for name in jobs:
        assert store.list_results(name) == alone.list_results(name)
        for rel in store.list_results(name):
            if rel.endswith("df_probs.tsv") or rel.endswith("df_sim.tsv"):
                a = pd.read_csv(store.result_path(name, rel), sep="\t")
                b = pd.read_csv(alone.result_path(name, rel), sep="\t")
                pd.testing.assert_frame_equal(a, b)


def test_results_equal_a_direct_geneplexus_call(store, data_path, demo_genes):
    """The science check: the runner adds nothing to and takes nothing from GenePlexus's numbers."""
    from geneplexus import GenePlexus

    params = {"net_type": "STRING", "sp_res": ["Human", "Mouse"], "gsc_res": ["Combined", "GO"], "num_nodes": 30}
    name = make_job(store, "science-check", demo_genes, **params)
    assert run_geneplexus(name, store, data_path).status is State.COMPLETED

    gp = GenePlexus(
        file_loc=str(data_path),
        net_type="STRING",
        features="SixSpeciesN2V",
        sp_trn="Human",
        sp_res=["Human", "Mouse"],
        gsc_trn="Combined",
        gsc_res=["Combined", "GO"],
        log_level="WARNING",
    )
    gp.load_genes(list(demo_genes))
    gp.fit()
    gp.predict()
    gp.make_sim_dfs()
    gp.make_small_edgelist(num_nodes=30)
    model = gp.model_info["All-Genes"]
    assert store.read_job_info(name)["avgps"] == [float(x) for x in model.avgps]
    for key in ["Human-Combined", "Mouse-GO"]:
        for table in ["df_probs", "df_sim", "df_edge"]:
            ours = pd.read_csv(store.result_path(name, f"All-Genes/{key}/{table}.tsv"), sep="\t")
            direct = getattr(model.results[key], table).reset_index(drop=True)
            assert list(ours.columns) == list(direct.columns) and len(ours) == len(direct)
            for column in direct.columns:
                if pd.api.types.is_numeric_dtype(direct[column]):
                    pd.testing.assert_series_equal(ours[column], direct[column], check_dtype=False, rtol=1e-12)
                else:
                    assert ours[column].astype(str).tolist() == direct[column].astype(str).tolist(), column


class _Recorder(BaseHTTPRequestHandler):
    bodies: typing.ClassVar[list[bytes]] = []
    answer = 200

    def do_POST(self):
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.answer)
        self.end_headers()

    def log_message(self, *args):
        pass


# These tests post callbacks to 127.0.0.1, which callbacks refuse unless it is listed.
LOOPBACK_CALLBACKS = Settings(callback_allowed_hosts="127.0.0.1")
# The queue worker's policy: retry an unexpected failure (up to 3 tries).
RETRY = RunPolicy(try_number=1, max_tries=3)


@pytest.fixture
def callback_server():
    _Recorder.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_callback_gets_the_final_status_once(store, data_path, demo_genes, callback_server):
    url = f"http://127.0.0.1:{callback_server.server_port}/jobs/cb-job"
    name = make_job(store, "cb-job", demo_genes, callback_url=url)
    assert run_geneplexus(name, store, data_path, settings=LOOPBACK_CALLBACKS).status is State.COMPLETED
    assert [json.loads(b) for b in _Recorder.bodies] == [{"jobname": "cb-job", "status": "completed", "code": 200}]


def test_failed_callback_never_fails_the_job(store, data_path, demo_genes, callback_server, monkeypatch):
    monkeypatch.setattr("mljob.callback.time.sleep", lambda s: None)
    _Recorder.answer = 500
    try:
        name = make_job(store, "cb-fail", demo_genes, callback_url=f"http://127.0.0.1:{callback_server.server_port}/")
        assert run_geneplexus(name, store, data_path, settings=LOOPBACK_CALLBACKS).status is State.COMPLETED
    finally:
        _Recorder.answer = 200
    assert len(_Recorder.bodies) == 3
    assert "callback for job cb-fail failed after 3 tries" in store.read_log(name)


def test_callback_to_a_closed_port_never_fails_the_job(store, data_path, demo_genes, monkeypatch):
    monkeypatch.setattr("mljob.callback.time.sleep", lambda s: None)
    name = make_job(store, "cb-down", demo_genes, callback_url="http://127.0.0.1:9/down")
    assert run_geneplexus(name, store, data_path, settings=LOOPBACK_CALLBACKS).status is State.COMPLETED


def test_retry_puts_an_unexpected_failure_back_in_the_queue(store, data_path, demo_genes, tmp_path):
    broken = tmp_path / "broken-data"
    shutil.copytree(data_path, broken)
    (broken / "Data__Human__SixSpeciesN2V__STRING.npy").write_bytes(b"not a numpy file")
    name = make_job(store, "retry-job", demo_genes)
    with pytest.raises(JobWorkFailed, match="ValueError"):
        run_geneplexus(name, store, broken, policy=RETRY)
    status = store.read_status(name)
    assert status.status is State.QUEUED and status.attempt == 1
    assert "try 1 failed" in status.message and "will be retried" in status.message
    assert run_geneplexus(name, store, data_path, policy=RETRY).status is State.COMPLETED
    assert store.read_status(name).attempt == 2


def test_retry_does_not_retry_what_cannot_be_fixed(store, data_path):
    name = make_job(store, "no-retry", [f"NOPE{i}" for i in range(20)])
    assert run_geneplexus(name, store, data_path, policy=RETRY).status is State.FAILED


def test_a_job_without_cross_validation_completes(store, data_path, demo_genes):
    name = make_job(store, "no-cv", demo_genes, cross_validate=False)
    status = run_geneplexus(name, store, data_path)
    assert status.status is State.COMPLETED, status.message
    info = store.read_job_info(name)
    assert info["avgps"] is None and info["avgps_mean"] is None
    assert "cross-validation" not in status.message
    assert "skipped" in (store.job_path(name) / "results" / "report.html").read_text()
