"""Small, deterministic, format-valid SYNTHETIC GenePlexus 3 backend data (for tests and demos only).

Genes of every species belong to the same latent communities (the orthologs of gene k are gene k of
the other species). Embeddings are community centroid + noise (one centroid set per network, shared
by the species, like the joint SixSpeciesN2V embedding); edges are mostly within communities; each
community has one GO, Monarch (and, for Human, Mondo) term holding most of its genes, next to random
terms; pre-trained weights point along the centroids of a term's genes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mljob import backend_data as bd
from mljob import vocabulary as vocab

FEATURES = "SixSpeciesN2V"
_MIN_GENES = 100
_COMMUNITY_SIZES = (10, 34)  # inclusive
# embedding noise s.d. per dimension at dim 32 (centroids are standard normal); it grows with
# sqrt(dim / 32) so that communities are about as separable at every dim
_NOISE = 1.0
_KEEP_IN_TERM = 0.9  # share of a community's genes in its term
_MIN_TERM_GENES = 5  # terms with fewer genes in a network are left out of that network's files
# random terms per gene, scaled down below 2,000 genes to keep small sets small
# (19,000 Human genes give ~9,000 Combined terms, like the real data)
_RANDOM_TERMS = {"GO": 0.2, "Monarch": 0.1, "Mondo": 0.04}
_TERM_WORDS = {"GO": "process", "Monarch": "phenotype", "Mondo": "disease"}
_ORTHOLOG_MISSING = 0.03
# per network: share of genes left out, share of within-community pairs linked, mean cross-community
# edges per gene, weight ranges (within, cross) or None (unweighted). STRING communities are cliques
# with even weights, so that Louvain keeps a gene set drawn from one community in one cluster.
_NETWORKS = {
    "BioGRID": (0.06, 0.5, 0.5, None),
    "STRING": (0.01, 1.0, 1.0, ((0.85, 1.0), (0.15, 0.5))),
    "IMP": (0.03, 0.7, 2.0, ((0.3, 1.0), (0.05, 0.45))),
}
# symbol prefix, gene/protein/transcript ID prefixes, Monarch term prefix
_SPECIES_IDS = {
    "Human": ("HSYN", ("ENSG", "ENSP", "ENST"), "HP"),
    "Mouse": ("Msyn", ("ENSMUSG", "ENSMUSP", "ENSMUST"), "MP"),
    "Fly": ("Dsyn", ("FBgn", "FBpp", "FBtr"), None),
    "Worm": ("syn-", ("WBGene", "WBProt", "WBTrans"), "WBPhenotype"),
    "Zebrafish": ("zsyn", ("ENSDARG", "ENSDARP", "ENSDART"), "ZP"),
    "Yeast": ("YSYN", ("YSG", "YSP", "YST"), "APO"),
}


def make_backend_data(
    dest: str | os.PathLike,
    *,
    species: Sequence[str] = ("Human", "Mouse"),
    n_genes: int = 300,
    dim: int = 32,
    seed: int = 0,
) -> dict:
    """Write a synthetic GenePlexus 3 backend data set to ``dest``; return a short summary.

    Same arguments give byte-identical files; each file is written atomically.
    """
    species = _check_args(species, n_genes, dim, seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    writer = _Writer(dest)
    sizes = _community_sizes(n_genes, seed)
    comm = np.repeat(np.arange(sizes.size), sizes)
    centroids = {net: _rng(seed, 0, i).standard_normal((sizes.size, dim)) for i, net in enumerate(vocab.NETWORKS)}
    genes = {sp: _gene_numbers(seed, sp, n_genes) for sp in species}
    for sp in species:
        names = _write_species(writer, sp, *genes[sp], sizes, comm, centroids, seed)
        for other in species:
            if other != sp:
                names.append(_write_biomart(writer, sp, other, genes, seed))
        writer.text(bd.data_filenames_file(sp), "".join(f"{name}\n" for name in sorted(names)))
    writer.text("README.md", _readme(species, n_genes, dim, seed))
    return {
        "dest": str(dest),
        "files": len(writer.sizes),
        "total_bytes": sum(writer.sizes.values()),
        "species": list(species),
        "n_genes": n_genes,
        "dim": dim,
        "seed": seed,
    }


def _check_args(species: Sequence[str], n_genes: int, dim: int, seed: int) -> list[str]:
    if isinstance(species, str):
        species = [species]
    unknown = [sp for sp in species if sp not in vocab.SPECIES]
    if unknown or not species:
        raise ValueError(f"species must be some of {', '.join(vocab.SPECIES)}; got {list(species)}")
    if not _MIN_GENES <= n_genes <= 1_000_000:
        raise ValueError(f"n_genes must be between {_MIN_GENES} and 1000000; got {n_genes}")
    if dim < 2:
        raise ValueError(f"dim must be at least 2; got {dim}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0; got {seed}")
    return [sp for sp in vocab.SPECIES if sp in species]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, purpose...) so each file does not depend on the others."""
    return np.random.default_rng([seed, *keys])


def _community_sizes(n: int, seed: int) -> np.ndarray:
    lo, hi = _COMMUNITY_SIZES
    sizes = _rng(seed, 5).integers(lo, hi + 1, n // lo + 1)
    last = int(np.searchsorted(np.cumsum(sizes), n))
    sizes = sizes[: last + 1]
    sizes[-1] -= sizes.sum() - n
    if sizes[-1] < lo:
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    return sizes


def _gene_numbers(seed: int, sp: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per latent gene: its number (symbol HSYN{number}) and Entrez ID (str)."""
    si = vocab.SPECIES.index(sp)
    number = _rng(seed, 1, si).permutation(n) + 1
    return number, np.array([str((si + 1) * 10_000_000 + x) for x in number.tolist()])


def _write_species(
    writer: _Writer,
    sp: str,
    number: np.ndarray,
    entrez: np.ndarray,
    sizes: np.ndarray,
    comm: np.ndarray,
    centroids: dict[str, np.ndarray],
    seed: int,
) -> list[str]:
    si = vocab.SPECIES.index(sp)
    n = comm.size
    names = _write_id_conversions(writer, sp, number, entrez, comm, seed)
    terms = _terms(sp, sizes, seed)
    all_terms = [t for kind in vocab.GSC_CONTEXTS[sp] for t in terms[kind]]
    rows = np.repeat(np.arange(len(all_terms)), [t[3].size for t in all_terms])
    counts = np.zeros((len(all_terms), sizes.size), dtype=np.float32)
    np.add.at(counts, (rows, comm[np.concatenate([t[3] for t in all_terms])]), 1)
    composition = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    gscs = vocab.gscs_read(sp)
    for net in vocab.networks_of(sp):
        ni = vocab.NETWORKS.index(net)
        rng = _rng(seed, 2, si, ni)
        present = rng.random(n) >= _NETWORKS[net][0]
        order = rng.permutation(np.flatnonzero(present))
        names.append(writer.text(bd.node_order_file(sp, net), "".join(f"{e}\n" for e in entrez[order])))
        noise = rng.standard_normal((order.size, centroids[net].shape[1]), dtype=np.float32)
        noise *= np.float32(_NOISE * np.sqrt(noise.shape[1] / 32))
        data = centroids[net][comm[order]].astype(np.float32) + noise
        names.append(writer.npy(bd.data_file(sp, FEATURES, net), data))
        names.append(writer.text(bd.edgelist_file(sp, net), _edgelist(rng, sizes, comm, present, entrez, net)))
        weights = _weights(rng, composition, centroids[net])
        term_sets, weight_texts = {}, {}
        for (tid, name, kind, genes), w in zip(all_terms, weights, strict=True):
            in_net = sorted(entrez[genes[present[genes]]].tolist())
            if len(in_net) < _MIN_TERM_GENES:
                continue
            term_sets[tid] = {"Genes": in_net, "Name": name, "Task": kind}
            weight_list = ",".join(f"{x:.4f}" for x in w.tolist())
            weight_texts[tid] = (
                f'{{"Name":{json.dumps(name)},"PosGenes":{_dumps(in_net)},"Task":"{kind}","Weights":[{weight_list}]}}'
            )
        for gsc in gscs:
            ids = sorted(t for t, term in term_sets.items() if gsc in (term["Task"], "Combined"))
            universe = sorted({g for t in ids for g in term_sets[t]["Genes"]})
            collection = {t: term_sets[t] for t in ids}
            names.append(
                writer.text(bd.gsc_file(sp, gsc, net), _dumps({**collection, "Term_Order": ids, "Universe": universe}))
            )
            body = ",".join(f"{json.dumps(t)}:{weight_texts[t]}" for t in ids)
            names.append(writer.text(bd.weights_file(sp, gsc, net, FEATURES), "{" + body + "}"))
    return names


def _write_id_conversions(
    writer: _Writer, sp: str, number: np.ndarray, entrez: np.ndarray, comm: np.ndarray, seed: int
) -> list[str]:
    prefix, (gene_p, protein_p, transcript_p), _ = _SPECIES_IDS[sp]
    rng = _rng(seed, 6, vocab.SPECIES.index(sp))
    n_forms = 1 + (rng.random(number.size) < 0.3) + (rng.random(number.size) < 0.1)
    genes = list(zip(number.tolist(), entrez.tolist(), comm.tolist(), n_forms.tolist(), strict=True))
    forms = [(4 * x + j, e) for x, e, _, k in genes for j in range(k)]  # 1-3 proteins/transcripts a gene
    maps = {
        ("Symbol", "Entrez"): {f"{prefix}{x}": [e] for x, e, _, _ in genes},
        ("ENSG", "Entrez"): {f"{gene_p}9{x:010d}": [e] for x, e, _, _ in genes},
        ("ENSP", "Entrez"): {f"{protein_p}9{x:010d}": [e] for x, e in forms},
        ("ENST", "Entrez"): {f"{transcript_p}9{x:010d}": [e] for x, e in forms},
        ("Entrez", "Symbol"): {e: [f"{prefix}{x}"] for x, e, _, _ in genes},
        ("Entrez", "Name"): {e: [f"synthetic {sp.lower()} gene {x} (community {c})"] for x, e, c, _ in genes},
    }
    return [writer.text(bd.id_conversion_file(sp, src, dst), _dumps(m)) for (src, dst), m in maps.items()]


def _terms(sp: str, sizes: np.ndarray, seed: int) -> dict[str, list[tuple[str, str, str, np.ndarray]]]:
    """Per GSC kind: (term ID, name, kind, latent gene indices); one term per community, then random ones."""
    n = int(sizes.sum())
    starts = np.cumsum(sizes) - sizes
    out = {}
    for ki, kind in enumerate(vocab.GSC_CONTEXTS[sp]):
        rng = _rng(seed, 3, vocab.SPECIES.index(sp), ki)
        prefix = {"GO": "GO", "Monarch": _SPECIES_IDS[sp][2], "Mondo": "MONDO"}[kind]
        word = _TERM_WORDS[kind]
        keep = rng.random(n) < _KEEP_IN_TERM
        extras = rng.integers(0, 3, sizes.size)
        terms = []
        for c, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
            members = np.arange(start, start + size)
            genes = np.union1d(members[keep[start : start + size]], rng.integers(0, n, extras[c]))
            terms.append((f"{prefix}:{9_000_001 + c}", f"synthetic {word} of community {c}", kind, genes))
        n_random = round(n * min(1.0, n / 2000) * _RANDOM_TERMS[kind])
        for j, size in enumerate(rng.integers(10, min(40, n // 10) + 1, n_random).tolist()):
            tid, name = f"{prefix}:{9_000_001 + sizes.size + j}", f"synthetic {word} {j + 1} (random genes)"
            terms.append((tid, name, kind, np.unique(rng.integers(0, n, size))))
        out[kind] = terms
    return out


def _weights(rng: np.random.Generator, composition: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Pre-trained weights: along the mean centroid of each term's genes, norm 3, plus a little noise."""
    direction = composition @ (centroids - centroids.mean(axis=0)).astype(np.float32)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
    return 3.0 * direction + rng.normal(0.0, 0.3 / np.sqrt(centroids.shape[1]), direction.shape)


def _edgelist(
    rng: np.random.Generator, sizes: np.ndarray, comm: np.ndarray, present: np.ndarray, entrez: np.ndarray, net: str
) -> str:
    _, p_within, cross, weight_ranges = _NETWORKS[net]
    n = comm.size
    later = np.cumsum(sizes)[comm] - np.arange(n) - 1  # community members after each gene
    src = np.repeat(np.arange(n), later)
    dst = src + 1 + np.arange(src.size) - np.repeat(np.cumsum(later) - later, later)
    linked = rng.random(src.size) < p_within
    src_x = np.repeat(np.arange(n), rng.poisson(cross, n))
    a = np.concatenate([src[linked], src_x])
    b = np.concatenate([dst[linked], rng.integers(0, n, src_x.size)])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ok = (lo != hi) & present[lo] & present[hi]
    key = np.unique(lo[ok].astype(np.int64) * n + hi[ok])
    lo, hi = key // n, key % n
    names = zip(entrez[lo].tolist(), entrez[hi].tolist(), strict=True)
    if weight_ranges is None:
        return "".join(f"{x}\t{y}\n" for x, y in names)
    (w_lo, w_hi), (x_lo, x_hi) = weight_ranges
    within = comm[lo] == comm[hi]
    weights = np.where(within, rng.uniform(w_lo, w_hi, key.size), rng.uniform(x_lo, x_hi, key.size))
    return "".join(f"{x}\t{y}\t{w:.3f}\n" for (x, y), w in zip(names, weights.tolist(), strict=True))


def _write_biomart(
    writer: _Writer, sp: str, other: str, genes: dict[str, tuple[np.ndarray, np.ndarray]], seed: int
) -> str:
    """One-to-one orthologs: gene k of ``sp`` to gene k of ``other``, a few left out (the same both ways)."""
    a, b = sorted((vocab.SPECIES.index(sp), vocab.SPECIES.index(other)))
    (_, entrez), (_, entrez_other) = genes[sp], genes[other]
    kept = _rng(seed, 4, a, b).random(entrez.size) >= _ORTHOLOG_MISSING
    mapping = dict(zip(entrez[kept].tolist(), entrez_other[kept].tolist(), strict=True))
    return writer.text(bd.biomart_file(sp, other), _dumps(mapping))


def _dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _readme(species: list[str], n_genes: int, dim: int, seed: int) -> str:
    return f"""# SYNTHETIC GenePlexus backend data - not for science

Everything in this folder is SYNTHETIC: random genes, networks, embeddings and gene sets in the
GenePlexus 3 backend file format, made by `mljob make-data`
(`mljob.tools.synthetic_data.make_backend_data`). It is deterministic: the same parameters give
byte-identical files. It describes no real organism; use it only to test and demonstrate the job
runner, never for biological conclusions.

Parameters: species={",".join(species)} n_genes={n_genes} dim={dim} seed={seed}

- Genes fall into communities of about {_COMMUNITY_SIZES[0]}-{_COMMUNITY_SIZES[1]} genes; Entrez IDs are
  fake (Human 1xxxxxxx, Mouse 2xxxxxxx, ...), symbols look like HSYN12 (Human) or Msyn12 (Mouse), and
  each gene name says its community.
- Embeddings ({FEATURES}, dim {dim}) are community centroid + noise; network edges are mostly within
  communities; every community has a GO, Monarch (and, for Human, Mondo) term with most of its genes.
- Orthologs (BioMart files) are gene-for-gene between species, with a few missing.
"""


class _Writer:
    """Writes files atomically into one folder and remembers their sizes."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.sizes: dict[str, int] = {}

    def text(self, name: str, text: str) -> str:
        data = text.encode("utf-8")
        with self._atomic(name) as fh:
            fh.write(data)
        self.sizes[name] = len(data)
        return name

    def npy(self, name: str, array: np.ndarray) -> str:
        with self._atomic(name) as fh:
            np.save(fh, array)
        self.sizes[name] = (self.dest / name).stat().st_size
        return name

    @contextlib.contextmanager
    def _atomic(self, name: str) -> Iterator[BinaryIO]:
        fd, tmp = tempfile.mkstemp(dir=self.dest, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.dest / name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
