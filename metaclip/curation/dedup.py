"""Stage 2, one uuid bucket: read its rows from every committed batch (checked against the
manifests), deduplicate, drop images curated from earlier dumps, count entries. A bucket of
more than max_bucket_rows() pairs is done as sub-buckets, so memory does not grow with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metaclip.config import Stores
from metaclip.curation import partition
from metaclip.curation.counts import SparseCounts
from metaclip.curation.settings import RunSettings
from metaclip.io import storage
from metaclip.io.paths import OutputLayout, StoreLayout
from metaclip.io.results import peak_rss_mb, read_json, written
from metaclip.io.schemas import MATCHED, matched_schema

DEFAULT_MAX_BUCKET_ROWS = 1_000_000  # about 0.8 GB in a bucket task (bench/bench_scale.py)

INDEX = pa.schema(
    [("bucket", pa.int32()), ("batch_id", pa.string()), ("rows", pa.int64()),
     ("sha256", pa.string())]
)


def build_bucket_index(
    settings: RunSettings, stores: Stores, manifest_uris: Sequence[str], out_uri: str
) -> dict[str, Any]:
    """One table of every committed part (bucket, batch, rows, sha256), sorted by bucket, so a
    bucket task reads only its own slice instead of every manifest. `out_uri` names the set of
    batches (OutputLayout.bucket_index of their digest), so it keys the index's result."""
    storage_options = stores.output
    columns: dict[str, list[Any]] = {name: [] for name in INDEX.names}
    for uri in manifest_uris:
        manifest = read_json(uri, **storage_options)
        n = len(manifest["buckets"])
        columns["bucket"].extend(manifest["buckets"])
        columns["batch_id"].extend([manifest["batch_id"]] * n)
        columns["rows"].extend(manifest["rows"])
        columns["sha256"].extend(manifest["sha256"])
    table = pa.table(columns, schema=INDEX).sort_by([("bucket", "ascending")])
    storage.write_parquet_atomic(out_uri, table, **storage_options)
    return {"uri": out_uri, "outputs": written([out_uri], **storage_options)}


def read_bucket_inputs(
    layout: OutputLayout,
    bucket: int,
    index_uri: str,
    sub: tuple[int, int] | None = None,
    schema: pa.Schema = MATCHED,
    **storage_options: Any,
) -> pa.Table:
    """The bucket's rows (with sub=(i, k): those of its sub-bucket i of k), each part checked
    against its manifest's sha256; an empty bucket has the recipe's `schema`.

    A missing or corrupt part un-commits its batch (its manifest is removed) and raises, so
    that the batch is recomputed.
    """
    mine = _bucket_parts(index_uri, bucket, **storage_options)
    tables = []
    for batch_id, sha in zip(mine["batch_id"].to_pylist(), mine["sha256"].to_pylist(),
                             strict=True):
        uri = layout.matched_part(bucket, batch_id)
        try:
            data = storage.read_bytes(uri, **storage_options)
        except FileNotFoundError:
            data = b""
        if partition.sha256_hex(data) != sha:
            storage.remove(layout.manifest(batch_id), **storage_options)
            storage.remove(uri, **storage_options)
            raise partition.CorruptIntermediateError(uri)
        table = pq.read_table(pa.BufferReader(data))
        if sub is not None:
            table = table.filter(pa.array(sub_bucket_of(table["uuid"], sub[1]) == sub[0]))
        tables.append(table)
    return partition.concat(tables, schema)


def _bucket_parts(index_uri: str, bucket: int, **storage_options: Any) -> pa.Table:
    index = storage.read_parquet(index_uri, **storage_options)
    return index.filter(pc.equal(index["bucket"], bucket))


def max_bucket_rows() -> int:
    """Pairs a bucket task holds at once (about 0.8 KB each, bench/bench_scale.py): a bucket
    with more is processed as sub-buckets, so a worker's memory does not grow with it."""
    return int(os.environ.get("METACLIP_MAX_BUCKET_ROWS", DEFAULT_MAX_BUCKET_ROWS))


def sub_bucket_of(uuids: pa.Array | pa.ChunkedArray, n_subs: int) -> np.ndarray:
    """Sub-bucket of each uuid: from other uuid digits than its bucket, so all the texts of an
    image share one sub-bucket and the split is even."""
    return partition.bucket_of(uuids, n_subs, digits_from=8)


def read_seen_uuids(
    store: str | None, bucket: int, tag: str, **storage_options: Any
) -> pa.Array | None:
    """Uuids curated by other runs (earlier dumps) in this bucket of the exclusion store."""
    if not store:
        return None
    layout = StoreLayout(store)
    tables = [
        storage.read_parquet(uri, columns=["uuid"], **storage_options)
        for uri in storage.list_files(layout.bucket_dir(bucket), **storage_options)
        if uri.endswith(".parquet") and uri != layout.part(bucket, tag)
    ]
    if not tables:
        return None
    return pa.concat_tables(tables)["uuid"].combine_chunks().unique()


# The settings that change a bucket's output (its cache key, with its index's identity; the
# recipe: an empty bucket's schema); the index's output is named by the batches' digest, so no
# setting changes it.
KEYED_BY = ("output", "recipe", "exclude_store", "store_tag")
INDEX_KEYED_BY: tuple[str, ...] = ()


def process_bucket(
    settings: RunSettings, stores: Stores, bucket: int, index_uri: str
) -> dict[str, Any]:
    """Deduplicate one bucket across all batches, drop earlier dumps' images, count entries.

    A bucket of more than max_bucket_rows() pairs is done as sub-buckets by uuid, one at a
    time, each written to its own dedup part (every part is then read once per sub-bucket).
    """
    opts = stores.output
    layout = OutputLayout(settings.output)
    started = time.perf_counter()
    rows = sum(_bucket_parts(index_uri, bucket, **opts)["rows"].to_pylist())
    n_subs = max(1, -(-rows // max_bucket_rows()))
    subs: list[int | None] = [None] if n_subs == 1 else list(range(n_subs))
    seen = read_seen_uuids(
        settings.exclude_store, bucket, settings.store_tag, **stores.exclude_store
    )
    totals = {"pairs_in": 0, "pairs_unique": 0, "duplicates": 0, "excluded_seen": 0, "images": 0}
    counts = []
    for sub in subs:
        part = read_bucket_inputs(
            layout, bucket, index_uri, None if sub is None else (sub, n_subs),
            matched_schema(settings.worldwide), **opts,
        )  # fmt: skip
        totals["pairs_in"] += part.num_rows
        unique, duplicates = partition.dedup_pairs(part)
        del part  # the bucket's input is the largest thing a worker holds: free it first
        unique, excluded = partition.exclude_uuids(unique, seen)
        storage.write_parquet_atomic(layout.dedup_part(bucket, sub), unique, **opts)
        counts.append(SparseCounts.from_entry_ids(unique["entry_ids"]))
        totals["pairs_unique"] += unique.num_rows
        totals["duplicates"] += duplicates
        totals["excluded_seen"] += excluded
        totals["images"] += len(pc.unique(unique["uuid"])) if unique.num_rows else 0
    SparseCounts.sum(counts).save(layout.bucket_counts(bucket), **opts)
    dedup_uris = [layout.dedup_part(bucket, sub) for sub in subs]
    return {
        "bucket": bucket,
        "dedup_uris": dedup_uris,
        "counts_uri": layout.bucket_counts(bucket),
        **totals,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
        "outputs": written([*dedup_uris, layout.bucket_counts(bucket)], **opts),
    }


def dedup_parts(run_record: dict[str, Any], bucket: int) -> list[str]:
    """A finished run's dedup parts of a bucket (one, or one per sub-bucket)."""
    recorded = (run_record.get("dedup_uris") or {}).get(str(bucket))
    return list(recorded) if recorded else [OutputLayout(run_record["output"]).dedup_part(bucket)]
