"""Reporting on a worldwide (MetaCLIP 2) run: the per-language table, and the threshold rule
that makes the expected curated size an exact function of t_en.

The worldwide recipe (metaclip.curation.thresholds): t_en fixes the tail share
p = t_to_p(counts_en, t_en); every language L gets t_L = p_to_t(counts_L, p); an entry of L is
kept with p_e = t_L / max(count_e, t_L). Entry ids are global (a language's local id plus its
offset: the global id of its first entry), so a language's counts are one slice of the run's.

Nothing here reads files: the offsets (an index's `offsets()`, or the languages a worldwide
entry_counts.parquet records), the counts and the per-language pair counts are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from metaclip.curation import thresholds
from metaclip.errors import UserError
from metaclip.reporting.expected_size import BlockProbs, t_grid

TOP_LANGUAGES = 15

# Per-language pair counts a table row may carry (additive: summed into the "rest" row).
PAIR_COLUMNS = ("pairs_matched", "pairs_distinct", "pairs_curated", "expected_curated")
_ADDITIVE = ("entries", "entries_matched", "matches", "entries_over_t", *PAIR_COLUMNS)


Offsets = Mapping[str, int]  # language -> global id of its first entry


def language_slices(offsets: Offsets, n_entries: int) -> dict[str, slice]:
    """Each language's global ids, in id order (a UserError when the offsets do not number
    exactly `n_entries` ids from 0: they are another metadata's)."""
    starts = sorted(offsets.values())
    if not starts or starts[0] != 0 or starts[-1] > n_entries:
        raise UserError(f"the language offsets {dict(offsets)} do not number {n_entries:,} ids")
    spans = thresholds.language_spans(offsets, n_entries)
    return {language: slice(start, end) for language, (start, end) in spans.items()}


def language_of_ids(offsets: Offsets, ids: np.ndarray) -> np.ndarray:
    """Position, among the languages in id order, of each global id's language."""
    starts = np.array(sorted(offsets.values()), dtype=np.int64)
    return np.searchsorted(starts, ids, side="right") - 1


def language_of(offsets: Offsets, entry_id: int) -> str:
    """The language of one global id."""
    names = sorted(offsets, key=offsets.__getitem__)
    return names[int(language_of_ids(offsets, np.array([entry_id]))[0])]


def sums_by_language(offsets: Offsets, per_entry: np.ndarray) -> dict[str, float]:
    """A per-entry-id array summed over each language's ids."""
    return {
        language: float(per_entry[ids].sum(dtype=np.float64))
        for language, ids in language_slices(offsets, len(per_entry)).items()
    }


@dataclass(frozen=True)
class LanguageT:
    """The worldwide threshold rule (expected_size.ThresholdRule): a grid point is t_en."""

    counts: np.ndarray  # global, per entry id
    offsets: Offsets

    @cached_property
    def slices(self) -> dict[str, slice]:
        """Each language's global ids, in id order."""
        return language_slices(self.offsets, len(self.counts))

    @cached_property
    def _by_language(self) -> dict[str, np.ndarray]:
        # Sorted once: p_to_t sorts anyway and t_to_p sums whole counts (exact in float64),
        # so both give what they give on the unsorted slice, and a grid of t_en costs one sort.
        return {language: np.sort(self.counts[ids]) for language, ids in self.slices.items()}

    def thresholds(self, t_en: float) -> tuple[float, dict[str, float]]:
        """(p, t per language) at t_en, as the curation sets them."""
        try:
            return thresholds.language_thresholds(self._by_language, t_en)
        except thresholds.NoEnglishMatches as exc:
            raise UserError(str(exc)) from None

    def probs(self, t_en: float) -> np.ndarray:
        _, ts = self.thresholds(t_en)
        return thresholds.entry_probabilities(self.counts, self.offsets, ts)

    def entry_ts(self, t_en: float) -> np.ndarray:
        """Each entry's t (its language's) at t_en."""
        _, ts = self.thresholds(t_en)
        sizes = [ids.stop - ids.start for ids in self.slices.values()]
        return np.repeat([float(ts[name]) for name in self.slices], sizes)

    def grid(self, ts: np.ndarray) -> BlockProbs:
        # (languages x points), languages in id order: each one's t at each t_en of the grid.
        table = np.array(
            [[at[name] for name in self.slices] for at in self._ts_at(ts)], dtype=np.float64
        ).T

        def block(ids: np.ndarray) -> np.ndarray:
            t = table[language_of_ids(self.offsets, ids)]
            c = self.counts[ids].astype(np.float64)[:, None]
            # count_to_prob: t / max(count, t); a language whose t is 0 keeps nothing.
            return np.divide(t, np.maximum(c, t), out=np.zeros_like(t), where=t > 0)

        return block

    def t_grid(self, t_en: float) -> np.ndarray:
        """English's grid: past its largest count p = 1, and every language keeps all."""
        return t_grid(self._by_language.get(thresholds.ENGLISH, np.zeros(0)), t_en)

    def _ts_at(self, t_ens: np.ndarray) -> list[dict[str, float]]:
        return [self.thresholds(float(t_en))[1] for t_en in t_ens]


def _tail_share(counts: np.ndarray, t: float) -> float | None:
    return thresholds.t_to_p(counts, t) if counts.any() else None


def _count_or_none(values: Mapping[str, float] | None, language: str) -> float | None:
    return None if values is None else float(values.get(language, 0))


def language_table(
    offsets: Offsets,
    counts: np.ndarray,
    t_en: float,
    curated: Mapping[str, float] | None = None,
    matched: Mapping[str, float] | None = None,
    *,
    distinct: Mapping[str, float] | None = None,
    expected: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per language (of `offsets`), most pairs matched first.

    t is the language's threshold at t_en; p its own tail share at that t (near the common p,
    the reference's p_to_t picks the nearest achievable share); None where nothing matched.
    Pair counts not given are None: `matched` (pairs matched, from the extraction), `distinct`
    (distinct matched pairs, from the candidates), `curated`, `expected` (expected curated).
    """
    _, ts = LanguageT(counts, offsets).thresholds(t_en)
    rows = []
    for language, ids in language_slices(offsets, len(counts)).items():
        own = counts[ids]
        rows.append({
            "language": language,
            "entries": len(own),
            "entries_matched": int((own > 0).sum()),
            "matches": int(own.sum(dtype=np.uint64)),
            "t": float(ts[language]),
            "p": _tail_share(own, ts[language]),
            "entries_over_t": int((own > ts[language]).sum()),
            "pairs_matched": _count_or_none(matched, language),
            "pairs_distinct": _count_or_none(distinct, language),
            "pairs_curated": _count_or_none(curated, language),
            "expected_curated": _count_or_none(expected, language),
        })  # fmt: skip
    return sorted(rows, key=_rank_key)


def _rank_key(row: Mapping[str, Any]) -> tuple[float, str]:
    """Most pairs matched first (distinct pairs, then matches, where that is not known)."""
    for column in ("pairs_matched", "pairs_distinct", "matches"):
        if row[column] is not None:
            return -row[column], row["language"]
    return 0.0, row["language"]


def top_and_rest(
    rows: Sequence[Mapping[str, Any]], top: int = TOP_LANGUAGES
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The first `top` rows, and the others summed into one (None when there are none)."""
    head, tail = [dict(r) for r in rows[:top]], rows[top:]
    if not tail:
        return head, None
    rest: dict[str, Any] = {"language": f"other {len(tail)} languages", "t": None, "p": None}
    for column in _ADDITIVE:
        values = [r[column] for r in tail]
        rest[column] = None if None in values else sum(values)
    return head, rest
