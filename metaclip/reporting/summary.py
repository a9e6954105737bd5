"""The run summary: one JSON document a person (or a dashboard) reads after a run.

A worldwide (MetaCLIP 2) run's summary also has its recipe, p as English's tail share at t_en,
entries over their language's t, and a `languages` block: per language its entries, matches,
t and tail share at t, pairs read and matched (the batches' counts), candidates and pairs
curated (the sample's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaclip import PIPELINE_VERSION
from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.curation import balance
from metaclip.extraction.limits import DEFAULT_LIMITS
from metaclip.extraction.pairs import ExtractStats
from metaclip.reporting.languages import LanguageT, Offsets, language_table

# A worldwide task result's per-language figures, {language: {name: n}}: a batch's "pairs" and
# "matched" (metaclip.curation.batch), a sampled bucket's "candidates" and "kept" (.sample).
LANGUAGES_KEY = "languages"


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
    language_offsets: Offsets | None = None,
) -> dict[str, Any]:
    """`language_offsets` (worldwide recipe: the global id of each language's first entry) gives
    the per-language thresholds; without them a worldwide summary has no p."""
    stats = ExtractStats()
    for batch in batches:
        stats.merge(ExtractStats.from_dict(batch["extract"]))
    t = params["t"]
    rss = [r.get("peak_rss_mb", 0.0) for r in [*batches, *buckets]]
    summary = {
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
    if params.get("recipe") == WORLDWIDE_RECIPE:
        summary.update(worldwide_block(batches, sampled, counts, t, language_offsets))
    return summary


def worldwide_block(
    batches: Sequence[Mapping[str, Any]],
    sampled: Sequence[Mapping[str, Any]],
    counts: np.ndarray,
    t_en: float,
    offsets: Offsets | None,
) -> dict[str, Any]:
    """A worldwide summary's own figures (they replace the English recipe's p and head)."""
    read, drawn = language_totals(batches), language_totals(sampled)
    block: dict[str, Any] = {"recipe": WORLDWIDE_RECIPE, "p": None, "entries_over_t": None}
    languages: dict[str, dict[str, Any]] = {}
    if offsets is not None:
        matched = {language: f.get("matched", 0) for language, f in read.items()}
        curated = {language: f.get("kept", 0) for language, f in drawn.items()}
        rows = language_table(offsets, counts, t_en, curated or None, matched or None)
        block["p"], _ = LanguageT(counts, offsets).thresholds(t_en)
        block["entries_over_t"] = sum(row["entries_over_t"] for row in rows)
        for row in rows:
            figures = {k: v for k, v in row.items() if k != "language" and v is not None}
            languages[row["language"]] = figures
    for language, f in read.items():  # `other` too: read, never matched
        languages.setdefault(language, {}).update(
            pairs_read=f.get("pairs", 0), pairs_matched=f.get("matched", 0)
        )
    for language, f in drawn.items():
        languages.setdefault(language, {}).update(
            pairs_candidates=f.get("candidates", 0), pairs_curated=f.get("kept", 0)
        )
    block["languages"] = languages
    return block


def language_totals(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The results' per-language figures (LANGUAGES_KEY: {language: {name: n}}), summed."""
    totals: dict[str, Counter[str]] = {}
    for result in results:
        for language, figures in (result.get(LANGUAGES_KEY) or {}).items():
            totals.setdefault(language, Counter()).update(figures)
    return {language: dict(figures) for language, figures in totals.items()}


def rebalanced_worldwide_block(
    old: Mapping[str, Any],
    sampled: Sequence[Mapping[str, Any]],
    counts: np.ndarray,
    t_en: float,
    offsets: Offsets,
) -> dict[str, Any]:
    """A rebalanced worldwide run's block: pairs read and matched per language from the old
    summary (rebalancing reads nothing again), t, p and pairs curated from the new sampling."""
    read = {
        language: {"pairs": f.get("pairs_read", 0), "matched": f.get("pairs_matched", 0)}
        for language, f in (old.get("languages") or {}).items()
    }
    return worldwide_block([{LANGUAGES_KEY: read}], sampled, counts, t_en, offsets)
