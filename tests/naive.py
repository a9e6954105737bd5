"""Naive reference implementations of the paper's algorithm, written for clarity, not speed."""

from __future__ import annotations

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
