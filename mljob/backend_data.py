"""Names of the GenePlexus 3.0.1 backend files a job reads, and cheap presence checks.

Derived from the geneplexus 3.0.1 source (no geneplexus or numpy import here), with the species, networks and
gene set collections of `mljob.vocabulary`:

- ``load_genes`` / ``load_negatives``: the four ``*-to-Entrez`` ID conversions, ``Entrez-to-Symbol``,
  ``Entrez-to-Name`` and the NodeOrder of every network of ``sp_trn`` (BioGRID skipped for Zebrafish);
- ``cluster_input``: the ``sp_trn`` edge list;
- ``fit``: the ``sp_trn`` NodeOrder, GSC (``gsc_trn``) and Data;
- ``predict``: per result species its Data, NodeOrder, ``Entrez-to-Symbol``, ``Entrez-to-Name`` and,
  when it differs from ``sp_trn``, ``BioMart__{sp_trn}__{sp_res}.json``;
- ``make_sim_dfs``: per result its PreTrainedWeights and GSC;
- ``make_small_edgelist``: per result species its edge list and ``Entrez-to-Symbol``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mljob.vocabulary import ALL_SPECIES, FEATURES, GSCS, NETWORKS, SPECIES, exists, gsc_read, networks_of

TO_ENTREZ = ("ENSG", "Symbol", "ENSP", "ENST")
FROM_ENTREZ = ("Symbol", "Name")


def node_order_file(species: str, net: str) -> str:
    """Name of the NodeOrder file (one Entrez ID per line)."""
    return f"NodeOrder__{species}__{net}.txt"


def data_file(species: str, features: str, net: str) -> str:
    """Name of the embedding matrix (.npy, one row per NodeOrder line)."""
    return f"Data__{species}__{features}__{net}.npy"


def edgelist_file(species: str, net: str) -> str:
    """Name of the TAB-separated edge list."""
    return f"Edgelist__{species}__{net}.edg"


def gsc_file(species: str, gsc: str, net: str) -> str:
    """Name of a gene set collection JSON."""
    return f"GSC__{species}__{gsc}__{net}.json"


def weights_file(species: str, gsc: str, net: str, features: str) -> str:
    """Name of a pre-trained weights JSON."""
    return f"PreTrainedWeights__{species}__{gsc}__{net}__{features}.json"


def id_conversion_file(species: str, src: str, dst: str) -> str:
    """Name of an ID conversion JSON."""
    return f"IDconversion__{species}__{src}-to-{dst}.json"


def biomart_file(sp_trn: str, sp_res: str) -> str:
    """Name of the one-to-one ortholog map from ``sp_trn`` to ``sp_res``."""
    return f"BioMart__{sp_trn}__{sp_res}.json"


def data_filenames_file(species: str) -> str:
    """Name of the list of a species' files that geneplexus' download check reads."""
    return f"data_filenames_{species}.txt"


def _results(
    net_type: str,
    features: str,
    sp_trn: str,
    sp_res: Sequence[str] | str,
    gsc_trn: str,
    gsc_res: Sequence[str] | str,
) -> tuple[str, list[tuple[str, str]]]:
    """(gsc_trn, [(sp_res, gsc_res)]) as GenePlexus resolves them; ValueError if it would refuse."""
    res_sp = list(SPECIES) if sp_res == ALL_SPECIES else [sp_res] if isinstance(sp_res, str) else list(sp_res)
    res_gsc = [gsc_res] * len(res_sp) if isinstance(gsc_res, str) else list(gsc_res)
    if len(res_sp) != len(res_gsc):
        raise ValueError("sp_res and gsc_res must have the same length")
    pairs = list(zip(res_sp, res_gsc, strict=True))
    custom = (
        net_type not in NETWORKS
        or features not in FEATURES
        or sp_trn not in SPECIES
        or any(s not in SPECIES or g not in GSCS for s, g in [(sp_trn, gsc_trn), *pairs])
    )
    if custom:  # GenePlexus turns every compatibility check off
        return gsc_trn, pairs
    if not exists(sp_trn, net_type, gsc_trn):
        raise ValueError(f"GenePlexus refuses training on {sp_trn}/{net_type}/{gsc_trn}")
    kept = [(s, gsc_read(s, g)) for s, g in pairs if exists(s, net_type, g)]
    if pairs and not kept:
        raise ValueError(f"GenePlexus refuses every result pair {pairs} with {net_type}")
    return gsc_read(sp_trn, gsc_trn), kept


def load_genes_files(species: str) -> list[str]:
    """Sorted names of the files ``load_genes`` reads for a species: its ID conversions and NodeOrders."""
    names = {id_conversion_file(species, src, "Entrez") for src in TO_ENTREZ}
    names.update(id_conversion_file(species, "Entrez", dst) for dst in FROM_ENTREZ)
    names.update(node_order_file(species, net) for net in networks_of(species) if species in SPECIES)
    return sorted(names)


def required_files(
    *,
    net_type: str,
    features: str,
    sp_trn: str,
    sp_res: Sequence[str],
    gsc_trn: str,
    gsc_res: Sequence[str],
    clustering: bool = False,
) -> list[str]:
    """Sorted names of the files GenePlexus 3.0.1 reads for a job with these parameters.

    ``sp_res``/``gsc_res`` may also be single strings (``"All"`` too), as GenePlexus accepts;
    result pairs GenePlexus drops (e.g. Mouse with Mondo) need no files. ValueError for a
    combination GenePlexus refuses. NodeOrder files of the other networks of ``sp_trn`` are
    listed because ``load_genes`` reads every one present (absent ones only lose their
    "In {net}?" column).
    """
    gsc_trn, pairs = _results(net_type, features, sp_trn, sp_res, gsc_trn, gsc_res)
    names = set(load_genes_files(sp_trn))
    names.update(
        {node_order_file(sp_trn, net_type), gsc_file(sp_trn, gsc_trn, net_type), data_file(sp_trn, features, net_type)}
    )
    if clustering:
        names.add(edgelist_file(sp_trn, net_type))
    for sp, gsc in pairs:
        names.update(
            {
                data_file(sp, features, net_type),
                node_order_file(sp, net_type),
                id_conversion_file(sp, "Entrez", "Symbol"),
                id_conversion_file(sp, "Entrez", "Name"),
                weights_file(sp, gsc, net_type, features),
                gsc_file(sp, gsc, net_type),
                edgelist_file(sp, net_type),
            }
        )
        if sp != sp_trn:
            names.add(biomart_file(sp_trn, sp))
    return sorted(names)


def preload_targets(text: str | None) -> list[dict[str, str]]:
    """The PRELOAD setting ("Human:STRING:Combined,Mouse:IMP:GO") as job parameters (sp_trn, net_type, gsc);
    ValueError, in words, for anything GenePlexus would not run."""
    targets = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        parts = [part.strip() for part in item.split(":")]
        if len(parts) != 3:
            raise ValueError(f"{item.strip()!r} is not SPECIES:NETWORK:GSC (e.g. Human:STRING:Combined)")
        species, net, gsc = parts
        for value, choices, what in ((species, SPECIES, "species"), (net, NETWORKS, "network"), (gsc, GSCS, "GSC")):
            if value not in choices:
                raise ValueError(f"{item.strip()!r}: unknown {what} {value!r} (one of {', '.join(choices)})")
        if not exists(species, net, gsc):
            raise ValueError(f"{item.strip()!r}: GenePlexus has no {net}/{gsc} for {species}")
        targets.append({"sp_trn": species, "net_type": net, "gsc": gsc})
    return targets


def preload_files(target: dict[str, str]) -> list[str]:
    """The backend files a job trained and reported on `target`'s species, network and GSC reads."""
    sp, gsc = target["sp_trn"], target["gsc"]
    return required_files(
        net_type=target["net_type"], features=FEATURES[0], sp_trn=sp, sp_res=[sp], gsc_trn=gsc, gsc_res=[gsc]
    )


def missing_files(data_path: str | os.PathLike, **params: Any) -> list[str]:
    """The :func:`required_files` (same keywords) that are absent or not regular files under ``data_path``."""
    return [name for name in required_files(**params) if not os.path.isfile(os.path.join(data_path, name))]


def data_filenames_missing(data_path: str | os.PathLike, species: str) -> list[str]:
    """Files listed in ``data_filenames_{species}.txt`` that are absent; the list file itself if absent.

    Blank lines are ignored.
    """
    listing = os.path.join(data_path, data_filenames_file(species))
    if not os.path.isfile(listing):
        return [data_filenames_file(species)]
    with open(listing, encoding="utf-8") as fh:
        names = [line.rstrip() for line in fh if line.strip()]
    return [name for name in names if not os.path.isfile(os.path.join(data_path, name))]
