"""The output layout, owned here: every path under an output root is made by this module.

<root>/
  curated/part-<bucket>.parquet            balanced pairs, img2dataset-ready (url, caption, ...)
  entry_counts.parquet                     global counts per entry, with the metadata's sha256
  language_thresholds.json                 worldwide recipe: p, and each language's t and counts
  summary.json                             what was read, matched, kept, skipped; time per stage
  pool/part-<bucket>.parquet               the matched pool, that online balancing draws from
  pool/entry_counts.parquet                its global counts (a copy); pool/pool.json its manifest
  _lock.json                               the lease of the run writing it (metaclip.io.lease)
  _work/run.json                           the run's parameters, paths relative to <root>
  _work/tasks/<task>/<key>.json            task results (JSON with a checksum; the cache)
  _work/matched/bucket=<b>/<batch>.parquet a batch's matched pairs that fall in bucket b
  _work/manifests/<batch>.json             written last: the batch is complete (rows, checksums)
  _work/index-<digest>.parquet             every committed part: bucket, batch, rows, sha256
  _work/dedup/<b>.parquet                  bucket b, one row per distinct (uuid, text)
  _work/counts/<b>.npz                     bucket b's sparse entry counts
  _work/reduce/<level>-<i>.npz             tree-reduction partial sums

An exclusion store (uuids curated from earlier dumps) is laid out the same way per bucket:
<store>/_store.json (its bucket count), <store>/bucket=<b>/<tag>.parquet (one file per run tag).
"""

from __future__ import annotations

from dataclasses import dataclass

from metaclip.io.storage import join

POOL_MANIFEST = "pool.json"  # the pool folder's own names: it is copied on its own
POOL_COUNTS = "entry_counts.parquet"


def bucket_name(bucket: int) -> str:
    return f"{bucket:05d}"


def _sub_suffix(sub: int | None) -> str:
    return "" if sub is None else f"-s{sub:03d}"


def lock_uri(root: str) -> str:
    """The lease of the run writing under `root`, whatever the flow (a curation, a metadata
    build, data experts): metaclip.io.lease."""
    return join(root, "_lock.json")


@dataclass(frozen=True)
class OutputLayout:
    root: str

    @property
    def curated_dir(self) -> str:
        return join(self.root, "curated")

    def curated_part(self, bucket: int, sub: int | None = None) -> str:
        return join(self.curated_dir, f"part-{bucket_name(bucket)}{_sub_suffix(sub)}.parquet")

    @property
    def entry_counts(self) -> str:
        return join(self.root, "entry_counts.parquet")

    @property
    def pool_dir(self) -> str:
        """The matched pool for online balancing: metaclip.curation.pool."""
        return join(self.root, "pool")

    def pool_part(self, bucket: int, sub: int | None = None) -> str:
        return join(self.pool_dir, f"part-{bucket_name(bucket)}{_sub_suffix(sub)}.parquet")

    @property
    def pool_counts(self) -> str:
        return join(self.pool_dir, POOL_COUNTS)

    @property
    def pool_manifest(self) -> str:
        return join(self.pool_dir, POOL_MANIFEST)

    @property
    def language_thresholds(self) -> str:
        """The worldwide recipe's thresholds: metaclip.curation.worldwide.thresholds_report."""
        return join(self.root, "language_thresholds.json")

    @property
    def summary(self) -> str:
        return join(self.root, "summary.json")

    @property
    def completion(self) -> str:
        """Written last by a finished run: metaclip.curation.completion."""
        return join(self.root, "complete.json")

    @property
    def lock(self) -> str:
        """The lease of the run writing this output: metaclip.io.lease."""
        return join(self.root, "_lock.json")

    @property
    def run_record(self) -> str:
        return join(self.root, "_work", "run.json")

    def task_result(self, task: str, key: str) -> str:
        """A task's result, as data: metaclip.io.results.store_result."""
        return join(self.root, "_work", "tasks", task, f"{key}.json")

    def matched_dir(self, bucket: int) -> str:
        return join(self.root, "_work", "matched", f"bucket={bucket_name(bucket)}")

    def matched_part(self, bucket: int, batch_id: str) -> str:
        return join(self.matched_dir(bucket), f"{batch_id}.parquet")

    def manifest(self, batch_id: str) -> str:
        return join(self.root, "_work", "manifests", f"{batch_id}.json")

    def bucket_index(self, batches_digest: str) -> str:
        return join(self.root, "_work", f"index-{batches_digest[:16]}.parquet")

    def dedup_part(self, bucket: int, sub: int | None = None) -> str:
        """A bucket's deduplicated pairs; an oversized bucket has one per sub-bucket."""
        name = f"{bucket_name(bucket)}{_sub_suffix(sub)}.parquet"
        return join(self.root, "_work", "dedup", name)

    def bucket_counts(self, bucket: int) -> str:
        return join(self.root, "_work", "counts", f"{bucket_name(bucket)}.npz")

    def reduce_part(self, level: int, index: int) -> str:
        return join(self.root, "_work", "reduce", f"{level:02d}-{index:06d}.npz")


@dataclass(frozen=True)
class StoreLayout:
    """Uuids curated by earlier runs, bucketed like the pipeline."""

    root: str

    @property
    def meta(self) -> str:
        return join(self.root, "_store.json")

    def bucket_dir(self, bucket: int) -> str:
        return join(self.root, f"bucket={bucket_name(bucket)}")

    def part(self, bucket: int, tag: str) -> str:
        return join(self.bucket_dir(bucket), f"{tag}.parquet")
