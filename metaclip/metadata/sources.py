"""Per-source entry lists: one Parquet file per source with the entries it keeps and their counts.

Columns: entry (string), count (int64; synsets for WordNet, occurrences for unigrams and bigrams,
summed page views for titles) and, for bigrams, pmi (float64). Rows are in rank order: score
descending (pmi for bigrams, count otherwise), then entry by code point, which is also the order
in which a source's new entries enter metadata.json. (The OMW WordNet lists of a worldwide build
are in code-point order, the order MetaCLIP 2 takes them in: metaclip.metadata.omw.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from metaclip.io import storage
from metaclip.io.cachekeys import file_identity
from metaclip.metadata.manifest import AsData
from metaclip.metadata.streams import InputDigest

SOURCE_NAMES = ("wordnet", "unigram", "bigram", "title")


@dataclass(frozen=True)
class SourceList(AsData):
    """A finished source: its entry list file and what went into it (for provenance)."""

    name: str
    uri: str
    entries: int
    params: dict[str, Any]
    inputs: list[InputDigest]
    stats: dict[str, Any] = field(default_factory=dict)
    identity: str = ""  # the list file's identity when written (cachekeys.file_identity)

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        """Whether the list file is still the one written: a run with other thresholds may
        have overwritten it since this result was cached."""
        try:
            current = file_identity(self.uri, **(storage_options or {}))
        except FileNotFoundError:
            return False
        return not self.identity or current == self.identity


def rank(table: pa.Table) -> pa.Table:
    """Rows in rank order (module docstring)."""
    keys = [("pmi", "descending")] if "pmi" in table.column_names else []
    keys += [("count", "descending"), ("entry", "ascending")]
    return table.sort_by(keys)


def write_source_list(
    name: str,
    uri: str,
    table: pa.Table,
    params: dict[str, Any],
    inputs: list[InputDigest],
    stats: dict[str, Any],
    opts: dict[str, Any] | None = None,
    ranked: bool = False,
) -> SourceList:
    """Write a source's entries (entry, count[, pmi]) in rank order (`ranked`: the table is
    already in its source's own order); describe the result."""
    storage.write_parquet_atomic(uri, table if ranked else rank(table), **(opts or {}))
    identity = file_identity(uri, **(opts or {}))
    return SourceList(name, uri, table.num_rows, params, inputs, stats, identity)


def read_entries(uri: str, opts: dict[str, Any] | None = None) -> list[str]:
    """A source list's entries in rank order."""
    return storage.read_parquet(uri, columns=["entry"], **(opts or {})).column(0).to_pylist()


def iter_rows(
    uri: str, columns: list[str], opts: dict[str, Any] | None = None, batch_rows: int = 65536
) -> Iterator[tuple[Any, ...]]:
    """A source list's rows (the given columns) in rank order, read a batch at a time, so that
    a reader that stops early reads only the head of a long list."""
    with storage.open_input(uri, **(opts or {})) as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=batch_rows, columns=columns):
            yield from zip(*(batch.column(c).to_pylist() for c in columns), strict=True)
