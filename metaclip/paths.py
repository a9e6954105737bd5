"""The output layout, owned here: every path under an output root is made by this module.

<root>/
  curated/part-<batch>.parquet      balanced pairs, img2dataset-ready (url, caption, ...)
  entry_counts.parquet              global counts per entry, with the metadata's sha256
  summary.json                      what was read, matched, kept, skipped; time per stage
  _work/matched/<batch>.parquet     matched pairs of a batch of input files
  _work/counts/<batch>.npz          that batch's sparse entry counts
  _work/reduce/<level>-<i>.npz      tree-reduction partial sums
"""

from __future__ import annotations

from dataclasses import dataclass

from metaclip.storage import join


@dataclass(frozen=True)
class OutputLayout:
    root: str

    @property
    def curated_dir(self) -> str:
        return join(self.root, "curated")

    def curated_part(self, batch_id: str) -> str:
        return join(self.curated_dir, f"part-{batch_id}.parquet")

    @property
    def entry_counts(self) -> str:
        return join(self.root, "entry_counts.parquet")

    @property
    def summary(self) -> str:
        return join(self.root, "summary.json")

    def matched_part(self, batch_id: str) -> str:
        return join(self.root, "_work", "matched", f"{batch_id}.parquet")

    def batch_counts(self, batch_id: str) -> str:
        return join(self.root, "_work", "counts", f"{batch_id}.npz")

    def reduce_part(self, level: int, index: int) -> str:
        return join(self.root, "_work", "reduce", f"{level:02d}-{index:06d}.npz")
