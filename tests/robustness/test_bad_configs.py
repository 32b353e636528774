"""Tampered or hostile job_config.json: enqueue answers 400 naming the field; a run ends `failed` saying why."""

from __future__ import annotations

import json

import pytest
from conftest import call, process

from mljob.status import State


def cfg(**params) -> bytes:
    return json.dumps({"jobname": "cfg-job", **params}).encode()


CONFIG_CASES = [
    # (id, job_config.json, text in the enqueue error and in the failed status)
    ("zebrafish-biogrid", cfg(net_type="BioGRID", sp_res=["Zebrafish"]), "BioGRID has no good Zebrafish network"),
    ("zebrafish-biogrid-trn", cfg(net_type="BioGRID", sp_trn="Zebrafish"), "sp_trn: BioGRID has no good Zebrafish"),
    ("fly-monarch", cfg(sp_res=["Fly"], gsc_res=["Monarch"]), "Monarch has no annotations for Fly"),
    ("mondo-mouse", cfg(sp_res=["Mouse"], gsc_res=["Mondo"]), "Mondo has annotations for Human only, not Mouse"),
    ("mondo-trn-worm", cfg(sp_trn="Worm", gsc_trn="Mondo"), "sp_trn/gsc_trn: Mondo has annotations for Human only"),
    ("gsc-count", cfg(sp_res=["Human", "Mouse"], gsc_res=["GO", "GO", "GO"]), "gsc_res has 3 entries but sp_res has 2"),
    ("species-twice", cfg(sp_res=["Human", "Human"]), "sp_res names a species twice"),
    ("unknown-net", cfg(net_type="FooNet"), "net_type: 'FooNet' is not allowed"),
    ("species-number", cfg(sp_trn=5), "sp_trn: 5 is not allowed"),
    ("sp-res-empty", cfg(sp_res=[]), "sp_res: must name at least one"),
    ("min-num-pos-negative", cfg(min_num_pos=-1), "min_num_pos: Input should be greater than or equal to 1"),
    ("num-folds-huge", cfg(num_folds=10**6), "num_folds: Input should be less than or equal to 10"),
    ("num-nodes-float", cfg(num_nodes=50.5), "num_nodes: Input should be a valid integer"),
    ("num-nodes-string", cfg(num_nodes="50"), "num_nodes: Input should be a valid integer"),
    ("random-state-huge", cfg(random_state=2**63), "random_state: Input should be less than or equal to 2147483647"),
    ("cross-validate-string", cfg(cross_validate="true"), "cross_validate: Input should be a valid boolean"),
    ("cluster-unknown", cfg(clust_method="kmeans"), "clust_method: 'kmeans' is not allowed"),
    ("unknown-key", cfg(priority="high"), "unknown field 'priority'"),
    ("callback-ftp", cfg(callback_url="ftp://example.org/x"), "callback_url: must be an http:// or https:// URL"),
    ("callback-file", cfg(callback_url="file:///etc/passwd"), "callback_url: must be an http:// or https:// URL"),
    ("callback-newline", cfg(callback_url="http://example.org/\nInjected: 1"), "callback_url: must be one URL"),
    ("callback-number", cfg(callback_url=5), "callback_url: Input should be a valid string"),
    (
        "other-jobname",
        json.dumps({"jobname": "other-job"}).encode(),
        "job_config.json of job cfg-job names another job",
    ),
    ("bad-jobname", json.dumps({"jobname": "../x"}).encode(), "invalid job name '../x'"),
    ("not-json", b"net_type: STRING\n", "invalid job config: not valid JSON"),
    ("json-list", b"[]", "invalid job config"),
    ("empty-file", b"", "invalid job config: not valid JSON"),
]


@pytest.mark.parametrize(("data", "text"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(world, data, text):
    world.job("cfg-job")
    (world.folder("cfg-job") / "job_config.json").write_bytes(data)
    world.mark()
    code, answer = call("enqueue", body=b'{"jobname": "cfg-job"}')
    assert (code, list(answer)) == (400, ["error"]), answer
    assert text in answer["error"]
    assert "\n" not in answer["error"]
    assert world.changed() == []

    assert process(world, "cfg-job") == "failed"
    status = world.store.read_status("cfg-job")
    assert status.status is State.FAILED and text in status.message, status.message
    assert not world.store.has_results("cfg-job")
    assert world.changed(allowed_job="cfg-job") == []


def test_missing_config(world):
    world.job("cfg-job")
    (world.folder("cfg-job") / "job_config.json").unlink()
    world.mark()
    code, answer = call("enqueue", body=b'{"jobname": "cfg-job"}')
    assert (code, answer) == (400, {"error": "job cfg-job has no job_config.json"})
    assert process(world, "cfg-job") == "failed"
    assert world.store.read_status("cfg-job").message == "job cfg-job has no job_config.json"
    assert world.changed(allowed_job="cfg-job") == []
