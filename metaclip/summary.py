"""The run summary: one JSON document a person (or a dashboard) reads after a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaclip import PIPELINE_VERSION, balance
from metaclip.pairs import ExtractStats


def build_summary(
    *,
    batches: Sequence[Mapping[str, Any]],
    balanced: Sequence[Mapping[str, Any]],
    counts: np.ndarray,
    t: float,
    seed: int,
    metadata_uri: str,
    metadata_sha256: str,
    outputs: Mapping[str, str],
    stage_seconds: Mapping[str, float],
) -> dict[str, Any]:
    stats = ExtractStats()
    for batch in batches:
        stats.merge(ExtractStats.from_dict(batch["extract"]))
    matched = sum(int(b["pairs_matched"]) for b in batches)
    curated = sum(int(b["rows_kept"]) for b in balanced)
    return {
        "pipeline_version": PIPELINE_VERSION,
        "metadata": {
            "uri": metadata_uri,
            "sha256": metadata_sha256,
            "entries": int(len(counts)),
            "entries_matched": int((counts > 0).sum()),
        },
        "files": stats.files,
        "batches": len(batches),
        "records_read": stats.records,
        "pages": stats.pages,
        "images": stats.images,
        "pairs_read": stats.pairs,
        "pairs_matched": matched,
        "pairs_unmatched": sum(int(b["pairs_unmatched"]) for b in batches),
        "pairs_curated": curated,
        "matches_total": int(counts.sum(dtype=np.uint64)),
        "t": t,
        "seed": seed,
        "p": balance.t_to_p(counts, t),
        "entries_over_t": balance.entries_over_t(counts, t),
        "skipped": dict(sorted(stats.skipped.items())),
        "seconds": {
            "stages_wall": dict(stage_seconds),
            "extract_cpu": sum(b["seconds"]["extract"] for b in batches),
            "match_cpu": sum(b["seconds"]["match"] for b in batches),
            "balance_cpu": sum(b["seconds"] for b in balanced),
        },
        "outputs": dict(outputs),
    }
