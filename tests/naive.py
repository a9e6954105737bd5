"""Naive reference implementations of the paper's algorithm, written for clarity, not speed."""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Sequence


def naive_spacing(text: str) -> str:
    # Written independently of metaclip.matching.spacing, from the paper's description.
    out = []
    for ch in text:
        if ch in ",.;:?!`":
            out.append(f" {ch} ")
        elif ch in "\t\n\r":
            out.append(" ")
        else:
            out.append(ch)
    return " " + "".join(out) + " "


def naive_match(text: str, entries: Sequence[str]) -> list[int]:
    spaced = naive_spacing(text)
    return [i for i, entry in enumerate(entries) if f" {entry} " in spaced]


def naive_counts(matches: Iterable[Iterable[int]], n_entries: int) -> list[int]:
    counter: Counter[int] = Counter()
    for ids in matches:
        counter.update(set(ids))
    return [counter[i] for i in range(n_entries)]


def naive_keep_probability(ids: Iterable[int], counts: Sequence[int], t: float) -> float:
    miss = 1.0
    for i in ids:
        miss *= 1.0 - min(1.0, t / counts[i]) if counts[i] else 0.0
    return 1.0 - miss


# --------------------------------------------------------------------------- MetaCLIP 2 (worldwide)
# Written from MetaCLIP 2's metaclip/curation/substr_matching.py and curate.py, independently of
# metaclip.matching and metaclip.curation.thresholds.

_WIDE_PUNCTUATION = set("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")
# substr_matching.is_cjk_or_similar: CJK, then Thai, Lao, Burmese, Khmer, Tibetan.
_NO_SPACE_RANGES = [
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF),
    (0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),
]  # fmt: skip


def naive_is_cjk_or_similar(char: str) -> bool:
    if char in string.punctuation or char in _WIDE_PUNCTUATION:
        return True
    return any(low <= ord(char) <= high for low, high in _NO_SPACE_RANGES)


def naive_spaced_entry(entry: str) -> str:
    """get_spaced_metadata: a space on each side whose character is not CJK-like."""
    left = "" if naive_is_cjk_or_similar(entry[0]) else " "
    right = "" if naive_is_cjk_or_similar(entry[-1]) else " "
    return f"{left}{entry}{right}"


def naive_match_worldwide(text: str, entries: Sequence[str]) -> list[int]:
    """substr_match on count_per_shard's stripped text: every spaced entry found in it."""
    spaced = naive_spacing(text.strip())
    return [i for i, entry in enumerate(entries) if naive_spaced_entry(entry) in spaced]


def naive_t_to_p(counts: Sequence[int], t: float) -> float:
    return sum(c for c in counts if c < t) / sum(counts)


def naive_p_to_t(counts: Sequence[int], p: float) -> int:
    """curate.p_to_t: the sorted count whose inclusive cumulative share is nearest p, the first
    on a tie (numpy's argmin); an all-zero language: 0/0 everywhere, argmin 0, its smallest."""
    ordered = sorted(counts)
    total = sum(ordered)
    if total == 0:
        return ordered[0] if ordered else 0
    running, best, best_gap = 0, 0, float("inf")
    for i, count in enumerate(ordered):
        running += count
        gap = abs(running / total - p)
        if gap < best_gap:
            best, best_gap = i, gap
    return ordered[best]


def naive_language_thresholds(
    counts: dict[str, Sequence[int]], t_en: float
) -> tuple[float, dict[str, float]]:
    """curate.global_count: p from English's t_en, every other language's t from p."""
    p = naive_t_to_p(counts["en"], t_en)
    return p, {lang: t_en if lang == "en" else naive_p_to_t(c, p) for lang, c in counts.items()}


def naive_worldwide_keep_probability(ids: Iterable[int], counts: Sequence[int], t: float) -> float:
    """curate.curate: 1 - prod(1 - count_to_prob) over the text's entries of its language; a
    language whose t is 0 keeps nothing (the reference's 0 / count)."""
    miss = 1.0
    for i in ids:
        miss *= 1.0 - (t / max(counts[i], t) if t > 0 else 0.0)
    return 1.0 - miss
