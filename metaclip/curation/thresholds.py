"""Per-language thresholds of the worldwide recipe, exactly as MetaCLIP 2 computes them
(metaclip/curation/curate.py: t_to_p, p_to_t, count_to_prob, global_count).

1. English keeps the t it is given (t_en, 170,000 by default in MetaCLIP 2). Its tail share is
   p = t_to_p(counts_en, t_en) = (sum of the counts below t_en) / (sum of all counts): the
   share of English matches that fall on entries matched fewer than t_en times.
2. Every other language L gets t_L = p_to_t(counts_L, p): the counts of all of L's entries,
   zeros included, are sorted ascending; portion[i] = cumsum[i] / total (inclusive); the index
   whose portion is nearest p (the first one on a tie) gives t_L = sorted_counts[index].
3. An entry's probability is count_to_prob: t / max(count, t), i.e. 1 below t.

Edge cases, as the reference has them, and what we do with them:
- t_to_p with no English match at all (sum 0): the reference divides 0 by 0. There is then no
  p to transfer; `language_thresholds` raises NoEnglishMatches (the run fails with one line).
- p_to_t of a language whose counts are all zero: portion is 0/0 everywhere, numpy's argmin
  returns the first index and t = 0. Nothing of that language was matched, so nothing depends
  on its t; we report t = 0 the same way.
- p_to_t can return t = 0 for a language with matches when p is nearer 0 than any portion
  reached by a positive count (the leading zero counts have portion 0). The reference then
  computes 0 / count = 0 for every matched entry: nothing of that language is kept. We keep
  that result (p_e = 0) and define p_e = 0 for an unmatched entry as well, where the
  reference's 0/0 gives NaN on entries no pair carries.
- Because the candidates for t_L are the counts themselves (the inclusive cumulative sum), the
  share t_to_p(counts_L, t_L) is usually not exactly p: it is the share below the chosen count,
  which the argmin chose by the share up to and including it. This is the reference's rule.
  (metaclip.curation.balance.p_to_t, used by the English data card, is a different, exact
  inversion; the worldwide recipe must use this one to select what MetaCLIP 2 selects.)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

ENGLISH = "en"
DEFAULT_T_EN = 170_000  # MetaCLIP 2's t for English in the worldwide recipe


class NoEnglishMatches(ValueError):
    """The worldwide thresholds need English matches to fix the tail share p."""


def t_to_p(counts: np.ndarray, t: float) -> float:
    """Tail share of t: the reference's t_to_p (ValueError when there is no count at all)."""
    counts = np.asarray(counts)
    total = counts.sum(dtype=np.float64)
    if total == 0:
        raise ValueError("no counts: the tail share is undefined")
    return float(counts[counts < t].sum(dtype=np.float64) / total)


def p_to_t(counts: np.ndarray, p: float) -> int:
    """The reference's p_to_t: the sorted count whose inclusive cumulative share is nearest p
    (first on a tie); 0 for an empty or all-zero language (see the module docstring)."""
    ordered = np.sort(np.asarray(counts, dtype=np.uint64))
    total = ordered.sum(dtype=np.float64)
    if not len(ordered) or total == 0:
        return 0
    portion = np.cumsum(ordered, dtype=np.float64) / total
    return int(ordered[int(np.abs(portion - p).argmin())])


def count_to_prob(counts: np.ndarray, t: float) -> np.ndarray:
    """p_e = t / max(count_e, t); for t = 0 every p_e is 0 (module docstring)."""
    counts = np.asarray(counts, dtype=np.float64)
    if t <= 0:
        return np.zeros(len(counts), dtype=np.float64)
    return t / np.maximum(counts, float(t))


def language_thresholds(
    counts: Mapping[str, np.ndarray], t_en: float
) -> tuple[float, dict[str, float]]:
    """(p, t per language) from each language's full count array (zeros included)."""
    english = counts.get(ENGLISH)
    if english is None or np.asarray(english).sum() == 0:
        raise NoEnglishMatches(
            "no text matched the English metadata: the worldwide recipe takes the tail share p "
            "from English (t_en), so it cannot set the other languages' thresholds"
        )
    p = t_to_p(english, t_en)
    ts: dict[str, float] = {}
    for language, language_counts in counts.items():
        ts[language] = t_en if language == ENGLISH else p_to_t(language_counts, p)
    return p, ts


def entry_probabilities(
    counts: np.ndarray, offsets: Mapping[str, int], ts: Mapping[str, float]
) -> np.ndarray:
    """p_e over the global id space: each language's slice (from `offsets`, in id order) with
    its own t."""
    counts = np.asarray(counts)
    probs = np.zeros(len(counts), dtype=np.float64)
    bounds = sorted(offsets.items(), key=lambda kv: kv[1])
    for i, (language, start) in enumerate(bounds):
        stop = bounds[i + 1][1] if i + 1 < len(bounds) else len(counts)
        probs[start:stop] = count_to_prob(counts[start:stop], ts[language])
    return probs


def language_spans(offsets: Mapping[str, int], n_entries: int) -> dict[str, tuple[int, int]]:
    """(first, end) global ids of each language, from the global id of its first entry."""
    bounds = sorted(offsets.items(), key=lambda kv: kv[1])
    ends = [start for _, start in bounds[1:]] + [n_entries]
    return {language: (start, end) for (language, start), end in zip(bounds, ends, strict=True)}


def counts_by_language(counts: np.ndarray, offsets: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Each language's own count array (its local ids), as `language_thresholds` reads them."""
    spans = language_spans(offsets, len(counts))
    return {language: counts[start:end] for language, (start, end) in spans.items()}
