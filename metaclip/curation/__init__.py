"""The curation stages as plain functions over a batch of files or one bucket.

Tasks in tasks/ call these; each takes and returns small JSON-able values (URIs, counts, stats)
and does its bulk work through files, so results are cheap to persist and to pass around.

Stages: process_batch (extract, match, split by uuid bucket; a manifest commits the batch) ->
process_bucket (dedup across batches, exclude earlier dumps, count) -> reduce_counts (tree) ->
sample_bucket (one text per image, keep with MetaCLIP's probability). One module per stage;
plan.py fixes a run's inputs, batches and buckets before any of them.
"""

from metaclip.curation.batch import batches_digest, process_batch
from metaclip.curation.bucket import build_bucket_index, dedup_parts, process_bucket
from metaclip.curation.counting import reduce_counts, reduction_plan, write_entry_counts
from metaclip.curation.plan import (
    auto_buckets,
    check_store,
    default_store_tag,
    make_batches,
    preflight,
    store_buckets,
)
from metaclip.curation.sample import iter_candidate_units, rebalanced_summary, sample_bucket

__all__ = [
    "auto_buckets",
    "batches_digest",
    "build_bucket_index",
    "check_store",
    "dedup_parts",
    "default_store_tag",
    "iter_candidate_units",
    "make_batches",
    "preflight",
    "process_batch",
    "process_bucket",
    "rebalanced_summary",
    "reduce_counts",
    "reduction_plan",
    "sample_bucket",
    "store_buckets",
    "write_entry_counts",
]
