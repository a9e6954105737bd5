"""CommonCrawl crawls for the monthly service: which dump to curate, where, and who holds it.

Layout under an output root (one curation per crawl):

  <output_root>/<crawl_id>/summary.json            present once that crawl is curated ("done")
  <output_root>/<crawl_id>/_curation.lock.json     the guard: owner flow-run id, host, time

Crawl inputs follow CommonCrawl's own layout under a data root (the bucket, s3://commoncrawl):

  <data_root>/crawl-data/<crawl_id>/wat.paths.gz   gzipped list of WAT paths relative to data_root

No Prefect here: the monthly flow (flows/monthly.py) calls these functions.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from metaclip import storage
from metaclip.errors import UserError
from metaclip.paths import OutputLayout

COLLINFO_URI = "https://index.commoncrawl.org/collinfo.json"
DATA_ROOT = "s3://commoncrawl"
LOCK_NAME = "_curation.lock.json"
# A curation of a whole crawl takes hours, not weeks: an older lock is a leftover of a crash.
LOCK_TTL_S = 7 * 24 * 3600
_CRAWL_ID = re.compile(r"^CC-MAIN-(\d{4})-(\d{2})$")


# --- the crawl list ------------------------------------------------------------------------


def parse_collinfo(data: bytes | str) -> list[str]:
    """Crawl ids (CC-MAIN-YYYY-WW) of a collinfo.json document, newest first."""
    try:
        entries = json.loads(data)
    except ValueError as exc:
        raise UserError(f"collinfo.json is not JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise UserError("collinfo.json should be a JSON list of crawls")
    ids = {e["id"] for e in entries if isinstance(e, dict) and _CRAWL_ID.match(str(e.get("id")))}
    return sorted(ids, key=crawl_sort_key, reverse=True)


def crawl_sort_key(crawl_id: str) -> tuple[int, int]:
    """(year, week): ids sort by when the crawl ran, whatever order the list is in."""
    match = _CRAWL_ID.match(crawl_id)
    if match is None:
        raise ValueError(f"not a CC-MAIN crawl id: {crawl_id!r}")
    return int(match.group(1)), int(match.group(2))


def read_collinfo(uri: str = COLLINFO_URI, **storage_options: Any) -> list[str]:
    """Read and parse collinfo.json from a local path or any fsspec URI (https included)."""
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError as exc:
        raise UserError(f"crawl list not found: {uri}") from exc
    return parse_collinfo(data)


def choose_crawl(
    crawl_ids: Sequence[str], is_done: Callable[[str], bool], lookback: int = 1
) -> list[str]:
    """Candidates, newest first: crawls among the `lookback` newest that are not done yet.

    `lookback` bounds the catch-up (a missed month is curated next time) so that a new output
    root does not start backfilling every crawl since 2013.
    """
    newest = sorted(crawl_ids, key=crawl_sort_key, reverse=True)[: max(lookback, 0)]
    return [c for c in newest if not is_done(c)]


# --- per-crawl locations -------------------------------------------------------------------


def crawl_output(output_root: str, crawl_id: str) -> str:
    return storage.join(output_root, crawl_id)


def summary_uri(output_root: str, crawl_id: str) -> str:
    return OutputLayout(crawl_output(output_root, crawl_id)).summary


def is_done(output_root: str, crawl_id: str, **storage_options: Any) -> bool:
    """A crawl is done when its curation wrote summary.json (the flow's last write)."""
    return storage.exists(summary_uri(output_root, crawl_id), **storage_options)


def wat_paths_uri(data_root: str, crawl_id: str) -> str:
    return storage.join(data_root, "crawl-data", crawl_id, "wat.paths.gz")


def parse_wat_paths(data: bytes, data_root: str, limit: int | None = None) -> list[str]:
    """WAT URIs from a wat.paths.gz blob (gzipped, one path per line, relative to data_root)."""
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    paths = [line.strip() for line in lines if line.strip()]
    return [storage.join(data_root, p) for p in paths[:limit]]


def wat_inputs(
    data_root: str, crawl_id: str, limit: int | None = None, **storage_options: Any
) -> list[str]:
    uri = wat_paths_uri(data_root, crawl_id)
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError as exc:
        raise UserError(f"no WAT list for {crawl_id}: {uri}") from exc
    return parse_wat_paths(data, data_root, limit)


# --- the guard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    owner: str  # the flow run holding it
    acquired_at: float  # seconds since the epoch
    host: str = ""

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Lock:
        raw = json.loads(data)
        return cls(str(raw["owner"]), float(raw["acquired_at"]), str(raw.get("host", "")))


def lock_uri(output_root: str, crawl_id: str) -> str:
    return storage.join(crawl_output(output_root, crawl_id), LOCK_NAME)


def is_stale(lock: Lock, now: float, ttl_s: float = LOCK_TTL_S, owner_ended: bool = False) -> bool:
    """A lock stops counting when its owner has ended (crashed, cancelled) or it is too old."""
    return owner_ended or now - lock.acquired_at > ttl_s


def read_lock(uri: str, **storage_options: Any) -> Lock | None:
    """The lock at uri; None when there is none. An unreadable lock is treated as stale (0)."""
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        return None
    try:
        return Lock.from_bytes(data)
    except (ValueError, KeyError, TypeError):
        return Lock(owner="<unreadable>", acquired_at=0.0)


def _create_exclusive(uri: str, data: bytes, **storage_options: Any) -> bool:
    """Write uri only if it does not exist, atomically; False if it already did."""
    fs, path = storage.filesystem(uri, **storage_options)
    if storage.is_local(uri):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # link(2) fails if path exists: create-if-absent, whole file
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    try:
        fs.pipe_file(path, data, mode="create")  # S3: a conditional PUT (If-None-Match: *)
    except (FileExistsError, OSError) as exc:
        if isinstance(exc, FileExistsError) or "PreconditionFailed" in repr(exc):
            return False
        raise
    return True


def try_acquire(
    uri: str,
    owner: str,
    now: float | None = None,
    ttl_s: float = LOCK_TTL_S,
    owner_ended: Callable[[str], bool] = lambda _owner: False,
    **storage_options: Any,
) -> tuple[bool, Lock | None]:
    """Take the lock at uri for `owner`: (True, ours) or (False, the holder's).

    A stale lock (see is_stale) is removed and taken over; a fresh one held by someone else
    is refused. Re-acquiring one's own lock succeeds (a retried flow run keeps its guard).
    """
    now = time.time() if now is None else now
    mine = Lock(owner=owner, acquired_at=now, host=socket.gethostname())
    for _ in range(2):  # at most one takeover of a stale lock
        if _create_exclusive(uri, mine.to_bytes(), **storage_options):
            return True, mine
        held = read_lock(uri, **storage_options)
        if held is None:
            continue  # released in between: try again
        if held.owner == owner:
            return True, held
        if not is_stale(held, now, ttl_s, owner_ended(held.owner)):
            return False, held
        _remove_if_unchanged(uri, held, **storage_options)
    return False, read_lock(uri, **storage_options)


def release(uri: str, owner: str, **storage_options: Any) -> bool:
    """Remove the lock if `owner` holds it (never someone else's)."""
    with _guard(uri, **storage_options):
        held = read_lock(uri, **storage_options)
        if held is None or held.owner != owner:
            return False
        _remove(uri, **storage_options)
        return True


def _remove_if_unchanged(uri: str, stale: Lock, **storage_options: Any) -> None:
    """Remove a stale lock, but not a fresh one another taker wrote since it was read.

    Locally, removals (takeovers and releases) are serialised by an flock on a guard file, so
    the lock read under the guard is the one removed; creation needs no guard, as it is
    exclusive. On S3 a narrow race is left; the deployment's concurrency limit covers it.
    """
    with _guard(uri, **storage_options):
        if read_lock(uri, **storage_options) == stale:
            _remove(uri, **storage_options)


@contextlib.contextmanager
def _guard(uri: str, **storage_options: Any) -> Iterator[None]:
    if not storage.is_local(uri):
        yield
        return
    _, path = storage.filesystem(uri, **storage_options)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(f"{path}.guard", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove(uri: str, **storage_options: Any) -> None:
    fs, path = storage.filesystem(uri, **storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)
