"""Entry counts: sparse per part, summed exactly in uint64, dense for the whole pool."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.io import storage
from metaclip.io.schemas import (
    COUNTS_META_SHA256,
    COUNTS_META_URI,
    ENTRY_COUNTS,
    ENTRY_COUNTS_WORLDWIDE,
)


class SparseCounts:
    """Counts of the entries that occur: sorted distinct ids (int32) and uint64 counts."""

    __slots__ = ("ids", "counts")

    def __init__(self, ids: np.ndarray, counts: np.ndarray) -> None:
        self.ids = ids.astype(np.int32, copy=False)
        self.counts = counts.astype(np.uint64, copy=False)

    @classmethod
    def empty(cls) -> SparseCounts:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.uint64))

    @classmethod
    def from_entry_ids(cls, entry_ids: pa.ListArray | pa.ChunkedArray) -> SparseCounts:
        """One count per (row, entry): rows hold distinct ids, so a pair counts an entry once."""
        if isinstance(entry_ids, pa.ChunkedArray):
            chunks = [c.flatten().to_numpy() for c in entry_ids.chunks]
            flat = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        else:
            flat = entry_ids.flatten().to_numpy()
        ids, counts = np.unique(flat, return_counts=True)
        return cls(ids, counts)

    @classmethod
    def sum(cls, parts: Iterable[SparseCounts]) -> SparseCounts:
        parts = list(parts)
        if not parts:
            return cls.empty()
        ids = np.concatenate([p.ids for p in parts])
        counts = np.concatenate([p.counts for p in parts])
        order = np.argsort(ids, kind="stable")
        ids, counts = ids[order], counts[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else ids
        return cls(ids[starts], np.add.reduceat(counts, starts) if len(ids) else counts)

    def to_dense(self, n_entries: int) -> np.ndarray:
        dense = np.zeros(n_entries, dtype=np.uint64)
        dense[self.ids] = self.counts
        return dense

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, counts=self.counts)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SparseCounts:
        with np.load(io.BytesIO(data)) as arrays:
            return cls(arrays["ids"], arrays["counts"])

    def save(self, uri: str, **storage_options: Any) -> None:
        storage.write_bytes_atomic(uri, self.to_bytes(), **storage_options)

    @classmethod
    def load(cls, uri: str, **storage_options: Any) -> SparseCounts:
        return cls.from_bytes(storage.read_bytes(uri, **storage_options))


def entry_counts_table(
    counts: np.ndarray,
    entries: list[str],
    metadata_sha256: str,
    metadata_uri: str,
    languages: pa.Array | None = None,
) -> pa.Table:
    """The published global counts: entry id, entry, count (and, worldwide recipe, each
    entry's metadata language); the metadata's sha256 attached."""
    columns = {
        "entry_id": pa.array(np.arange(len(entries), dtype=np.int32)),
        "entry": pa.array(entries, type=pa.string()),
        "count": pa.array(counts.astype(np.uint64)),
    }
    if languages is None:
        table = pa.table(columns, schema=ENTRY_COUNTS)
    else:
        table = pa.table({**columns, "language": languages}, schema=ENTRY_COUNTS_WORLDWIDE)
    return table.replace_schema_metadata(
        {COUNTS_META_SHA256: metadata_sha256.encode(), COUNTS_META_URI: metadata_uri.encode()}
    )


def read_entry_counts(uri: str, **storage_options: Any) -> tuple[np.ndarray, str]:
    """(dense uint64 counts, metadata sha256) from an entry-counts Parquet file."""
    table = storage.read_parquet(uri, **storage_options)
    meta = table.schema.metadata or {}
    counts = np.zeros(table.num_rows, dtype=np.uint64)
    counts[table["entry_id"].to_numpy()] = table["count"].to_numpy()
    return counts, meta.get(COUNTS_META_SHA256, b"").decode()


def read_language_counts(uri: str, **storage_options: Any) -> tuple[np.ndarray, dict[str, int]]:
    """(dense uint64 counts, global id of each language's first entry) from the worldwide
    recipe's entry-counts file (its entries are in id order, each language's contiguous)."""
    table = storage.read_parquet(uri, columns=["entry_id", "count", "language"], **storage_options)
    table = table.sort_by("entry_id")
    counts = table["count"].to_numpy().astype(np.uint64)
    languages = pc.dictionary_encode(table["language"].combine_chunks())
    codes = languages.indices.to_numpy()
    firsts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else codes
    names = languages.dictionary.to_pylist()
    return counts, {names[codes[i]]: int(i) for i in firsts}
