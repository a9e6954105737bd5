"""MetaCLIP 2 ("worldwide") substring matching, batched and vectorised, exact.

Semantics (facebookresearch/MetaCLIP, metaclip/curation/substr_matching.py): the text is spaced
as in MetaCLIP 1 (`spacing`); each entry is padded by `get_spaced_metadata`, with a space on a
side unless the character on that side is CJK-or-similar (metaclip.matching.scripts); a text
matches an entry when the padded entry occurs in the spaced text (case-sensitive, overlapping
occurrences allowed). A text's match is the sorted set of entry ids. CJK-or-similar is the
reference's set exactly: kana and Hangul are not in it, although the feature request names them
(metaclip.matching.scripts), so "言語の" is looked for as "言語の ".

Two kinds of entries, one engine each, and the union of their hits:
- padded on both sides ("black cat" -> " black cat "): exactly MetaCLIP 1's entries, so the
  token-table `Matcher` built over just those entries (its ids mapped back to ours);
- anchored: at least one side unpadded ("猫", "'hood " or " april fools'"). Every occurrence of
  such a key holds its unpadded end character (the anchor, CJK-or-similar) at a known place, so
  a key is looked up from its anchor: keys that start with their anchor go into a forward trie,
  walked rightwards from every position holding a first character; the others (padded on the
  left only) into a trie of reversed keys, walked leftwards from every position holding a last
  character. A trie is numpy arrays (a table of the root's children by code point, a hash table
  of the other edges, the key ending at each node), and all texts of a batch are walked at once,
  one vectorised step per character of depth, over the code points of their spaced forms joined
  with NUL: no key holds NUL, so no walk leaves its text. Only texts holding an anchor are
  walked (a test on their UTF-8 bytes).
  Not pyahocorasick: its nodes look their children up one by one, and with a Chinese list the
  root has thousands of children: in bench/bench_match_worldwide.py (413k entries), the
  reference automaton matched about 13k texts of 20 characters a second, ours about 19x more.

Exact except where the reference cannot be followed or is not followed on purpose:
- empty entries are skipped (the reference fails on them; built metadata has none);
- an entry holding NUL or SOH never matches: NUL separates texts and a text's NUL is read as SOH,
  as in `Matcher` (real metadata holds neither);
- an entry listed twice matches with both ids, as `Matcher` does. The reference's automaton keeps
  only the last id of a repeated key (add_word replaces the value): its results differ only
  there, and the benchmark's lists have no repeats.
Keys that cannot occur in any spaced text (holding a tab, or , . ; : ? ! ` not between spaces)
are dropped at build: that changes no result.

Persistence: `save` writes one `Matcher` cache set, the padded entries' matcher with the tries'
arrays added to its npz, so the set is written and checked exactly as `Matcher.save` and
`Matcher.load` do (metaclip.matching.integrity: sha256 manifest, ownership; nothing unpickled).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from metaclip.matching.integrity import DamagedCacheError
from metaclip.matching.matcher import (
    CHARS_TO_SPACE,
    PUNCTS_TO_WRAP,
    SEP,
    SEP_STANDIN,
    BatchMatching,
    KeyTable,
    Matcher,
    _csr_unique,
    _spaced_inner,
)
from metaclip.matching.scripts import cjk_or_similar_mask

FORMAT = 1  # of the arrays below, stored with them
CODE_BITS = 21  # an edge's hash key is (parent node << CODE_BITS) | code point
_EMPTY = np.zeros(0, np.int64)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
_NO_CODE = -1

_wrap = re.escape("".join(PUNCTS_TO_WRAP))
_NEVER_SPACED = re.compile(f"[{''.join(CHARS_TO_SPACE)}]|[^ ][{_wrap}]|[{_wrap}][^ ]")


def can_occur(key: str) -> bool:
    """False for a padded key that no spaced text holds: spacing leaves no tab, newline or
    carriage return, and puts a space on each side of every , . ; : ? ! `."""
    return not _NEVER_SPACED.search(key)


class EdgeTable:
    """Hash table (open addressing, linear probing) from int64 codes to int32 values, held in
    arrays: vectorised lookups, and nothing to rebuild after a load."""

    def __init__(self, codes: np.ndarray, values: np.ndarray) -> None:
        size = len(codes)
        # Lookups stop at an empty slot: without one, a missing code would be probed forever.
        if size < 2 or size & (size - 1) or not (codes == _NO_CODE).any():
            raise ValueError("an edge table needs a power-of-two size and an empty slot")
        self.codes = codes  # _NO_CODE in empty slots
        self.values = values
        self.mask = len(codes) - 1
        self.shift = np.uint64(64 - (len(codes).bit_length() - 1))

    @classmethod
    def build(cls, codes: np.ndarray, values: np.ndarray) -> EdgeTable:
        size = 2
        while size < 2 * len(codes):  # load factor at most 1/2
            size *= 2
        table = cls(np.full(size, _NO_CODE, np.int64), np.full(size, -1, np.int32))
        slots, todo = table._slots(codes), np.arange(len(codes))
        while len(todo):  # each round, every key takes its slot if free; the others probe on
            free = table.codes[slots] == _NO_CODE
            taken, first = np.unique(slots[free], return_index=True)
            placed = todo[free][first]
            table.codes[taken], table.values[taken] = codes[placed], values[placed]
            left = ~np.isin(todo, placed)
            todo, slots = todo[left], (slots[left] + 1) & table.mask
        return table

    def _slots(self, codes: np.ndarray) -> np.ndarray:
        return ((codes.astype(np.uint64) * _GOLDEN) >> self.shift).astype(np.int64)

    def get(self, codes: np.ndarray) -> np.ndarray:
        """The value of each code, -1 where absent."""
        found = np.full(len(codes), -1, np.int32)
        slots, todo = self._slots(codes), np.arange(len(codes))
        while len(todo):
            stored = self.codes[slots]
            hit = stored == codes
            found[todo[hit]] = self.values[slots[hit]]
            probe = ~hit & (stored != _NO_CODE)
            todo, codes, slots = todo[probe], codes[probe], (slots[probe] + 1) & self.mask
        return found

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.values.nbytes


class Trie:
    """The anchored keys read from their anchor: forward, or backward (keys reversed)."""

    def __init__(self, arrays: dict[str, np.ndarray], backward: bool) -> None:
        self.arrays = arrays
        self.backward = backward
        self.root = arrays["root"]  # node of each first code point (-1: none), plus a last -1
        self.edges = EdgeTable(arrays["edge_codes"], arrays["edge_nodes"])
        self.node_key = arrays["node_key"]  # key index ending at each node, -1: none
        self.has_children = arrays["has_children"]
        self.keys = KeyTable(arrays["key_offsets"], arrays["key_entries"])

    @classmethod
    def build(cls, keys: dict[str, list[int]], backward: bool) -> Trie:
        edges: dict[int, int] = {}
        node_key = [-1]  # node 0 is the root
        for index, key in enumerate(keys):
            node = 0
            for char in reversed(key) if backward else key:
                code = (node << CODE_BITS) | ord(char)
                node = edges.setdefault(code, len(node_key))
                if node == len(node_key):
                    node_key.append(-1)
            node_key[node] = index
        codes = np.fromiter(edges, dtype=np.int64, count=len(edges))
        nodes = np.fromiter(edges.values(), dtype=np.int32, count=len(edges))
        parents = codes >> CODE_BITS
        first = parents == 0
        root = np.full(int(codes[first].max(initial=-1)) + 2, -1, np.int32)
        root[codes[first]] = nodes[first]
        has_children = np.zeros(len(node_key), bool)
        has_children[parents[~first]] = True
        edge_table = EdgeTable.build(codes[~first], nodes[~first])
        key_table = KeyTable.from_members(list(keys.values()))
        arrays = {
            "root": root,
            "edge_codes": edge_table.codes,
            "edge_nodes": edge_table.values,
            "node_key": np.array(node_key, dtype=np.int32),
            "has_children": has_children,
            "key_offsets": key_table.offsets,
            "key_entries": key_table.entries,
        }
        return cls(arrays, backward)

    def anchors(self) -> np.ndarray:
        """The code points a key of this trie can be anchored on."""
        return np.flatnonzero(self.root >= 0)

    def occurrences(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(anchor position, key index) of every occurrence of a key in `codes`, which must
        start and end with NUL (so that every walk ends inside the array)."""
        node = self.root[np.minimum(codes, len(self.root) - 1)]
        at = np.flatnonzero(node >= 0)
        node = node[at]
        step = -1 if self.backward else 1
        found_at, found_key, depth = [_EMPTY], [_EMPTY], 1
        while len(at):
            key = self.node_key[node]
            ended = key >= 0
            found_at.append(at[ended])
            found_key.append(key[ended])
            more = self.has_children[node]
            at, node = at[more], node[more]
            node = self.edges.get((node.astype(np.int64) << CODE_BITS) | codes[at + step * depth])
            found = node >= 0
            at, node = at[found], node[found]
            depth += 1
        return np.concatenate(found_at), np.concatenate(found_key).astype(np.int64)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values()) + _single_nbytes(self.keys)


class WorldwideMatcher(BatchMatching):
    """Matches texts against one language's metadata entries; entry ids are list positions.

    Give match_arrow large batches: the padded entries' `Matcher` has a fixed cost per call (it
    builds Arrow hash sets over its whole vocabulary each time)."""

    def __init__(
        self, n_entries: int, padded: Matcher, padded_ids: np.ndarray, tries: Sequence[Trie]
    ) -> None:
        self.n_entries = n_entries
        self.padded = padded  # the entries padded on both sides
        self.padded_ids = padded_ids  # our id of each of `padded`'s entries, increasing
        self.tries = tries  # forward, backward
        # First UTF-8 byte of each anchor: a text without any holds no anchored key.
        self.anchor_bytes = np.zeros(256, bool)
        for trie in tries:
            self.anchor_bytes[[chr(c).encode()[0] for c in trie.anchors()]] = True

    @classmethod
    def build(cls, entries: Sequence[str]) -> WorldwideMatcher:
        padded_ids, forward, backward = _group_entries(entries)
        padded = Matcher.build([entries[i] for i in padded_ids])
        tries = [Trie.build(forward, backward=False), Trie.build(backward, backward=True)]
        return cls(len(entries), padded, np.array(padded_ids, dtype=np.int64), tries)

    @property
    def nbytes(self) -> int:
        """About the memory the matcher holds (its arrays and automaton), for cache bounds."""
        padded = self.padded
        size = sum(a.nbytes for a in padded.arrays.values()) + padded.vocab.nbytes
        size += sum(map(_single_nbytes, (padded.unigrams, padded.bigrams, padded.long)))
        if padded.automaton is not None:
            size += padded.automaton.get_stats()["total_size"]
        return size + self.padded_ids.nbytes + sum(t.nbytes for t in self.tries)

    # -- matching -----------------------------------------------------------------------------

    def _match_chunk(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        n_rows = len(texts)
        offsets, ids = np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int32)
        if self.padded.n_entries:
            offsets, ids = self.padded._match_chunk(texts)
            ids = self.padded_ids[ids]
        rows, anchored = self._anchored_hits(texts)
        if len(rows) == 0:
            return offsets, ids.astype(np.int32)
        extra_offsets, extra_ids = _csr_unique(rows, anchored, n_rows, self.n_entries)
        return _merge_disjoint(offsets, ids, extra_offsets, extra_ids, self.n_entries)

    def _anchored_hits(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(row, entry id) of every occurrence of an anchored key."""
        candidates = _rows_with_bytes(texts, self.anchor_bytes)
        if len(candidates) == 0:
            return _EMPTY, _EMPTY
        spaced = _spaced_inner(texts.take(pa.array(candidates))).to_pylist()
        # NUL, then each spaced text (" text ") followed by NUL.
        joined = f"{SEP} {f' {SEP} '.join(spaced)} {SEP}"
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        separators = np.flatnonzero(codes == 0)
        rows, ids = [_EMPTY], [_EMPTY]
        for trie in self.tries:
            at, keys = trie.occurrences(codes)
            found_rows, found_ids = trie.keys.expand(
                candidates[np.searchsorted(separators, at) - 1], keys
            )
            rows.append(found_rows)
            ids.append(found_ids)
        return np.concatenate(rows), np.concatenate(ids)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the cache set at `path`, as `Matcher.save` does (module docstring)."""
        padded = self.padded
        arrays = {**padded.arrays, **self._own_arrays()}
        Matcher(padded.n_entries, padded.vocab, arrays, padded.automaton).save(path)

    @classmethod
    def load(cls, path: Path) -> WorldwideMatcher:
        """The matcher saved at `path`, checked as `Matcher.load` checks (UnsafeCacheError,
        DamagedCacheError also for a set that is not a worldwide matcher's)."""
        carrier = Matcher.load(path)
        arrays = carrier.arrays
        if "ww_format" not in arrays or int(arrays["ww_format"][0]) != FORMAT:
            raise DamagedCacheError(f"{path}: not a worldwide matcher of format {FORMAT}")
        tries = [
            Trie(_unprefixed(arrays, f"ww_{name}_"), backward=name == "backward")
            for name in ("forward", "backward")
        ]
        padded = Matcher(
            carrier.n_entries,
            carrier.vocab,
            {k: v for k, v in arrays.items() if not k.startswith("ww_")},
            carrier.automaton,
        )
        return cls(int(arrays["ww_n_entries"][0]), padded, arrays["ww_padded_ids"], tries)

    def _own_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "ww_format": np.array([FORMAT]),
            "ww_n_entries": np.array([self.n_entries]),
            "ww_padded_ids": self.padded_ids,
        }
        for name, trie in zip(("forward", "backward"), self.tries, strict=True):
            arrays.update({f"ww_{name}_{k}": v for k, v in trie.arrays.items()})
        return arrays


def _single_nbytes(table: KeyTable) -> int:
    return 0 if table.single is None else table.single.nbytes


def _unprefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def _group_entries(
    entries: Sequence[str],
) -> tuple[list[int], dict[str, list[int]], dict[str, list[int]]]:
    """Ids of the entries padded on both sides; the forward and the backward trie's keys
    (spaced entries that can occur), each with the ids of the entries it stands for."""
    ids = [i for i, entry in enumerate(entries) if entry]  # see the module docstring
    firsts = cjk_or_similar_mask(np.fromiter((ord(entries[i][0]) for i in ids), np.int64))
    lasts = cjk_or_similar_mask(np.fromiter((ord(entries[i][-1]) for i in ids), np.int64))
    padded: list[int] = []
    forward: dict[str, list[int]] = {}
    backward: dict[str, list[int]] = {}
    for entry_id, first, last in zip(ids, firsts.tolist(), lasts.tolist(), strict=True):
        if not (first or last):
            padded.append(entry_id)
            continue
        key = f"{'' if first else ' '}{entries[entry_id]}{'' if last else ' '}"
        if SEP in key or SEP_STANDIN in key or not can_occur(key):
            continue
        (forward if first else backward).setdefault(key, []).append(entry_id)
    return padded, forward, backward


def _rows_with_bytes(texts: pa.Array, wanted: np.ndarray) -> np.ndarray:
    """Rows whose UTF-8 data holds a byte flagged in `wanted` (256 booleans)."""
    if len(texts) == 0 or not wanted.any():
        return _EMPTY
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buf or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    flagged = np.append(wanted[data], False)  # the extra False: reduceat needs starts < size
    starts = (offsets[:-1] - offsets[0]).astype(np.int64)
    has_any = np.logical_or.reduceat(flagged, starts) & (np.diff(offsets) > 0)
    return np.flatnonzero(has_any)


def _merge_disjoint(
    offsets_a: np.ndarray,
    ids_a: np.ndarray,
    offsets_b: np.ndarray,
    ids_b: np.ndarray,
    n_entries: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One CSR of two whose rows hold sorted, disjoint ids (the two kinds of entries)."""
    width = max(n_entries, 1)
    n_rows = len(offsets_a) - 1
    keys_a = np.repeat(np.arange(n_rows), np.diff(offsets_a)) * width + ids_a
    keys_b = np.repeat(np.arange(n_rows), np.diff(offsets_b)) * width + ids_b
    where_b = np.searchsorted(keys_a, keys_b) + np.arange(len(keys_b))
    merged = np.empty(len(keys_a) + len(keys_b), np.int32)
    from_b = np.zeros(len(merged), bool)
    from_b[where_b] = True
    merged[where_b] = ids_b
    merged[~from_b] = ids_a
    return offsets_a + offsets_b, merged
