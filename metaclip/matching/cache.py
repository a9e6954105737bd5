"""One matcher per metadata file per worker process: from memory, else from the disk cache
(one set per metadata file under default_cache_dir(), checked as metaclip.matching.integrity
says), else built from the metadata entries and saved there."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from metaclip.matching.integrity import UnsafeCacheError, _manifest_path, cache_dir_problem
from metaclip.matching.matcher import Matcher

FORMAT_VERSION = "2"  # of the set Matcher.save writes: in its file names

logger = logging.getLogger(__name__)

_MATCHERS: dict[str, Matcher] = {}
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    env = os.environ.get("METACLIP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "metaclip" / "automata"


def automaton_path(metadata_sha256: str, cache_dir: Path) -> Path:
    lib = importlib.metadata.version("pyahocorasick")
    return cache_dir / f"{metadata_sha256}-f{FORMAT_VERSION}-ac{lib}.matcher"


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
            matcher = _load_or_build(path, load_entries)
            _MATCHERS[metadata_sha256] = matcher
        return matcher


def _load_or_build(path: Path, load_entries: Callable[[], Sequence[str]]) -> Matcher:
    unsafe = cache_dir_problem(path.parent)
    if unsafe:
        logger.warning(
            "matcher cache not used (%s): building the matcher in memory, writing nothing there",
            unsafe,
        )
        return Matcher.build(load_entries())
    if path.exists() or _manifest_path(path).exists():
        try:
            return Matcher.load(path)
        except UnsafeCacheError as exc:
            logger.warning(
                "matcher cache not used (%s): building the matcher in memory, writing nothing "
                "there", exc,
            )  # fmt: skip
            return Matcher.build(load_entries())
        except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
            logger.warning("matcher cache %s is damaged (%s): rebuilding it", path, exc)
    matcher = Matcher.build(load_entries())
    with contextlib.suppress(OSError):  # a read-only cache dir only costs a rebuild next time
        matcher.save(path)
    return matcher

