"""MetaCLIP substring matching, batched and vectorised, exact.

Semantics (MetaCLIP's `spacing` + `substr_matching`): the text is padded with one space on each
side, each of , . ; : ? ! ` is wrapped in spaces, tab/newline/CR become spaces; every entry is
padded as " entry "; matching is case-sensitive and finds all overlapping occurrences; a text's
match is the sorted set of entry ids.

Because both sides are space-padded, " e " occurs in the spaced text exactly when the tokens of
e (e.split(" ")) occur as consecutive tokens of the spaced text (split on single spaces). So:
- one-token entries ("cat": most entries, most hits) are a hash lookup of every token (Arrow),
- two-token entries ("black cat") are a hash lookup of every adjacent token-id pair,
- longer entries go to a pyahocorasick automaton, walked only over the texts that contain one
  of their first token pairs (a necessary condition), joined with NUL separators into one
  string: no entry holds NUL, so no hit spans two texts. NUL inside a text becomes SOH first,
  which no entry holds either, so matches are unchanged.

Matcher.save and Matcher.load write and read the disk cache set of a matcher; what makes a set
trusted (the sha256 manifest, ownership) is metaclip.matching.integrity.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from metaclip.matching.integrity import (
    MANIFEST_FORMAT,
    DamagedCacheError,
    UnsafeCacheError,
    _file_problem,
    _make_private_dirs,
    _manifest_path,
    _read_manifest,
    _set_paths,
    _sha256_file,
    _verified_bytes,
    cache_dir_problem,
)

PUNCTS_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
CHARS_TO_SPACE = ("\t", "\n", "\r")
SEP = "\x00"
SEP_STANDIN = "\x01"
DEFAULT_BATCH_CHARS = 32_000_000  # bounds one batch's joined string and hit arrays


def spacing(text: str) -> str:
    """MetaCLIP's text normalisation before matching."""
    spaced = f" {text} "
    for punct in PUNCTS_TO_WRAP:
        spaced = spaced.replace(punct, f" {punct} ")
    for char in CHARS_TO_SPACE:
        spaced = spaced.replace(char, " ")
    return spaced


def _spaced_inner(texts: pa.Array) -> pa.Array:
    """spacing() without the two padding spaces, for a whole Arrow array at once.

    A pass runs only for characters present (all are ASCII, so a byte search of the UTF-8 data
    tells exactly which occur). The punctuation is wrapped in one regex pass: each
    replacement inserts spaces only, so replacing them all at once equals replacing them one
    after the other.
    """
    out = texts.fill_null("")
    present = _bytes_present(out, SEP + "".join(PUNCTS_TO_WRAP) + "".join(CHARS_TO_SPACE))
    if SEP in present:
        out = pc.replace_substring(out, SEP, SEP_STANDIN)
    puncts = [p for p in PUNCTS_TO_WRAP if p in present]
    if len(puncts) == 1:
        out = pc.replace_substring(out, puncts[0], f" {puncts[0]} ")
    elif puncts:
        out = pc.replace_substring_regex(out, _PUNCT_CLASS, r" \0 ")
    for char in CHARS_TO_SPACE:
        if char in present:
            out = pc.replace_substring(out, char, " ")
    return out


_PUNCT_CLASS = "[" + "".join("\\" + p for p in PUNCTS_TO_WRAP) + "]"  # RE2, each escaped


def _tokens(inner: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The tokens of every text split on single spaces (as str.split(" "), empty tokens between
    two spaces included), each with a trailing space, and the row of each token.

    With one space appended to every text, the tokens are exactly the runs of the text bytes
    that end with a space: their offsets are the space positions, and the array is a view on
    the texts' own bytes (nothing is copied, unlike pc.split_pattern). A space byte is never
    part of a multi-byte UTF-8 character.
    """
    empty, space = pa.scalar("", inner.type), pa.scalar(" ", inner.type)
    padded = pc.binary_join_element_wise(inner, empty, space)  # inner + " " + ""
    if len(padded) == 0:
        return pa.array([], padded.type), np.zeros(0, dtype=np.int64)
    width = np.int64 if pa.types.is_large_string(padded.type) else np.int32
    _, offsets_buf, data_buf = padded.buffers()
    start = padded.offset
    offsets = np.frombuffer(offsets_buf, dtype=width)[start : start + len(padded) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    ends = np.flatnonzero(data == 32).astype(width) + (offsets[0] + 1)
    token_offsets = np.concatenate([offsets[:1], ends])
    tokens = pa.Array.from_buffers(
        padded.type, len(ends), [None, pa.py_buffer(token_offsets), data_buf]
    )
    per_text = np.diff(np.searchsorted(ends, offsets, side="right"))
    return tokens, np.repeat(np.arange(len(padded)), per_text)


def _bytes_present(texts: pa.Array, candidates: str) -> set[str]:
    """Which of the (ASCII) candidate characters occur in the string array's data: one memchr
    pass over the UTF-8 bytes per candidate (no UTF-8 byte of another character equals an ASCII
    one)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if len(texts) == 0:
        return set()
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)[texts.offset : texts.offset + len(texts) + 1]
    data = memoryview(data_buf or b"")[int(offsets[0]) : int(offsets[-1])].tobytes()
    return {char for char in candidates if char.encode("ascii") in data}


class KeyTable:
    """For each key index, the entry ids it stands for (none, one, or duplicates)."""

    def __init__(self, offsets: np.ndarray, entries: np.ndarray) -> None:
        self.offsets = offsets
        self.entries = entries
        sizes = np.diff(offsets)
        # Without duplicates a key has at most one entry: a plain lookup array (-1: none).
        self.single: np.ndarray | None = None
        if not len(sizes) or sizes.max() <= 1:
            self.single = np.full(len(sizes), -1, dtype=np.int64)
            self.single[sizes == 1] = entries[offsets[:-1][sizes == 1]]

    @classmethod
    def from_members(cls, members: Sequence[Sequence[int]]) -> KeyTable:
        sizes = np.fromiter(map(len, members), dtype=np.int64, count=len(members))
        offsets = np.zeros(len(members) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        flat = np.fromiter(itertools.chain.from_iterable(members), dtype=np.int32)
        return cls(offsets, flat)

    def expand(self, rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, key) hits to (row, entry id) hits."""
        if self.single is not None:
            ids = self.single[keys]
            found = ids >= 0
            return rows[found], ids[found]
        starts = self.offsets[keys]
        sizes = self.offsets[keys + 1] - starts
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        ids = self.entries[np.repeat(starts, sizes) + within].astype(np.int64)
        return np.repeat(rows, sizes), ids

    def n_keys_with_duplicates(self) -> int:
        return int(np.count_nonzero(np.diff(self.offsets) > 1))


_EMPTY = np.zeros(0, np.int64)


class BatchMatching:
    """match, match_batch and match_arrow over a `_match_chunk(texts) -> CSR` of the subclass,
    in slices of about `batch_chars` characters."""

    def _match_chunk(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def match(self, text: str) -> list[int]:
        """Sorted distinct entry ids matched in one text."""
        return self.match_arrow(pa.array([text], type=pa.string()))[0].as_py()

    def match_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """CSR of the matches: offsets (n+1) and int32 entry ids, sorted within each row."""
        return self._match_chunk(pa.array(texts, type=pa.string()))

    def match_arrow(
        self, texts: pa.Array | pa.ChunkedArray, batch_chars: int = DEFAULT_BATCH_CHARS
    ) -> pa.ListArray:
        """Entry ids of every text as an Arrow list<int32> array (empty list: no match, as for
        a null text)."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        if pa.types.is_null(texts.type):  # pa.array([]) or all None
            texts = texts.cast(pa.string())
        offsets_parts, ids_parts, base = [], [], 0
        for chunk in _chunks_by_chars(texts, batch_chars):
            offsets, ids = self._match_chunk(chunk)
            offsets_parts.append(offsets[:-1] + base)
            ids_parts.append(ids)
            base += len(ids)
        offsets_parts.append(np.array([base], dtype=np.int64))
        offsets = pa.array(np.concatenate(offsets_parts).astype(np.int32))
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
        return pa.ListArray.from_arrays(offsets, pa.array(ids, type=pa.int32()))


class Matcher(BatchMatching):
    """Matches texts against a metadata entry list; entry ids are positions in that list."""

    def __init__(
        self,
        n_entries: int,
        vocab: pa.Array,
        arrays: dict[str, np.ndarray],
        automaton: ahocorasick.Automaton | None,
    ) -> None:
        self.n_entries = n_entries
        self.vocab = vocab  # every token of every entry; a token's id is its position
        self._vocab_spaced: pa.Array | None = None  # the same, each with a trailing space
        self.arrays = arrays
        self.width = np.int64(max(len(vocab), 1))  # pair key = first id * width + second id
        self.unigrams = KeyTable(arrays["uni_offsets"], arrays["uni_entries"])
        self.bigram_keys = pa.array(arrays["bi_keys"])
        self.bigrams = KeyTable(arrays["bi_offsets"], arrays["bi_entries"])
        self.long_prefixes = pa.array(arrays["long_prefixes"])
        self.automaton = automaton
        self.long = KeyTable(arrays["long_offsets"], arrays["long_entries"])

    @property
    def has_duplicates(self) -> bool:
        tables = (self.unigrams, self.bigrams, self.long)
        return any(t.n_keys_with_duplicates() for t in tables)

    @classmethod
    def build(cls, entries: Sequence[str]) -> Matcher:
        vocab: dict[str, int] = {}
        uni: dict[int, list[int]] = {}
        bi: dict[tuple[int, int], list[int]] = {}
        long: dict[str, list[int]] = {}
        for entry_id, entry in enumerate(entries):
            if SEP in entry or SEP_STANDIN in entry:
                continue  # control characters never occur in real metadata; see module doc
            ids = [vocab.setdefault(tok, len(vocab)) for tok in entry.split(" ")]
            if len(ids) == 1:
                uni.setdefault(ids[0], []).append(entry_id)
            elif len(ids) == 2:
                bi.setdefault((ids[0], ids[1]), []).append(entry_id)
            else:
                long.setdefault(entry, []).append(entry_id)
        width = max(len(vocab), 1)
        if width**3 >= 2**63:  # triple keys must fit int64: about 2 million distinct tokens
            raise ValueError(f"metadata has too many distinct tokens ({width:,})")
        automaton, prefixes = None, set()
        if long:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for k, phrase in enumerate(long):
                automaton.add_word(f" {phrase} ", k)
                first, second, third = (vocab[tok] for tok in phrase.split(" ")[:3])
                prefixes.add((first * width + second) * width + third)
            automaton.make_automaton()
        uni_table = KeyTable.from_members([uni.get(i, []) for i in range(len(vocab))])
        bi_table = KeyTable.from_members(list(bi.values()))
        long_table = KeyTable.from_members(list(long.values()))
        arrays = {
            "n_entries": np.array([len(entries)]),
            "uni_offsets": uni_table.offsets,
            "uni_entries": uni_table.entries,
            "bi_keys": np.array([a * width + b for a, b in bi], dtype=np.int64),
            "bi_offsets": bi_table.offsets,
            "bi_entries": bi_table.entries,
            "long_prefixes": np.array(sorted(prefixes), dtype=np.int64),
            "long_offsets": long_table.offsets,
            "long_entries": long_table.entries,
        }
        return cls(len(entries), pa.array(list(vocab), type=pa.string()), arrays, automaton)

    # -- matching (match, match_batch, match_arrow: BatchMatching) ----------------------------

    def _match_chunk(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        inner = _spaced_inner(texts)
        tokens, rows = _tokens(inner)
        ids = self._token_ids(tokens)
        known = ids >= 0
        hits = [self.unigrams.expand(rows[known], ids[known])]
        pair_rows, pairs, pair_at = self._adjacent_pairs(rows, ids)
        hits.append(_lookup(self.bigrams, self.bigram_keys, pair_rows, pairs))
        hits.append(self._long_hits(inner, rows, ids, pairs, pair_at))
        return _csr_unique(
            np.concatenate([h[0] for h in hits]),
            np.concatenate([h[1] for h in hits]),
            len(texts),
            self.n_entries,
        )

    def _token_ids(self, tokens: pa.Array) -> np.ndarray:
        """Each token's vocabulary id (-1: not in the vocabulary).

        The batch's distinct tokens are looked up in the vocabulary, not the other way round:
        Arrow builds a hash table of the value set at every call, and the vocabulary (300k
        tokens for a 500k-entry metadata) costs more to hash than a batch's distinct tokens.
        """
        if self._vocab_spaced is None:  # tokens come with their trailing space (_tokens)
            self._vocab_spaced = pc.binary_join_element_wise(self.vocab, "", " ")
        encoded = pc.dictionary_encode(tokens)
        distinct = encoded.dictionary
        where = pc.index_in(self._vocab_spaced, value_set=distinct)  # vocab pos -> distinct
        in_vocab = where.is_valid().to_numpy(zero_copy_only=False)
        positions = where.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        ids = np.full(len(distinct) + 1, -1, dtype=np.int64)  # [-1]: null tokens (none)
        ids[positions[in_vocab]] = np.flatnonzero(in_vocab)
        indices = encoded.indices.fill_null(len(distinct))
        return ids[indices.to_numpy(zero_copy_only=False).astype(np.int64)]

    def _adjacent_pairs(self, rows: np.ndarray, ids: np.ndarray):
        """Each pair of known adjacent tokens: row, key (first * width + second), position."""
        ok = (rows[:-1] == rows[1:]) & (ids[:-1] >= 0) & (ids[1:] >= 0)
        at = np.flatnonzero(ok)
        return rows[at], ids[at] * self.width + ids[at + 1], at

    def _long_hits(
        self,
        inner: pa.Array,
        rows: np.ndarray,
        ids: np.ndarray,
        pairs: np.ndarray,
        pair_at: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Entries of three or more tokens: the automaton, over candidate texts only.

        A text is a candidate when it holds some long entry's first three tokens in a row.
        """
        if self.automaton is None or len(pairs) == 0:
            return _EMPTY, _EMPTY
        third = pair_at + 2
        ok = third < len(ids)
        at, pairs, third = pair_at[ok], pairs[ok], third[ok]
        ok = (rows[third] == rows[at]) & (ids[third] >= 0)
        triples = pairs[ok] * self.width + ids[third[ok]]
        is_candidate = pc.is_in(pa.array(triples), value_set=self.long_prefixes)
        candidates = np.unique(rows[at[ok]][is_candidate.to_numpy(zero_copy_only=False)])
        if len(candidates) == 0:
            return _EMPTY, _EMPTY
        # Spacing commutes with concatenation: joining spaced texts = spacing the join.
        chosen = inner.take(pa.array(candidates)).to_pylist()
        big = f" {f' {SEP} '.join(chosen)} "
        found = np.fromiter(
            itertools.chain.from_iterable(self.automaton.iter(big)), dtype=np.int64
        ).reshape(-1, 2)
        codepoints = np.frombuffer(big.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        which = np.searchsorted(np.flatnonzero(codepoints == 0), found[:, 0])
        return self.long.expand(candidates[which], found[:, 1])

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write tables (`path`, npz), vocabulary (`.vocab`) and automaton (`.ac`), writable by
        their owner only (0644, in a 0700 folder when save creates it), then, last, the
        manifest of their sha256s: its presence, with every hash matching, means the set is
        complete and untouched."""
        _make_private_dirs(path.parent)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        written: dict[str, Path] = {"npz": Path(f"{tmp}.npz"), "vocab": Path(f"{tmp}.vocab")}
        try:
            feather.write_feather(pa.table({"token": self.vocab}), str(written["vocab"]))
            with open(written["npz"], "wb") as fh:
                np.savez(fh, **self.arrays)
            if self.automaton is not None:
                written["ac"] = Path(f"{tmp}.ac")
                self.automaton.save(str(written["ac"]))
            hashes = {}
            for name, file in written.items():
                os.chmod(file, 0o644)
                hashes[name] = _sha256_file(file)
            manifest = _manifest_path(path)
            manifest.unlink(missing_ok=True)  # the set is incomplete from here on
            targets = _set_paths(path)
            if self.automaton is None:
                targets["ac"].unlink(missing_ok=True)
            for name, file in written.items():
                os.replace(file, targets[name])
            body = {"format": MANIFEST_FORMAT, "sha256": hashes}
            tmp_manifest = Path(f"{tmp}.manifest")
            tmp_manifest.write_text(json.dumps(body, sort_keys=True))
            os.chmod(tmp_manifest, 0o644)
            os.replace(tmp_manifest, manifest)  # last
        finally:
            for file in [*written.values(), Path(f"{tmp}.manifest")]:
                file.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> Matcher:
        """The matcher saved at `path`. UnsafeCacheError when another user could have written
        the set (nothing is read), DamagedCacheError when a file does not match the manifest
        (checked before any file is parsed)."""
        unsafe = cache_dir_problem(path.parent)
        if unsafe:
            raise UnsafeCacheError(unsafe)
        paths = _set_paths(path)
        for file in [_manifest_path(path), *paths.values()]:
            unsafe = _file_problem(file)
            if unsafe:
                raise UnsafeCacheError(unsafe)
        expected = _read_manifest(path)
        blobs: dict[str, bytes] = {}
        for name in ("npz", "vocab"):
            blobs[name] = _verified_bytes(paths[name], expected.get(name))
        if "ac" in expected:
            _verified_bytes(paths["ac"], expected["ac"], keep=False)
        with np.load(io.BytesIO(blobs["npz"]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        vocab = feather.read_table(pa.BufferReader(blobs["vocab"]))["token"].combine_chunks()
        needs_automaton = len(arrays["long_offsets"]) > 1
        if needs_automaton != ("ac" in expected):
            raise DamagedCacheError(f"{path}: the manifest and the tables disagree")
        automaton = None
        if needs_automaton:
            automaton = ahocorasick.load(str(paths["ac"]), lambda b: b)
        return cls(int(arrays["n_entries"][0]), vocab, arrays, automaton)


def _lookup(
    table: KeyTable, keys: pa.Array, rows: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hits of the queries found among the keys (Arrow hash lookup)."""
    if len(keys) == 0 or len(queries) == 0:
        return _EMPTY, _EMPTY
    found = pc.index_in(pa.array(queries), value_set=keys)
    mask = found.is_valid().to_numpy(zero_copy_only=False)
    where = found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return table.expand(rows[mask], where[mask])


def _chunks_by_chars(texts: pa.Array, limit: int) -> Iterator[pa.Array]:
    """Consecutive slices of about `limit` characters each (at least one text per slice)."""
    if len(texts) == 0:
        yield texts
        return
    ends = np.cumsum(pc.utf8_length(texts.fill_null("")).to_numpy(zero_copy_only=False) + 3)
    start = 0
    while start < len(texts):
        consumed = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, consumed + limit, side="right")), start + 1)
        yield texts.slice(start, stop - start)
        start = stop


def _csr_unique(
    rows: np.ndarray, entries: np.ndarray, n_rows: int, n_entries: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (row, entry) pairs sorted by row then entry, as CSR."""
    width = max(n_entries, 1)
    # The hits come as runs already sorted by row (one per kind of entry): a stable sort
    # (timsort) merges such runs 4x faster than the default quicksort sorts them.
    keys = np.sort(rows * width + entries, kind="stable")
    if len(keys):
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    key_rows = keys // width
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(key_rows, minlength=n_rows), out=offsets[1:])
    return offsets, (keys - key_rows * width).astype(np.int32)

