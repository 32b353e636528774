#!/usr/bin/env python3
"""Download the real GenePlexus backend data (Zenodo) into DATA_PATH, or check that a folder is complete.

    python scripts/download_data_for_geneplexus.py [--species Human,Mouse] [--data-path DIR] [--retries N]
    python scripts/download_data_for_geneplexus.py --check [--species Human,Mouse] [--data-path DIR]

Species: Human (the default), Mouse, Fly, Worm, Zebrafish, Yeast, comma-separated, or All. The folder
is --data-path or $DATA_PATH.

Downloading uses ``geneplexus.download.download_select_data`` one species at a time (it fetches
``{Species}_data.tar.gz`` from Zenodo record 14750555, holds the whole archive in memory, and unpacks
it flat into the folder, leaving a ``download.log`` there). Progress: a bar over the species, geneplexus's
bar over the bytes of the archive, and a bar over the files unpacked.

Restartable: a species whose ``data_filenames_{Species}.txt`` and every file it lists are present is
skipped (no network needed). While a species is being fetched, a marker
``.mljob-download-{Species}.incomplete`` sits in the folder; if the run is interrupted, the marker
stays, ``--check`` reports the species as incomplete, and the next run fetches it again (a
half-unpacked file is never taken for a complete one). After each species the folder is verified
against ``data_filenames_{Species}.txt`` and anything missing is named.

Offline, or when Zenodo cannot be reached, the script stops before touching the folder with one line
on stderr and exit code 1. ``--check`` only verifies (it never imports geneplexus or uses the network)
and works on synthetic data too (``mljob make-data`` writes data_filenames files).

Exit codes: 0 complete; 1 download failed, or (``--check``) data incomplete, with the missing files
listed; 2 bad usage.

Side effect: importing geneplexus writes ``$PYSTOW_HOME/README.md`` (``~/.data/README.md`` when
PYSTOW_HOME is unset); set PYSTOW_HOME (e.g. ``PYSTOW_HOME=/tmp/pystow``) to keep it out of your home.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

try:
    from mljob import backend_data as bd
    from mljob.vocabulary import SPECIES
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mljob import backend_data as bd
    from mljob.vocabulary import SPECIES

PROG = "download_data_for_geneplexus"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DATA_LOC = "ZenodoAPI"
DEFAULT_RETRIES = 10  # geneplexus's own default
PROBE_TIMEOUT = 15.0  # seconds for the reachability check, DNS included


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def marker_file(species: str) -> str:
    """Name of the marker that says a species' download has started and not been verified complete."""
    return f".mljob-download-{species}.incomplete"


def listed_files(data_path: Path, species: str) -> list[str]:
    """The files named in data_filenames_{species}.txt (empty if it is absent)."""
    listing = data_path / bd.data_filenames_file(species)
    if not listing.is_file():
        return []
    return [line.rstrip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]


def missing(data_path: Path, species: str) -> list[str]:
    """What keeps `species` from being complete in `data_path` (file names, or the interrupted-download marker)."""
    absent = bd.data_filenames_missing(data_path, species)
    if (data_path / marker_file(species)).exists():
        absent = [marker_file(species), *absent]
    return absent


def check(data_path: Path, species: Sequence[str]) -> int:
    """Print one line per species (and the missing files); 0 when all are complete."""
    if not data_path.is_dir():
        print(f"{data_path}: no such folder; nothing of {', '.join(species)} is there")
        return EXIT_FAILED
    status = EXIT_OK
    for sp in species:
        absent = missing(data_path, sp)
        if not absent:
            print(f"{sp}: complete ({len(listed_files(data_path, sp))} files) in {data_path}")
            continue
        status = EXIT_FAILED
        why = " (an earlier download was interrupted)" if absent[0] == marker_file(sp) else ""
        print(f"{sp}: INCOMPLETE in {data_path}{why}: {len(absent)} missing:")
        for name in absent:
            print(f"  {name}")
    return status


def download(data_path: Path, species: Sequence[str], retries: int) -> int:
    """Fetch every incomplete species, verify it; 0 when all are complete."""
    todo = [sp for sp in species if missing(data_path, sp)]
    for sp in species:
        if sp not in todo:
            print(f"{sp}: already complete in {data_path}, skipped", file=sys.stderr)
    if not todo:
        return EXIT_OK

    import geneplexus.download as gpd  # slow (~2 s) and writes $PYSTOW_HOME/README.md
    from geneplexus.exception import DownloadError
    from tqdm import tqdm

    url = gpd.URL_DICT[DATA_LOC]
    problem = probe(url)
    if problem:
        return _fail(f"cannot reach Zenodo to download GenePlexus data (no network?): {problem}")
    try:
        data_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"cannot create {data_path}: {exc.strerror or exc}")
    with tqdm(todo, desc="species", unit="species", position=0, leave=True) as bar:
        for sp in bar:
            bar.set_postfix_str(sp)
            marker = data_path / marker_file(sp)
            if marker.exists():  # interrupted before: make geneplexus fetch the species again
                (data_path / bd.data_filenames_file(sp)).unlink(missing_ok=True)
            marker.write_text(f"download of {sp} started; removed when it is verified complete\n", encoding="utf-8")
            expected = len(listed_files(data_path, sp)) or None
            try:
                with _quiet_geneplexus(tqdm(desc=f"{sp} files", unit="file", total=expected, leave=False), sp):
                    gpd.download_select_data(str(data_path), sp, data_loc=DATA_LOC, num_retries=retries)
            except DownloadError as exc:
                absent = bd.data_filenames_missing(data_path, sp)
                names = ", ".join(absent[:5]) + (", ..." if absent[5:] else "")
                unpacked = absent and absent != [bd.data_filenames_file(sp)]
                incomplete = f"; the last try lacked {len(absent)} file(s): {names}" if unpacked else ""
                return _fail(
                    f"cannot download the {sp} GenePlexus data from Zenodo ({_one_line(exc)}){incomplete}; "
                    f"details in {data_path / 'download.log'}; run again to resume"
                )
            absent = bd.data_filenames_missing(data_path, sp)
            if absent:
                print(f"{sp}: INCOMPLETE after download, {len(absent)} missing:", file=sys.stderr)
                for name in absent:
                    print(f"  {name}", file=sys.stderr)
                return EXIT_FAILED
            marker.unlink()
            tqdm.write(f"{sp}: complete ({len(listed_files(data_path, sp))} files) in {data_path}", file=sys.stderr)
    return EXIT_OK


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when `url` answers at all (any HTTP status); else why not, in a few words.

    Runs in a daemon thread with a deadline, so a hanging DNS lookup cannot hold the script.
    """
    import requests

    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with requests.get(url, timeout=(min(10.0, timeout), timeout), stream=True):
                outcome.append(None)
        except requests.RequestException as exc:
            outcome.append(_reason(exc))
        except Exception as exc:  # anything else unexpected: still one line
            outcome.append(_one_line(exc))

    thread = threading.Thread(target=attempt, name="zenodo-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from {url} within {timeout:.0f} s"
    return outcome[0]


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without object reprs."""
    seen: set[int] = set()
    current: BaseException = exc
    via_proxy = False
    while id(current) not in seen:
        seen.add(id(current))
        via_proxy = via_proxy or "ProxyError" in type(current).__name__
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in getattr(current, "args", ()) if isinstance(a, BaseException)), None)
        if inner is None:
            break
        current = inner
    return ("through the proxy: " if via_proxy else "") + _one_line(current)


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*", "", str(exc)).strip()
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _GeneplexusStreamFilter(logging.Filter):
    """On geneplexus's stderr handler: count unpacked files on a bar, show only unexpected warnings."""

    def __init__(self, files_bar: Any, species: str):
        super().__init__()
        self.files_bar = files_bar
        self.folder = f"Downloaded {species}_data"  # the archive's top folder, not a file

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("On attempt "):  # a new try unpacks everything again
            self.files_bar.reset(total=self.files_bar.total)
            return False
        if message.startswith("Downloaded "):
            if message != self.folder:
                self.files_bar.update(1)
            return False
        routine = message.startswith(("Downloading ", "Files already downloaded"))
        return record.levelno >= logging.WARNING and not routine


@contextmanager
def _quiet_geneplexus(files_bar: Any, species: str) -> Iterator[None]:
    """geneplexus logs every step to stderr; keep those lines in download.log only, and count files."""
    logger = logging.getLogger("geneplexus")
    handlers = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    flt = _GeneplexusStreamFilter(files_bar, species)
    for handler in handlers:
        handler.addFilter(flt)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(flt)
        files_bar.close()


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _species(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if values == ["All"]:
        return list(SPECIES)
    wrong = [v for v in values if v not in SPECIES]
    if wrong or not values:
        raise argparse.ArgumentTypeError(
            f"{', '.join(wrong) or 'no species'} not allowed; allowed: {', '.join(SPECIES)} (or All)"
        )
    return list(dict.fromkeys(values))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Download the real GenePlexus backend data into DATA_PATH (restartable), or --check a folder.",
    )
    parser.add_argument(
        "--species", type=_species, default=["Human"], help="comma-separated, from " + ", ".join(SPECIES)
    )
    parser.add_argument("--data-path", type=Path, help="the backend data folder (default: $DATA_PATH)")
    parser.add_argument("--check", action="store_true", help="only verify the folder against data_filenames_*.txt")
    parser.add_argument(
        "--retries", type=int, default=DEFAULT_RETRIES, help=f"download tries per species (default {DEFAULT_RETRIES})"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    raw = args.data_path or os.environ.get("DATA_PATH", "").strip()
    if not raw:
        parser.error("give --data-path DIR or set DATA_PATH")
    if args.retries < 1:
        parser.error("--retries must be at least 1")
    data_path = Path(raw).expanduser()
    if args.check:
        return check(data_path, args.species)
    try:
        status = download(data_path, args.species, args.retries)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run again to resume", file=sys.stderr)
        return 130
    if status == EXIT_OK:
        print(f"complete: {', '.join(args.species)} in {data_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
