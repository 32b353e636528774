"""The job model: job names, the job config (GenePlexus 3 parameters + metadata) and input gene lists."""

from __future__ import annotations

import codecs
import json
import re

import pytest

from mljob.errors import InvalidInput
from mljob.job import JobConfig, new_jobname, parse_config, parse_genes, slugify, validate_jobname

SUFFIX_RE = r"[a-z0-9]{8}"

# --- job names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["abc", "a-b", "mygenes-8e3jt5kz", "123", "a1-b2-c3", "a" * 63])
def test_valid_names_are_returned_unchanged(name):
    assert validate_jobname(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "/abc",
        "abc/",
        "a\\b",
        "..",
        "...",
        "../abc",
        "abc..def",
        "abc\x00",
        "a\x00bc",
        "a bc",
        " abc",
        "abc ",
        "abc\n",
        "abc\t",
        "аbc",  # Cyrillic 'а', looks like a Latin 'a'
        "jоb",  # Cyrillic 'о'
        "café",
        "abc\u200b",  # zero-width space
        "ABC",
        "Abc",
        "my_genes",
        "a.b",
        "a+b",
        "-abc",
        "abc-",
        "-",
        "---",
        "a--b",
        "abc--def",
    ],
)
def test_bad_characters_are_refused_with_the_rule(name):
    with pytest.raises(InvalidInput) as exc:
        validate_jobname(name)
    message = str(exc.value)
    assert "invalid job name" in message
    assert "allowed" in message
    assert "a-z, 0-9" in message
    assert "3 to 63 characters" in message


@pytest.mark.parametrize("name", ["", "a", "ab", "a" * 64, "a-" * 40 + "a", "a" * 10_000])
def test_too_short_or_too_long_names_are_refused_with_their_length(name):
    with pytest.raises(InvalidInput) as exc:
        validate_jobname(name)
    message = str(exc.value)
    assert f"it has {len(name)} characters" in message
    assert "3 to 63 characters" in message


def test_a_long_bad_name_is_shown_shortened_in_the_message():
    with pytest.raises(InvalidInput) as exc:
        validate_jobname("x" * 10_000)
    assert len(str(exc.value)) < 400


def test_the_message_shows_unprintable_characters_escaped():
    with pytest.raises(InvalidInput) as exc:
        validate_jobname("ab\x00c")
    assert "\x00" not in str(exc.value)
    assert "\\x00" in str(exc.value)


@pytest.mark.parametrize("name", [None, 123, 1.5, b"abc", ["abc"], {"abc": 1}, True])
def test_non_string_names_are_refused(name):
    with pytest.raises(InvalidInput) as exc:
        validate_jobname(name)
    message = str(exc.value)
    assert "job name must be a string" in message
    assert type(name).__name__ in message
    assert "allowed" in message


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("My Genes", "my-genes"),
        ("  spaced   out  ", "spaced-out"),
        ("a__b..c", "a-b-c"),
        ("Ünïcödé genes", "n-c-d-genes"),
        ("!!!", ""),
        ("", ""),
        ("x" * 100, "x" * 32),
        ("a" * 31 + " b", "a" * 31),  # cut at 32 characters, no trailing hyphen left
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_new_jobname_without_prefix_is_eight_random_characters():
    name = new_jobname()
    assert re.fullmatch(SUFFIX_RE, name)
    assert validate_jobname(name) == name


def test_new_jobname_with_prefix_is_slug_hyphen_suffix():
    name = new_jobname("My Genes")
    assert re.fullmatch(rf"my-genes-{SUFFIX_RE}", name)


def test_new_jobnames_are_random():
    assert len({new_jobname("x") for _ in range(50)}) == 50


@pytest.mark.parametrize(
    "prefix",
    [
        None,
        "",
        "   ",
        "with spaces and\ttabs",
        "ünïcödé",
        "日本語",
        "аbc",  # Cyrillic
        "x" * 100,
        "a-" * 50,
        "!!!---???",
        "../../etc/passwd",
        "a\x00b",
        "UPPER",
        "-leading-and-trailing-",
    ],
)
def test_new_jobname_with_any_prefix_is_valid(prefix):
    name = new_jobname(prefix)
    assert validate_jobname(name) == name
    slug = slugify(prefix or "")
    assert len(slug) <= 32
    expected = rf"{re.escape(slug)}-{SUFFIX_RE}" if slug else SUFFIX_RE
    assert re.fullmatch(expected, name)


# --- job config ------------------------------------------------------------------------------


def config(**fields):
    return {"jobname": "my-job", **fields}


def refused(data) -> str:
    with pytest.raises(InvalidInput) as exc:
        parse_config(data)
    return str(exc.value)


def test_defaults():
    cfg = parse_config(config())
    assert cfg.jobname == "my-job"
    assert (cfg.net_type, cfg.features, cfg.sp_trn, cfg.gsc_trn) == ("STRING", "SixSpeciesN2V", "Human", "Combined")
    assert cfg.sp_res == ["Human"]
    assert cfg.gsc_res == ["Combined"]
    assert cfg.callback_url is None
    assert cfg.clust_method is None
    assert cfg.created.tzinfo is not None


def test_every_parameter_is_accepted():
    cfg = parse_config(
        config(
            net_type="IMP",
            features="SixSpeciesN2V",
            sp_trn="Mouse",
            sp_res=["Mouse", "Human"],
            gsc_trn="GO",
            gsc_res=["GO", "Mondo"],
            min_num_pos=5,
            min_num_pos_cv=7,
            num_folds=5,
            cross_validate=False,
            random_state=42,
            num_nodes=100,
            clust_method="domino",
            clust_min_size=3,
            callback_url="https://example.org/cb?job=1",
        )
    )
    assert cfg.sp_res == ["Mouse", "Human"]
    assert cfg.gsc_res == ["GO", "Mondo"]
    assert cfg.cross_validate is False
    assert cfg.clust_method == "domino"
    assert cfg.callback_url == "https://example.org/cb?job=1"


@pytest.mark.parametrize("net_type", ["BioGRID", "STRING", "IMP"])
def test_each_network_is_accepted(net_type):
    assert parse_config(config(net_type=net_type)).net_type == net_type


@pytest.mark.parametrize("method", ["louvain", "domino", None])
def test_each_cluster_method_is_accepted(method):
    assert parse_config(config(clust_method=method)).clust_method == method


@pytest.mark.parametrize(
    ("sp_res", "expected"),
    [
        ("Mouse", ["Mouse"]),
        ("Human,Mouse", ["Human", "Mouse"]),
        ("Human, Mouse , Fly", ["Human", "Mouse", "Fly"]),
        ("All", ["Human", "Mouse", "Fly", "Worm", "Zebrafish", "Yeast"]),
        (["Yeast", "Worm"], ["Yeast", "Worm"]),
    ],
)
def test_sp_res_as_string_comma_list_all_or_list(sp_res, expected):
    assert parse_config(config(sp_res=sp_res)).sp_res == expected


def test_one_gsc_res_is_broadcast_to_every_result_species():
    cfg = parse_config(config(sp_res="All", gsc_res="GO"))
    assert cfg.gsc_res == ["GO"] * 6


def test_gsc_res_one_per_result_species():
    cfg = parse_config(config(sp_res=["Human", "Mouse"], gsc_res="Mondo,GO"))
    assert cfg.gsc_res == ["Mondo", "GO"]


def test_geneplexus_init_gives_fresh_lists():
    cfg = parse_config(config(sp_res=["Human", "Mouse"]))
    init = cfg.geneplexus_init()
    assert init == {
        "net_type": "STRING",
        "features": "SixSpeciesN2V",
        "sp_trn": "Human",
        "sp_res": ["Human", "Mouse"],
        "gsc_trn": "Combined",
        "gsc_res": ["Combined", "Combined"],
    }
    init["sp_res"].append("Fly")
    assert cfg.sp_res == ["Human", "Mouse"]


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("net_type", "string", "BioGRID, STRING, IMP"),
        ("net_type", "HumanBase", "BioGRID, STRING, IMP"),
        ("features", "Embedding", "SixSpeciesN2V"),
        ("sp_trn", "Rat", "Human, Mouse, Fly, Worm, Zebrafish, Yeast"),
        ("sp_trn", "human", "Human, Mouse, Fly, Worm, Zebrafish, Yeast"),
        ("sp_res", ["Human", "Rat"], "Human, Mouse, Fly, Worm, Zebrafish, Yeast"),
        ("sp_res", "Human,,Mouse", "Human, Mouse, Fly, Worm, Zebrafish, Yeast"),
        ("gsc_trn", "KEGG", "GO, Monarch, Mondo, Combined"),
        ("gsc_res", ["DisGeNet"], "GO, Monarch, Mondo, Combined"),
        ("clust_method", "kmeans", "louvain, domino"),
    ],
)
def test_unknown_choices_are_refused_naming_field_and_allowed_values(field, value, allowed):
    message = refused(config(**{field: value}))
    assert field in message
    assert "is not allowed" in message
    assert f"allowed: {allowed}" in message


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"net_type": "BioGRID", "sp_trn": "Zebrafish", "sp_res": ["Human"]}, "sp_trn"),
        ({"net_type": "BioGRID", "sp_res": ["Zebrafish"]}, "sp_res[0]"),
        ({"net_type": "BioGRID", "sp_res": ["Human", "Zebrafish"]}, "sp_res[1]"),
        ({"net_type": "BioGRID", "sp_res": "All"}, "sp_res[4]"),
    ],
)
def test_zebrafish_with_biogrid_is_refused(fields, where):
    message = refused(config(**fields))
    assert where in message
    assert "BioGRID" in message
    assert "Zebrafish" in message
    assert "STRING or IMP" in message


@pytest.mark.parametrize("net_type", ["STRING", "IMP"])
def test_zebrafish_with_other_networks_is_accepted(net_type):
    cfg = parse_config(config(net_type=net_type, sp_trn="Zebrafish", sp_res="Zebrafish", gsc_trn="GO", gsc_res="GO"))
    assert cfg.sp_trn == "Zebrafish"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"sp_trn": "Fly", "gsc_trn": "Monarch"}, "sp_trn/gsc_trn"),
        ({"sp_res": ["Fly"], "gsc_res": ["Monarch"]}, "sp_res[0]/gsc_res[0]"),
        ({"sp_res": ["Human", "Fly"], "gsc_res": "Monarch"}, "sp_res[1]/gsc_res[1]"),
    ],
)
def test_fly_with_monarch_is_refused(fields, where):
    message = refused(config(**fields))
    assert where in message
    assert "Monarch has no annotations for Fly" in message
    assert "GO or Combined" in message


@pytest.mark.parametrize("species", ["Mouse", "Fly", "Worm", "Zebrafish", "Yeast"])
def test_mondo_for_a_species_other_than_human_is_refused(species):
    message = refused(config(sp_trn=species, gsc_trn="Mondo", sp_res=["Human"], gsc_res=["GO"]))
    assert "sp_trn/gsc_trn" in message
    assert "Mondo" in message
    assert "Human only" in message
    assert species in message


def test_mondo_for_a_result_species_other_than_human_is_refused():
    message = refused(config(sp_res=["Human", "Mouse"], gsc_res="Mondo"))
    assert "sp_res[1]/gsc_res[1]" in message
    assert "Human only" in message
    assert "Mouse" in message


def test_mondo_for_human_is_accepted():
    cfg = parse_config(config(gsc_trn="Mondo", gsc_res="Mondo"))
    assert cfg.gsc_res == ["Mondo"]


@pytest.mark.parametrize("key", ["foo", "sp_train", "Net_type", "jobName"])
def test_unknown_keys_are_refused_listing_the_allowed_fields(key):
    message = refused(config(**{key: "x"}))
    assert f"unknown field {key!r}" in message
    assert "allowed fields:" in message
    for name in JobConfig.model_fields:
        assert name in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("min_num_pos", "15", "valid integer"),
        ("min_num_pos_cv", 15.0, "valid integer"),
        ("num_folds", "3", "valid integer"),
        ("random_state", 1.5, "valid integer"),
        ("num_nodes", True, "valid integer"),
        ("clust_min_size", None, "valid integer"),
        ("cross_validate", "yes", "valid boolean"),
        ("cross_validate", 1, "valid boolean"),
        ("cross_validate", "true", "valid boolean"),
        ("jobname", 123, "valid string"),
        ("sp_res", 5, "valid list"),
        ("callback_url", 5, "valid string"),
    ],
)
def test_wrong_types_are_refused(field, value, expected):
    message = refused(config(**{field: value}))
    assert f"{field}:" in message
    assert expected in message


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [
        ("num_folds", 1, "greater than or equal to 2"),
        ("num_folds", 11, "less than or equal to 10"),
        ("num_nodes", 0, "greater than or equal to 1"),
        ("num_nodes", 501, "less than or equal to 500"),
        ("min_num_pos", 0, "greater than or equal to 1"),
        ("min_num_pos_cv", -3, "greater than or equal to 1"),
        ("random_state", -1, "greater than or equal to 0"),
        ("random_state", 2**31, "less than or equal to 2147483647"),
        ("clust_min_size", 0, "greater than or equal to 1"),
    ],
)
def test_out_of_range_numbers_are_refused_with_the_bound(field, value, bound):
    message = refused(config(**{field: value}))
    assert f"{field}:" in message
    assert bound in message


@pytest.mark.parametrize(
    ("field", "value"), [("num_folds", 2), ("num_folds", 10), ("num_nodes", 1), ("num_nodes", 500)]
)
def test_range_bounds_are_inclusive(field, value):
    assert getattr(parse_config(config(**{field: value})), field) == value


@pytest.mark.parametrize(
    ("sp_res", "gsc_res"),
    [
        (["Human", "Mouse"], ["GO", "GO", "GO"]),
        (["Human", "Mouse", "Fly"], ["GO", "Combined"]),
        (["Human"], ["GO", "Combined"]),
    ],
)
def test_gsc_res_and_sp_res_length_mismatch_is_refused(sp_res, gsc_res):
    message = refused(config(sp_res=sp_res, gsc_res=gsc_res))
    assert f"gsc_res has {len(gsc_res)} entries but sp_res has {len(sp_res)}" in message
    assert "give one GSC, or one per result species" in message


@pytest.mark.parametrize("sp_res", [["Human", "Human"], "Mouse,Human,Mouse"])
def test_duplicate_result_species_are_refused(sp_res):
    message = refused(config(sp_res=sp_res))
    assert "sp_res" in message
    assert "twice" in message


@pytest.mark.parametrize("field", ["sp_res", "gsc_res"])
def test_empty_lists_are_refused(field):
    message = refused(config(**{field: []}))
    assert field in message
    assert "at least one" in message


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "example.org", "javascript:alert(1)", "file:///etc/passwd", "http://"]
)
def test_callback_url_must_be_http_or_https(url):
    message = refused(config(callback_url=url))
    assert "callback_url" in message
    assert "http:// or https://" in message


@pytest.mark.parametrize("url", ["https://example.org/a b", "https://example.org/\x00", "https://e.org/" + "x" * 2000])
def test_callback_url_must_be_one_url(url):
    message = refused(config(callback_url=url))
    assert "callback_url" in message
    assert "without spaces or control characters" in message


@pytest.mark.parametrize("url", ["http://localhost:7071/api/cb", "https://example.org/cb?x=1"])
def test_callback_url_http_and_https_are_accepted(url):
    assert parse_config(config(callback_url=url)).callback_url == url


@pytest.mark.parametrize("name", ["Bad Name", "../x", "ab", "a--b"])
def test_an_invalid_jobname_in_the_config_is_refused(name):
    message = refused(config(jobname=name))
    assert "jobname:" in message
    assert "invalid job name" in message
    assert "allowed" in message


def test_a_missing_jobname_is_refused():
    message = refused({"net_type": "STRING"})
    assert "jobname: this field is required" in message


def test_every_wrong_field_is_named():
    message = refused(config(net_type="x", num_folds=99, foo=1))
    assert "net_type" in message
    assert "num_folds" in message
    assert "foo" in message


@pytest.mark.parametrize("text", ["{not json", '{"jobname": "my-job",}', "", b"\xff\xfe", b"{'jobname': 'abc'}"])
def test_invalid_json_text_is_refused(text):
    message = refused(text)
    assert "invalid job config" in message
    assert "not valid JSON" in message


@pytest.mark.parametrize("text", ["[1, 2]", '"my-job"', "42", "null"])
def test_json_text_that_is_not_an_object_is_refused(text):
    assert "invalid job config" in refused(text)


@pytest.mark.parametrize("data", [None, 42, ["jobname", "my-job"], ("jobname",), {"jobname"}])
def test_a_non_mapping_is_refused(data):
    message = refused(data)
    assert "job config must be a mapping" in message
    assert type(data).__name__ in message


def test_json_text_and_bytes_are_accepted():
    text = json.dumps(config(sp_res="Human,Mouse", num_folds=4))
    assert parse_config(text).num_folds == 4
    assert parse_config(text.encode()).sp_res == ["Human", "Mouse"]


def test_json_text_is_checked_as_strictly_as_a_mapping():
    message = refused(json.dumps(config(num_folds="3")))
    assert "num_folds" in message
    assert "valid integer" in message


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"callback_url": "https://example.org/cb", "clust_method": "louvain"},
        {"sp_res": "All", "gsc_res": "GO", "net_type": "IMP", "cross_validate": False},
        {"sp_trn": "Mouse", "sp_res": ["Human", "Mouse"], "gsc_res": ["Mondo", "Monarch"], "random_state": 7},
    ],
)
def test_round_trip_through_json(fields):
    cfg = parse_config(config(**fields))
    again = parse_config(cfg.to_json())
    assert again == cfg
    assert again.to_json() == cfg.to_json()


def test_to_json_is_indented_json_with_a_final_newline():
    text = parse_config(config()).to_json()
    assert text.endswith("}\n")
    assert json.loads(text)["jobname"] == "my-job"
    assert "\n  " in text


# --- input genes -----------------------------------------------------------------------------


def genes_refused(data, **kwargs) -> str:
    with pytest.raises(InvalidInput) as exc:
        parse_genes(data, **kwargs)
    return str(exc.value)


@pytest.mark.parametrize(
    "data",
    [
        "A\nB\nC",
        "A\nB\nC\n",
        "A,B,C",
        "A\tB\tC",
        "A B C",
        "A;B;C",
        "A, B;\tC\n",
        "  A  \n\n  B\n\t C \n\n",
        "A\r\nB\r\nC\r\n",
        b"A\nB\nC\n",
    ],
)
def test_gene_separators(data):
    assert parse_genes(data) == ["A", "B", "C"]


def test_genes_keep_their_order():
    assert parse_genes("TP53\nBRCA1\n672\nENSG00000141510") == ["TP53", "BRCA1", "672", "ENSG00000141510"]


def test_duplicates_are_dropped_case_insensitively_keeping_the_first_spelling():
    assert parse_genes("Tp53\nBRCA1\nTP53\ntp53\nbrca1\nMYC") == ["Tp53", "BRCA1", "MYC"]


def test_crlf_is_accepted():
    assert parse_genes(b"A\r\nB\r\n") == ["A", "B"]


def test_a_utf8_bom_is_accepted():
    assert parse_genes(codecs.BOM_UTF8 + b"A\nB\n") == ["A", "B"]


def test_utf8_gene_names_are_accepted():
    assert parse_genes("Ähnlich\nβ-gene".encode()) == ["Ähnlich", "β-gene"]


@pytest.mark.parametrize("data", ["", b"", "   ", "\n\n\n", " \t\r\n ", ",;,;", codecs.BOM_UTF8])
def test_empty_or_whitespace_only_is_refused(data):
    message = genes_refused(data)
    assert "gene list is empty" in message
    assert "at least one gene" in message


def test_the_message_names_what_was_read():
    assert genes_refused("", what="negative genes").startswith("negative genes is empty")


@pytest.mark.parametrize("data", [b"A\n\xff\xfeB", b"TP53\n\xe9\n", b"\xc3\x28", b"caf\xe9"])
def test_non_utf8_bytes_are_refused(data):
    message = genes_refused(data)
    assert "is not UTF-8 text" in message
    assert "bad byte at position" in message


@pytest.mark.parametrize(
    "data",
    [
        "A\nB\n".encode("utf-16"),  # native byte order, with a BOM
        codecs.BOM_UTF16_LE + "A\nB\n".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "A\nB\n".encode("utf-16-be"),
    ],
)
def test_utf16_with_a_bom_is_refused(data):
    message = genes_refused(data)
    assert "is UTF-16 text" in message
    assert "save it as UTF-8" in message


def test_utf16_without_a_bom_is_refused_as_binary():
    assert "binary" in genes_refused("A\nB\n".encode("utf-16-le"))


@pytest.mark.parametrize(
    "data", [b"A\x00B", b"\x00\x01\x02\x03", b"A\nB\x1b[0m", b"A\x7fB", b"PK\x03\x04zipfile", "A\x08B", "A\x0bB"]
)
def test_binary_data_is_refused(data):
    message = genes_refused(data)
    assert "contains binary data" in message
    assert "one gene ID per line" in message


def test_the_default_limit_is_10000_distinct_genes():
    ok = "\n".join(f"G{i}" for i in range(10_000))
    assert len(parse_genes(ok)) == 10_000
    message = genes_refused(ok + "\nG10000")
    assert "10,001 distinct genes" in message
    assert "the most accepted is 10,000" in message


def test_duplicates_do_not_count_towards_the_gene_limit():
    assert parse_genes("A\nB\nA\nb\nB", max_genes=2) == ["A", "B"]


def test_max_genes_is_configurable():
    message = genes_refused("A\nB\nC", max_genes=2)
    assert "3 distinct genes" in message
    assert "the most accepted is 2" in message


def test_the_default_limit_is_one_megabyte():
    data = b"A\n" + b" " * (1_000_000 - 2)
    assert parse_genes(data) == ["A"]
    message = genes_refused(data + b" ")
    assert "1,000,001 bytes" in message
    assert "the most accepted is 1,000,000 bytes" in message


def test_max_bytes_is_configurable_and_counts_utf8_bytes():
    assert parse_genes("ÄB", max_bytes=3) == ["ÄB"]
    message = genes_refused("ÄÄ", max_bytes=3)
    assert "4 bytes" in message
    assert "the most accepted is 3 bytes" in message


def test_a_gene_id_of_100_characters_is_accepted():
    assert parse_genes("x" * 100) == ["x" * 100]


@pytest.mark.parametrize("length", [101, 5000])
def test_a_token_over_100_characters_is_refused(length):
    message = genes_refused("TP53\n" + "x" * length)
    assert f"{length:,}-character entry" in message
    assert "at most 100" in message


def test_a_str_with_lone_surrogates_is_refused_as_invalid_input():
    with pytest.raises(InvalidInput):
        parse_genes("TP53\n\udcff\n")
