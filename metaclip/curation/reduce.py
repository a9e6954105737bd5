"""Stage 3, global counts: the per-bucket sparse counts tree-reduced into one vector, then
published dense over every metadata entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metaclip.curation.counts import SparseCounts, entry_counts_table
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import written
from metaclip.metadata import load_metadata


def reduce_counts(uris: Sequence[str], out_uri: str, **storage_options: Any) -> dict[str, Any]:
    total = SparseCounts.sum(SparseCounts.load(u, **storage_options) for u in uris)
    total.save(out_uri, **storage_options)
    return {"uri": out_uri, "outputs": written([out_uri], **storage_options)}


def write_entry_counts(
    total_uri: str,
    metadata_uri: str,
    out_uri: str,
    metadata_options: dict[str, Any] | None = None,
    **storage_options: Any,
) -> dict[str, Any]:
    """The published global counts: dense over every metadata entry (storage_options: the
    output's; metadata_options: the metadata's)."""
    metadata = load_metadata(metadata_uri, **(metadata_options or {}))
    dense = SparseCounts.load(total_uri, **storage_options).to_dense(len(metadata))
    table = entry_counts_table(dense, metadata.entries, metadata.sha256, metadata.uri)
    storage.write_parquet_atomic(out_uri, table, **storage_options)
    return {"uri": out_uri, "outputs": written([out_uri], **storage_options)}


def reduction_plan(
    leaves: Sequence[str], layout: OutputLayout, fanout: int
) -> list[list[tuple[list[str], str]]]:
    """Levels of (inputs, output) groups for a tree reduction down to one file."""
    if fanout < 2:
        raise ValueError("fanout must be at least 2")
    levels = []
    current = list(leaves)
    level = 0
    while len(current) > 1 or level == 0:
        groups = [current[i : i + fanout] for i in range(0, len(current), fanout)] or [[]]
        outs = [layout.reduce_part(level, i) for i in range(len(groups))]
        levels.append(list(zip(groups, outs, strict=True)))
        current = outs
        level += 1
    return levels
