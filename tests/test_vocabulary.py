"""mljob.vocabulary agrees with GenePlexus 3.0.1's own lists and checks, for every combination."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from geneplexus import util
from geneplexus._config import config

from mljob import vocabulary as vocab


def test_the_names_are_geneplexus_names():
    assert list(vocab.SPECIES) == config.ALL_SPECIES
    assert list(vocab.NETWORKS) == config.ALL_NETWORKS
    assert list(vocab.FEATURES) == config.ALL_FEATURES
    assert list(vocab.GSCS) == config.ALL_GSCS
    contexts = {sp: tuple(re.search(r"\[(.*)\]", text)[1].split(", ")) for sp, text in config.COMBINED_CONTEXTS.items()}
    assert contexts == vocab.GSC_CONTEXTS


@pytest.mark.parametrize(("species", "net", "gsc"), list(itertools.product(vocab.SPECIES, vocab.NETWORKS, vocab.GSCS)))
def test_a_combination_exists_when_geneplexus_accepts_it(species: str, net: str, gsc: str):
    try:
        util.data_checks(species, net, gsc, [species], [gsc])
        accepted = True
    except Exception:  # GenePlexus's ZebrafishBioGRIDError, FlyMonarchError, MondoError
        accepted = False
    assert vocab.exists(species, net, gsc) is accepted
    assert (vocab.network_refusal(species, net) is None and vocab.gsc_refusal(species, gsc) is None) is accepted


@pytest.mark.parametrize(("species", "gsc"), list(itertools.product(vocab.SPECIES, vocab.GSCS)))
def test_the_collection_read_is_the_one_geneplexus_reads(species: str, gsc: str):
    if vocab.gsc_refusal(species, gsc) is None:
        assert util.combined_info(species, gsc, [species], [gsc]) == (
            vocab.gsc_read(species, gsc),
            [vocab.gsc_read(species, gsc)],
        )


def test_refusals_say_what_to_use_instead():
    assert vocab.network_refusal("Zebrafish", "BioGRID") == "BioGRID has no good Zebrafish network; use STRING or IMP"
    assert vocab.gsc_refusal("Fly", "Monarch") == "Monarch has no annotations for Fly; use GO or Combined"
    assert vocab.gsc_refusal("Mouse", "Mondo") == "Mondo has annotations for Human only, not Mouse"
    assert vocab.gscs_read("Fly") == ("GO",)
    assert vocab.gscs_read("Human") == ("GO", "Monarch", "Mondo", "Combined")


def test_importing_it_stays_light():
    code = "import sys, mljob.vocabulary; assert not {'numpy', 'geneplexus', 'pydantic'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
