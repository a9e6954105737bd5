"""Stage 3, global counts: the per-bucket sparse counts tree-reduced into one vector, then
published dense over every metadata entry (worldwide recipe: every language's, by global id,
each with its language).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metaclip.config import Stores
from metaclip.curation import worldwide
from metaclip.curation.counts import SparseCounts, entry_counts_table
from metaclip.curation.settings import RunSettings
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import written
from metaclip.metadata import load_metadata

# The settings that change these stages' outputs: none but the metadata (write_entry_counts);
# their inputs are keyed by identity, their outputs by URI.
REDUCE_KEYED_BY: tuple[str, ...] = ()
ENTRY_COUNTS_KEYED_BY = ("metadata_sha256",)


def reduce_counts(
    settings: RunSettings, stores: Stores, uris: Sequence[str], out_uri: str
) -> dict[str, Any]:
    """The sum of some partial counts (one node of the tree reduction)."""
    opts = stores.output
    total = SparseCounts.sum(SparseCounts.load(u, **opts) for u in uris)
    total.save(out_uri, **opts)
    return {"uri": out_uri, "outputs": written([out_uri], **opts)}


def write_entry_counts(
    settings: RunSettings, stores: Stores, total_uri: str, out_uri: str
) -> dict[str, Any]:
    """The published global counts: dense over every metadata entry."""
    if settings.worldwide:
        index = worldwide.run_index(
            settings.metadata_uri, settings.metadata_sha256, **stores.metadata
        )
        entries, languages = worldwide.global_entries(index, **stores.metadata)
        dense = SparseCounts.load(total_uri, **stores.output).to_dense(len(entries))
        table = entry_counts_table(dense, entries, index.sha256, index.uri, languages)
    else:
        metadata = load_metadata(settings.metadata_uri, **stores.metadata)
        dense = SparseCounts.load(total_uri, **stores.output).to_dense(len(metadata))
        table = entry_counts_table(dense, metadata.entries, metadata.sha256, metadata.uri)
    storage.write_parquet_atomic(out_uri, table, **stores.output)
    return {"uri": out_uri, "outputs": written([out_uri], **stores.output)}


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
