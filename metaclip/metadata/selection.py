"""One Wikipedia's entry list selected as MetaCLIP 2's build_metadata.py selects it, and the union
of a language's Wikipedias (align_lid_to_wiki.py).

A list starts with the seeds "0" to "99", then takes, each source in turn and in its rank order:
1. WordNet (the OMW lemmas, in code-point order): every one;
2. unigrams (by count, ties by code point): until `unigram_cap` have been added;
3. bigrams with PMI strictly above `min_bigram_pmi` (by PMI): until `bigram_cap` have been added,
   the two words joined without a space in a language written without spaces;
4. titles (by summed page views): until `title_cap` have been added.
Each candidate is stripped and skipped when empty, punctuation only or (except WordNet's, as in
the reference) longer than `max_length`; one already in the list is skipped too. Only entries
new to the list count toward a cap, and, as in the reference's loop, the cap is checked after an
entry is added: a cap of 0 still lets a source's first new entry in.

The caps (Caps, with the reference's values as defaults):
- unigrams: min(max_unigrams, int(distinct unigrams of the Wikipedia * unigram_fraction));
- bigrams: min(max_bigrams, int(unigrams added * bigram_fraction)). This is MetaCLIP 2's
  documented rule (docs/metaclip2.md: "40% of number of unigrams"); its code caps bigrams by
  min(100,646, number of distinct bigrams) instead, which, the candidates being those above the
  PMI threshold, lets every one in;
- titles: min(max_titles, int(distinct titles of the Wikipedia * title_fraction)).

A language made of several Wikipedias (zh: zh, zh_classical, zh_min_nan, zh_yue) is its own
Wikipedia's list followed by each other one's entries not yet in it, in order (the reference
takes the set union, in no particular order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from metaclip.metadata.text import SEED_ENTRIES, is_punctuation_only

ORDER = ("wordnet", "unigram", "bigram", "title")


@dataclass(frozen=True)
class Caps:
    """MetaCLIP 2's per-language bounds (build_metadata.py), as the defaults."""

    unigram_fraction: float = 0.1
    max_unigrams: int = 251_465
    bigram_fraction: float = 0.4
    max_bigrams: int = 100_646
    title_fraction: float = 0.76
    max_titles: int = 61_235
    min_bigram_pmi: float = 30.0
    max_length: int = 256

    def unigram_cap(self, distinct_unigrams: int) -> int:
        return min(self.max_unigrams, int(distinct_unigrams * self.unigram_fraction))

    def bigram_cap(self, unigrams_added: int) -> int:
        return min(self.max_bigrams, int(unigrams_added * self.bigram_fraction))

    def title_cap(self, distinct_titles: int) -> int:
        return min(self.max_titles, int(distinct_titles * self.title_fraction))


@dataclass
class Block:
    """What one source did to a list: its cap, the valid candidates it looked at (until its
    cap was reached), those dropped as invalid, and the entries it added."""

    source: str
    first_id: int
    cap: int | None = None
    looked_at: set[str] = field(default_factory=set)
    dropped: int = 0
    added: int = 0
    capped: bool = False


@dataclass(frozen=True)
class Candidates:
    """A Wikipedia's sources in rank order (iterables: read only as far as needed), with the
    distinct counts the caps are fractions of."""

    wordnet: Iterable[str] = ()
    unigrams: Iterable[str] = ()
    distinct_unigrams: int = 0
    bigrams: Iterable[tuple[str, float]] = ()  # ("w1 w2", pmi)
    titles: Iterable[str] = ()
    distinct_titles: int = 0


@dataclass
class Selection:
    entries: list[str]
    blocks: list[Block]


def _valid(raw: str, max_length: int | None) -> str | None:
    entry = raw.strip()
    if not entry or (max_length is not None and len(entry) > max_length):
        return None
    return None if is_punctuation_only(entry) else entry


def _take(
    block: Block, candidates: Iterable[str], chosen: dict[str, None], max_length: int | None
) -> None:
    for raw in candidates:
        entry = _valid(raw, max_length)
        if entry is None:
            block.dropped += 1
            continue
        block.looked_at.add(entry)
        if entry in chosen:
            continue
        chosen[entry] = None
        block.added += 1
        if block.cap is not None and block.added >= block.cap:
            block.capped = True
            break


def _bigram_entries(
    bigrams: Iterable[tuple[str, float]], min_pmi: float, joined: bool
) -> Iterator[str]:
    for entry, pmi in bigrams:
        if pmi > min_pmi:
            yield "".join(entry.split(" ")) if joined else entry


def select_wiki(candidates: Candidates, caps: Caps, no_space: bool) -> Selection:
    """A Wikipedia's list (module docstring); `no_space`: its bigrams are joined."""
    chosen: dict[str, None] = dict.fromkeys(SEED_ENTRIES)
    blocks = [Block("seeds", 0, added=len(chosen))]

    def run(source: str, items: Iterable[str], cap: int | None, max_length: int | None) -> None:
        blocks.append(Block(source, len(chosen), cap))
        _take(blocks[-1], items, chosen, max_length)

    run("wordnet", candidates.wordnet, None, None)
    run("unigram", candidates.unigrams, caps.unigram_cap(candidates.distinct_unigrams),
        caps.max_length)  # fmt: skip
    bigrams = _bigram_entries(candidates.bigrams, caps.min_bigram_pmi, no_space)
    run("bigram", bigrams, caps.bigram_cap(blocks[-1].added), caps.max_length)
    run("title", candidates.titles, caps.title_cap(candidates.distinct_titles), caps.max_length)
    return Selection(list(chosen), blocks)


@dataclass(frozen=True)
class UnionBlock:
    """Entries a Wikipedia's source added to the language's list."""

    wiki: str
    source: str
    first_id: int
    entries: int


def union(selections: Sequence[tuple[str, Selection]]) -> tuple[list[str], list[UnionBlock]]:
    """The language's list: the first Wikipedia's, then each other's new entries, in order."""
    entries: list[str] = []
    seen: set[str] = set()
    blocks: list[UnionBlock] = []
    for wiki, selection in selections:
        start = 0
        for block in selection.blocks:
            first = len(entries)
            for entry in selection.entries[start : start + block.added]:
                if entry not in seen:
                    seen.add(entry)
                    entries.append(entry)
            start += block.added
            blocks.append(UnionBlock(wiki, block.source, first, len(entries) - first))
    return entries, blocks
