"""CommonCrawl crawls for the monthly service: which dump to curate, where, and who holds it.

Layout under an output root (one curation per crawl):

  <output_root>/<crawl_id>/summary.json            present once that crawl is curated ("done")
  <output_root>/<crawl_id>/_lock.json              the output's lease (metaclip.io.lease)

Crawl inputs follow CommonCrawl's own layout under a data root (the bucket, s3://commoncrawl):

  <data_root>/crawl-data/<crawl_id>/wat.paths.gz   gzipped list of WAT paths relative to data_root

No Prefect here: the monthly flow (flows/monthly.py) calls these functions.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import OutputLayout

COLLINFO_URI = "https://index.commoncrawl.org/collinfo.json"
DATA_ROOT = "s3://commoncrawl"
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


def lock_uri(output_root: str, crawl_id: str) -> str:
    """The lease of a crawl's output (taken by its curation)."""
    return OutputLayout(crawl_output(output_root, crawl_id)).lock


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
