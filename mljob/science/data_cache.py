"""The warm data cache: GenePlexus backend files loaded once per job process and reused across jobs.

GenePlexus 3.0.1 keeps nothing between calls: one job reads ~21 distinct backend files ~32 times
(NodeOrder 4x, Entrez-to-Symbol 3x, the 50 MB PreTrainedWeights JSON once per job, ...). While a
job runs inside `with cache.active(budget_mb):`, the functions GenePlexus reads files with are
replaced at run time (GenePlexus is imported, never patched on disk or vendored):

- `geneplexus.util._load_json_file` (every JSON map: ID conversions, GSC, BioMart, PreTrainedWeights),
- `geneplexus.util._load_np_file` (NodeOrder text files and Data .npy embeddings),
- `pandas.read_csv` as seen by `geneplexus._geneplexus` only (the Edgelist .edg files).

Entries are keyed by (path, size, mtime_ns, how it was read), so a changed file is read again; the
whole cache is bounded by a memory budget (DATA_CACHE_MB) with least-recently-used eviction by
estimated size. GenePlexus may change what a loader returns, so a job never gets a cached object it
could change: numpy arrays are handed out as read-only views (a write raises), DataFrames as copies,
JSON data as fresh dicts and lists (flat lists are stored as tuples, so copying them is C-speed),
and PreTrainedWeights, which GenePlexus only reads, as one shared map that is read-only all the way
down (read-only views of dicts, Weights rows of a read-only float matrix): no copy per job.
`shared_json` hands the cached JSON data itself, uncopied, to code that only reads it (mljob.science.fast_path).

Thread safety: one lock guards the table, and a key being loaded has an event, so when two threads
ask for the same file at once it is read once. The patches are reference-counted: they are in place
while at least one job is inside `active()`, and geneplexus is pristine again after the last one.

Only geneplexus 3.0.1 is supported (its loaders are what is intercepted): any other version turns
the cache off with one warning. `import mljob.science.data_cache` imports neither numpy nor geneplexus.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mljob.science.patching import SharedPatch, VersionPin

log = logging.getLogger(__name__)

_WEIGHTS_PREFIX = "PreTrainedWeights__"
_SCALARS = frozenset({str, int, float, bool, type(None)})


@dataclass
class Stats:
    """Counters since the process started (or since clear())."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    uncacheable: int = 0


class DataCache:
    """A thread-safe LRU table of loaded objects, bounded by the sum of their estimated sizes."""

    def __init__(self, budget_bytes: int = 0) -> None:
        self.budget_bytes = budget_bytes
        self.stats = Stats()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._by_path: dict[str, set[Hashable]] = {}
        self._loading: dict[Hashable, threading.Event] = {}

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_path.clear()
            self.stats = Stats()

    def get(self, path: str, how: Hashable, load: Callable[[], Any], freeze: Callable[[Any], tuple[Any, int]]) -> Any:
        """The frozen object stored for (path as it is now, how), loading and freezing it once if needed.

        `load()` reads the file; `freeze(obj)` returns (the object to store, its estimated size).
        Raises whatever `load` raises (nothing is stored then).
        """
        try:
            st = os.stat(path)
        except OSError:
            return None  # the caller falls back to GenePlexus's own loader, which raises its own error
        key = (path, st.st_size, st.st_mtime_ns, how)
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.stats.hits += 1
                    return self._entries[key][0]
                event = self._loading.get(key)
                if event is None:
                    event = self._loading[key] = threading.Event()
                    break
            event.wait()  # another thread is loading this key; then look again
        try:
            value, size = freeze(load())
            with self._lock:
                self.stats.misses += 1
                self._store(path, key, value, size)
            return value
        finally:
            with self._lock:
                del self._loading[key]
            event.set()

    def _store(self, path: str, key: Hashable, value: Any, size: int) -> None:
        # an older version of the same file (other size or mtime) is stale: drop it
        for old in list(self._by_path.get(path, ())):
            if old[1:3] != key[1:3]:  # type: ignore[index]
                self._drop(old)
        if size > self.budget_bytes:
            self.stats.uncacheable += 1
            return
        self._entries[key] = (value, size)
        self._by_path.setdefault(path, set()).add(key)
        total = sum(s for _, s in self._entries.values())
        while total > self.budget_bytes and self._entries:
            oldest = next(iter(self._entries))
            total -= self._entries[oldest][1]
            self._drop(oldest)
            self.stats.evictions += 1

    def _drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)
        keys = self._by_path.get(key[0])  # type: ignore[index]
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_path[key[0]]  # type: ignore[index]


# The one cache of this process, shared by every job (thread) in it.
CACHE = DataCache()

supported = VersionPin("data cache", log)


@contextmanager
def active(budget_mb: int) -> Iterator[bool]:
    """Serve GenePlexus's backend-file reads from the process's cache while the block runs.

    `budget_mb`: the memory budget (the DATA_CACHE_MB setting); 0 turns the cache off (the block then
    runs GenePlexus untouched and anything cached is released). Yields whether it is on.
    """
    if budget_mb <= 0 or not supported():
        if budget_mb <= 0:
            CACHE.clear()
        yield False
        return
    CACHE.budget_bytes = budget_mb * 1024 * 1024
    with _PATCH.held():
        yield True


def preload(data_path: str | os.PathLike, names: list[str], budget_mb: int) -> tuple[int, int]:
    """Read backend files into the cache as GenePlexus 3.0.1 reads them (so a job finds them there);
    returns (files loaded, bytes held by the cache). Names that are not backend files are skipped."""
    from geneplexus import _geneplexus, util

    loc = os.fspath(data_path)
    count = 0
    with active(budget_mb) as on:
        if not on:
            return 0, 0
        for name in names:
            if name.endswith(".json"):
                util._load_json_file(loc, name)
            elif name.startswith("NodeOrder__") and name.endswith(".txt"):
                util._load_np_file(loc, name, "txt")
            elif name.endswith(".npy"):
                util._load_np_file(loc, name, "npy")
            elif name.startswith("Edgelist__") and name.endswith(".edg"):  # as _geneplexus.py reads it (l. 121-124)
                columns = ["Node1", "Node2"] if name.endswith("__BioGRID.edg") else ["Node1", "Node2", "Weight"]
                _geneplexus.pd.read_csv(os.path.join(loc, name), sep="\t", header=None, names=columns)
            else:
                continue
            count += 1
    return count, CACHE.used_bytes


def shared_json(file_loc: str, file_name: str) -> Any:
    """A backend JSON file for a reader that changes nothing in it (mljob.science.fast_path's replacements).

    While the cache is on: the cached data itself, shared by every job and not copied (lists of scalars are
    tuples, PreTrainedWeights a read-only map), which saves a job the copies and the garbage collections
    they cause. Otherwise: what geneplexus.util._load_json_file reads.
    """
    from geneplexus import util

    with _PATCH.lock:
        original = _originals.get("json")
    if original is None:
        return util._load_json_file(file_loc, file_name)
    weights = file_name.startswith(_WEIGHTS_PREFIX)
    path = os.path.join(file_loc, file_name)
    frozen = CACHE.get(
        path,
        "weights" if weights else "json",
        lambda: original(file_loc, file_name),
        _freeze_weights if weights else _freeze_json,
    )
    return original(file_loc, file_name) if frozen is None else frozen


def _install() -> None:
    from geneplexus import _geneplexus, util

    _originals["json"] = util._load_json_file
    _originals["np"] = util._load_np_file
    _originals["pd"] = _geneplexus.pd
    util._load_json_file = _cached_json
    util._load_np_file = _cached_np
    _geneplexus.pd = _PandasForGenePlexus(_geneplexus.pd)


def _uninstall() -> None:
    from geneplexus import _geneplexus, util

    util._load_json_file = _originals.pop("json")
    util._load_np_file = _originals.pop("np")
    _geneplexus.pd = _originals.pop("pd")


_originals: dict[str, Any] = {}  # GenePlexus's own loaders, while the cache's are in place
_PATCH = SharedPatch(_install, _uninstall)


# --- the replacement loaders --------------------------------------------------------------------


def _cached_json(file_loc: str, file_name: str) -> Any:
    original = _originals["json"]
    path = os.path.join(file_loc, file_name)
    loaded: list[Any] = []

    def load() -> Any:
        loaded.append(original(file_loc, file_name))
        return loaded[0]

    weights = file_name.startswith(_WEIGHTS_PREFIX)
    frozen = CACHE.get(path, "weights" if weights else "json", load, _freeze_weights if weights else _freeze_json)
    if frozen is None:
        return original(file_loc, file_name)
    if type(frozen) is MappingProxyType:  # read-only all the way down: shared, not copied
        return frozen
    if loaded:  # this call read the file: the job gets what json.load made, the cache keeps its frozen copy
        return loaded[0]  # (they share only immutable str/float/int objects), which saves a copy
    return _thaw_json(frozen)


def _cached_np(file_loc: str, file_name: str, load_method: str) -> Any:
    original = _originals["np"]
    path = os.path.join(file_loc, file_name)
    frozen = CACHE.get(path, ("np", load_method), lambda: original(file_loc, file_name, load_method), _freeze_array)
    if frozen is None:
        return original(file_loc, file_name, load_method)
    view = frozen.view()
    view.setflags(write=False)
    return view


class _PandasForGenePlexus:
    """pandas, as geneplexus._geneplexus sees it while the cache is on: read_csv of a file is cached."""

    def __init__(self, pandas: Any) -> None:
        self._pandas = pandas

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pandas, name)

    def read_csv(self, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        read = self._pandas.read_csv
        try:
            how = ("csv", tuple(args), tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))
            hash(how)
        except TypeError:
            how = None
        if how is None or not isinstance(filepath, str | os.PathLike):
            return read(filepath, *args, **kwargs)
        path = os.fspath(filepath)
        frozen = CACHE.get(path, how, lambda: read(path, *args, **kwargs), _freeze_frame)
        if frozen is None:
            return read(filepath, *args, **kwargs)
        return frozen.copy(deep=True)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --- freezing (once, when stored) and thawing (each time handed out) ----------------------------


def _freeze_array(array: Any) -> tuple[Any, int]:
    """The array over a read-only buffer: neither it nor any view of it can be made writeable."""
    import numpy as np

    if array.dtype.hasobject:  # pragma: no cover - GenePlexus never loads object arrays
        array.setflags(write=False)
        return array, array.nbytes + sum(map(sys.getsizeof, array.ravel().tolist())) + 128
    array = np.ascontiguousarray(array)  # np.load and np.loadtxt give contiguous arrays: no copy
    # a read-only memoryview of the same memory (no copy): numpy cannot make an array over it writeable
    buffer = memoryview(array.reshape(-1).view(np.uint8)).toreadonly()
    frozen = np.frombuffer(buffer, dtype=array.dtype).reshape(array.shape)
    return frozen, frozen.nbytes + 128


def _freeze_frame(frame: Any) -> tuple[Any, int]:
    return frame, int(frame.memory_usage(index=True, deep=True).sum()) + 256


def _freeze_json(obj: Any) -> tuple[Any, int]:
    """JSON data with every list of scalars made a tuple (so a thaw copies it in C), and its estimated size.

    The size is estimated from types and string lengths, not measured object by object (that would
    cost as much as the load): 8 bytes a reference, ~32 a number, 49 + length a string.
    """
    kind = type(obj)
    if kind is dict:
        out = {}
        size = sys.getsizeof(obj)
        for k, v in obj.items():
            t = type(v)
            if t is dict or t is list:
                out[k], s = _freeze_json(v)
            else:
                out[k], s = v, _scalar_size(v)
            size += s + 49 + len(k)
        return out, size
    if kind is list:
        types = set(map(type, obj))
        if types <= _SCALARS:
            size = 56 + 8 * len(obj)
            if types == {str}:
                size += 49 * len(obj) + sum(map(len, obj))
            else:
                size += sum(map(_scalar_size, obj)) if str in types else 32 * len(obj)
            return tuple(obj), size
        items = [_freeze_json(v) for v in obj]
        return [v for v, _ in items], 56 + 8 * len(obj) + sum(s for _, s in items)
    return obj, _scalar_size(obj)


def _freeze_weights(obj: Any) -> tuple[Any, int]:
    """A PreTrainedWeights map made read-only all the way down, to be shared by every job as it is.

    GenePlexus 3.0.1 only reads it (`_make_sim_dfs`: each term's Weights and Name), then drops it.
    Every term's Weights becomes a row of one float matrix over a read-only buffer (37 MB for 9,000
    terms x 512, against ~150 MB as Python floats), every map a read-only view, every list a tuple;
    the values are the very floats json.load read. A file of any other shape is frozen as plain JSON.
    """
    import numpy as np

    try:
        terms = list(obj.items())
        matrix = np.array([entry["Weights"] for _, entry in terms])
        if matrix.dtype != np.float64 or matrix.ndim != 2:
            raise ValueError("Weights are not lists of floats of one length")
        rows, size = _freeze_array(matrix)
        shared = {}
        for (term, entry), row in zip(terms, rows, strict=True):
            rest, rest_size = _freeze_json({k: v for k, v in entry.items() if k != "Weights"})
            if any(type(v) in (dict, list) for v in rest.values()):
                raise ValueError("a term holds nested data")
            shared[term] = MappingProxyType({**rest, "Weights": row})
            size += rest_size + 49 + len(term)
    except (AttributeError, KeyError, TypeError, ValueError):
        return _freeze_json(obj)
    return MappingProxyType(shared), size + sys.getsizeof(shared)


def _scalar_size(value: Any) -> int:
    return 49 + len(value) if type(value) is str else 32


def _thaw_json(obj: Any) -> Any:
    """A fresh copy of frozen JSON data, as json.load made it (dicts and lists; scalars are immutable).

    Leaves are handled inline (one Python call per dict, not per value): this runs for every job.
    """
    kind = type(obj)
    if kind is dict:
        out = {}
        for k, v in obj.items():
            t = type(v)
            if t is tuple:
                out[k] = list(v)
            elif t is dict or t is list:
                out[k] = _thaw_json(v)
            else:
                out[k] = v
        return out
    if kind is tuple:
        return list(obj)
    if kind is list:
        return [_thaw_json(v) for v in obj]
    return obj
