"""Prefect tasks of the curation flow: each wraps one function of metaclip.curation."""

from __future__ import annotations

from typing import Any

from metaclip_prefect.tasks.caching import cache_on
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS
from prefect import task

from metaclip import curation


@task(
    name="extract-and-match",
    cache_key_fn=cache_on(
        files=("files", "metadata_uri"),
        params=("batch_id", "output", "metadata_sha256", "n_buckets", "fmt", "languages"),
    ),
    **IO_TASK_OPTIONS,
)
def extract_and_match(
    files: list[str],
    batch_id: str,
    output: str,
    metadata_uri: str,
    metadata_sha256: str,
    n_buckets: int,
    fmt: str = "auto",
    languages: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return curation.process_batch(
        files, batch_id, output, metadata_uri, metadata_sha256, n_buckets, fmt, languages,
        storage_options,
    )


@task(
    name="index-buckets",
    cache_key_fn=cache_on(params=("batches_digest", "out_uri")),
    **IO_TASK_OPTIONS,
)
def index_buckets(
    manifest_uris: list[str],
    batches_digest: str,
    out_uri: str,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`batches_digest` identifies the manifests (their content), so it stands for them."""
    return curation.build_bucket_index(manifest_uris, out_uri, **(storage_options or {}))


@task(
    name="dedup-and-count",
    cache_key_fn=cache_on(
        files=("index_uri",),
        params=("bucket", "output", "exclude_store", "store_tag"),
    ),
    **IO_TASK_OPTIONS,
)
def dedup_and_count(
    bucket: int,
    index_uri: str,
    output: str,
    exclude_store: str | None = None,
    store_tag: str = "",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return curation.process_bucket(
        bucket, index_uri, output, exclude_store, store_tag, storage_options
    )


@task(
    name="reduce-counts",
    cache_key_fn=cache_on(files=("uris",), params=("out_uri",)),
    **IO_TASK_OPTIONS,
)
def reduce_counts(
    uris: list[str], out_uri: str, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
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
) -> dict[str, Any]:
    return curation.write_entry_counts(total_uri, metadata_uri, out_uri, **(storage_options or {}))


@task(
    name="sample",
    cache_key_fn=cache_on(
        files=("counts_uri", "dedup_uris"),
        params=("bucket", "output", "t", "seed", "one_per_image", "exclude_store", "store_tag"),
    ),
    **IO_TASK_OPTIONS,
)
def sample(
    bucket: int,
    dedup_uris: list[str],
    output: str,
    counts_uri: str,
    t: float,
    seed: int,
    one_per_image: bool = True,
    exclude_store: str | None = None,
    store_tag: str = "",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`dedup_uris` are the bucket's input (one part, or one per sub-bucket)."""
    return curation.sample_bucket(
        bucket, output, counts_uri, t, seed, one_per_image, exclude_store, store_tag,
        storage_options, dedup_uris,
    )
