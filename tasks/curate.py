"""Prefect tasks of the curation flow: each runs one stage function of metaclip.curation,
`stage(settings, stores, **call)`, made a task by tasks.caching.stage_task (the project's retry
policy, results cached as data under the output, keyed by the stage's KEYED_BY settings and
its input files' identities)."""

from __future__ import annotations

from metaclip.curation import batch, dedup, reduce
from metaclip.curation import pool as pooling
from metaclip.curation import sample as sampling
from metaclip_prefect.tasks.caching import stage_task

extract_and_match = stage_task(
    "extract-and-match", batch.process_batch, batch.KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
index_buckets = stage_task(
    "index-buckets", dedup.build_bucket_index, dedup.INDEX_KEYED_BY, unkeyed=["manifest_uris"]
)
dedup_and_count = stage_task(
    "dedup-and-count", dedup.process_bucket, dedup.KEYED_BY, input_files=["index_uri"]
)
reduce_counts = stage_task(
    "reduce-counts", reduce.reduce_counts, reduce.REDUCE_KEYED_BY, input_files=["uris"]
)
write_entry_counts = stage_task(
    "write-entry-counts", reduce.write_entry_counts, reduce.ENTRY_COUNTS_KEYED_BY,
    input_files=["total_uri"],
)  # fmt: skip
sample = stage_task(
    "sample", sampling.sample_bucket, sampling.KEYED_BY,
    input_files=["counts_uri", "dedup_uris"],
)  # fmt: skip
write_pool = stage_task(
    "pool", pooling.pool_bucket, pooling.KEYED_BY, input_files=["dedup_uris"]
)
