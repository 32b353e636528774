"""Fill the Azure Files share the function app mounts: backend data, job folders, single files.

The function app mounts one Azure Files share (Terraform output ``share_name``) holding the backend
data (e.g. ``data/``) and the job folders (``jobs/<jobname>/``). This module copies local folders into
it with ``azure-storage-file-share``, for machines that do not mount it (a laptop filling ``data/``
once, a web app writing a new job's inputs):

- :func:`upload` copies a folder (or one file) to a path inside the share: directories first
  (parents before children; ones already there are fine), then files in parallel, each written
  under a hidden temporary name (``.NAME.mljob-partial``) and renamed into place, so a reader of the
  share never sees half a file under its real name, and a file that is there with the same size is
  complete and is skipped (``overwrite=True`` uploads it anyway). ``status.json`` files go last,
  and only when every other file succeeded, so a job folder that has its status is complete.
  Transient errors (connection errors, timeouts, 408/500/502/503/504) are retried by the SDK's
  retry policy (``retry_total`` tries, exponential backoff from ``retry_backoff`` seconds) and
  then again per file (``file_retries`` more attempts of the whole file).
- :func:`upload_job` copies one job folder to ``jobs/<jobname>``; :func:`submit_to_share` creates a
  job (as every job is created: :func:`mljob.job_folders.create_job`) in a temporary folder and uploads it.
  The folder is uploaded file by file: enqueue the job only after these return.

The connection string is the storage account's (``QUEUECONNECTIONSTRING`` by default in the CLI);
no message of this module contains the account key or a SAS signature. Azurite has no Azure Files
service, so Azurite's connection string is refused with a message saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mljob.errors import (
    InvalidInput,
    SettingsError,
    ShareError,
    ShareUnreachable,
    UploadFailed,
)
from mljob.settings import Settings

log = logging.getLogger(__name__)

#: Files uploaded after all others (and only if all others succeeded): a job folder's status marks it complete.
LAST_FILES = ("status.json",)
#: Suffix of the temporary name a file is written under before it is renamed into place.
PARTIAL_SUFFIX = ".mljob-partial"
TRANSIENT_STATUS = frozenset({408, 500, 502, 503, 504})
MAX_WORKERS = 64
# characters Azure Files refuses in a file or directory name (plus control characters)
_BAD_NAME = re.compile(r'["\\/:|<>*?\x00-\x1f]')


@dataclass
class UploadReport:
    """What an upload did: counts and bytes of uploaded, skipped and failed files."""

    share: str
    dest: str
    uploaded: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path in the share, reason)
    bytes_uploaded: int = 0
    bytes_skipped: int = 0
    bytes_failed: int = 0
    directories: int = 0  # directories created or found
    retries: int = 0  # whole-file retries (the SDK's own request retries are not counted)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    @property
    def files(self) -> int:
        return self.uploaded + self.skipped + len(self.failed)

    def summary(self) -> str:
        """One line for people."""
        rate = self.bytes_uploaded / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.share}:{self.dest}: {self.uploaded} uploaded ({_human(self.bytes_uploaded)}), "
            f"{self.skipped} skipped as already there ({_human(self.bytes_skipped)}), {len(self.failed)} failed "
            f"in {self.seconds:.1f} s ({_human(rate)}/s)"
        )


@dataclass(frozen=True)
class _Item:
    local: Path
    remote: str  # path inside the share


# --- public API --------------------------------------------------------------------------------


def upload(
    src: str | os.PathLike[str],
    dest: str,
    *,
    connection_string: str,
    share_name: str,
    workers: int = 4,
    progress: bool = True,
    overwrite: bool = False,
    retry_total: int = 3,
    retry_backoff: float = 1.0,
    file_retries: int = 2,
) -> UploadReport:
    """Upload folder or file `src` to `dest` (a relative path inside share `share_name`).

    A folder's contents go under `dest` (``upload("mljob-demo/data", "data")`` gives ``data/NodeOrder...``);
    a single file becomes the file `dest`. InvalidInput for a bad `src`/`dest`/`workers`; SettingsError
    for a malformed or Azurite connection string, a missing share or refused credentials;
    ShareUnreachable when the endpoint cannot be reached, ShareError when a folder cannot be created
    (e.g. a file of that name is in the way). Failures of single files do not raise:
    they are in the report (``report.ok`` is False).
    """
    started = time.monotonic()
    src_path = Path(src)
    if not src_path.exists():
        raise InvalidInput(f"{src} does not exist")
    if not (src_path.is_dir() or src_path.is_file()):
        raise InvalidInput(f"{src} is neither a folder nor a regular file")
    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidInput(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    dest_parts = share_path(dest)
    if not share_name or not share_name.strip():
        raise InvalidInput("the share name is empty")
    share_name = share_name.strip()
    secrets = _secrets(connection_string)
    dirs, items, bad = _plan(src_path, dest_parts)
    report = UploadReport(share=share_name, dest="/".join(dest_parts))
    report.failed.extend(bad)
    with _share_client(connection_string, share_name, workers, retry_total, retry_backoff) as share:
        _check_share(share, share_name, secrets)
        uploader = _Uploader(
            share, report, secrets, overwrite=overwrite, file_retries=file_retries, backoff=retry_backoff
        )
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mljob-share") as pool:
            uploader.make_directories(pool, dirs)
            first = [i for i in items if PurePosixPath(i.remote).name not in LAST_FILES]
            last = [i for i in items if PurePosixPath(i.remote).name in LAST_FILES]
            total = sum(_size(i.local) for i in items)
            with _progress_bar(total, progress, f"upload to {share_name}:{report.dest}") as bar:
                uploader.bar = bar
                uploader.upload_files(pool, first)
                if report.failed:
                    for item in last:
                        report.failed.append((item.remote, "not uploaded because other files failed"))
                        report.bytes_failed += _size(item.local)
                else:
                    uploader.upload_files(pool, last)
    report.failed.sort()
    report.seconds = time.monotonic() - started
    log.info("share upload %s", report.summary())
    return report


def upload_job(
    jobs_path: str | os.PathLike[str],
    jobname: str,
    *,
    connection_string: str,
    share_name: str,
    jobs_dir: str = "jobs",
    progress: bool = False,
    **kwargs: Any,
) -> UploadReport:
    """Upload the job folder `jobs_path/jobname` (e.g. made by ResultsFileStore.create_job) to `jobs_dir/jobname`.

    The folder appears on the share file by file (each file whole, ``status.json`` last): enqueue the
    job only after this returns. Raises UploadFailed (with ``.report``) if any file failed, so that a
    caller cannot enqueue a job whose inputs are incomplete; JobNotFound if there is no such folder.
    Other keywords go to :func:`upload`.
    """
    from mljob.job import validate_jobname
    from mljob.results_store import ResultsFileStore

    name = validate_jobname(jobname)
    folder = ResultsFileStore(jobs_path).require_job(name)
    dest = "/".join([*share_path(jobs_dir), name])
    report = upload(
        folder, dest, connection_string=connection_string, share_name=share_name, progress=progress, **kwargs
    )
    if not report.ok:
        raise UploadFailed(
            f"job {name} was not uploaded completely to {share_name}:{dest}: "
            + "; ".join(f"{path}: {reason}" for path, reason in report.failed[:5]),
            report,
        )
    return report


def submit_to_share(
    genes: str | bytes | Iterable[str],
    params: Mapping[str, Any] | None = None,
    *,
    connection_string: str,
    share_name: str,
    name: str | None = None,
    prefix: str | None = None,
    negatives: str | bytes | Iterable[str] | None = None,
    jobs_dir: str = "jobs",
    settings: Settings | None = None,
    **kwargs: Any,
) -> str:
    """Create a job for a web app that does not mount the share; return its name.

    Creates it like every job (:func:`mljob.job_folders.create_job`: InvalidInput names what is wrong;
    `settings` give the input limits MAX_INPUT_GENES and MAX_INPUT_BYTES, default the documented ones) in a
    temporary jobs folder, uploads it with :func:`upload_job` (UploadFailed if incomplete) and removes the
    temporary copy. Enqueue the job afterwards.
    """
    from mljob.job_folders import create_job
    from mljob.results_store import ResultsFileStore

    with tempfile.TemporaryDirectory(prefix="mljob-submit-") as tmp:
        store = ResultsFileStore.from_settings(dataclasses.replace(settings or Settings(), jobs_path=Path(tmp)))
        jobname = create_job(store, genes, params, name=name, prefix=prefix, negatives=negatives)
        upload_job(
            tmp, jobname, connection_string=connection_string, share_name=share_name, jobs_dir=jobs_dir, **kwargs
        )
    return jobname


def share_path(dest: str) -> list[str]:
    """The parts of a relative path inside a share; InvalidInput for absolute paths, ``..``, bad names."""
    text = (dest or "").strip()
    if not text:
        raise InvalidInput("the destination inside the share is empty (e.g. data or jobs/<jobname>)")
    if text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise InvalidInput(f"destination {dest!r} is absolute; give a path inside the share, e.g. data")
    if "\\" in text:
        raise InvalidInput(f"destination {dest!r}: use / to separate folders")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidInput(f"destination {dest!r} contains '..'; refused")
    if not parts:
        raise InvalidInput(f"destination {dest!r} names no folder or file inside the share")
    for part in parts:
        problem = _name_problem(part)
        if problem:
            raise InvalidInput(f"destination {dest!r}: {problem}")
    return parts


# --- planning ----------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    if _BAD_NAME.search(name):
        return f'{name!r} has a character Azure Files does not allow (" \\ / : | < > * ? or a control character)'
    if len(name) > 255:
        return f"{name[:40]!r}... is longer than 255 characters"
    if name.endswith("."):
        return f"{name!r} ends with a dot, which Azure Files drops"
    return None


def _plan(src: Path, dest: list[str]) -> tuple[list[str], list[_Item], list[tuple[str, str]]]:
    """(directories to create, parents first; files to upload; (path, reason) of files refused)."""
    root = "/".join(dest)
    dirs: list[str] = ["/".join(dest[:i]) for i in range(1, len(dest))]
    items: list[_Item] = []
    bad: list[tuple[str, str]] = []
    if src.is_file():
        return dirs, [_Item(src, root)], bad
    dirs.append(root)
    for current, subdirs, files in os.walk(src):
        subdirs.sort()
        rel = Path(current).relative_to(src)
        rel_parts = [] if rel == Path(".") else list(rel.parts)
        remote_dir = "/".join([*dest, *rel_parts])
        problem = next((p for p in map(_name_problem, rel_parts) if p), None)
        if rel_parts and not problem:
            dirs.append(remote_dir)
        for name in sorted(files):
            local = Path(current) / name
            remote = f"{remote_dir}/{name}"
            why = problem or _name_problem(name)
            if why:
                bad.append((remote, why))
            elif not local.is_file():
                bad.append((remote, "not a regular file (or a broken link)"))
            else:
                items.append(_Item(local, remote))
        for name in subdirs:
            if (Path(current) / name).is_symlink():
                bad.append((f"{remote_dir}/{name}", "a link to a folder; links to folders are not followed"))
    return dirs, items, bad


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- the client --------------------------------------------------------------------------------


def _secrets(connection_string: str) -> list[str]:
    """Values of the connection string that must never be shown (key, SAS)."""
    values = []
    for part in (connection_string or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() in ("accountkey", "sharedaccesssignature") and value.strip():
            values.append(value.strip())
    return values


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, SAS signatures (sig=...) or AccountKey=... values."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(?i)(sig=)[^&\s;'\"]+", r"\1***", text)
    return re.sub(r"(?i)(AccountKey=)[^;\s'\"]+", r"\1***", text)


def _check_connection_string(connection_string: str) -> None:
    text = (connection_string or "").strip()
    if not text:
        raise SettingsError("the connection string is empty")
    pairs = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if part.strip() and not sep:
            raise SettingsError("the connection string is malformed (expected Key=Value;Key=Value;...)")
        pairs[key.strip().lower()] = value.strip()
    dev = pairs.get("usedevelopmentstorage", "").lower() == "true" or pairs.get("accountname") == "devstoreaccount1"
    if dev and "fileendpoint" not in pairs:
        raise SettingsError(
            "this is a development (Azurite) connection string, and Azurite has no Azure Files service: "
            "give the storage account's connection string (--connection-string or QUEUECONNECTIONSTRING)"
        )


@contextmanager
def _share_client(
    connection_string: str, share_name: str, workers: int, retry_total: int, retry_backoff: float
) -> Iterator[Any]:
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.fileshare import ShareClient
    from requests.adapters import HTTPAdapter

    _check_connection_string(connection_string)
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(10, workers + 2))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    try:
        try:
            client = ShareClient.from_connection_string(
                connection_string,
                share_name,
                retry_policy=_retry_policy(retry_total, retry_backoff),
                transport=RequestsTransport(session=session, session_owner=False),
            )
        except ValueError:
            raise SettingsError("the connection string is malformed or has no account name/key") from None
        yield client
    finally:
        session.close()


def _retry_policy(retry_total: int, backoff: float) -> Any:
    from azure.storage.fileshare import ExponentialRetry

    class _Retry(ExponentialRetry):
        """The SDK's retry (connection errors, timeouts, 408, 5xx but 501/505): backoff, 2x backoff, 4x... ±25%."""

        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return backoff * 2 ** settings["count"] * random.uniform(0.75, 1.25)

    return _Retry(initial_backoff=0, increment_base=0, retry_total=max(0, retry_total), random_jitter_range=0)


def _endpoint(share: Any) -> str:
    return f"{share.scheme}://{share.primary_hostname}"


def _check_share(share: Any, share_name: str, secrets: list[str]) -> None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        share.get_share_properties()
    except ResourceNotFoundError:
        raise SettingsError(
            f"share {share_name!r} does not exist at {_endpoint(share)} (the Terraform output share_name names it)"
        ) from None
    except ClientAuthenticationError:
        raise SettingsError(f"{_endpoint(share)} refused the credentials of the connection string") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise ShareUnreachable(
            f"cannot reach the Azure Files endpoint {_endpoint(share)}: {_first_line(exc, secrets)}"
        ) from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise SettingsError(f"{_endpoint(share)} refused the credentials of the connection string") from None
        raise ShareUnreachable(
            f"the Azure Files endpoint {_endpoint(share)} answered {exc.status_code}: {_first_line(exc, secrets)}"
        ) from None


def _first_line(exc: BaseException, secrets: Iterable[str]) -> str:
    """`exc` in one line without secrets; for an HTTP error with its status and error code."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    status = getattr(exc, "status_code", None)
    if status:
        code = getattr(exc, "error_code", None)
        text = f"HTTP {status}{f' {code}' if code else ''}: {text}"
    return redact(f"{type(exc).__name__}: {text}".rstrip(": "), secrets)


def _is_transient(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUS


@contextmanager
def _progress_bar(total: int, enabled: bool, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not enabled,
        leave=True,
        dynamic_ncols=True,
    ) as bar:
        yield bar


class _Uploader:
    def __init__(
        self,
        share: Any,
        report: UploadReport,
        secrets: list[str],
        *,
        overwrite: bool,
        file_retries: int,
        backoff: float,
    ):
        self.share = share
        self.report = report
        self.secrets = secrets
        self.overwrite = overwrite
        self.file_retries = max(0, file_retries)
        self.backoff = backoff
        self.bar: Any = None
        self.lock = threading.Lock()

    def make_directories(self, pool: ThreadPoolExecutor, dirs: list[str]) -> None:
        """Create `dirs` level by level (parents first, each level in parallel); existing ones are fine."""
        by_depth: dict[int, list[str]] = {}
        for d in dict.fromkeys(dirs):
            by_depth.setdefault(d.count("/"), []).append(d)
        for depth in sorted(by_depth):
            for path, error in zip(by_depth[depth], pool.map(self._make_directory, by_depth[depth]), strict=True):
                if error:
                    raise ShareError(f"cannot create folder {path} in share {self.report.share}: {error}")
                self.report.directories += 1

    def _make_directory(self, path: str) -> str | None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            self.share.get_directory_client(path).create_directory()
        except ResourceExistsError as exc:
            if getattr(exc, "error_code", None) not in (None, "ResourceAlreadyExists"):
                return _first_line(exc, self.secrets)  # e.g. a file of that name is in the way
        except AzureError as exc:
            return _first_line(exc, self.secrets)
        return None

    def upload_files(self, pool: ThreadPoolExecutor, items: list[_Item]) -> None:
        for item, (outcome, size, reason) in zip(items, pool.map(self._upload_file, items), strict=True):
            with self.lock:
                if outcome == "uploaded":
                    self.report.uploaded += 1
                    self.report.bytes_uploaded += size
                elif outcome == "skipped":
                    self.report.skipped += 1
                    self.report.bytes_skipped += size
                else:
                    self.report.failed.append((item.remote, reason))
                    self.report.bytes_failed += size

    def _upload_file(self, item: _Item) -> tuple[str, int, str]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        size = _size(item.local)
        sent = [0]  # bytes of this file counted on the progress bar so far

        def hook(current: int, _total: int | None) -> None:
            self._advance(current - sent[0])
            sent[0] = current

        directory, _, name = item.remote.rpartition("/")
        partial = f"{directory}/.{name}{PARTIAL_SUFFIX}" if directory else f".{name}{PARTIAL_SUFFIX}"
        temp = self.share.get_file_client(partial)
        started = False  # whether the temporary file may exist
        for attempt in range(self.file_retries + 1):
            try:
                with open(item.local, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    final = self.share.get_file_client(item.remote)
                    if not self.overwrite:
                        try:
                            if final.get_file_properties().size == size:
                                self._advance(size - sent[0])
                                return "skipped", size, ""
                        except ResourceNotFoundError:
                            pass
                    started = True
                    temp.upload_file(fh, length=size, max_concurrency=1, progress_hook=hook)
                    temp.rename_file(item.remote, overwrite=True)
                self._advance(size - sent[0])
                return "uploaded", size, ""
            except (AzureError, OSError) as exc:
                reason = _first_line(exc, self.secrets)
                self._advance(-sent[0])
                sent[0] = 0
                if attempt < self.file_retries and _is_transient(exc):
                    with self.lock:
                        self.report.retries += 1
                    log.warning("retrying %s after %s", item.remote, reason)
                    time.sleep(self.backoff * 2**attempt)
                    continue
                if started:  # best effort: leave no temporary file behind
                    with contextlib.suppress(AzureError):
                        temp.delete_file()
                return "failed", size, reason
        raise AssertionError("unreachable")  # pragma: no cover

    def _advance(self, n: int) -> None:
        if n and self.bar is not None:
            self.bar.update(n)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover
