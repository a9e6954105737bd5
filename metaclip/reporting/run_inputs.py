"""What a data card reads from a finished run: its counts, summary and curated entry counts
(RunData, load_run), and its candidate units as the run's sampling drew them (candidate_source).
A worldwide run's entry counts also say each entry's language: its languages' id ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.curation.counts import SparseCounts, read_language_counts
from metaclip.curation.record import read_run_record
from metaclip.curation.sample import iter_candidate_units
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.reporting.expected_size import Units

UnitSource = Callable[[], Iterable[Units]]  # called once per pass over the candidates

DATACARD_DIR = "datacard"


@dataclass
class RunData:
    """What the card reads from one output directory."""

    output: str
    counts: np.ndarray  # uint64 per entry id, before balancing
    entries: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    curated_counts: np.ndarray | None = None  # per entry id, counted in curated/*.parquet
    # Curated rows per their first entry id: summed over a language's ids, its curated pairs
    # (a worldwide text matches one language's list only).
    curated_by_first: np.ndarray | None = None
    # Worldwide recipe: the global id of each language's first entry; None: an English run.
    language_offsets: dict[str, int] | None = None


def datacard_dir(output: str) -> str:
    return storage.join(output, DATACARD_DIR)


def load_run(output: str, **storage_options: Any) -> RunData:
    """Read a finished run's counts, summary and curated entry counts (a UserError if absent)."""
    layout = OutputLayout(output)
    if not storage.exists(layout.entry_counts, **storage_options):
        raise UserError(f"not a curation output (no entry_counts.parquet): {output}")
    try:
        return _read_run(layout, **storage_options)
    except (OSError, pa.ArrowException, orjson.JSONDecodeError, KeyError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot read the run in {output}: {first_line}") from exc


def _read_run(layout: OutputLayout, **storage_options: Any) -> RunData:
    output = layout.root
    table = storage.read_parquet(layout.entry_counts, **storage_options)
    counts = np.zeros(table.num_rows, dtype=np.uint64)
    ids = table["entry_id"].to_numpy()
    counts[ids] = table["count"].to_numpy()
    entries = [""] * table.num_rows
    for i, entry in zip(ids.tolist(), table["entry"].to_pylist(), strict=True):
        entries[i] = entry
    summary: dict[str, Any] = {}
    if storage.exists(layout.summary, **storage_options):
        summary = orjson.loads(storage.read_bytes(layout.summary, **storage_options))
    curated, by_first = _curated_counts(layout.curated_dir, len(counts), **storage_options)
    offsets = None
    if "language" in table.column_names:  # the worldwide recipe's counts
        _, offsets = read_language_counts(layout.entry_counts, **storage_options)
    return RunData(output, counts, entries, summary, curated, by_first, offsets)


def _curated_counts(
    curated_dir: str, n_entries: int, **storage_options: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(entry counts, rows per first entry id) of the curated parts; Nones without any."""
    if not storage.exists(curated_dir, **storage_options):
        return None, None
    parts, by_first = [], np.zeros(n_entries, dtype=np.uint64)
    for f in _parquet_files(curated_dir, **storage_options):
        ids = storage.read_parquet(f, columns=["entry_ids"], **storage_options)["entry_ids"]
        ids = ids.combine_chunks()
        parts.append(SparseCounts.from_entry_ids(ids))
        first = pc.list_element(ids.filter(pc.greater(pc.list_value_length(ids), 0)), 0)
        by_first += np.bincount(first.to_numpy(), minlength=n_entries).astype(np.uint64)
    return SparseCounts.sum(parts).to_dense(n_entries), by_first


def _parquet_files(folder: str, **storage_options: Any) -> list[str]:
    try:
        return storage.expand_inputs([folder], (".parquet",), **storage_options)
    except UserError:  # a folder with no part in it (nothing kept): no rows, not a mistake
        return []


def matched_pair_units(output: str, **storage_options: Any) -> Iterator[Units]:
    """Per-pair candidates from the matched parts under _work/ (weight 1 per pair).

    For outputs written before _work/run.json, whose balancing sampled every pair on its own.
    """
    matched_dir = storage.join(output, "_work", "matched")
    if not storage.exists(matched_dir, **storage_options):
        return
    for uri in _parquet_files(matched_dir, **storage_options):
        ids = storage.read_parquet(uri, columns=["entry_ids"], **storage_options)["entry_ids"]
        ids = ids.combine_chunks()
        yield ids, np.ones(len(ids))


def candidate_source(output: str, **storage_options: Any) -> UnitSource:
    """The run's candidate units, as its sampling drew them."""
    record = OutputLayout(output).run_record
    if storage.exists(record, **storage_options):
        # The weights must follow the run's own sampling: one text per image, or every pair.
        per_image = read_run_record(output, **storage_options).get("one_per_image", True)
        return lambda: iter_candidate_units(output, one_per_image=per_image, **storage_options)
    return lambda: matched_pair_units(output, **storage_options)  # an output from before run.json
