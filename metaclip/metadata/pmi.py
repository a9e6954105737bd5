"""Reducing n-gram counts partition by partition, and bigram PMI the way NLTK computes it.

NLTK's BigramAssocMeasures.pmi, as BigramCollocationFinder.score_ngram calls it, is
    log2(float(n_ii) * N) - log2(n_ix * n_xi)
with n_ii the bigram's count, n_ix and n_xi its words' unigram counts and N the sum of all
unigram counts; a bigram whose words are not both counted as unigrams is skipped (MetaCLIP).
Scores are computed with exactly that expression, so they equal NLTK's to the last bit.

Memory stays bounded by a partition: bigrams arrive partitioned by their first word and are
joined with that word's unigram partition; the joined rows are re-partitioned by the second
word and joined with its unigram partition. Rows that cannot reach the threshold even with
n_xi = 1 are dropped before the second shuffle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.io import storage
from metaclip.metadata import manifest
from metaclip.metadata.ngrams import (
    BIGRAM_SCHEMA,
    UNIGRAM_SCHEMA,
    NgramBatch,
    partial_uri,
    partition_of,
)
from metaclip.metadata.selection import Caps
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import InputDigest
from metaclip.metadata.text import is_punctuation_only

if TYPE_CHECKING:  # metaclip.config imports metaclip.metadata's constants
    from metaclip.config import BuildMetadataConfig, Stores

_MARGIN = 1e-6  # float64 pre-filter slack; the exact NLTK expression decides
_MERGE_FILES = 16


@dataclass(frozen=True)
class UnigramPartition(manifest.AsData):
    uri: str
    distinct: int
    total: int

    def outputs(self) -> list[str]:
        return [self.uri, f"{self.uri}.json"]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


@dataclass(frozen=True)
class JoinedPartition(manifest.AsData):
    directory: str
    partition: int
    bigrams: int  # distinct bigrams in this first-word partition
    missing_unigram: int  # dropped: first word has no unigram count
    kept: int  # rows passed on to the second join

    def outputs(self) -> list[str]:
        return [storage.join(self.directory, f"p{self.partition:04d}.json")]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


@dataclass(frozen=True)
class ScoredPartition(manifest.AsData):
    uri: str
    candidates: int
    missing_unigram: int
    kept: int

    def outputs(self) -> list[str]:
        return [self.uri, f"{self.uri}.json"]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


def nltk_pmi(count: int, n1: int, n2: int, total: int) -> float:
    """NLTK's bigram PMI (module docstring), evaluated exactly as NLTK does."""
    return math.log2(float(count) * total) - math.log2(n1 * n2)


def _sum_by(
    uris: Sequence[str], keys: list[str], schema: pa.Schema, opts: dict[str, Any]
) -> pa.Table:
    """Sum `count` over equal keys, reading a few files at a time to bound peak memory."""
    acc = schema.empty_table()
    for i in range(0, len(uris), _MERGE_FILES):
        group = [storage.read_parquet(u, **opts).cast(schema) for u in uris[i : i + _MERGE_FILES]]
        merged = pa.concat_tables([acc, *group])
        grouped = merged.group_by(keys, use_threads=False).aggregate([("count", "sum")])
        acc = grouped.rename_columns({"count_sum": "count"}).select(schema.names).cast(schema)
    return acc


def _partials(batches: Sequence[NgramBatch], kind: str, partition: int) -> list[str]:
    return [
        partial_uri(b.directory, kind, partition, s)
        for b in batches
        if kind in b.kinds
        for s in range(b.spills)
    ]


def _total(unigrams: Sequence[UnigramPartition]) -> int:
    """N: the sum of all unigram counts."""
    return sum(u.total for u in unigrams)


def _inputs(batches: Sequence[NgramBatch], kinds: set[str]) -> list[InputDigest]:
    """What the batches that counted `kinds` read (a source's provenance)."""
    return [d for b in batches if kinds & set(b.kinds) for d in b.inputs]


# The settings that change each stage's output (with its call's own arguments: the batches or
# partitions it reads, its partition, its folder or list file).
REDUCE_KEYED_BY: tuple[str, ...] = ()
JOIN_KEYED_BY = ("partitions", "min_bigram_pmi")
SCORE_KEYED_BY = ("min_bigram_pmi",)
UNIGRAM_KEYED_BY = ("min_unigram_count",)
BIGRAM_KEYED_BY = ("min_bigram_pmi",)


def reduce_unigram_partition(
    settings: BuildMetadataConfig,
    stores: Stores,
    batches: Sequence[NgramBatch],
    partition: int,
    stage: str,
) -> UnigramPartition:
    """Sum one partition's unigram counts over all batches into `stage` (written with the
    output's options; no setting changes it)."""
    opts = stores.output
    uri = storage.join(stage, f"unigram-p{partition:04d}.parquet")
    done = manifest.load(f"{uri}.json", UnigramPartition, opts)
    if done is not None:
        return done
    uris = _partials(batches, "unigram", partition)
    table = _sum_by(uris, ["token"], UNIGRAM_SCHEMA, opts).sort_by("token")
    storage.write_parquet_atomic(uri, table, **opts)
    total = int(pc.sum(table.column("count")).as_py() or 0)
    result = UnigramPartition(uri, table.num_rows, total)
    manifest.save(f"{uri}.json", result, opts)
    return result


def pmi_dir(stage: str, min_pmi: float) -> str:
    return storage.join(stage, f"pmi-ge-{min_pmi:g}")


def _unigrams(part: UnigramPartition, name: str, opts: dict[str, Any]) -> pa.Table:
    table = storage.read_parquet(part.uri, **opts)
    return table.rename_columns({"token": "key", "count": name})


def join_first_word(
    settings: BuildMetadataConfig,
    stores: Stores,
    batches: Sequence[NgramBatch],
    partition: int,
    unigrams: Sequence[UnigramPartition],
    stage: str,
) -> JoinedPartition:
    """Sum one first-word partition's bigrams, attach n_ix, re-partition by second word into
    `settings.partitions`, dropping rows that cannot reach `settings.min_bigram_pmi`."""
    opts, partitions, min_pmi = stores.output, settings.partitions, settings.min_bigram_pmi
    unigram, total = unigrams[partition], _total(unigrams)
    directory = storage.join(pmi_dir(stage, min_pmi), "join")
    marker = storage.join(directory, f"p{partition:04d}.json")
    done = manifest.load(marker, JoinedPartition, opts)
    if done is not None:
        return done
    uris = _partials(batches, "bigram", partition)
    bigrams = _sum_by(uris, ["w1", "w2"], BIGRAM_SCHEMA, opts)
    joined = bigrams.join(_unigrams(unigram, "n1", opts), "w1", "key", join_type="inner")
    matched = joined.num_rows
    if math.isfinite(min_pmi):  # n_xi >= 1, so PMI <= log2(count * N) - log2(n_ix)
        count = joined.column("count").to_numpy().astype(np.float64)
        bound = np.log2(count * total) - np.log2(joined.column("n1").to_numpy())
        joined = joined.filter(pa.array(bound >= min_pmi - _MARGIN))
    _write_by_second_word(joined, directory, partition, partitions, opts)
    result = JoinedPartition(
        directory, partition, bigrams.num_rows, bigrams.num_rows - matched, joined.num_rows
    )
    manifest.save(marker, result, opts)
    return result


def _write_by_second_word(
    table: pa.Table, directory: str, partition: int, partitions: int, opts: dict[str, Any]
) -> None:
    table = table.select(["w1", "w2", "count", "n1"])
    keys = table.column("w2").to_pylist()
    parts = np.fromiter((partition_of(k, partitions) for k in keys), np.int64, len(keys))
    order = np.argsort(parts, kind="stable")
    table = table.take(pa.array(order))
    bounds = np.searchsorted(parts[order], np.arange(partitions + 1))
    for q in range(partitions):
        piece = table.slice(bounds[q], bounds[q + 1] - bounds[q])
        uri = storage.join(directory, f"p{partition:04d}-q{q:04d}.parquet")
        storage.write_parquet_atomic(uri, piece, **opts)


def score_second_word(
    settings: BuildMetadataConfig,
    stores: Stores,
    joined: Sequence[JoinedPartition],
    partition: int,
    unigrams: Sequence[UnigramPartition],
    stage: str,
) -> ScoredPartition:
    """Attach n_xi to one second-word partition, score with NLTK's PMI, keep those at or above
    `settings.min_bigram_pmi`."""
    opts, min_pmi = stores.output, settings.min_bigram_pmi
    unigram, total = unigrams[partition], _total(unigrams)
    uri = storage.join(pmi_dir(stage, min_pmi), f"scored-q{partition:04d}.parquet")
    done = manifest.load(f"{uri}.json", ScoredPartition, opts)
    if done is not None:
        return done
    names = (f"p{j.partition:04d}-q{partition:04d}.parquet" for j in joined)
    pieces = [
        storage.read_parquet(storage.join(j.directory, name), **opts)
        for j, name in zip(joined, names, strict=True)
    ]
    rows = pa.concat_tables(pieces) if pieces else _empty_joined()
    scored = rows.join(_unigrams(unigram, "n2", opts), "w2", "key", join_type="inner")
    kept = _keep_pmi(scored, total, min_pmi)
    storage.write_parquet_atomic(uri, kept, **opts)
    result = ScoredPartition(uri, rows.num_rows, rows.num_rows - scored.num_rows, kept.num_rows)
    manifest.save(f"{uri}.json", result, opts)
    return result


def _empty_joined() -> pa.Table:
    return pa.schema([*BIGRAM_SCHEMA, pa.field("n1", pa.int64())]).empty_table()


def _keep_pmi(table: pa.Table, total: int, min_pmi: float) -> pa.Table:
    """Rows scoring >= min_pmi, with a float64 pre-filter and the exact expression after it."""
    count = table.column("count").to_numpy().astype(np.float64)
    n1 = table.column("n1").to_numpy().astype(np.float64)
    n2 = table.column("n2").to_numpy().astype(np.float64)
    approx = np.log2(count * total) - np.log2(n1 * n2)
    table = table.filter(pa.array(approx >= min_pmi - _MARGIN))
    columns = (table.column(x).to_pylist() for x in ("count", "n1", "n2"))
    scores = [nltk_pmi(c, a, b, total) for c, a, b in zip(*columns, strict=True)]
    table = table.append_column("pmi", pa.array(scores, pa.float64()))
    return table.filter(pc.greater_equal(table.column("pmi"), min_pmi))


def unigram_source(
    settings: BuildMetadataConfig,
    stores: Stores,
    unigrams: Sequence[UnigramPartition],
    batches: Sequence[NgramBatch],
    uri: str,
) -> SourceList:
    """The unigram source, written to `uri`: every token counted at least
    `settings.min_unigram_count` times (the `batches`' inputs are its provenance)."""
    opts, min_count = stores.output, settings.min_unigram_count
    inputs = _inputs(batches, {"unigram"})
    kept = [
        t.filter(pc.greater_equal(t.column("count"), min_count))
        for t in (storage.read_parquet(p.uri, **opts) for p in unigrams)
    ]
    table = pa.concat_tables(kept) if kept else UNIGRAM_SCHEMA.empty_table()
    stats = {
        "distinct_unigrams": sum(p.distinct for p in unigrams),
        "total_unigrams": _total(unigrams),
    }
    entries = table.rename_columns({"token": "entry"})
    params = {"min_count": min_count}
    return write_source_list("unigram", uri, entries, params, inputs, stats, opts)


def bigram_source(
    settings: BuildMetadataConfig,
    stores: Stores,
    scored: Sequence[ScoredPartition],
    joined: Sequence[JoinedPartition],
    unigrams: Sequence[UnigramPartition],
    batches: Sequence[NgramBatch],
    uri: str,
) -> SourceList:
    """The bigram source, written to `uri`: 'w1 w2' for every bigram with NLTK PMI at or above
    `settings.min_bigram_pmi` (the `batches`' inputs are its provenance)."""
    opts, min_pmi, total = stores.output, settings.min_bigram_pmi, _total(unigrams)
    inputs = _inputs(batches, {"unigram", "bigram"})
    parts = [storage.read_parquet(s.uri, **opts) for s in scored]
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.num_rows == 0:
        entries = pa.table(
            {
                "entry": pa.array([], pa.string()),
                "count": pa.array([], pa.int64()),
                "pmi": pa.array([], pa.float64()),
            }
        )
    else:
        entry = pc.binary_join_element_wise(table.column("w1"), table.column("w2"), " ")
        entries = pa.table(
            {"entry": entry, "count": table.column("count"), "pmi": table.column("pmi")}
        )
    stats = {
        "distinct_bigrams": sum(j.bigrams for j in joined),
        "total_unigrams": total,
        "missing_unigram": sum(j.missing_unigram for j in joined)
        + sum(s.missing_unigram for s in scored),
        "candidates": sum(s.candidates for s in scored),
    }
    params = {"min_pmi": min_pmi, "measure": "nltk pmi"}
    return write_source_list("bigram", uri, entries, params, inputs, stats, opts)


# The settings that change a worldwide unigram source (with its call: partitions, batches,
# list file and reserve).
TOP_UNIGRAM_KEYED_BY = ("unigram_fraction", "max_unigrams", "max_entry_length")


def _valid_unigrams(table: pa.Table, max_length: int) -> pa.Table:
    """Rows whose token the selection would not skip (it strips nothing: tokens hold no
    whitespace): at most `max_length` characters, not punctuation only."""
    tokens = table.column("token").to_pylist()
    keep = [len(t) <= max_length and not is_punctuation_only(t) for t in tokens]
    return table.filter(pa.array(keep, pa.bool_()))


def _head(table: pa.Table, rows: int) -> pa.Table:
    order = [("count", "descending"), ("token", "ascending")]
    return table.sort_by(order).slice(0, rows)


def top_unigram_source(
    settings: BuildMetadataConfig,
    stores: Stores,
    unigrams: Sequence[UnigramPartition],
    batches: Sequence[NgramBatch],
    uri: str,
    reserve: int,
) -> SourceList:
    """A worldwide unigram source, written to `uri`: the head of the unigrams by count (ties by
    code point), as long as the selection can need: the cap (metaclip.metadata.selection, at
    least 1) plus `reserve`, the most entries that can come before the unigrams in the list
    (seeds and WordNet), each of which may be a unigram the selection skips. Memory holds one
    partition's rows and the head."""
    opts, caps = stores.output, Caps(
        unigram_fraction=settings.unigram_fraction, max_unigrams=settings.max_unigrams,
        max_length=settings.max_entry_length,
    )  # fmt: skip
    distinct = sum(p.distinct for p in unigrams)
    rows = max(caps.unigram_cap(distinct), 1) + reserve
    head = UNIGRAM_SCHEMA.empty_table()
    for part in unigrams:
        table = _valid_unigrams(storage.read_parquet(part.uri, **opts), caps.max_length)
        head = _head(pa.concat_tables([head, _head(table, rows)]), rows)
    stats = {"distinct_unigrams": distinct, "total_unigrams": _total(unigrams),
             "cap": caps.unigram_cap(distinct)}  # fmt: skip
    params = {"rule": "top unigrams by count", "fraction": caps.unigram_fraction,
              "max": caps.max_unigrams, "kept_for_selection": rows}  # fmt: skip
    entries = head.rename_columns({"token": "entry"})
    inputs = _inputs(batches, {"unigram"})
    return write_source_list("unigram", uri, entries, params, inputs, stats, opts)
