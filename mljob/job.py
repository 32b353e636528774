"""The job model: job names, the job config (GenePlexus parameters + metadata) and input gene lists."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from mljob.errors import InvalidInput
from mljob.vocabulary import ALL_SPECIES, FEATURES, GSCS, NETWORKS, SPECIES, gsc_refusal, network_refusal

# --- job names -------------------------------------------------------------------------------

NAME_MIN, NAME_MAX, PREFIX_MAX, SUFFIX_LEN = 3, 63, 32, 8
MAX_JOBS_PER_CALL = 1000  # job names in one enqueue call
_NAME_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
NAME_RULE = "lower-case a-z, 0-9 and single inner hyphens, 3 to 63 characters (e.g. 'mygenes-8e3jt5kz')"


def validate_jobname(name: object) -> str:
    """Return `name` if it is a valid job name, else raise InvalidInput saying why (no file is touched)."""
    if not isinstance(name, str):
        raise InvalidInput(f"job name must be a string, got {type(name).__name__}; allowed: {NAME_RULE}")
    shown = ascii(name) if len(name) <= 80 else ascii(name[:80]) + "..."
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidInput(f"invalid job name {shown}: it has {len(name)} characters; allowed: {NAME_RULE}")
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid job name {shown}; allowed: {NAME_RULE}")
    return name


def validate_jobnames(names: Iterable[object]) -> list[str]:
    """A list of job names, each validated, duplicates dropped in order; at least 1, at most MAX_JOBS_PER_CALL."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InvalidInput("job names must be given as a list of names, not as one string")
    valid: list[str] = []
    for count, name in enumerate(names, start=1):
        if count > MAX_JOBS_PER_CALL:
            raise InvalidInput(f"too many job names; the most in one call is {MAX_JOBS_PER_CALL:,}")
        name = validate_jobname(name)
        if name not in valid:
            valid.append(name)
    if not valid:
        raise InvalidInput("no job names given: name at least one job")
    return valid


def jobnames_from(data: object, *, what: str, lists: bool = True, also: Collection[str] = ()) -> list[str]:
    """The job names a JSON object names: "jobname" or "jobid" (one), or, when `lists`, "jobnames" or "jobids" (a list).

    "jobids" is another name for "jobnames" (the 2023 GenePlexus web app sends either). `what` names the
    object in messages ("request body", "queue message"); keys other than these and `also` are refused.
    InvalidInput says what is wrong (the HTTP API, the job queue's messages and testfn all read names
    through here).
    """
    keys = ("jobname", "jobid", "jobnames", "jobids") if lists else ("jobname", "jobid")
    choice = '"jobname", "jobid", "jobnames" or "jobids"' if lists else '"jobname" or "jobid"'
    if not isinstance(data, dict):
        raise InvalidInput(f'{what} must be a JSON object like {{"jobname": "..."}}, got a {json_type(data)}')
    unknown = sorted(str(key) for key in set(data) - set(keys) - set(also))
    if unknown:
        allowed = ", ".join([*keys, *also])
        raise InvalidInput(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {allowed}"[:300])
    given = [key for key in keys if key in data]
    if len(given) != 1:
        raise InvalidInput(f"{what}: give exactly one of {choice}")
    key = given[0]
    if key in ("jobname", "jobid"):
        return [validate_jobname(data[key])]
    names = data[key]
    if not isinstance(names, list) or not names:
        raise InvalidInput(f'"{key}" must be a non-empty list of job names')
    if len(names) > MAX_JOBS_PER_CALL:
        raise InvalidInput(f'"{key}" lists {len(names):,} jobs; the most in one call is {MAX_JOBS_PER_CALL:,}')
    return validate_jobnames(names)


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type (for messages): object, list, string, boolean, number, null."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def slugify(text: str) -> str:
    """Lower-case `text`, turn every run of other characters into one hyphen, cut to 32 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:PREFIX_MAX].rstrip("-")


def new_jobname(prefix: str | None = None) -> str:
    """A fresh job name: `prefix-xxxxxxxx` (slugified prefix, 8 random a-z0-9) or just `xxxxxxxx`."""
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SUFFIX_LEN))
    slug = slugify(prefix or "")
    return validate_jobname(f"{slug}-{suffix}" if slug else suffix)


# --- job config ------------------------------------------------------------------------------

CLUSTER_METHODS = ("louvain", "domino")

Species = Literal[SPECIES]  # type: ignore[valid-type]
Gsc = Literal[GSCS]  # type: ignore[valid-type]


def _as_list(value: Any) -> Any:
    if isinstance(value, str):
        if value == ALL_SPECIES:
            return list(SPECIES)
        return [part.strip() for part in value.split(",")] if "," in value else [value]
    return value


def _nonempty(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("must name at least one")
    return values


def _check_jobname(value: str) -> str:
    try:
        return validate_jobname(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def _check_callback(value: str) -> str:
    if not re.match(r"https?://[^/\s]+", value):
        raise ValueError(f"must be an http:// or https:// URL, got {value[:100]!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in value) or len(value) > 2000:
        raise ValueError("must be one URL without spaces or control characters, at most 2000 characters")
    return value


class JobConfig(BaseModel):
    """GenePlexus 3 parameters and job metadata, stored as job_config.json."""

    model_config = ConfigDict(extra="forbid")

    jobname: Annotated[str, AfterValidator(_check_jobname)]
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    callback_url: Annotated[str, AfterValidator(_check_callback)] | None = None

    net_type: Literal[NETWORKS] = "STRING"  # type: ignore[valid-type]
    features: Literal[FEATURES] = "SixSpeciesN2V"  # type: ignore[valid-type]
    sp_trn: Species = "Human"
    sp_res: Annotated[list[Species], BeforeValidator(_as_list), AfterValidator(_nonempty)] = ["Human"]
    gsc_trn: Gsc = "Combined"
    gsc_res: Annotated[list[Gsc], BeforeValidator(_as_list), AfterValidator(_nonempty)] = ["Combined"]
    min_num_pos: Annotated[StrictInt, Field(ge=1, le=1000)] = 15
    min_num_pos_cv: Annotated[StrictInt, Field(ge=1, le=1000)] = 15
    num_folds: Annotated[StrictInt, Field(ge=2, le=10)] = 3
    cross_validate: StrictBool = True
    random_state: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0
    num_nodes: Annotated[StrictInt, Field(ge=1, le=500)] = 50
    clust_method: Literal[CLUSTER_METHODS] | None = None  # type: ignore[valid-type]
    clust_min_size: Annotated[StrictInt, Field(ge=1, le=1000)] = 15

    @model_validator(mode="after")
    def _check_combinations(self) -> JobConfig:
        if len(self.gsc_res) == 1 and len(self.sp_res) > 1:
            self.gsc_res = self.gsc_res * len(self.sp_res)
        if len(self.gsc_res) != len(self.sp_res):
            raise ValueError(
                f"gsc_res has {len(self.gsc_res)} entries but sp_res has {len(self.sp_res)}: "
                "give one GSC, or one per result species"
            )
        if len(set(self.sp_res)) != len(self.sp_res):
            raise ValueError(f"sp_res names a species twice: {self.sp_res}")
        pairs = [("sp_trn/gsc_trn", self.sp_trn, self.gsc_trn)] + [
            (f"sp_res[{i}]/gsc_res[{i}]", sp, gsc)
            for i, (sp, gsc) in enumerate(zip(self.sp_res, self.gsc_res, strict=True))
        ]
        for where, species, gsc in pairs:
            if reason := gsc_refusal(species, gsc):
                raise ValueError(f"{where}: {reason}")
        for where, species in [("sp_trn", self.sp_trn)] + [(f"sp_res[{i}]", s) for i, s in enumerate(self.sp_res)]:
            if reason := network_refusal(species, self.net_type):
                raise ValueError(f"{where}: {reason}")
        return self

    def geneplexus_init(self) -> dict[str, Any]:
        """Keyword arguments for GenePlexus(...), as fresh copies (GenePlexus mutates lists it is given)."""
        return {
            "net_type": self.net_type,
            "features": self.features,
            "sp_trn": self.sp_trn,
            "sp_res": list(self.sp_res),
            "gsc_trn": self.gsc_trn,
            "gsc_res": list(self.gsc_res),
        }

    def to_json(self) -> str:
        """The config as indented JSON, as stored in job_config.json."""
        return self.model_dump_json(indent=2) + "\n"


def parse_config(data: Any) -> JobConfig:
    """Validate a config mapping (or JSON text); raise InvalidInput naming every wrong field."""
    try:
        if isinstance(data, (str, bytes)):
            return JobConfig.model_validate_json(data)
        if not isinstance(data, dict):
            raise InvalidInput(f"job config must be a mapping of parameters, got {type(data).__name__}")
        return JobConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("invalid job config: " + "; ".join(_describe(e) for e in exc.errors())) from None


_ALLOWED = {
    "net_type": NETWORKS,
    "features": FEATURES,
    "sp_trn": SPECIES,
    "sp_res": SPECIES,
    "gsc_trn": GSCS,
    "gsc_res": GSCS,
    "clust_method": CLUSTER_METHODS,
}


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else "config"
    where = field + "".join(f"[{p}]" for p in loc[1:] if p.isdigit())
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(n for n in JobConfig.model_fields)
        return f"unknown field {field!r}; allowed fields: {allowed}"
    if error["type"] == "json_invalid":
        return f"not valid JSON ({error['msg']})"
    if not loc:
        return error["msg"].removeprefix("Value error, ")
    if field in _ALLOWED and error["type"] in ("literal_error", "enum"):
        got = error.get("input")
        return f"{where}: {got!r} is not allowed; allowed: {', '.join(_ALLOWED[field])}"
    if error["type"] == "missing":
        return f"{where}: this field is required"
    if error["type"] == "value_error":
        return f"{where}: {error['msg'].removeprefix('Value error, ')}"
    return f"{where}: {error['msg']} (got {error.get('input')!r:.80})"


# --- input genes -----------------------------------------------------------------------------

MAX_GENE_ID_LEN = 100
_SEPARATORS = re.compile(r"[\s,;]+")
_BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def parse_genes(
    data: bytes | str, *, max_genes: int = 10_000, max_bytes: int = 1_000_000, what: str = "gene list"
) -> list[str]:
    """Split a gene list (lines, commas, tabs or spaces), trim it, drop duplicates in order; refuse bad input."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid text (it holds unpaired surrogate characters)") from None
    if len(raw) > max_bytes:
        raise InvalidInput(f"{what} is {len(raw):,} bytes; the most accepted is {max_bytes:,} bytes")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(f"{what} is UTF-16 text; save it as UTF-8 (plain text) and try again")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8 text (bad byte at position {exc.start})") from None
    if _BINARY.search(text):
        raise InvalidInput(f"{what} contains binary data (control characters); give one gene ID per line")
    genes: list[str] = []
    seen: set[str] = set()
    for token in _SEPARATORS.split(text):
        if not token:
            continue
        if len(token) > MAX_GENE_ID_LEN:
            raise InvalidInput(
                f"{what} holds a {len(token):,}-character entry; a gene ID has at most {MAX_GENE_ID_LEN}"
            )
        key = token.upper()
        if key not in seen:
            seen.add(key)
            genes.append(token)
    if not genes:
        raise InvalidInput(f"{what} is empty: give at least one gene ID (symbol, Entrez or Ensembl), one per line")
    if len(genes) > max_genes:
        raise InvalidInput(f"{what} has {len(genes):,} distinct genes; the most accepted is {max_genes:,}")
    return genes
