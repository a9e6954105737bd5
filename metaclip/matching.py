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

The disk cache (one set per metadata file: `<sha>-f<format>-ac<pyahocorasick>.matcher`, an npz of
the tables, `.vocab` a Feather file, `.ac` pyahocorasick's native automaton, `.manifest.json`)
is parsed only when it can be trusted:
- the manifest, written last by `Matcher.save`, holds the sha256 of every file of the set;
  `Matcher.load` checks every hash before parsing anything, and a missing, changed, extended or
  unexpected file is damage: the matcher is rebuilt and the set written again;
- the native automaton (parsed by C code) and the rest are read only from a cache directory
  no other user could write: the directory and every file of the set owned by this user and
  not group- or world-writable, and each directory above it owned by this user or root and
  not writable by others unless sticky (like /tmp). Otherwise the matcher is built in memory,
  nothing is written there, and a warning says why;
- the npz is read with allow_pickle=False.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import itertools
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

PUNCTS_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
CHARS_TO_SPACE = ("\t", "\n", "\r")
SEP = "\x00"
SEP_STANDIN = "\x01"
FORMAT_VERSION = "2"
DEFAULT_BATCH_CHARS = 32_000_000  # bounds one batch's joined string and hit arrays
MANIFEST_FORMAT = "metaclip-matcher-cache/1"
_MANIFEST_MAX_BYTES = 1 << 16

logger = logging.getLogger(__name__)


class CacheError(ValueError):
    """A matcher cache set that must not be parsed."""


class DamagedCacheError(CacheError):
    """The set does not match its manifest (or has none): rebuild it."""


class UnsafeCacheError(CacheError):
    """The set or its directory could be written by another user: do not read it."""


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

    A pass runs only for characters present: all are ASCII, so a byte histogram of the UTF-8
    data tells exactly which occur.
    """
    out = texts.fill_null("")
    present = _bytes_present(out)
    replacements = [(SEP, SEP_STANDIN)]
    replacements += [(p, f" {p} ") for p in PUNCTS_TO_WRAP]
    replacements += [(c, " ") for c in CHARS_TO_SPACE]
    for old, new in replacements:
        if present[ord(old)]:
            out = pc.replace_substring(out, old, new)
    return out


def _bytes_present(texts: pa.Array) -> np.ndarray:
    """Which byte values occur in the (string) array's data."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if len(texts) == 0:
        return np.zeros(256, dtype=bool)
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buf or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    return np.bincount(data, minlength=256) > 0


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


class Matcher:
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

    # -- matching -----------------------------------------------------------------------------

    def match(self, text: str) -> list[int]:
        """Sorted distinct entry ids matched in one text."""
        return self.match_arrow(pa.array([text], type=pa.string()))[0].as_py()

    def match_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """CSR of the matches: offsets (n+1) and int32 entry ids, sorted within each row."""
        return self._match_chunk(pa.array(texts, type=pa.string()))

    def match_arrow(
        self, texts: pa.Array | pa.ChunkedArray, batch_chars: int = DEFAULT_BATCH_CHARS
    ) -> pa.ListArray:
        """Entry ids of every text as an Arrow list<int32> array (empty list: no match)."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
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

    def _match_chunk(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        inner = _spaced_inner(texts)
        split = pc.split_pattern(inner, " ")
        ids = pc.index_in(split.flatten(), value_set=self.vocab).fill_null(-1)
        ids = ids.to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.repeat(np.arange(len(inner)), np.diff(split.offsets.to_numpy()))
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
    keys = np.sort(rows * width + entries)
    if len(keys):
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    offsets = np.searchsorted(keys // width, np.arange(n_rows + 1)).astype(np.int64)
    return offsets, (keys % width).astype(np.int32)


# -- one matcher per metadata file per worker process --------------------------------------------

_MATCHERS: dict[str, Matcher] = {}
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    env = os.environ.get("METACLIP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "metaclip" / "automata"


def automaton_path(metadata_sha256: str, cache_dir: Path) -> Path:
    lib = importlib.metadata.version("pyahocorasick")
    return cache_dir / f"{metadata_sha256}-f{FORMAT_VERSION}-ac{lib}.matcher"


def get_matcher(
    metadata_sha256: str, load_entries: Callable[[], Sequence[str]], cache_dir: Path | None = None
) -> Matcher:
    """The process-wide matcher for a metadata file: memory, else disk cache, else build.

    `load_entries` is called only when the matcher has to be built.
    """
    with _LOCK:
        matcher = _MATCHERS.get(metadata_sha256)
        if matcher is None:
            path = automaton_path(metadata_sha256, cache_dir or default_cache_dir())
            matcher = _load_or_build(path, load_entries)
            _MATCHERS[metadata_sha256] = matcher
        return matcher


def _load_or_build(path: Path, load_entries: Callable[[], Sequence[str]]) -> Matcher:
    unsafe = cache_dir_problem(path.parent)
    if unsafe:
        logger.warning(
            "matcher cache not used (%s): building the matcher in memory, writing nothing there",
            unsafe,
        )
        return Matcher.build(load_entries())
    if path.exists() or _manifest_path(path).exists():
        try:
            return Matcher.load(path)
        except UnsafeCacheError as exc:
            logger.warning(
                "matcher cache not used (%s): building the matcher in memory, writing nothing "
                "there", exc,
            )  # fmt: skip
            return Matcher.build(load_entries())
        except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
            logger.warning("matcher cache %s is damaged (%s): rebuilding it", path, exc)
    matcher = Matcher.build(load_entries())
    with contextlib.suppress(OSError):  # a read-only cache dir only costs a rebuild next time
        matcher.save(path)
    return matcher


# -- the disk cache's integrity and ownership ---------------------------------------------------


def _make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing folder above it, each readable by its owner only."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def _manifest_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.manifest.json")


def _set_paths(path: Path) -> dict[str, Path]:
    """The files of a saved set by role (the manifest aside)."""
    return {"npz": path, "vocab": Path(f"{path}.vocab"), "ac": Path(f"{path}.ac")}


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    """The manifest's sha256 per role; DamagedCacheError unless it is exactly what save wrote
    (missing, oversized, not JSON, other keys or roles)."""
    manifest = _manifest_path(path)
    try:
        with open(manifest, "rb") as fh:
            blob = fh.read(_MANIFEST_MAX_BYTES + 1)
    except FileNotFoundError:
        raise DamagedCacheError(f"{path}: no manifest") from None
    try:
        if len(blob) > _MANIFEST_MAX_BYTES:
            raise ValueError("oversized")
        body = json.loads(blob)
        hashes = body["sha256"]
        if (
            set(body) != {"format", "sha256"}
            or body["format"] != MANIFEST_FORMAT
            or not isinstance(hashes, dict)
            or not {"npz", "vocab"} <= set(hashes) <= {"npz", "vocab", "ac"}
            or not all(isinstance(h, str) and len(h) == 64 for h in hashes.values())
        ):
            raise ValueError("not a matcher cache manifest")
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedCacheError(f"{manifest}: {exc}") from None
    return hashes


def _verified_bytes(file: Path, sha256: str | None, keep: bool = True) -> bytes:
    """The file's bytes when they hash to `sha256` (b"" unless `keep`), else DamagedCacheError."""
    try:
        if keep:
            data = file.read_bytes()
            actual = hashlib.sha256(data).hexdigest()
        else:
            data, actual = b"", _sha256_file(file)
    except FileNotFoundError:
        raise DamagedCacheError(f"{file}: missing") from None
    if actual != sha256:
        raise DamagedCacheError(f"{file}: sha256 differs from the manifest's")
    return data


def _writable_by_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _file_problem(file: Path) -> str | None:
    """Why a file of the set cannot be trusted (owned by another user, a link or not a plain
    file, group- or world-writable), or None (also when it is missing: the hashes decide)."""
    if not hasattr(os, "geteuid"):
        return None
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{file} is not a plain file"
    if st.st_uid != os.geteuid():
        return f"{file} is owned by uid {st.st_uid}, not this user"
    if _writable_by_others(st.st_mode):
        return f"{file} is group- or world-writable"
    return None


def cache_dir_problem(directory: Path) -> str | None:
    """Why another user could write the cache directory `directory`, or None.

    The directory itself (when it exists) must be owned by this user and not group- or
    world-writable; every directory above it, and every symbolic link on the way, owned by
    this user or root, and a directory above writable by others only when sticky (/tmp).
    """
    if not hasattr(os, "geteuid"):
        return None
    uid = os.geteuid()
    chains = [Path(os.path.abspath(directory)), Path(os.path.realpath(directory))]
    for chain in chains:
        for position, current in enumerate([chain, *chain.parents]):
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                continue  # save creates it, private
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid not in (uid, 0):
                    return f"{current} is a link owned by uid {st.st_uid}"
                continue
            if position == 0:
                if st.st_uid != uid:
                    return f"{current} is owned by uid {st.st_uid}, not this user"
                if _writable_by_others(st.st_mode):
                    return f"{current} is group- or world-writable"
            elif st.st_uid not in (uid, 0):
                return f"{current} is owned by uid {st.st_uid}"
            elif _writable_by_others(st.st_mode) and not st.st_mode & stat.S_ISVTX:
                return f"{current} is writable by other users and not sticky"
    return None
