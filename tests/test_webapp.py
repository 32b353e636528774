"""The web app's API (mljob/webapp.py) in this process: gpz-convert-ids, the gpz-ml request and body, gzip.

Over real HTTP, with the queue workers, CORS and the waiting rules: tests/test_webapp_http.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from webapp_contract import check_convert, check_ml, equals_result_files

from mljob import webapp
from mljob.errors import InvalidInput
from mljob.job_folders import create_job
from mljob.run_geneplexus import run_geneplexus
from mljob.settings import Settings
from mljob.status import State


@pytest.fixture
def settings(data_path: Path, jobs_path: Path) -> Settings:
    return Settings(data_path=data_path, jobs_path=jobs_path, data_cache_mb=64)


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


# --- gpz-convert-ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("species", ["Human", "Mouse"])
def test_convert_ids_answers_load_genes_outputs(settings, demo_genes, species):
    from geneplexus import GenePlexus

    genes = demo_genes if species == "Human" else [g.replace("HSYN", "MSYN") for g in demo_genes]
    status, answer, headers = webapp.convert_ids(body(genes=genes, sp_trn=species), settings)
    assert status == 200 and headers == {}, answer
    check_convert(answer)
    gp = GenePlexus(file_loc=str(settings.data_path), sp_trn=species, sp_res=[species], auto_download=False)
    gp.load_genes(list(genes))  # GenePlexus itself, on the same genes
    assert answer["input_count"] == gp.input_count and answer["convert_ids"] == [str(g) for g in gp.convert_ids]
    assert answer["table_summary"] == [
        {k: (v if k == "Network" else int(v)) for k, v in row.items()} for row in gp.table_summary
    ]
    assert answer["df_convert_out"] == gp.df_convert_out.astype(str).to_dict("records")


def test_convert_ids_creates_no_job(settings, demo_genes):
    assert webapp.convert_ids(body(genes=demo_genes, sp_trn="Human"), settings)[0] == 200
    assert list(settings.jobs_path.iterdir()) == []


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"not json", 400, "request body is not JSON"),
        (b"[1]", 400, "must be a JSON object"),
        (body(genes=["A"], sp_trn="Cat"), 400, "sp_trn: 'Cat' is not allowed"),
        (body(genes="CDK1", sp_trn="Human"), 400, "genes must be a list of gene IDs"),
        (body(genes=[], sp_trn="Human"), 400, "input genes is empty"),
        (body(genes=["A"], sp_trn="Human", extra=1), 400, "unknown field(s) extra"),
        (body(genes=["A"], sp_trn="Fly"), 400, "no GenePlexus backend data for Fly"),
        (body(genes=["G"] * 200_000, sp_trn="Human"), 413, "the most accepted is 1,000,000"),
    ],
)
def test_convert_ids_refuses_bad_requests(settings, raw, status, words):
    code, answer, _ = webapp.convert_ids(raw, settings)
    assert code == status and list(answer) == ["message"] and words in answer["message"], answer


def test_convert_ids_honours_max_input_genes(settings):
    code, answer, _ = webapp.convert_ids(
        body(genes=["A", "B", "C"], sp_trn="Human"),
        Settings(data_path=settings.data_path, jobs_path=settings.jobs_path, max_input_genes=2),
    )
    assert code == 400 and "the most accepted is 2" in answer["message"]


# --- gpz-ml: the request -------------------------------------------------------------------------------

REQUEST = {"name": "My Genes!", "genes": [], "negatives": [], "sp_trn": "Human", "sp_res": "Mouse",
           "net_type": "IMP", "gsc": "GO"}  # fmt: skip


def ml_job(settings: Settings, **fields) -> str:
    """The job a gpz-ml request makes (as webapp.ml creates it, without queueing it)."""
    request = webapp.parse_ml_request(body(**{**REQUEST, **fields}), settings)
    return create_job(webapp.ResultsFileStore.from_settings(settings), **request)


def test_the_request_becomes_a_job_config(settings, demo_genes):
    store = webapp.ResultsFileStore.from_settings(settings)
    jobname = ml_job(settings, genes=demo_genes)
    config, genes, negatives = store.read_config(jobname), store.read_genes(jobname), store.read_negatives(jobname)
    assert config.jobname.startswith("my-genes-") and len(config.jobname) == len("my-genes-") + 8
    assert (config.features, config.net_type, config.sp_trn, config.sp_res) == (
        "SixSpeciesN2V",
        "IMP",
        "Human",
        ["Mouse"],
    )
    assert config.gsc_trn == "GO" and config.gsc_res == ["GO"]
    assert genes == demo_genes and negatives is None
    assert store.read_negatives(ml_job(settings, genes=demo_genes, negatives=["X1"])) == ["X1"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"net_type": "BioGRID", "sp_trn": "Zebrafish"}, "BioGRID has no good Zebrafish network"),
        ({"gsc": "Mondo"}, "Mondo has annotations for Human only, not Mouse"),
        ({"gsc": "DisGeNet"}, "gsc_trn: 'DisGeNet' is not allowed"),
        ({"sp_res": ["Human"]}, "sp_res"),
        ({"name": 5}, "name must be a string"),
        ({"genes": "CDK1"}, "genes must be a list"),
        ({"negatives": [1]}, "negatives must be a list"),
        ({"priority": 1}, "unknown field(s) priority"),
    ],
)
def test_the_request_is_validated_like_any_job(settings, demo_genes, change, words):
    with pytest.raises(InvalidInput) as info:
        ml_job(settings, **{"genes": demo_genes, **change})
    assert words in str(info.value)
    assert list(settings.jobs_path.iterdir()) == []


# --- gpz-ml: the answer's body ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_fields",
    [
        {"net_type": "STRING", "gsc": "Combined", "sp_res": "Human"},
        {"net_type": "IMP", "gsc": "GO", "sp_res": "Mouse"},
        {"net_type": "BioGRID", "gsc": "Monarch", "sp_res": "Human", "negatives": ["HSYN300", "HSYN299"]},
    ],
    ids=["string-combined", "imp-go-mouse", "biogrid-monarch-negatives"],
)
def test_the_body_has_the_reference_keys_and_equals_the_result_files(settings, demo_genes, request_fields):
    store = webapp.ResultsFileStore.from_settings(settings)
    config = store.read_config(ml_job(settings, genes=demo_genes, **request_fields))
    assert run_geneplexus(config.jobname, store, settings.data_path).status is State.COMPLETED
    answer = webapp.ml_response(store, config.jobname)
    check_ml(answer, config.net_type)
    equals_result_files(answer, store.job_path(config.jobname))
    assert answer["jobname"] == config.jobname
    assert (
        answer["positive_genes"]
        == store.read_job_info(config.jobname)["network_summary"][
            [row["Network"] for row in store.read_job_info(config.jobname)["network_summary"]].index(config.net_type)
        ]["PositiveGenes"]
    )


# --- encoding ------------------------------------------------------------------------------------------------

BIG = (200, {"rows": [{"Rank": i, "Symbol": f"G{i}", "Probability": None} for i in range(500)]}, {"Location": "/x"})


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True), ("gzip;q=0", False), ("", False),
     ("identity", False), ("deflate", False), ("*;q=0", False)],
)  # fmt: skip
def test_gzip_when_accepted(accept, gzipped):
    status, data, headers = webapp.encoded(BIG, accept)
    assert status == 200 and headers["Location"] == "/x" and headers["Vary"] == "Accept-Encoding"
    assert (headers.get("Content-Encoding") == "gzip") is gzipped
    assert json.loads(gzip.decompress(data) if gzipped else data) == BIG[1]


def test_small_answers_are_not_compressed_and_nan_never_reaches_json():
    assert "Content-Encoding" not in webapp.encoded((400, {"message": "no"}, {}), "gzip")[2]
    with pytest.raises(ValueError):
        webapp.encoded((200, {"x": float("nan")}, {}), "")


def test_only_the_web_app_routes_and_health_are_anonymous():
    """The browser cannot hold a secret: gpz-convert-ids and gpz-ml are ANONYMOUS POSTs; nothing else becomes so."""
    from app_functions import app_functions

    triggers = {name: json.loads(fn.get_function_json())["bindings"][0] for name, fn in app_functions().items()}
    anonymous = {name for name, t in triggers.items() if t.get("authLevel") == "ANONYMOUS"}
    assert anonymous == {"health", "gpz_convert_ids", "gpz_ml"}
    for name, route in (("gpz_convert_ids", "gpz-convert-ids"), ("gpz_ml", "gpz-ml")):
        assert triggers[name]["route"] == route and triggers[name]["methods"] == ["POST"]
