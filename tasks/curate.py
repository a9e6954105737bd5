"""Prefect tasks of the curation flow: each runs one stage function of metaclip.curation on
typed fields (the run's RunSettings and the task's own batch, bucket or group), with the
project's retry policy and results cached as data under the output (tasks.caching)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.states import State

from metaclip.curation import batch, dedup, reduce
from metaclip.curation import sample as sampling
from metaclip.curation.plan import RunSettings
from metaclip_prefect.tasks.caching import DATA_CACHED_TASK, cached_run
from metaclip_prefect.tasks.credentials import stores_for

Result = dict[str, Any] | State


@task(name="extract-and-match", **DATA_CACHED_TASK)
def extract_and_match(
    batch_id: str, files: list[str], settings: RunSettings, refresh: bool = False
) -> Result:
    s = settings
    stores = stores_for(s.storage, s.exclude_store)
    params = {"batch_id": batch_id, "output": s.output, "metadata_sha256": s.metadata_sha256,
              "n_buckets": s.n_buckets, "fmt": s.input_format, "languages": s.languages,
              "limits": s.limits.to_dict()}
    return cached_run(
        "extract-and-match", s.output, params,
        lambda: batch.process_batch(
            files, batch_id, s.output, s.metadata_uri, s.metadata_sha256, s.n_buckets,
            s.input_format, s.languages, stores, s.limits,
        ),
        files=files, file_options=stores.inputs, output_options=stores.output, refresh=refresh,
    )  # fmt: skip


@task(name="index-buckets", **DATA_CACHED_TASK)
def index_buckets(
    manifest_uris: list[str], batches_digest: str, out_uri: str, settings: RunSettings,
    refresh: bool = False,
) -> Result:  # fmt: skip
    """`batches_digest` identifies the manifests (their content), so it stands for them."""
    stores = stores_for(settings.storage, settings.exclude_store)
    return cached_run(
        "index-buckets", settings.output, {"batches_digest": batches_digest, "out_uri": out_uri},
        lambda: dedup.build_bucket_index(manifest_uris, out_uri, **stores.output),
        output_options=stores.output, refresh=refresh,
    )  # fmt: skip


@task(name="dedup-and-count", **DATA_CACHED_TASK)
def dedup_and_count(
    bucket: int, index_uri: str, settings: RunSettings, refresh: bool = False
) -> Result:
    s = settings
    stores = stores_for(s.storage, s.exclude_store)
    params = {"bucket": bucket, "output": s.output, "exclude_store": s.exclude_store,
              "store_tag": s.store_tag}  # fmt: skip
    return cached_run(
        "dedup-and-count", s.output, params,
        lambda: dedup.process_bucket(
            bucket, index_uri, s.output, s.exclude_store, s.store_tag, stores
        ),
        files=[index_uri], file_options=stores.output, output_options=stores.output,
        refresh=refresh,
    )  # fmt: skip


@task(name="reduce-counts", **DATA_CACHED_TASK)
def reduce_counts(
    uris: list[str], out_uri: str, settings: RunSettings, refresh: bool = False
) -> Result:
    stores = stores_for(settings.storage, settings.exclude_store)
    return cached_run(
        "reduce-counts", settings.output, {"out_uri": out_uri},
        lambda: reduce.reduce_counts(uris, out_uri, **stores.output),
        files=uris, file_options=stores.output, output_options=stores.output, refresh=refresh,
    )  # fmt: skip


@task(name="write-entry-counts", **DATA_CACHED_TASK)
def write_entry_counts(
    total_uri: str, out_uri: str, settings: RunSettings, refresh: bool = False
) -> Result:
    s = settings
    stores = stores_for(s.storage, s.exclude_store)
    return cached_run(
        "write-entry-counts", s.output,
        {"out_uri": out_uri, "metadata_sha256": s.metadata_sha256},
        lambda: reduce.write_entry_counts(
            total_uri, s.metadata_uri, out_uri, stores.metadata, **stores.output
        ),
        files=[total_uri], file_options=stores.output, output_options=stores.output,
        refresh=refresh,
    )  # fmt: skip


@task(name="sample", **DATA_CACHED_TASK)
def sample(
    bucket: int, dedup_uris: list[str], counts_uri: str, settings: RunSettings,
    refresh: bool = False,
) -> Result:  # fmt: skip
    """`dedup_uris` are the bucket's input (one part, or one per sub-bucket)."""
    s = settings
    stores = stores_for(s.storage, s.exclude_store)
    params = {"bucket": bucket, "output": s.output, "t": s.t, "seed": s.seed,
              "one_per_image": s.one_text_per_image, "exclude_store": s.exclude_store,
              "store_tag": s.store_tag}  # fmt: skip
    return cached_run(
        "sample", s.output, params,
        lambda: sampling.sample_bucket(
            bucket, s.output, counts_uri, s.t, s.seed, s.one_text_per_image, s.exclude_store,
            s.store_tag, stores, dedup_uris,
        ),
        files=[counts_uri, *dedup_uris], file_options=stores.output,
        output_options=stores.output, refresh=refresh,
    )  # fmt: skip
