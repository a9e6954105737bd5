"""The matched pool for online balancing: every pair a curation draws its balanced set from,
kept or not, with the global entry counts, so that a training loader can draw a new balanced
sample every epoch (metaclip.online) with no pass over the crawl.

A pool part is a deduplicated bucket's candidates (one text per image, chosen with the run's
seed, as sample.sample_bucket chooses them) as curated rows plus each pair's key: the curated
set of the run is exactly the pool's rows that the curation's own draw keeps. pool/pool.json
names every part (rows, sha256) and the counts it was made with; pool/entry_counts.parquet is
a byte copy of the run's, so the pool folder can be copied on its own to where training runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from metaclip.config import Stores
from metaclip.curation import sample
from metaclip.curation.settings import RunSettings
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import write_json, written
from metaclip.io.schemas import pool_from_matched
from metaclip.online.decide import pair_keys
from metaclip.online.pool import pool_manifest

# The settings that change a bucket's pool part (its cache key, with its inputs' identities).
KEYED_BY = ("output", "recipe", "seed", "one_text_per_image")


def pool_bucket(
    settings: RunSettings, stores: Stores, bucket: int, dedup_uris: Sequence[str] | None = None
) -> dict[str, Any]:
    """One deduplicated bucket's candidates as pool parts (one per sub-bucket, as curated/)."""
    s, opts = settings, stores.output
    layout = OutputLayout(s.output)
    dedup_uris = list(dedup_uris or [layout.dedup_part(bucket)])
    subs: list[int | None] = [None] if len(dedup_uris) == 1 else list(range(len(dedup_uris)))
    parts = []
    for sub, uri in zip(subs, dedup_uris, strict=True):
        table = sample.candidates(storage.read_parquet(uri, **opts), s.seed, s.one_text_per_image)
        keys = pair_keys(table["uuid"].to_pylist(), table["text"].to_pylist())
        rows = pool_from_matched(table, pa.array(keys, pa.uint64()), s.worldwide)
        out = layout.pool_part(bucket, sub)
        parts.append({"uri": out, "rows": rows.num_rows,
                      "sha256": storage.write_parquet_atomic(out, rows, **opts)})  # fmt: skip
    return {"bucket": bucket, "parts": parts, "outputs": written([p["uri"] for p in parts], **opts)}


def finish_pool(
    settings: RunSettings, counts_uri: str, pooled: Sequence[dict[str, Any]], **storage_options: Any
) -> dict[str, Any]:
    """Copy the counts beside the parts, remove parts no bucket wrote (an earlier run's), and
    write pool.json last: a pool with a manifest is whole."""
    layout = OutputLayout(settings.output)
    storage.remove(layout.pool_manifest, **storage_options)
    counts = storage.read_bytes(counts_uri, **storage_options)
    storage.write_bytes_atomic(layout.pool_counts, counts, **storage_options)
    parts = [p for result in pooled for p in result["parts"]]
    keep = {p["uri"] for p in parts}
    for uri in storage.list_files(layout.pool_dir, **storage_options):
        if uri.endswith(".parquet") and uri not in keep and uri != layout.pool_counts:
            storage.remove(uri, **storage_options)
    manifest = pool_manifest(
        settings.recipe, settings.t, settings.seed, settings.one_text_per_image, counts, parts
    )
    write_json(layout.pool_manifest, manifest, **storage_options)
    return manifest
