"""The fast path: faster equivalents of GenePlexus 3.0.1's slow internal steps, with identical results.

Most of a warm job's time in GenePlexus 3.0.1 is Python loops over numpy arrays, not mathematics:
`np.where(net_genes == gene)` for each of ~15,000 training genes, `gene in numpy_array` for each of
~19,000 network genes, a hypergeometric test and a `union1d` per term, a scipy `cosine` call per
term. While a job runs inside `with fast_path.active(True):`, those functions of
`geneplexus._geneplexus` are replaced at run time by the ones below (GenePlexus is imported, never
patched on disk or vendored). Each has the name of the function it replaces and cites its line in
geneplexus 3.0.1's `_geneplexus.py`; each does the same steps in the same order, reads the same
backend files (arrays and edge lists through `geneplexus.util` and pandas as GenePlexus does, JSON
files, which it only reads, through `cache.shared_json`: with the warm data cache on, the cached data
itself, not a fresh copy per job), and gives the same values, bit for bit: look-ups go through dicts
and sets, and array operations are chosen to round exactly as the scalar code does (`np.vecdot` is
BLAS's ddot per row, like `np.dot`; scipy's hypergeometric `sf` is a ufunc, elementwise alike for one
value or 9,000).
tests/test_fast_path.py checks every function against the original and every result table of whole
jobs with the fast path on and off.

The replacements are reference-counted by the data cache's `SharedPatch`: in place while at least one job is
inside `active(True)`, and geneplexus is pristine again after the last one leaves. They are process-wide
while in place, so a job without the fast path that runs at the same time in another thread of the
same process gets it too (FAST_PATH is one setting per process; the results are the same anyway).

Only geneplexus 3.0.1 is supported (the version pin of `mljob.science.patching`): any other version turns the
fast path off with one warning. `import mljob.science.fast_path` imports neither numpy nor geneplexus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mljob.science.data_cache import shared_json
from mljob.science.patching import SUPPORTED_GENEPLEXUS as SUPPORTED_GENEPLEXUS  # the pin this module shares
from mljob.science.patching import SharedPatch, VersionPin

log = logging.getLogger(__name__)

# the functions of geneplexus._geneplexus that are replaced (by the functions of the same names below)
REPLACED = (
    "_initial_id_convert",
    "_get_negatives",
    "_run_sl",
    "_make_prob_df",
    "_make_sim_dfs",
    "_make_small_edgelist",
)

_TERMS_AT_ONCE = 1024  # _make_sim_dfs: term weights stacked into one array at a time (4 MB at dim 512)

supported = VersionPin("fast path", log)


@contextmanager
def active(enabled: bool = True) -> Iterator[bool]:
    """Run GenePlexus with the fast path while the block runs (the FAST_PATH setting: False leaves it
    untouched). Yields whether it is on."""
    if not enabled or not supported():
        yield False
        return
    with PATCH.held():
        yield True


def _install() -> None:
    from geneplexus import _geneplexus

    for name in REPLACED:
        _originals[name] = getattr(_geneplexus, name)
        setattr(_geneplexus, name, globals()[name])


def _uninstall() -> None:
    from geneplexus import _geneplexus

    for name in list(_originals):
        setattr(_geneplexus, name, _originals.pop(name))


_originals: dict[str, Any] = {}  # GenePlexus's own functions, while the fast path is in place
PATCH = SharedPatch(_install, _uninstall)


def _id_conversion(file_loc: str, species: str, src: str, dst: str) -> Any:
    """util.load_geneid_conversion's map (util.py:155), to read only (shared by jobs while the data cache is on)."""
    return shared_json(file_loc, f"IDconversion__{species}__{src}-to-{dst}.json")


def _gsc(file_loc: str, species: str, gsc: str, net_type: str) -> Any:
    """util.load_gsc's gene set collection (util.py:184), to read only (shared by jobs while the cache is on)."""
    return shared_json(file_loc, f"GSC__{species}__{gsc}__{net_type}.json")


# --- the replacements ------------------------------------------------------------------------------
# Each has the original's (untyped) signature and returns what it returns. GenePlexus's own names (util, logger,
# pd, its scipy and scikit-learn functions, DEFAULT_LOGREG_KWARGS) are looked up in geneplexus._geneplexus when
# called, as the original's are (so the data cache's loaders serve them).


def _initial_id_convert(input_genes, file_loc, species):
    """geneplexus/_geneplexus.py:28 `_initial_id_convert`, with the known Entrez IDs in a set.

    The original unions every network's NodeOrder and the Entrez-to-Symbol and Entrez-to-Name keys
    into a sorted array (l. 36-45: five `np.union1d` over ~19,000 strings) only to test `agene in`
    it for each numeric input gene (l. 53); a set gives the same answer. The ID maps are read, not
    copied (cache.shared_json). The rest is the original's.
    """
    from geneplexus._geneplexus import logger, pd, util

    convert_types = ["ENSG", "Symbol", "ENSP", "ENST"]
    all_convert_dict = {}
    for an_id_type in convert_types:  # (upper=True; the map as read is not kept, as there)
        all_convert_dict[an_id_type] = {
            src.upper(): dst for src, dst in _id_conversion(file_loc, species, an_id_type, "Entrez").items()
        }
    all_entrez_genes: set[str] = set()
    for anet in util.get_all_net_types(file_loc, species):
        if (species == "Zebrafish") and (anet == "BioGRID"):
            continue
        all_entrez_genes.update(util.load_node_order(file_loc, species, anet).tolist())
    all_entrez_genes.update(_id_conversion(file_loc, species, "Entrez", "Symbol"))
    entrez_to_name = _id_conversion(file_loc, species, "Entrez", "Name")
    all_entrez_genes.update(entrez_to_name)

    convert_ids = []  # Entrez IDs to use as positives
    convert_out = []  # [input, Entrez ID(s), name(s)] per input gene
    for agene in input_genes:
        try:
            int(agene)
            if agene in all_entrez_genes:
                agene_name = ", ".join(entrez_to_name[agene])
                convert_out.append([agene, agene, agene_name])
                convert_ids.append(agene)
            else:
                convert_out.append([agene, f"Not in Our List of {species} Entrez Genes", "None"])
        except ValueError:
            converted_gene = None
            converted_gene_name = None
            for an_id_type in convert_types:
                if agene in all_convert_dict[an_id_type]:
                    mapped = list(all_convert_dict[an_id_type][agene])
                    convert_ids.extend(mapped)
                    converted_gene = ", ".join(mapped)
                    all_to_name = []
                    for ent_gene in mapped:
                        all_to_name = all_to_name + list(entrez_to_name[ent_gene])
                    converted_gene_name = ", ".join(all_to_name)
                    logger.debug(f"Found mapping ({an_id_type}) {agene} -> {mapped}")
                    break
            convert_out.append(
                [agene, converted_gene or "Could Not be mapped to Entrez", converted_gene_name or "None"]
            )
    df_convert_out = pd.DataFrame(convert_out, columns=["Original ID", "Entrez ID", "Gene Name"]).astype(str)
    return convert_ids, df_convert_out


def _get_negatives(file_loc, species, net_type, gsc, pos_genes_in_net, user_negatives):
    """geneplexus/_geneplexus.py:163 `_get_negatives`, with the hypergeometric test over all terms at once.

    The original loops over ~9,000 terms (l. 171-185): an `np.intersect1d`, a `hypergeom.sf` and, for
    an enriched term, an `np.union1d` each. Here the overlaps are set intersections, `hypergeom.sf`
    is called once on arrays (a ufunc: the same p-value per term), and the enriched terms' genes are
    united in one `np.union1d`. A term's genes less the user's negatives are sorted and unique, as
    `np.setdiff1d` makes them (l. 175).
    """
    import numpy as np
    from geneplexus._geneplexus import hypergeom

    gsc_full = _gsc(file_loc, species, gsc, net_type)
    uni_genes = np.array(gsc_full["Universe"])
    gsc_terms = gsc_full["Term_Order"]
    if user_negatives is None:
        term_genes = [gsc_full[akey]["Genes"] for akey in gsc_terms]
    else:
        negatives = set(user_negatives)
        term_genes = [sorted(set(gsc_full[akey]["Genes"]).difference(negatives)) for akey in gsc_terms]
    positives = set(np.asarray(pos_genes_in_net).tolist())
    n = np.array([len(genes) for genes in term_genes], dtype=np.int64)
    k = np.array([len(positives.intersection(genes)) for genes in term_genes], dtype=np.int64)
    pvals = hypergeom.sf(k - 1, len(uni_genes), n, len(pos_genes_in_net))
    enriched = np.flatnonzero(pvals < 0.05).tolist()

    neutral_gene_info: dict[str, Any] = {}
    for i in enriched:
        akey = gsc_terms[i]
        neutral_gene_info[akey] = {
            "Name": gsc_full[akey]["Name"],
            "Task": gsc_full[akey]["Task"],
            "Genes": list(term_genes[i]),
        }
    if enriched:
        genes_to_remove = np.union1d(pos_genes_in_net, [gene for i in enriched for gene in term_genes[i]])
    else:
        genes_to_remove = pos_genes_in_net
    neutral_gene_info["All Neutrals"] = np.setdiff1d(genes_to_remove, pos_genes_in_net).tolist()
    negative_genes = np.setdiff1d(uni_genes, genes_to_remove)
    return negative_genes, neutral_gene_info


def _run_sl(
    file_loc,
    sp_trn,
    net_type,
    features,
    pos_genes_in_net,
    negative_genes,
    net_genes,
    logreg_kwargs,
    min_num_pos_cv,
    num_folds,
    null_val,
    random_state,
    cross_validate,
    scale,
):
    """geneplexus/_geneplexus.py:191 `_run_sl`, with the training genes' rows found through a dict.

    The original finds each positive and negative gene's row with `np.where(net_genes == gene)[0][0]`
    (l. 213-214: ~15,000 genes x ~19,000 string comparisons, 1.5 s); here one dict maps each gene to
    its first row (a gene not in the network is an IndexError, as there). The training and the
    cross-validation are the original's, line for line: the same data, labels, models and folds.
    """
    import numpy as np
    from geneplexus import _geneplexus as gpx

    logreg_kwargs_defaults = gpx.DEFAULT_LOGREG_KWARGS
    if isinstance(logreg_kwargs, dict):
        logreg_kwargs_defaults.update(logreg_kwargs)
    else:
        gpx.logger.warning("logreg_kwargs not a dictionary or None, using defaults")
    # train the model
    inds = _rows_of([*pos_genes_in_net, *negative_genes], net_genes)  # one gene -> row table for both
    pos_inds, neg_inds = inds[: len(pos_genes_in_net)], inds[len(pos_genes_in_net) :]
    data = gpx.util.load_gene_features(file_loc, sp_trn, features, net_type)
    if scale:
        std_scale = gpx.StandardScaler().fit(data)
        data = std_scale.transform(data)
    Xdata = data[pos_inds + neg_inds, :]
    ydata = np.array([1] * len(pos_inds) + [0] * len(neg_inds))
    clf = gpx.LogisticRegression(**logreg_kwargs_defaults)
    clf.fit(Xdata, ydata)
    mdl_weights = np.squeeze(clf.coef_)
    # validate the model
    avgps = [null_val] * num_folds
    if not cross_validate:
        gpx.logger.info("Skipping cross validation.")
    elif len(pos_genes_in_net) < min_num_pos_cv:
        gpx.logger.warning(
            "Insufficient number of positive genes for cross validation: "
            f"{len(pos_genes_in_net)} ({min_num_pos_cv} needed). Skipping cross "
            f"validation and filling values with {null_val}",
        )
    else:
        gpx.logger.info("Performing cross validation.")
        avgps = []
        skf = gpx.StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=random_state)
        for trn_inds, tst_inds in skf.split(Xdata, ydata):
            clf_cv = gpx.LogisticRegression(**logreg_kwargs_defaults)
            clf_cv.fit(Xdata[trn_inds], ydata[trn_inds])
            probs_cv = clf_cv.predict_proba(Xdata[tst_inds])[:, 1]
            avgp = gpx.average_precision_score(ydata[tst_inds], probs_cv)
            num_tst_pos = np.sum(ydata[tst_inds])
            prior = num_tst_pos / Xdata[tst_inds].shape[0]
            log2_prior = float(np.log2(avgp / prior))
            avgps.append(log2_prior)
        gpx.logger.info(f"{avgps=}")
        gpx.logger.info(f"{np.median(avgps)=:.2f}")
        gpx.logger.info(f"{np.mean(avgps)=:.2f}")
    if scale:
        return mdl_weights, avgps, clf, std_scale
    return mdl_weights, avgps, clf, None


def _rows_of(genes: Any, net_genes: Any) -> list[int]:
    """The first row of each gene in net_genes, as `np.where(net_genes == gene)[0][0]` gives it."""
    import numpy as np

    names = np.asarray(net_genes).tolist()
    first_row = {gene: row for row, gene in reversed(list(enumerate(names)))}
    try:
        return [first_row[gene] for gene in genes]
    except KeyError:  # (np.where raises IndexError when a gene is not in the network)
        raise IndexError("index 0 is out of bounds for axis 0 with size 0") from None


def _make_prob_df(file_loc, sp_trn, sp_res, net_type, probs, pos_genes_in_net, negative_genes):
    """geneplexus/_geneplexus.py:273 `_make_prob_df`, with class labels vectorized and gene names from dicts.

    For each of the ~19,000 network genes the original tests `gene in` the positive and the negative
    arrays (l. 286-289, a scan of each) and calls `util.mapgene` twice (l. 295-296). Here one
    `np.isin` each gives every gene's class label, the symbols and names are dict look-ups
    ("/"-joined, "N/A" when missing, as mapgene does), and the table is built from the same rows and
    sorted, scored and ranked as there.
    """
    import numpy as np
    from geneplexus._geneplexus import multipletests, norm, pd, rankdata, util, zscore

    Entrez_to_Symbol = _id_conversion(file_loc, sp_res, "Entrez", "Symbol")
    Entrez_to_Name = _id_conversion(file_loc, sp_res, "Entrez", "Name")
    net_genes = util.load_node_order(file_loc, sp_res, net_type)
    if sp_trn != sp_res:
        biomart_orthos = shared_json(file_loc, f"BioMart__{sp_trn}__{sp_res}.json")  # (util.load_biomart)
        pos_genes_tmp = [biomart_orthos[item] for item in pos_genes_in_net if item in biomart_orthos]
        neg_genes_tmp = [biomart_orthos[item] for item in negative_genes if item in biomart_orthos]
    else:
        pos_genes_tmp, neg_genes_tmp = pos_genes_in_net, negative_genes
    known = np.isin(net_genes, pos_genes_tmp).tolist()  # every gene's `in` at once
    negative = np.isin(net_genes, neg_genes_tmp).tolist()
    prob_results = []
    for idx, gene in enumerate(net_genes):
        if known[idx]:
            class_label, novel_label = "P", "Known"
        elif negative[idx]:
            class_label, novel_label = "N", "Novel"
        else:
            class_label, novel_label = "U", "Novel"
        symbol = "/".join(Entrez_to_Symbol[gene]) if gene in Entrez_to_Symbol else "N/A"
        name = "/".join(Entrez_to_Name[gene]) if gene in Entrez_to_Name else "N/A"
        prob_results.append([gene, symbol, name, novel_label, class_label, probs[idx]])
    # the original's l. 298-308
    df_col_names = ["Entrez", "Symbol", "Name", "Known/Novel", "Class-Label", "Probability"]
    df_probs = pd.DataFrame(prob_results, columns=df_col_names)
    df_probs = df_probs.astype({"Entrez": str, "Probability": float})
    df_probs = df_probs.sort_values(by=["Probability"], ascending=False).reset_index(drop=True)
    z = zscore(df_probs["Probability"].to_numpy())
    p = norm.sf(z)
    _, padjusts, _, _ = multipletests(p, method="bonferroni", is_sorted=True)
    df_probs["Z-score"] = z
    df_probs["P-adjusted"] = padjusts
    df_probs["Rank"] = rankdata(1 / (df_probs["Probability"].to_numpy() + 1e-9), method="min")
    return df_probs


def _make_sim_dfs(file_loc, mdl_weights, species, gsc, net_type, features):
    """geneplexus/_geneplexus.py:311 `_make_sim_dfs`, with the cosine similarities as array operations.

    The original calls scipy's `cosine` once per term (l. 318-320), which computes
    `1 - clip(1 - u.v / sqrt(u.u * v.v), 0, 2)` with three `np.dot`s; here u.v and u.u are `np.vecdot`
    over the weights of 1,024 terms at a time, which calls the same BLAS ddot per row as `np.dot` (the
    same bits), and the rest is the same formula elementwise. The table is built as there (l. 322-342).
    """
    import numpy as np
    from geneplexus._geneplexus import multipletests, norm, pd, rankdata, zscore

    task_convert = {"Mondo": "Disease", "Monarch": "Phenotype", "GO": "Biological Process"}
    # (util.load_pretrained_weights)
    weights_dict = shared_json(file_loc, f"PreTrainedWeights__{species}__{gsc}__{net_type}__{features}.json")
    gsc_full = _gsc(file_loc, species, gsc, net_type)
    gsc_terms = gsc_full["Term_Order"]
    v = np.asarray(mdl_weights, order="C")
    uv, uu = np.zeros(len(gsc_terms)), np.zeros(len(gsc_terms))
    for start in range(0, len(gsc_terms), _TERMS_AT_ONCE):  # (a block of terms at a time: no 2nd copy of them all)
        terms = gsc_terms[start : start + _TERMS_AT_ONCE]
        u = np.array([weights_dict[aset]["Weights"] for aset in terms]).reshape(len(terms), len(v))
        uv[start : start + len(terms)] = np.vecdot(u, v)
        uu[start : start + len(terms)] = np.vecdot(u, u)
    dist = 1.0 - uv / np.sqrt(uu * np.dot(v, v))
    mdl_sims = 1 - np.clip(dist, 0.0, 2.0)
    z = zscore(mdl_sims)
    results_tmp = []
    for idx2, termID_tmp in enumerate(gsc_terms):
        task = gsc_full[termID_tmp]["Task"]
        results_tmp.append(
            [task_convert.get(task, task), termID_tmp, weights_dict[termID_tmp]["Name"], mdl_sims[idx2], z[idx2]]
        )
    df_sim = pd.DataFrame(results_tmp, columns=["Task", "ID", "Name", "Similarity", "Z-score"]).sort_values(
        by=["Similarity"],
        ascending=False,
    )
    p = norm.sf(df_sim["Z-score"].to_numpy())
    _, padjusts, _, _ = multipletests(p, method="bonferroni", is_sorted=True)
    df_sim["P-adjusted"] = padjusts
    df_sim["Rank"] = rankdata(-1 * (df_sim["Similarity"].to_numpy() + 1e-9), method="min")
    return df_sim, weights_dict


def _make_small_edgelist(file_loc, df_probs, species, net_type, num_nodes=50):
    """geneplexus/_geneplexus.py:345 `_make_small_edgelist`, converting only the kept edges' IDs to text.

    The original turns both ID columns of the whole network's edge list (~230,000 edges) into strings
    (l. 353) and then keeps the edges between the top genes. Here the network's distinct IDs are
    converted once to find those among the top genes, the edges between them are kept, and only
    those rows are converted: the same rows, index, values and types. The rest is the original's.
    """
    import numpy as np
    from geneplexus._geneplexus import osp, pd, util

    filepath = osp.join(file_loc, f"Edgelist__{species}__{net_type}.edg")
    if net_type == "BioGRID":
        df_edge = pd.read_csv(filepath, sep="\t", header=None, names=["Node1", "Node2"])
    else:
        df_edge = pd.read_csv(filepath, sep="\t", header=None, names=["Node1", "Node2", "Weight"])
    top_genes = df_probs["Entrez"].to_numpy()[:num_nodes]
    df_edge = df_edge[_text_in(df_edge["Node1"], top_genes) & _text_in(df_edge["Node2"], top_genes)]
    df_edge = df_edge.astype({"Node1": str, "Node2": str})
    # the original's l. 357-369
    if net_type == "BioGRID":
        df_edge["Weight"] = [1.0] * df_edge.shape[0]
    df_edge = df_edge.sort_values(by=["Weight", "Node1", "Node2"], ascending=[False, True, True])
    genes_in_edge = np.union1d(df_edge["Node1"].unique(), df_edge["Node2"].unique())
    isolated_genes = np.setdiff1d(top_genes, genes_in_edge).tolist()
    isolated_genes = [str(item) for item in isolated_genes]
    Entrez_to_Symbol = _id_conversion(file_loc, species, "Entrez", "Symbol")
    replace_dict = {gene: util.mapgene(gene, Entrez_to_Symbol) for gene in genes_in_edge}
    isolated_genes_sym = [util.mapgene(gene, Entrez_to_Symbol) for gene in isolated_genes]
    df_edge_sym = df_edge.replace(to_replace=replace_dict)
    df_edge_sym = df_edge_sym.sort_values(by=["Weight", "Node1", "Node2"], ascending=[False, True, True])
    return df_edge, isolated_genes, df_edge_sym, isolated_genes_sym


def _text_in(column: Any, texts: Any) -> Any:
    """`column.astype(str).isin(texts)`, converting each distinct value of the column once, not each row."""
    distinct = column.drop_duplicates()
    return column.isin(distinct[distinct.astype(str).isin(texts)])
