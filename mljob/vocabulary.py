"""The GenePlexus 3.0.1 vocabulary, written once: species, networks, features, gene set collections (GSCs)
and which combinations of them exist.

No geneplexus or numpy import here: `job.JobConfig` refuses, in words, a combination that does not exist;
`backend_data` lists the files a job reads and checks PRELOAD with the same facts.

- Zebrafish has no BioGRID network.
- Each species has its own collections (`GSC_CONTEXTS`, geneplexus' ``config.COMBINED_CONTEXTS``): Mondo
  is Human only, Fly has no Monarch.
- "Combined" is the union of a species' collections; Fly has GO alone, so Fly's "Combined" reads GO.
"""

from __future__ import annotations

SPECIES = ("Human", "Mouse", "Fly", "Worm", "Zebrafish", "Yeast")
NETWORKS = ("BioGRID", "STRING", "IMP")
FEATURES = ("SixSpeciesN2V",)
GSCS = ("GO", "Monarch", "Mondo", "Combined")
COMBINED = "Combined"
ALL_SPECIES = "All"  # what GenePlexus accepts as sp_res for every species
#: The gene set collections of each species; "Combined" is their union.
GSC_CONTEXTS = {
    "Human": ("GO", "Monarch", "Mondo"),
    "Mouse": ("GO", "Monarch"),
    "Fly": ("GO",),
    "Worm": ("GO", "Monarch"),
    "Zebrafish": ("GO", "Monarch"),
    "Yeast": ("GO", "Monarch"),
}


def networks_of(species: str) -> tuple[str, ...]:
    """The networks a species has: all but BioGRID for Zebrafish."""
    return tuple(net for net in NETWORKS if not (species == "Zebrafish" and net == "BioGRID"))


def gscs_of(species: str) -> tuple[str, ...]:
    """The GSC names a species accepts: its own collections and "Combined"."""
    return (*GSC_CONTEXTS[species], COMBINED)


def gsc_read(species: str, gsc: str) -> str:
    """The collection GenePlexus reads for `gsc`: a species with one collection (Fly) reads it for "Combined"."""
    own = GSC_CONTEXTS[species]
    return own[0] if gsc == COMBINED and len(own) == 1 else gsc


def gscs_read(species: str) -> tuple[str, ...]:
    """The collections GenePlexus reads files of for a species, in `gscs_of` order (Fly: GO only)."""
    return tuple(dict.fromkeys(gsc_read(species, gsc) for gsc in gscs_of(species)))


def network_refusal(species: str, net: str) -> str | None:
    """Why `species` has no `net` network, in words; None when it has one."""
    if net in networks_of(species):
        return None
    return f"{net} has no good {species} network; use {' or '.join(networks_of(species))}"


def gsc_refusal(species: str, gsc: str) -> str | None:
    """Why `species` has no `gsc` collection, in words; None when it has one."""
    if gsc in gscs_of(species):
        return None
    owners = [sp for sp in SPECIES if gsc in GSC_CONTEXTS[sp]]
    if len(owners) == 1:
        return f"{gsc} has annotations for {owners[0]} only, not {species}"
    return f"{gsc} has no annotations for {species}; use {' or '.join(gscs_of(species))}"


def exists(species: str, net: str, gsc: str) -> bool:
    """Whether GenePlexus has `net` and `gsc` for `species` (all three known names)."""
    return network_refusal(species, net) is None and gsc_refusal(species, gsc) is None
