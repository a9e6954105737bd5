"""The curation stages as plain functions over a batch of files or one matched part.

Tasks in tasks/ call these; each takes and returns small JSON-able values (URIs, stats) and
does its bulk work through files, so results are cheap to persist and to pass between workers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from metaclip import balance, storage
from metaclip.counts import SparseCounts, read_entry_counts
from metaclip.errors import UserError
from metaclip.matching import Matcher, get_matcher
from metaclip.metadata import Metadata, load_metadata
from metaclip.pairs import ExtractStats, concat_pairs
from metaclip.paths import OutputLayout
from metaclip.schemas import ENTRY_IDS, curated_from_matched
from metaclip.wat import extract_wat_file

Extractor = Callable[..., tuple[pa.Table, ExtractStats]]
EXTRACTORS: dict[str, Extractor] = {"wat": extract_wat_file}
INPUT_SUFFIXES: dict[str, tuple[str, ...]] = {"wat": (".wat.gz", ".wat")}


def preflight(
    inputs: Sequence[str], metadata_uri: str, fmt: str = "wat", **storage_options: Any
) -> tuple[Metadata, list[str]]:
    """Check a run's inputs before any work: (metadata, input files) or a UserError."""
    if fmt not in EXTRACTORS:
        raise UserError(f"unknown input format {fmt!r} (known: {', '.join(EXTRACTORS)})")
    metadata = load_metadata(metadata_uri, **storage_options)
    files = storage.expand_inputs(
        inputs, INPUT_SUFFIXES[fmt], missing_ok=True, **storage_options
    )
    if not any(storage.exists(f, **storage_options) for f in files):
        raise UserError(f"none of the inputs exist: {', '.join(inputs)}")
    return metadata, files


def make_batches(files: Sequence[str], batch_size: int) -> list[tuple[str, list[str]]]:
    """Split files into (batch id, files); the id names the batch's outputs.

    The id holds the batch's position (for readable listings) and a hash of its files (so two
    different inputs never share an output name).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out = []
    for index, start in enumerate(range(0, len(files), batch_size)):
        batch = list(files[start : start + batch_size])
        digest = hashlib.sha1("\n".join(batch).encode()).hexdigest()[:8]
        out.append((f"{index:05d}-{digest}", batch))
    return out


def matcher_for(metadata_uri: str, metadata_sha256: str, **storage_options: Any) -> Matcher:
    """This process's matcher for the metadata file (built or loaded at most once)."""

    def entries() -> list[str]:
        metadata = load_metadata(metadata_uri, **storage_options)
        if metadata.sha256 != metadata_sha256:
            raise RuntimeError(f"metadata changed during the run: {metadata_uri}")
        return metadata.entries

    return get_matcher(metadata_sha256, entries)


def extract_files(
    files: Sequence[str], fmt: str = "wat", **storage_options: Any
) -> tuple[pa.Table, ExtractStats]:
    extractor = EXTRACTORS[fmt]
    stats = ExtractStats()
    tables = []
    for uri in files:
        table, file_stats = extractor(uri, **storage_options)
        tables.append(table)
        stats.merge(file_stats)
    return concat_pairs(tables), stats


def match_pairs(pairs: pa.Table, matcher: Matcher) -> tuple[pa.Table, int]:
    """Attach entry ids and keep matched rows: (matched table, number of unmatched rows)."""
    entry_ids = matcher.match_arrow(pairs["text"])
    table = pairs.append_column(ENTRY_IDS, entry_ids)
    matched = table.filter(pc.greater(pc.list_value_length(table["entry_ids"]), 0))
    return matched, pairs.num_rows - matched.num_rows


def process_batch(
    files: Sequence[str],
    batch_id: str,
    output: str,
    metadata_uri: str,
    metadata_sha256: str,
    fmt: str = "wat",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Extract and match a batch of files; write its matched pairs and sparse counts."""
    opts = storage_options or {}
    layout = OutputLayout(output)
    started = time.perf_counter()
    pairs, stats = extract_files(files, fmt, **opts)
    extracted = time.perf_counter()
    matcher = matcher_for(metadata_uri, metadata_sha256, **opts)
    matched, unmatched = match_pairs(pairs, matcher)
    counts = SparseCounts.from_entry_ids(matched["entry_ids"])
    storage.write_parquet_atomic(layout.matched_part(batch_id), matched, **opts)
    counts.save(layout.batch_counts(batch_id), **opts)
    return {
        "batch_id": batch_id,
        "files": list(files),
        "matched_uri": layout.matched_part(batch_id),
        "counts_uri": layout.batch_counts(batch_id),
        "extract": stats.to_dict(),
        "pairs_matched": matched.num_rows,
        "pairs_unmatched": unmatched,
        "seconds": {
            "extract": extracted - started,
            "match": time.perf_counter() - extracted,
        },
    }


def reduce_counts(uris: Sequence[str], out_uri: str, **storage_options: Any) -> str:
    total = SparseCounts.sum(SparseCounts.load(u, **storage_options) for u in uris)
    total.save(out_uri, **storage_options)
    return out_uri


def reduction_plan(leaves: Sequence[str], layout: OutputLayout, fanout: int):
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


_PROBS: dict[tuple[str, float], np.ndarray] = {}


def _entry_probabilities(counts_uri: str, t: float, **storage_options: Any) -> np.ndarray:
    key = (counts_uri, t)
    if key not in _PROBS:
        counts, _ = read_entry_counts(counts_uri, **storage_options)
        _PROBS.clear()  # one run's probabilities at a time per process
        _PROBS[key] = balance.entry_probabilities(counts, t)
    return _PROBS[key]


def balance_part(
    matched_uri: str,
    curated_uri: str,
    counts_uri: str,
    t: float,
    seed: int,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Balanced sampling of one matched part into one curated part."""
    opts = storage_options or {}
    started = time.perf_counter()
    probs = _entry_probabilities(counts_uri, t, **opts)
    matched = storage.read_parquet(matched_uri, **opts)
    mask = balance.sample_mask(
        matched["entry_ids"],
        matched["uuid"].to_pylist(),
        matched["text"].to_pylist(),
        probs,
        seed,
    )
    curated = curated_from_matched(matched.filter(pa.array(mask)))
    storage.write_parquet_atomic(curated_uri, curated, **opts)
    return {
        "curated_uri": curated_uri,
        "rows_in": matched.num_rows,
        "rows_kept": curated.num_rows,
        "seconds": time.perf_counter() - started,
    }


def missing_outputs(uris: Sequence[str], **storage_options: Any) -> list[str]:
    """The outputs among `uris` that are not there (a cached result may outlive its files)."""
    return [u for u in uris if not storage.exists(u, **storage_options)]


def write_json(uri: str, data: dict[str, Any], **storage_options: Any) -> None:
    blob = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    storage.write_bytes_atomic(uri, blob + b"\n", **storage_options)
