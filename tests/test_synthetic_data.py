"""Synthetic backend data: format, determinism, and the real GenePlexus 3 pipeline running on it offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pcst_fast
import pytest
from geneplexus import GenePlexus
from geneplexus.download import _check_all_files

import mljob.tools.synthetic_data as sd
from mljob import backend_data as bd
from mljob import vocabulary as vocab
from mljob.tools.synthetic_data import make_backend_data

DEFAULTS = {
    "net_type": "STRING",
    "features": "SixSpeciesN2V",
    "sp_trn": "Human",
    "sp_res": ["Human"],
    "gsc_trn": "Combined",
    "gsc_res": ["Combined"],
}
DEFAULT_FILES = [
    "Data__Human__SixSpeciesN2V__STRING.npy",
    "Edgelist__Human__STRING.edg",
    "GSC__Human__Combined__STRING.json",
    "IDconversion__Human__ENSG-to-Entrez.json",
    "IDconversion__Human__ENSP-to-Entrez.json",
    "IDconversion__Human__ENST-to-Entrez.json",
    "IDconversion__Human__Entrez-to-Name.json",
    "IDconversion__Human__Entrez-to-Symbol.json",
    "IDconversion__Human__Symbol-to-Entrez.json",
    "NodeOrder__Human__BioGRID.txt",
    "NodeOrder__Human__IMP.txt",
    "NodeOrder__Human__STRING.txt",
    "PreTrainedWeights__Human__Combined__STRING__SixSpeciesN2V.json",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic")
    make_backend_data(path)
    return path


@pytest.fixture(scope="module")
def demo() -> list[str]:
    return resources.files("mljob.tools").joinpath("demo_genes.txt").read_text().split()


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _communities(path: Path, species: str) -> dict[str, int]:
    """Entrez ID -> community, read from the gene names."""
    names = _json(path / bd.id_conversion_file(species, "Entrez", "Name"))
    return {e: int(re.search(r"\(community (\d+)\)", n[0]).group(1)) for e, n in names.items()}


def _to_entrez(path: Path, species: str, symbols: list[str]) -> list[str]:
    table = _json(path / bd.id_conversion_file(species, "Symbol", "Entrez"))
    return [table[s][0] for s in symbols if s in table]


def _nodes(path: Path, species: str, net: str) -> list[str]:
    return (path / bd.node_order_file(species, net)).read_text().split()


def _mouse_demo(path: Path, demo: list[str]) -> list[str]:
    orthologs = _json(path / bd.biomart_file("Human", "Mouse"))
    symbols = _json(path / bd.id_conversion_file("Mouse", "Entrez", "Symbol"))
    return [symbols[orthologs[e]][0] for e in _to_entrez(path, "Human", demo) if e in orthologs]


def run_job(
    path: Path,
    genes: list[str],
    out: Path,
    *,
    negatives: list[str] | None = None,
    clust_method: str | None = None,
    save_type: str = "all",
    **params: object,
) -> GenePlexus:
    """The full GenePlexus pipeline, offline; parameters default to GenePlexus' own."""
    params = {k: list(v) if isinstance(v, list) else v for k, v in {**DEFAULTS, **params}.items()}
    gp = GenePlexus(file_loc=str(path), auto_download=False, log_level="WARNING", **params)
    gp.load_genes(list(genes))
    if negatives:
        gp.load_negatives(list(negatives))
    if clust_method:
        gp.cluster_input(clust_method=clust_method)
    gp.fit()
    gp.predict()
    gp.make_sim_dfs()
    gp.make_small_edgelist()
    gp.save_class(str(out), save_type=save_type)
    return gp


def _check_format(path: Path, species: list[str], dim: int) -> None:
    """Everything that must agree between the files of a backend data set."""
    for sp in species:
        symbols = _json(path / bd.id_conversion_file(sp, "Entrez", "Symbol"))
        names = _json(path / bd.id_conversion_file(sp, "Entrez", "Name"))
        reachable = set()
        for src in bd.TO_ENTREZ:
            table = _json(path / bd.id_conversion_file(sp, src, "Entrez"))
            assert all(isinstance(v, list) and all(isinstance(e, str) for e in v) for v in table.values())
            reachable.update(e for v in table.values() for e in v)
        assert set(symbols) == set(names)
        pattern = {"Human": r"HSYN\d+", "Mouse": r"Msyn\d+"}.get(sp, r".+")
        assert all(re.fullmatch(pattern, s[0]) for s in symbols.values())
        for net in vocab.networks_of(sp):
            nodes = _nodes(path, sp, net)
            assert len(set(nodes)) == len(nodes) > 0.9 * len(names)
            reachable.update(nodes)
            features = np.load(path / bd.data_file(sp, "SixSpeciesN2V", net))
            assert features.shape == (len(nodes), dim) and features.dtype == np.float32
            rows = [line.split("\t") for line in (path / bd.edgelist_file(sp, net)).read_text().splitlines()]
            assert {len(r) for r in rows} == {2 if net == "BioGRID" else 3}
            assert {x for r in rows for x in r[:2]} <= set(nodes)
            assert len(rows) < 40 * len(nodes)
            if net != "BioGRID":
                assert all(0 < float(r[2]) <= 1 for r in rows)
            kinds = vocab.GSC_CONTEXTS[sp]
            term_ids = {}
            for gsc in [*kinds, "Combined"]:
                collection = _json(path / bd.gsc_file(sp, gsc, net))
                weights = _json(path / bd.weights_file(sp, gsc, net, "SixSpeciesN2V"))
                order = collection.pop("Term_Order")
                universe = set(collection.pop("Universe"))
                assert order == sorted(collection) == sorted(weights) and universe <= set(nodes)
                term_ids[gsc] = set(order)
                for term, info in collection.items():
                    assert info["Task"] in (kinds if gsc == "Combined" else [gsc])
                    assert set(info["Genes"]) <= universe
                    assert all(isinstance(g, str) for g in info["Genes"])
                    assert weights[term]["PosGenes"] == info["Genes"] and len(weights[term]["Weights"]) == dim
                assert universe == {g for info in collection.values() for g in info["Genes"]}
            assert term_ids.pop("Combined") == set().union(*term_ids.values())
        assert reachable <= set(names)
        for other in species:
            if other != sp:
                orthologs = _json(path / bd.biomart_file(sp, other))
                assert len(set(orthologs.values())) == len(orthologs) > 0.9 * len(names)
                other_names = _json(path / bd.id_conversion_file(other, "Entrez", "Name"))
                assert set(orthologs.values()) <= set(other_names)
        assert bd.data_filenames_missing(path, sp) == []


# --- the generator -----------------------------------------------------------------------------


def test_deterministic_plausible_and_readme(data: Path, tmp_path: Path) -> None:
    summary = make_backend_data(tmp_path / "again")
    files = sorted(p.name for p in data.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "again").iterdir())
    assert all((data / f).read_bytes() == (tmp_path / "again" / f).read_bytes() for f in files)
    total = sum((data / f).stat().st_size for f in files)
    assert summary == {
        "dest": str(tmp_path / "again"),
        "files": len(files),
        "total_bytes": total,
        "species": ["Human", "Mouse"],
        "n_genes": 300,
        "dim": 32,
        "seed": 0,
    }
    assert 70 <= len(files) <= 90 and 0.8e6 < total < 2e6
    assert not [f for f in files if f.endswith(".part")]
    readme = (data / "README.md").read_text()
    assert "SYNTHETIC" in readme and "mljob make-data" in readme and "not for science" in readme
    assert "species=Human,Mouse n_genes=300 dim=32 seed=0" in readme
    other = make_backend_data(tmp_path / "seed1", seed=1)
    assert other["files"] == len(files)
    assert (tmp_path / "seed1" / "NodeOrder__Human__STRING.txt").read_bytes() != (
        data / "NodeOrder__Human__STRING.txt"
    ).read_bytes()


def test_files_agree_with_each_other(data: Path) -> None:
    _check_format(data, ["Human", "Mouse"], 32)


def test_geneplexus_completeness_check_accepts_the_folder(data: Path, tmp_path: Path) -> None:
    assert _check_all_files(str(data), "Human") and _check_all_files(str(data), "Mouse")
    assert not _check_all_files(str(data), "Fly")
    shutil.copytree(data, tmp_path / "copy")
    (tmp_path / "copy" / "GSC__Mouse__GO__IMP.json").unlink()
    assert _check_all_files(str(tmp_path / "copy"), "Human")
    assert not _check_all_files(str(tmp_path / "copy"), "Mouse")


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    for kwargs in ({"species": ["Human", "Cat"]}, {"species": []}, {"n_genes": 20}, {"dim": 1}, {"seed": -1}):
        with pytest.raises(ValueError):
            make_backend_data(tmp_path, **kwargs)


def test_interrupted_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(fh, array) -> None:
        fh.write(b"\x93NUMPY half")
        raise KeyboardInterrupt

    monkeypatch.setattr(sd.np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        make_backend_data(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["NodeOrder__Human__BioGRID.txt", *[f for f in DEFAULT_FILES if f.startswith("IDconversion")]]
    )


def test_larger_set_smoke(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("larger")
    # The bound guards against an accidental blow-up (e.g. quadratic work in the number of genes), so it is on
    # this thread's CPU time, which other processes competing for the cores do not inflate (wall time does),
    # and generous: typically 0.3 s.
    start = time.thread_time()
    summary = make_backend_data(path, n_genes=2000, dim=64)
    assert time.thread_time() - start < 15
    assert summary["files"] == 77 and 5e6 < summary["total_bytes"] < 30e6
    _check_format(path, ["Human", "Mouse"], 64)
    community = _communities(path, "Human")
    genes = sorted(e for e, c in community.items() if c == 0)
    gp = run_job(path, genes, path / "out")
    assert len(gp.model_info["All-Genes"].pos_genes_in_net) >= 10
    assert np.mean(gp.model_info["All-Genes"].avgps) > 2


def test_imports_stay_light() -> None:
    code = (
        "import sys, mljob.backend_data; assert 'numpy' not in sys.modules; "
        "import mljob.tools.synthetic_data; assert 'geneplexus' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- the demo gene set and real GenePlexus jobs ------------------------------------------------


def test_demo_genes_come_from_one_community(data: Path, demo: list[str]) -> None:
    symbols = _json(data / bd.id_conversion_file("Human", "Symbol", "Entrez"))
    known = [s for s in demo if s in symbols]
    assert len(set(demo)) == len(demo) and 25 <= len(known) <= 30 and 1 <= len(demo) - len(known) <= 2
    community = _communities(data, "Human")
    assert {community[symbols[s][0]] for s in known} == {2}
    for net in vocab.NETWORKS:
        assert set(_to_entrez(data, "Human", known)) <= set(_nodes(data, "Human", net))


def test_default_job_on_demo_genes(data: Path, demo: list[str], tmp_path: Path) -> None:
    gp = run_job(data, demo, tmp_path / "out")
    model = gp.model_info["All-Genes"]
    positives = set(model.pos_genes_in_net)
    assert len(positives) >= 15 and np.mean(model.avgps) > 2
    unmapped = gp.df_convert_out[gp.df_convert_out["Entrez ID"] == "Could Not be mapped to Entrez"]
    assert sorted(unmapped["Original ID"]) == ["HSYN0", "NOTAGENE1"]
    community = _communities(data, "Human")
    held_out = [e for e in _nodes(data, "Human", "STRING") if community[e] == 2 and e not in positives]
    assert held_out
    result = model.results["Human-Combined"]
    ranks = result.df_probs.set_index("Entrez").loc[held_out, "Rank"]
    assert ranks.max() <= 40, ranks.to_dict()
    assert all(name.endswith("of community 2") for name in result.df_sim["Name"].head(3))
    assert len(result.df_edge) > 0
    assert (tmp_path / "out" / "All-Genes" / "Human-Combined" / "df_probs.tsv").is_file()


@pytest.mark.parametrize("net", vocab.NETWORKS)
@pytest.mark.parametrize("gsc", vocab.GSCS)
def test_every_human_network_and_gsc(data: Path, demo: list[str], tmp_path: Path, net: str, gsc: str) -> None:
    gp = run_job(data, demo, tmp_path / "out", net_type=net, gsc_trn=gsc, gsc_res=[gsc])
    model = gp.model_info["All-Genes"]
    assert len(model.pos_genes_in_net) >= 15 and np.mean(model.avgps) > 1.5
    assert model.results[f"Human-{gsc}"].df_sim["Name"].iloc[0].endswith("of community 2")


def test_mouse_training(data: Path, demo: list[str], tmp_path: Path) -> None:
    genes = _mouse_demo(data, demo)
    gp = run_job(data, genes, tmp_path / "out", sp_trn="Mouse", sp_res=["Mouse"])
    model = gp.model_info["All-Genes"]
    assert len(model.pos_genes_in_net) >= 15 and np.mean(model.avgps) > 1.5
    df_probs = model.results["Mouse-Combined"].df_probs
    community = _communities(data, "Mouse")
    assert sum(community[e] == 2 for e in df_probs["Entrez"].head(20)) >= 18


def test_two_result_species(data: Path, demo: list[str], tmp_path: Path) -> None:
    gp = run_job(data, demo, tmp_path / "out", sp_res=["Human", "Mouse"], gsc_res=["Combined", "Combined"])
    results = gp.model_info["All-Genes"].results
    assert sorted(results) == ["Human-Combined", "Mouse-Combined"]
    mouse = results["Mouse-Combined"].df_probs
    assert (mouse["Class-Label"] == "P").sum() >= 15
    community = _communities(data, "Mouse")
    assert sum(community[e] == 2 for e in mouse["Entrez"].head(20)) >= 18
    assert results["Mouse-Combined"].df_sim["Name"].iloc[0].endswith("of community 2")


def test_user_negatives(data: Path, demo: list[str], tmp_path: Path) -> None:
    community = _communities(data, "Human")
    symbols = _json(data / bd.id_conversion_file("Human", "Entrez", "Symbol"))
    others = sorted(e for e, c in community.items() if c == 0)
    negatives = [symbols[e][0] for e in others]
    # geneplexus 3.0.1 bug: save_type="all" json-dumps the df_convert_out_negatives DataFrame
    with pytest.raises(TypeError, match="DataFrame is not JSON serializable"):
        run_job(data, demo, tmp_path / "all", negatives=negatives)
    gp = run_job(data, demo, tmp_path / "out", negatives=negatives, save_type="results_only")
    universe = set(_json(data / bd.gsc_file("Human", "Combined", "STRING"))["Universe"])
    assert set(others) & universe <= set(gp.model_info["All-Genes"].negative_genes)
    assert (tmp_path / "out" / "All-Genes" / "Human-Combined" / "df_probs.tsv").is_file()


def test_louvain_clustering(data: Path, demo: list[str], tmp_path: Path) -> None:
    gp = run_job(data, demo, tmp_path / "out", clust_method="louvain")
    assert sorted(gp.model_info) == ["All-Genes", "Cluster-01"]
    cluster = gp.model_info["Cluster-01"]
    assert len(cluster.model_genes) >= 15 and np.mean(cluster.avgps) > 2
    assert (tmp_path / "out" / "Cluster-01" / "Human-Combined" / "df_probs.tsv").is_file()


def _pcst_fast_works() -> bool:
    """pcst_fast 1.0.10 returns garbage indices under numpy >= 2 (fraenkel-lab/pcst_fast#16)."""
    vertices, _ = pcst_fast.pcst_fast([[0, 1], [1, 2]], [1.0, 1.0, 1.0], [0.1, 0.1], -1, 1, "strong", 0)
    return sorted(vertices.tolist()) == [0, 1, 2]


def test_domino_clustering(data: Path, demo: list[str], tmp_path: Path) -> None:
    gp = run_job(data, demo, tmp_path / "out", clust_method="domino")
    clusters = [m for m in gp.model_info if m.startswith("Cluster-")]
    if _pcst_fast_works():
        assert clusters and all(len(gp.model_info[c].model_genes) > 15 for c in clusters)
    else:  # the broken Steiner tree keeps 2 nodes, so no module reaches clust_min_size: All-Genes only
        assert clusters == []


# --- required_files / missing_files / data_filenames_missing --------------------------------------


def test_required_files_for_defaults() -> None:
    assert bd.required_files(**DEFAULTS) == DEFAULT_FILES
    assert bd.required_files(**DEFAULTS, clustering=True) == DEFAULT_FILES
    assert bd.required_files(**{**DEFAULTS, "sp_res": "Human", "gsc_res": "Combined"}) == DEFAULT_FILES


def test_required_files_resolve_like_geneplexus() -> None:
    fly = bd.required_files(**{**DEFAULTS, "sp_trn": "Fly", "sp_res": ["Fly"]})
    assert "GSC__Fly__GO__STRING.json" in fly and not [f for f in fly if "Combined" in f]
    dropped = bd.required_files(**{**DEFAULTS, "sp_res": ["Human", "Mouse"], "gsc_res": ["Mondo", "Mondo"]})
    assert dropped == bd.required_files(**{**DEFAULTS, "sp_res": ["Human"], "gsc_res": ["Mondo"]})
    everyone = bd.required_files(**{**DEFAULTS, "net_type": "BioGRID", "sp_res": "All", "gsc_res": "Combined"})
    assert "BioMart__Human__Yeast.json" in everyone and not [f for f in everyone if "Zebrafish" in f]
    zebrafish = bd.required_files(**{**DEFAULTS, "sp_trn": "Zebrafish", "sp_res": ["Zebrafish"]})
    assert "NodeOrder__Zebrafish__BioGRID.txt" not in zebrafish
    refused = [
        {"sp_trn": "Mouse", "gsc_trn": "Mondo"},
        {"sp_trn": "Zebrafish", "net_type": "BioGRID"},
        {"sp_res": ["Mouse"], "gsc_res": ["Mondo"]},
        {"sp_res": ["Human"], "gsc_res": ["GO", "GO"]},
    ]
    for params in refused:
        with pytest.raises(ValueError):
            bd.required_files(**{**DEFAULTS, **params})


def test_generated_data_covers_every_valid_job(data: Path) -> None:
    species = ["Human", "Mouse"]
    for net in vocab.NETWORKS:
        for sp_trn in species:
            for gsc_trn in vocab.gscs_of(sp_trn):
                for sp_res in species:
                    for gsc_res in vocab.gscs_of(sp_res):
                        params = {
                            **DEFAULTS,
                            "net_type": net,
                            "sp_trn": sp_trn,
                            "gsc_trn": gsc_trn,
                            "sp_res": [sp_res],
                            "gsc_res": [gsc_res],
                        }
                        assert bd.missing_files(data, **params, clustering=True) == []


JOBS = {
    "defaults": ({}, None),
    "cross-species": (
        {"net_type": "IMP", "gsc_trn": "GO", "sp_res": ["Human", "Mouse"], "gsc_res": ["Combined", "Monarch"]},
        None,
    ),
    "mouse-to-human": (
        {"net_type": "BioGRID", "sp_trn": "Mouse", "gsc_trn": "Monarch", "sp_res": ["Human"], "gsc_res": ["Mondo"]},
        None,
    ),
    "clustering": ({"sp_res": ["Mouse"]}, "louvain"),
}


@pytest.mark.parametrize("job", JOBS)
def test_required_files_are_exactly_enough(data: Path, demo: list[str], tmp_path: Path, job: str) -> None:
    params, clust_method = JOBS[job]
    params = {**DEFAULTS, **params}
    genes = _mouse_demo(data, demo) if params["sp_trn"] == "Mouse" else demo
    required = bd.required_files(**params, clustering=clust_method is not None)
    folder = tmp_path / "data"
    folder.mkdir()
    for name in required:
        shutil.copy(data / name, folder / name)
    gp = run_job(folder, genes, tmp_path / "out", clust_method=clust_method, **params)
    assert len(gp.model_info) == (2 if clust_method else 1)
    other_node_orders = {bd.node_order_file(params["sp_trn"], net) for net in vocab.NETWORKS} - {
        bd.node_order_file(params["sp_trn"], params["net_type"])
    }
    for name in required:
        (folder / name).unlink()
        if name in other_node_orders:  # load_genes reads it only if present: the "In {net}?" column goes
            gp = run_job(folder, genes, tmp_path / name, clust_method=clust_method, **params)
            assert f"In {name.split('__')[2][:-4]}?" not in gp.df_convert_out.columns
        else:
            with pytest.raises(FileNotFoundError, match=re.escape(name)):
                run_job(folder, genes, tmp_path / name, clust_method=clust_method, **params)
        shutil.copy(data / name, folder / name)


def test_missing_files_names_what_is_absent(data: Path, tmp_path: Path) -> None:
    for name in DEFAULT_FILES:
        shutil.copy(data / name, tmp_path / name)
    assert bd.missing_files(tmp_path, **DEFAULTS) == []
    (tmp_path / "GSC__Human__Combined__STRING.json").unlink()
    (tmp_path / "NodeOrder__Human__IMP.txt").unlink()
    (tmp_path / "NodeOrder__Human__IMP.txt").mkdir()
    assert bd.missing_files(str(tmp_path), **DEFAULTS) == [
        "GSC__Human__Combined__STRING.json",
        "NodeOrder__Human__IMP.txt",
    ]
    cross = bd.missing_files(tmp_path, **{**DEFAULTS, "sp_res": ["Mouse"]})
    assert "BioMart__Human__Mouse.json" in cross and "Data__Mouse__SixSpeciesN2V__STRING.npy" in cross


def test_data_filenames_missing(data: Path, tmp_path: Path) -> None:
    assert bd.data_filenames_missing(data, "Human") == bd.data_filenames_missing(data, "Mouse") == []
    assert bd.data_filenames_missing(data, "Fly") == ["data_filenames_Fly.txt"]
    folder = tmp_path / "copy"
    shutil.copytree(data, folder)
    (folder / "Edgelist__Mouse__IMP.edg").unlink()
    (folder / "BioMart__Mouse__Human.json").unlink()
    assert bd.data_filenames_missing(folder, "Mouse") == ["BioMart__Mouse__Human.json", "Edgelist__Mouse__IMP.edg"]
    assert bd.data_filenames_missing(folder, "Human") == []
    (folder / "data_filenames_Human.txt").unlink()
    assert bd.data_filenames_missing(folder, "Human") == ["data_filenames_Human.txt"]
