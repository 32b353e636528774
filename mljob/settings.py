"""Settings read from the environment, defined once here for the CLI, the runner and the function app."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from mljob import backend_data
from mljob.errors import SettingsError


@dataclass(frozen=True)
class Settings:
    """Every setting the code reads; each field names its environment variable."""

    data_path: Path | None = field(
        default=None, metadata={"env": "DATA_PATH", "kind": Path, "help": "folder holding the GenePlexus backend data"}
    )
    jobs_path: Path | None = field(
        default=None, metadata={"env": "JOBS_PATH", "kind": Path, "help": "folder holding one folder per job"}
    )
    max_input_genes: int = field(
        default=10_000, metadata={"env": "MAX_INPUT_GENES", "kind": int, "help": "most genes in one gene list"}
    )
    max_input_bytes: int = field(
        default=1_000_000, metadata={"env": "MAX_INPUT_BYTES", "kind": int, "help": "largest gene file, in bytes"}
    )
    queue_connection_string: str | None = field(
        default=None,
        metadata={
            "env": "QUEUECONNECTIONSTRING",
            "kind": str,
            "secret": True,
            "help": "connection string of the storage account that holds the job queue",
        },
    )
    queue_name: str = field(
        default="jobprocessing", metadata={"env": "QUEUE_NAME", "kind": str, "help": "name of the job queue"}
    )
    lease_stale_seconds: int = field(
        default=120,
        metadata={
            "env": "LEASE_STALE_SECONDS",
            "kind": int,
            "help": "a job's run lease whose heartbeat is older than this is taken over",
        },
    )
    function_key: str | None = field(
        default=None,
        metadata={
            "env": "MLJOB_FUNCTION_KEY",
            "kind": str,
            "secret": True,
            "local_only": True,
            "help": "key that `mljob serve` requires on FUNCTION-level routes (x-functions-key or ?code=)",
        },
    )
    message_lease_seconds: int = field(
        default=60,
        metadata={
            "env": "MESSAGE_LEASE_SECONDS",
            "kind": int,
            "local_only": True,
            "help": "`mljob serve`: how long a received queue message stays invisible between renewals",
        },
    )
    data_cache_mb: int = field(
        default=2048,
        metadata={
            "env": "DATA_CACHE_MB",
            "kind": int,
            "min": 0,
            "help": "memory budget of each job process's warm backend-data cache, shared by the jobs it runs; "
            "0 turns it off",
        },
    )
    preload: str | None = field(
        default=None,
        metadata={
            "env": "PRELOAD",
            "kind": str,
            "help": "backend data the first job process loads into its warm cache when the host starts, "
            "before any message: comma-separated SPECIES:NETWORK:GSC, e.g. Human:STRING:Combined; empty: none",
        },
    )
    fast_path: int = field(
        default=1,
        metadata={
            "env": "FAST_PATH",
            "kind": int,
            "min": 0,
            "max": 1,
            "help": "1: run GenePlexus 3.0.1's slow steps with mljob's faster equivalents (the same results, "
            "mljob/science/fast_path.py); 0: GenePlexus's own code",
        },
    )
    callback_allowed_hosts: str | None = field(
        default=None,
        metadata={
            "env": "CALLBACK_ALLOWED_HOSTS",
            "kind": str,
            "help": "comma-separated hosts that callbacks may go to (loopback/private addresses only when listed)",
        },
    )
    job_timeout_seconds: int = field(
        default=3000,
        metadata={
            "env": "JOB_TIMEOUT_SECONDS",
            "kind": int,
            "help": "a run going past this is stopped and ends `timeout` (below Elastic Premium's 60-minute grace "
            "for runs during scale-in, and below host.json's functionTimeout)",
        },
    )
    job_memory_mb: int = field(
        default=0,
        metadata={
            "env": "JOB_MEMORY_MB",
            "kind": int,
            "min": 0,
            "help": "most resident memory of a job's process (the warm data cache included), in MB; 0: no limit of "
            "our own (the kernel's OOM killer still ends the job `failed`)",
        },
    )
    plan_price_per_hour: float = field(
        default=0.432,
        metadata={
            "env": "PLAN_PRICE_PER_HOUR",
            "kind": float,
            "min": 0,
            "help": "price of one instance-hour of the plan, in USD, for job_info.json's estimated_cost (default: "
            "EP2, 2 vCPU x $0.173 + 7 GB x $0.0123 per hour, Linux, East US list price)",
        },
    )
    web_wait_seconds: int = field(
        default=200,
        metadata={
            "env": "WEB_WAIT_SECONDS",
            "kind": int,
            "help": "how long POST /api/gpz-ml waits for its job before answering 202 (below Azure's 230 s limit)",
        },
    )
    web_max_waiting: int = field(
        default=20,
        metadata={
            "env": "WEB_MAX_WAITING",
            "kind": int,
            "help": "most POST /api/gpz-ml calls waiting at once on one instance; more get 503 with Retry-After",
        },
    )
    cors_allowed_origins: str | None = field(
        default=None,
        metadata={
            "env": "CORS_ALLOWED_ORIGINS",
            "kind": str,
            "local_only": True,
            "help": "`mljob serve`: comma-separated origins browsers may call the API from (* any); empty: none",
        },
    )

    def __post_init__(self) -> None:
        self.preload_targets()  # a bad PRELOAD is refused where settings are read, in words

    def preload_targets(self) -> list[dict[str, str]]:
        """PRELOAD as job parameters (sp_trn, net_type, gsc); SettingsError when it names no valid data."""
        try:
            return backend_data.preload_targets(self.preload)
        except ValueError as exc:
            raise SettingsError(f"PRELOAD: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every setting from `environ` (default os.environ); keyword overrides win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            override = overrides.get(f.name)
            if override is not None and str(override).strip():
                raw: object = str(override).strip() if isinstance(override, str) else override
            elif environ.get(f.metadata["env"], "").strip():
                raw = environ[f.metadata["env"]].strip()
            else:
                continue
            values[f.name] = _convert(
                f.metadata["env"], f.metadata["kind"], raw, f.metadata.get("min", 1), f.metadata.get("max")
            )
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON-ready values (for the job process), see `from_dict`."""
        return {f.name: str(v) if isinstance(v := getattr(self, f.name), Path) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> Settings:
        """Settings from `to_dict`'s values."""
        kinds = {f.name: f.metadata["kind"] for f in fields(cls)}
        return cls(**{k: Path(str(v)) if kinds[k] is Path and v is not None else v for k, v in values.items()})

    def require_data_path(self) -> Path:
        """DATA_PATH as an existing folder, or a SettingsError that says what to do."""
        return _require_dir("DATA_PATH", self.data_path, "mljob make-data DIR writes a small synthetic set")

    def require_jobs_path(self) -> Path:
        """JOBS_PATH as an existing folder, or a SettingsError that says what to do."""
        return _require_dir("JOBS_PATH", self.jobs_path, "create the folder first, e.g. mkdir -p DIR")

    def require_queue_connection_string(self) -> str:
        """QUEUECONNECTIONSTRING, or a SettingsError that says what to do."""
        if not self.queue_connection_string:
            raise SettingsError(
                "QUEUECONNECTIONSTRING is not set: set it to the connection string of the storage "
                "account holding the job queue (Azurite's for local work, see local.settings.json.example)"
            )
        return self.queue_connection_string


def env_names(*, cloud: bool = False) -> list[str]:
    """The environment variables mljob reads, in definition order (`cloud`: without `mljob serve`'s own)."""
    return [f.metadata["env"] for f in fields(Settings) if not (cloud and f.metadata.get("local_only"))]


def _convert(env: str, kind: type, raw: object, least: float, most: float | None = None) -> object:
    if kind is int:
        try:
            value = int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise SettingsError(f"{env} must be a whole number, got {raw!r}") from None
        if value < least:
            raise SettingsError(f"{env} must be at least {least}, got {value}")
        if most is not None and value > most:
            raise SettingsError(f"{env} must be at most {most}, got {value}")
        return value
    if kind is float:
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SettingsError(f"{env} must be a number, got {raw!r}") from None
        if not number >= least:  # (NaN is refused too)
            raise SettingsError(f"{env} must be at least {least}, got {number}")
        return number
    if kind is Path:
        return Path(str(raw)).expanduser()
    return str(raw)


def _require_dir(env: str, path: Path | None, hint: str) -> Path:
    if path is None:
        raise SettingsError(f"{env} is not set: set it (or pass --{env.lower().replace('_', '-')}); {hint}")
    if not path.exists():
        raise SettingsError(f"{env}={path} does not exist; {hint}")
    if not path.is_dir():
        raise SettingsError(f"{env}={path} is not a folder")
    return path
