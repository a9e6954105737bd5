"""The data card of a curation run: the entry distribution, the tail share, expected sizes.

Everything here is computed from a finished run's outputs (entry counts, summary, curated shards)
and from its candidate units: per sampled image, the entry-id lists of its matched texts and
each text's weight (1 / that image's number of texts; 1 everywhere for per-pair sampling).

The expected curated size at t is exact, with no sampling (metaclip/reporting/expected_size.py).
A worldwide (MetaCLIP 2) run's card describes t_en, with a t per language, and adds a section
per language (metaclip/reporting/languages.py).

This module computes the card's numbers (build_datacard) and compares two runs (compare_runs);
what the card reads from a run is metaclip.reporting.run_inputs, and its files (JSON, Markdown,
PNG) are metaclip.reporting.render. Their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.curation import balance
from metaclip.errors import UserError
from metaclip.metadata.languages import OTHER
from metaclip.reporting.expected_size import (
    CandidateScan,
    SingleT,
    ThresholdRule,
    Units,
    expected_sizes_under,
    scan_candidates,
    solve_t,
)
from metaclip.reporting.languages import (
    TOP_LANGUAGES,
    LanguageT,
    language_of,
    language_table,
    sums_by_language,
)
from metaclip.reporting.render import (
    LANGUAGE_PLOT_FILES,
    PLOT_FILES,
    card_json,
    card_plot_files,
    embedded_images,
    format_value,
    overview_rows,
    png_data_uri,
    render_card,
    render_comparison_markdown,
    render_files,
    render_markdown,
    write_comparison,
    write_datacard,
    write_files,
)
from metaclip.reporting.run_inputs import (
    DATACARD_DIR,
    RunData,
    UnitSource,
    candidate_source,
    datacard_dir,
    load_run,
    matched_pair_units,
)

__all__ = [
    "DATACARD_DIR",
    "LANGUAGE_PLOT_FILES",
    "PLOT_FILES",
    "TOP_LANGUAGES",
    "TOP_N",
    "RunData",
    "UnitSource",
    "build_datacard",
    "candidate_source",
    "card_json",
    "card_plot_files",
    "compare_runs",
    "datacard_dir",
    "distribution_stats",
    "embedded_images",
    "format_value",
    "load_run",
    "matched_pair_units",
    "overview_rows",
    "png_data_uri",
    "render_card",
    "render_comparison_markdown",
    "render_files",
    "render_markdown",
    "threshold_rule",
    "top_entries",
    "write_comparison",
    "write_datacard",
    "write_files",
]

TOP_N = 20


# --------------------------------------------------------------------------- the card


def top_entries(counts: np.ndarray, entries: list[str], n: int = TOP_N) -> list[dict[str, Any]]:
    order = np.argsort(-counts.astype(np.float64), kind="stable")[:n]
    return [
        {"entry": entries[i], "entry_id": int(i), "count": float(counts[i])}
        for i in order
        if counts[i] > 0
    ]


def distribution_stats(counts: np.ndarray, t: float | np.ndarray) -> dict[str, Any]:
    """Head and tail of the count distribution at t (head: entries counted more than t); t may
    be each entry's own (the worldwide recipe: its language's)."""
    matched = counts[counts > 0]
    head = counts > t
    return {
        "entries": int(len(counts)),
        "entries_matched": int(len(matched)),
        "entries_over_t": balance.entries_over_t(counts, t),
        "p": balance.t_to_p(counts, t),
        "matches_total": float(counts.sum(dtype=np.float64)),
        "head_matches": float(counts[head].sum(dtype=np.float64)),
        "max_count": float(matched.max(initial=0)),
        "median_count": float(np.median(matched)) if len(matched) else 0.0,
    }


def build_datacard(
    run: RunData,
    t: float | None = None,
    candidates: UnitSource | None = None,
    targets: Iterable[float] = (),
    success_rate: float = 0.9,
    top: int = TOP_N,
    wrap: Callable[[Iterable[Units]], Iterable[Units]] = lambda units: units,
    top_languages: int = TOP_LANGUAGES,
) -> dict[str, Any]:
    """The card as a JSON-able dict; `wrap` may add a progress bar to the candidate pass.

    For a worldwide run t is t_en, and each entry's threshold its language's at t_en.
    """
    t = _resolve_t(run, t)
    rule = threshold_rule(run)
    each_t = rule.entry_ts(t) if isinstance(rule, LanguageT) else t
    s = run.summary
    card: dict[str, Any] = {
        "output": run.output,
        "t": t,
        "seed": s.get("seed"),
        "limits": s.get("limits"),
        "metadata": s.get("metadata", {}),
        "pairs": {k: s.get(f"pairs_{k}") for k in ("read", "matched", "unique", "curated")},
        "images_matched": s.get("images_matched"),
        "distribution": distribution_stats(run.counts, each_t),
        "top_before": top_entries(run.counts, run.entries, top),
    }
    counted = s.get("pairs_unique") or s.get("pairs_matched")  # the pairs the counts are over
    card["matches_per_pair"] = card["distribution"]["matches_total"] / counted if counted else None
    if run.curated_counts is not None:
        card["top_after"] = top_entries(run.curated_counts, run.entries, top)
        for row in card["top_before"]:  # the same entries after balancing, for the table
            row["after"] = float(run.curated_counts[row["entry_id"]])
        card["curated_stats"] = distribution_stats(run.curated_counts, each_t)
    scan = None
    if candidates is not None:
        scan = _add_expected(card, run, rule, t, candidates, targets, success_rate, wrap)
    if isinstance(rule, LanguageT):
        _add_languages(card, run, rule, t, scan, top_languages)
    return card


def threshold_rule(run: RunData) -> ThresholdRule:
    """How t sets each entry's probability in this run: one t (English recipe), or t_en and
    a t per language (worldwide)."""
    if run.language_offsets is None:
        return SingleT(run.counts)
    return LanguageT(run.counts, run.language_offsets)


def _resolve_t(run: RunData, t: float | None) -> float:
    t = run.summary.get("t") if t is None else t
    if t is None:
        raise UserError(f"no summary.json with t in {run.output}: pass t")
    if not t > 0:
        raise UserError(f"t must be positive, got {t}")
    return float(t)


def _add_expected(
    card: dict[str, Any],
    run: RunData,
    rule: ThresholdRule,
    t: float,
    candidates: UnitSource,
    targets: Iterable[float],
    success_rate: float,
    wrap: Callable[[Iterable[Units]], Iterable[Units]],
) -> CandidateScan | None:
    scan = scan_candidates(wrap(candidates()), run.counts, t, rule.t_grid(t), rule)
    if not scan.texts:
        return None
    at_t = float(scan.sizes[np.searchsorted(scan.ts, t)])
    card["candidates"] = {
        "units": scan.units,
        "texts": scan.texts,
        "matches_per_text": scan.matches / scan.texts,
    }
    card["matches_per_pair"] = scan.matches / scan.texts  # exact over the candidates
    card["expected_size"] = {"t": scan.ts.tolist(), "pairs": scan.sizes.tolist(), "at_t": at_t}
    card["expected_after"] = scan.expected_counts.tolist()
    for row in card["top_before"]:
        row["expected_after"] = float(scan.expected_counts[row["entry_id"]])
    card["top_expected_after"] = top_entries(
        scan.expected_counts, run.entries, len(card["top_before"])
    )

    def sizes_at(ts: np.ndarray) -> np.ndarray:
        return expected_sizes_under(candidates(), rule, ts)

    card["targets"] = [
        solve_t(sizes_at, scan.ts, scan.sizes, float(n), success_rate) for n in targets
    ]
    card["success_rate"] = success_rate
    return scan


# --------------------------------------------------------------------------- worldwide


def _add_languages(
    card: dict[str, Any],
    run: RunData,
    rule: LanguageT,
    t_en: float,
    scan: CandidateScan | None,
    top: int,
) -> None:
    """The worldwide card: p is English's at t_en (every language's t has that tail share),
    top entries say their language, and the per-language section."""
    offsets = rule.offsets
    p, _ = rule.thresholds(t_en)
    card["recipe"] = WORLDWIDE_RECIPE
    card["distribution"]["p"] = p
    for key in ("top_before", "top_after", "top_expected_after"):
        for row in card.get(key, []):
            row["language"] = language_of(offsets, row["entry_id"])
    matched = _summary_column(run.summary, "pairs_matched")
    rows = language_table(
        offsets, run.counts, t_en,
        curated=_by_language(offsets, run.curated_by_first),
        matched=matched,
        distinct=_by_language(offsets, scan.texts_by_first if scan else None),
        expected=_by_language(offsets, scan.kept_by_first if scan else None),
    )  # fmt: skip
    card["languages"] = {
        "t_en": t_en,
        "p": p,
        "languages": len(rows),
        "languages_matched": sum(1 for row in rows if row["matches"]),
        "top": top,
        "other_pairs_read": _other_pairs_read(run.summary),
        "rows": rows,
    }


def _by_language(offsets: dict[str, int], per_entry: np.ndarray | None) -> dict[str, float] | None:
    return None if per_entry is None else sums_by_language(offsets, per_entry)


def _summary_column(summary: dict[str, Any], column: str) -> dict[str, float] | None:
    """A per-language figure the run's summary recorded (None when it has none)."""
    by_language = summary.get("languages") or {}
    values = {k: v[column] for k, v in by_language.items() if v.get(column) is not None}
    return values or None


def _other_pairs_read(summary: dict[str, Any]) -> int | None:
    """Pairs read whose language has no metadata (counted as `other`, never matched)."""
    other = (summary.get("languages") or {}).get(OTHER) or {}
    return other.get("pairs_read")


# --------------------------------------------------------------------------- two runs


def _run_side(run: RunData, t: float) -> dict[str, Any]:
    s = run.summary
    return {
        "output": run.output,
        "t": t,
        "p": balance.t_to_p(run.counts, t),
        "entries_over_t": balance.entries_over_t(run.counts, t),
        "matches_total": float(run.counts.sum(dtype=np.float64)),
        "pairs_matched": s.get("pairs_matched"),
        "pairs_curated": s.get("pairs_curated"),
        "metadata_sha256": s.get("metadata", {}).get("sha256"),
    }


def _moved(
    entries: list[str], ca: np.ndarray, cb: np.ndarray, mask: np.ndarray, top: int
) -> list[dict[str, Any]]:
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-np.maximum(ca[idx], cb[idx]), kind="stable")][:top]
    return [{"entry": entries[i], "count_a": float(ca[i]), "count_b": float(cb[i])} for i in idx]


def compare_runs(
    a: RunData, b: RunData, t_a: float | None = None, t_b: float | None = None, top: int = TOP_N
) -> dict[str, Any]:
    """Which entries moved into or out of the head from run a to run b, and how p moved.

    Entries are aligned by their text, so runs with different metadata compare too (an entry
    missing from one run counts 0 there). Each run's head is taken at its own t.
    """
    t_a, t_b = _resolve_t(a, t_a), _resolve_t(b, t_b)
    where = pc.index_in(pa.array(a.entries), value_set=pa.array(b.entries)).to_numpy(
        zero_copy_only=False
    )
    # Union of both entry lists: a's entries first, then b's entries absent from a.
    in_b = ~np.isnan(where.astype(np.float64))
    only_b = np.setdiff1d(np.arange(len(b.entries)), where[in_b].astype(np.int64))
    entries = a.entries + [b.entries[i] for i in only_b]
    ca = np.concatenate([a.counts.astype(np.float64), np.zeros(len(only_b))])
    cb = np.zeros(len(entries))
    cb[: len(a.entries)][in_b] = b.counts[where[in_b].astype(np.int64)]
    cb[len(a.entries) :] = b.counts[only_b]
    head_a, head_b = ca > t_a, cb > t_b
    side_a, side_b = _run_side(a, t_a), _run_side(b, t_b)
    return {
        "a": side_a,
        "b": side_b,
        "p_change": side_b["p"] - side_a["p"],
        "p_b_at_t_a": balance.t_to_p(cb, t_a),
        "same_metadata": side_a["metadata_sha256"] == side_b["metadata_sha256"],
        "head_entered": int((head_b & ~head_a).sum()),
        "head_left": int((head_a & ~head_b).sum()),
        "head_stayed": int((head_a & head_b).sum()),
        "entered": _moved(entries, ca, cb, head_b & ~head_a, top),
        "left": _moved(entries, ca, cb, head_a & ~head_b, top),
    }
