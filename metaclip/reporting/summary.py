"""The run summary: one JSON document a person (or a dashboard) reads after a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaclip import PIPELINE_VERSION
from metaclip.curation import balance
from metaclip.extraction.limits import DEFAULT_LIMITS
from metaclip.extraction.pairs import ExtractStats


def _total(rows: Sequence[Mapping[str, Any]], key: str) -> int:
    return sum(int(r[key]) for r in rows)


def limits_line(limits: Mapping[str, Any] | None) -> str:
    """A run's extraction limits (summary["limits"]) in one line for a person: those that differ
    from the defaults (metaclip.extraction.limits), each with its default."""
    if not limits:
        return "not recorded"  # a run from before the limits were recorded
    defaults = DEFAULT_LIMITS.to_dict()
    changed = [
        f"{name} {value:,} (default {defaults[name]:,})" if name in defaults else f"{name} {value}"
        for name, value in limits.items()
        if defaults.get(name) != value
    ]
    return "; ".join(changed) + "; the others default" if changed else "all default"


def build_summary(
    *,
    batches: Sequence[Mapping[str, Any]],
    buckets: Sequence[Mapping[str, Any]],
    sampled: Sequence[Mapping[str, Any]],
    counts: np.ndarray,
    params: Mapping[str, Any],
    outputs: Mapping[str, str],
    stage_seconds: Mapping[str, float],
) -> dict[str, Any]:
    stats = ExtractStats()
    for batch in batches:
        stats.merge(ExtractStats.from_dict(batch["extract"]))
    t = params["t"]
    rss = [r.get("peak_rss_mb", 0.0) for r in [*batches, *buckets]]
    return {
        "pipeline_version": PIPELINE_VERSION,
        "metadata": {
            "uri": params["metadata_uri"],
            "sha256": params["metadata_sha256"],
            "entries": int(len(counts)),
            "entries_matched": int((counts > 0).sum()),
        },
        "files": stats.files,
        "batches": len(batches),
        "buckets": len(buckets),
        "records_read": stats.records,
        "pages": stats.pages,
        "images": stats.images,
        "pairs_read": stats.pairs,
        "pairs_matched": _total(batches, "pairs_matched"),
        "pairs_unmatched": _total(batches, "pairs_unmatched"),
        "pairs_unique": _total(buckets, "pairs_unique"),
        "duplicates_across_files": _total(buckets, "duplicates"),
        "excluded_seen_before": _total(buckets, "excluded_seen"),
        "images_matched": _total(buckets, "images"),
        "pairs_curated": _total(sampled, "rows_kept"),
        "matches_total": int(counts.sum(dtype=np.uint64)),
        "t": t,
        "seed": params["seed"],
        "one_text_per_image": params["one_per_image"],
        "limits": dict(params["limits"]),
        "p": balance.t_to_p(counts, t),
        "entries_over_t": balance.entries_over_t(counts, t),
        "skipped": dict(sorted(stats.skipped.items())),
        "seconds": {
            "stages_wall": dict(stage_seconds),
            "extract_cpu": sum(b["seconds"]["extract"] for b in batches),
            "match_cpu": sum(b["seconds"]["match"] for b in batches),
            "dedup_count_cpu": sum(b["seconds"] for b in buckets),
            "sample_cpu": sum(s["seconds"] for s in sampled),
        },
        "peak_worker_rss_mb": max(rss, default=0.0),
        "outputs": dict(outputs),
    }
