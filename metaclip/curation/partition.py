"""Partition pairs into buckets by image uuid, and deduplicate a bucket.

A pool of billions of pairs is split into N buckets by a hash of uuid, so that every copy of an
image lands in one bucket whatever file or batch it came from; each bucket is then deduplicated
on its own, and memory stays bounded by the bucket's size, not the pool's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def bucket_of(
    uuids: pa.Array | pa.ChunkedArray, n_buckets: int, digits_from: int = 0
) -> np.ndarray:
    """Bucket of each uuid: its first 8 hex digits (32 bits of sha224) modulo n_buckets.

    digits_from=8 takes the next 8 digits instead: sub-buckets independent of the buckets.
    """
    if isinstance(uuids, pa.ChunkedArray):
        uuids = uuids.combine_chunks()
    if len(uuids) == 0:
        return np.zeros(0, dtype=np.int64)
    prefix = pc.utf8_slice_codeunits(uuids, digits_from, digits_from + 8)
    offsets = np.frombuffer(prefix.buffers()[1], dtype=np.int32)[: len(prefix) + 1]
    data = np.frombuffer(prefix.buffers()[2], dtype=np.uint8)
    if not np.all(np.diff(offsets) == 8):
        raise ValueError(f"uuids must be hex strings of at least {digits_from + 8} characters")
    digits = _HEX[data[offsets[0] : offsets[-1]]].reshape(-1, 8).astype(np.uint64)
    if (digits == 255).any():
        raise ValueError("uuids must be lower-case hex")
    values = np.zeros(len(uuids), dtype=np.uint64)
    for column in range(8):
        values = values * np.uint64(16) + digits[:, column]
    return (values % np.uint64(n_buckets)).astype(np.int64)


def split_by_bucket(table: pa.Table, n_buckets: int) -> dict[int, pa.Table]:
    """The rows of each non-empty bucket, in their original order."""
    if table.num_rows == 0:
        return {}
    buckets = bucket_of(table["uuid"], n_buckets)
    order = np.argsort(buckets, kind="stable")
    sorted_buckets = buckets[order]
    present, starts = np.unique(sorted_buckets, return_index=True)
    ends = np.append(starts[1:], len(order))
    ordered = table.take(pa.array(order))
    return {int(b): ordered.slice(s, e - s) for b, s, e in zip(present, starts, ends, strict=True)}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dedup_pairs(table: pa.Table) -> tuple[pa.Table, int]:
    """One row per distinct (uuid, text), the same whatever order the rows came in.

    The kept copy is the first by (uuid, text, source, record_offset), so which file or batch
    a duplicate came from cannot change the result. Rows come back sorted by (uuid, text).
    """
    if table.num_rows == 0:
        return table, 0
    keys = [
        ("uuid", "ascending"),
        ("text", "ascending"),
        ("source", "ascending"),
        ("record_offset", "ascending"),
    ]
    # Sort and compare the key columns only, then take the kept rows once: a bucket's whole
    # table is copied once, not three times (sorted, combined, filtered).
    order = pc.sort_indices(table.select([name for name, _ in keys]), sort_keys=keys)
    uuid = table["uuid"].take(order).combine_chunks()
    text = table["text"].take(order).combine_chunks()
    first = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        same_uuid = pc.equal(uuid.slice(1), uuid.slice(0, len(uuid) - 1))
        same_text = pc.equal(text.slice(1), text.slice(0, len(text) - 1))
        first[1:] = ~pc.and_(same_uuid, same_text).to_numpy(zero_copy_only=False)
    del uuid, text
    kept = table.take(order.filter(pa.array(first)))
    return kept, table.num_rows - kept.num_rows


def exclude_uuids(table: pa.Table, seen: pa.Array | None) -> tuple[pa.Table, int]:
    """Drop rows whose uuid is in `seen` (images curated from earlier dumps)."""
    if seen is None or len(seen) == 0 or table.num_rows == 0:
        return table, 0
    mask = pc.invert(pc.is_in(table["uuid"], value_set=seen))
    kept = table.filter(mask)
    return kept, table.num_rows - kept.num_rows


class CorruptIntermediateError(IOError):
    """An intermediate file does not match its manifest: recompute what wrote it."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"intermediate file does not match its manifest: {uri}")
        self.uri = uri


def concat(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()
