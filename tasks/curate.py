"""Prefect tasks of the curation flow: each wraps one function of metaclip.curation."""

from __future__ import annotations

from typing import Any

from prefect import task

from metaclip import curation
from metaclip.counts import SparseCounts, entry_counts_table
from metaclip.metadata import load_metadata
from metaclip.storage import write_parquet_atomic
from tasks.caching import cache_on
from tasks.retry import IO_TASK_OPTIONS


@task(
    name="extract-and-match",
    cache_key_fn=cache_on(
        files=("files", "metadata_uri"),
        params=("batch_id", "output", "metadata_sha256", "fmt"),
    ),
    **IO_TASK_OPTIONS,
)
def extract_and_match(
    files: list[str],
    batch_id: str,
    output: str,
    metadata_uri: str,
    metadata_sha256: str,
    fmt: str = "wat",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return curation.process_batch(
        files, batch_id, output, metadata_uri, metadata_sha256, fmt, storage_options
    )


@task(
    name="reduce-counts",
    cache_key_fn=cache_on(files=("uris",), params=("out_uri",)),
    **IO_TASK_OPTIONS,
)
def reduce_counts(
    uris: list[str], out_uri: str, storage_options: dict[str, Any] | None = None
) -> str:
    return curation.reduce_counts(uris, out_uri, **(storage_options or {}))


@task(
    name="write-entry-counts",
    cache_key_fn=cache_on(files=("total_uri", "metadata_uri"), params=("out_uri",)),
    **IO_TASK_OPTIONS,
)
def write_entry_counts(
    total_uri: str,
    metadata_uri: str,
    out_uri: str,
    storage_options: dict[str, Any] | None = None,
) -> str:
    opts = storage_options or {}
    metadata = load_metadata(metadata_uri, **opts)
    dense = SparseCounts.load(total_uri, **opts).to_dense(len(metadata))
    table = entry_counts_table(dense, metadata.entries, metadata.sha256, metadata.uri)
    write_parquet_atomic(out_uri, table, **opts)
    return out_uri


@task(
    name="balance",
    cache_key_fn=cache_on(
        files=("matched_uri", "counts_uri"), params=("curated_uri", "t", "seed")
    ),
    **IO_TASK_OPTIONS,
)
def balance(
    matched_uri: str,
    curated_uri: str,
    counts_uri: str,
    t: float,
    seed: int,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return curation.balance_part(matched_uri, curated_uri, counts_uri, t, seed, storage_options)
