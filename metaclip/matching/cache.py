"""One matcher per metadata file per worker process: from memory, else from the disk cache
(one set per metadata file under default_cache_dir(), checked as metaclip.matching.integrity
says), else built from the metadata entries and saved there.

English matchers (`get_matcher`) stay loaded for the life of the process. Worldwide matchers
(`get_worldwide_matcher`, one per language list) are kept in a per-process LRU bounded by their
estimated size, METACLIP_MATCHER_MEMORY_MB (default 1200): a worker curating many languages
evicts the least recently used and reloads it from the disk cache when that language comes
back. The bound counts matchers held by the cache; one a caller still holds stays in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from metaclip.matching.integrity import UnsafeCacheError, _manifest_path, cache_dir_problem
from metaclip.matching.matcher import Matcher
from metaclip.matching.worldwide import FORMAT as WORLDWIDE_ARRAYS_FORMAT
from metaclip.matching.worldwide import WorldwideMatcher

FORMAT_VERSION = "2"  # of the set Matcher.save writes: in its file names
WORLDWIDE_FORMAT_VERSION = f"{FORMAT_VERSION}.{WORLDWIDE_ARRAYS_FORMAT}"
DEFAULT_MATCHER_MEMORY_MB = 1200
MEMORY_ENV = "METACLIP_MATCHER_MEMORY_MB"

logger = logging.getLogger(__name__)

AnyMatcher = TypeVar("AnyMatcher", Matcher, WorldwideMatcher)


class BoundedMatchers:
    """Worldwide matchers by metadata sha256, least recently used first, evicted past a size
    budget (never the one just added, however large)."""

    def __init__(self) -> None:
        self.matchers: OrderedDict[str, WorldwideMatcher] = OrderedDict()
        self.sizes: dict[str, int] = {}

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    def get(self, key: str) -> WorldwideMatcher | None:
        matcher = self.matchers.get(key)
        if matcher is not None:
            self.matchers.move_to_end(key)
        return matcher

    def put(self, key: str, matcher: WorldwideMatcher, budget_bytes: int) -> None:
        self.matchers[key] = matcher
        self.matchers.move_to_end(key)
        self.sizes[key] = matcher.nbytes
        evicted = []
        while self.total_bytes > budget_bytes and len(self.matchers) > 1:
            oldest, _ = self.matchers.popitem(last=False)
            del self.sizes[oldest]
            evicted.append(oldest)
        if evicted:
            logger.info("matchers %s evicted from memory (budget %d MB)", evicted,
                        budget_bytes >> 20)  # fmt: skip
            _return_freed_memory()


def _return_freed_memory() -> None:
    """Ask glibc to give freed heap memory back to the system: the arrays of an evicted matcher
    otherwise often stay in the process's heap. A no-op without glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):  # no C library to open this way (Windows)
        return None


_MATCHERS: dict[str, Matcher] = {}
_WORLDWIDE = BoundedMatchers()
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    env = os.environ.get("METACLIP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "metaclip" / "automata"


def automaton_path(metadata_sha256: str, cache_dir: Path) -> Path:
    lib = importlib.metadata.version("pyahocorasick")
    return cache_dir / f"{metadata_sha256}-f{FORMAT_VERSION}-ac{lib}.matcher"


def worldwide_matcher_path(metadata_sha256: str, cache_dir: Path) -> Path:
    lib = importlib.metadata.version("pyahocorasick")
    return cache_dir / f"{metadata_sha256}-w{WORLDWIDE_FORMAT_VERSION}-ac{lib}.matcher"


def matcher_memory_budget() -> int:
    """Bytes the worldwide matchers of one process may hold (METACLIP_MATCHER_MEMORY_MB)."""
    value = os.environ.get(MEMORY_ENV, "").strip()
    try:
        megabytes = float(value) if value else DEFAULT_MATCHER_MEMORY_MB
    except ValueError:
        logger.warning("%s=%r is not a number: using %d", MEMORY_ENV, value,
                       DEFAULT_MATCHER_MEMORY_MB)  # fmt: skip
        megabytes = DEFAULT_MATCHER_MEMORY_MB
    return int(megabytes * 2**20)


def get_matcher(
    metadata_sha256: str, load_entries: Callable[[], Sequence[str]], cache_dir: Path | None = None
) -> Matcher:
    """The process-wide matcher for a metadata file: memory, else disk cache, else build.

    `load_entries` is called only when the matcher has to be built.
    """
    with _LOCK:
        matcher = _MATCHERS.get(metadata_sha256)
        if matcher is None:
            path = automaton_path(metadata_sha256, cache_dir or default_cache_dir())
            matcher = _load_or_build(path, load_entries, Matcher)
            _MATCHERS[metadata_sha256] = matcher
        return matcher


def get_worldwide_matcher(
    metadata_sha256: str, load_entries: Callable[[], Sequence[str]], cache_dir: Path | None = None
) -> WorldwideMatcher:
    """The MetaCLIP 2 matcher of one language's metadata list: memory (the bounded LRU), else
    disk cache, else build. `load_entries` is called only when it has to be built."""
    with _LOCK:
        matcher = _WORLDWIDE.get(metadata_sha256)
        if matcher is None:
            path = worldwide_matcher_path(metadata_sha256, cache_dir or default_cache_dir())
            matcher = _load_or_build(path, load_entries, WorldwideMatcher)
            _WORLDWIDE.put(metadata_sha256, matcher, matcher_memory_budget())
        return matcher


def _load_or_build(
    path: Path, load_entries: Callable[[], Sequence[str]], kind: type[AnyMatcher]
) -> AnyMatcher:
    unsafe = cache_dir_problem(path.parent)
    if unsafe:
        logger.warning(
            "matcher cache not used (%s): building the matcher in memory, writing nothing there",
            unsafe,
        )
        return kind.build(load_entries())
    if path.exists() or _manifest_path(path).exists():
        try:
            return kind.load(path)
        except UnsafeCacheError as exc:
            logger.warning(
                "matcher cache not used (%s): building the matcher in memory, writing nothing "
                "there", exc,
            )  # fmt: skip
            return kind.build(load_entries())
        except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
            logger.warning("matcher cache %s is damaged (%s): rebuilding it", path, exc)
    matcher = kind.build(load_entries())
    with contextlib.suppress(OSError):  # a read-only cache dir only costs a rebuild next time
        matcher.save(path)
    return matcher
