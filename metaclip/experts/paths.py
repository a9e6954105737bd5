"""The MoDE output layout, owned here: every path under a MoDE output root is made here.

<root>/
  experts/expert-<k>/part-<shard>.parquet   pairs of expert k (curated columns + cluster ids)
  centres.npz                               fine centres, fine->coarse map, coarse centres, meta
  clusters.json                             sizes per expert and fine cluster, example captions
  summary.json                              what was embedded, sampled, assigned; seconds per stage
  routing/<name>.json                       expert weights for a task's class names
  _work/embeddings/<shard>.npy              caption embeddings of a curated shard (row order kept)
  _work/sample/<shard>.npy                  that shard's rows drawn for the k-means sample
  _work/tasks/<task>/<key>.json             task results (JSON with a checksum; the cache)
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from metaclip.io.storage import join


def shard_id(curated_uri: str) -> str:
    """`.../part-0003.parquet` -> `0003`: the curated shard's own name keys every MoDE file."""
    stem = posixpath.basename(curated_uri.rstrip("/")).removesuffix(".parquet")
    return stem.removeprefix("part-")


@dataclass(frozen=True)
class ModeLayout:
    root: str

    @property
    def experts_dir(self) -> str:
        return join(self.root, "experts")

    def expert_dir(self, expert: int) -> str:
        return join(self.experts_dir, f"expert-{expert}")

    def expert_part(self, expert: int, shard: str) -> str:
        return join(self.expert_dir(expert), f"part-{shard}.parquet")

    @property
    def centres(self) -> str:
        return join(self.root, "centres.npz")

    @property
    def clusters(self) -> str:
        return join(self.root, "clusters.json")

    @property
    def summary(self) -> str:
        return join(self.root, "summary.json")

    def routing(self, name: str) -> str:
        return join(self.root, "routing", f"{name}.json")

    def embeddings(self, shard: str) -> str:
        return join(self.root, "_work", "embeddings", f"{shard}.npy")

    def sample(self, shard: str) -> str:
        return join(self.root, "_work", "sample", f"{shard}.npy")

    def task_result(self, task: str, key: str) -> str:
        """A task's result, as data: metaclip.io.results.store_result."""
        return join(self.root, "_work", "tasks", task, f"{key}.json")
