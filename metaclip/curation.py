"""The curation stages as plain functions over a batch of files or one bucket.

Tasks in tasks/ call these; each takes and returns small JSON-able values (URIs, counts, stats)
and does its bulk work through files, so results are cheap to persist and to pass around.

Stages: process_batch (extract, match, split by uuid bucket; a manifest commits the batch) ->
process_bucket (dedup across batches, exclude earlier dumps, count) -> reduce_counts (tree) ->
sample_bucket (one text per image, keep with MetaCLIP's probability).
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metaclip import balance, buckets, storage
from metaclip.cachekeys import file_identity
from metaclip.counts import SparseCounts, entry_counts_table, read_entry_counts
from metaclip.errors import UserError
from metaclip.lid import LanguageIdentifier, keep_languages
from metaclip.matching import Matcher, get_matcher
from metaclip.metadata import Metadata, load_metadata
from metaclip.pairs import ExtractStats, concat_pairs
from metaclip.paths import OutputLayout, StoreLayout
from metaclip.schemas import ENTRY_IDS, LANGUAGE, MATCHED, curated_from_matched
from metaclip.warc import extract_warc_file
from metaclip.wat import extract_wat_file

Extractor = Callable[..., tuple[pa.Table, ExtractStats]]
EXTRACTORS: dict[str, Extractor] = {"wat": extract_wat_file, "warc": extract_warc_file}
INPUT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "wat": (".wat.gz", ".wat"),
    "warc": (".warc.gz", ".warc"),
    "auto": (".wat.gz", ".wat", ".warc.gz", ".warc"),
}


def format_of(uri: str, fmt: str) -> str:
    """The input format of a file: as given, or by its name with fmt="auto"."""
    if fmt != "auto":
        return fmt
    return "wat" if uri.endswith((".wat.gz", ".wat")) else "warc"
MAX_AUTO_BUCKETS = 4096
DEFAULT_MAX_BUCKET_ROWS = 1_000_000  # about 0.8 GB in a bucket task (bench/bench_scale.py)
# A CommonCrawl WAT gives roughly 100k matched pairs: 10 to 20 files make 1 to 2M pairs a bucket,
# one or two sub-buckets of at most DEFAULT_MAX_BUCKET_ROWS.
FILES_PER_BUCKET = 20


def auto_buckets(n_files: int) -> int:
    """A bucket count for a pool of n_files WAT files: a power of two, 4 to 4096.

    The output never depends on it (dedup is exact and every draw is per row); it only sizes
    the bucket tasks. An exclusion store fixes it for all the runs that share the store.
    """
    wanted = max(1, -(-n_files // FILES_PER_BUCKET))
    return int(min(MAX_AUTO_BUCKETS, max(4, 2 ** (wanted - 1).bit_length())))


def store_buckets(store: str, **storage_options: Any) -> int | None:
    """The bucket count an existing exclusion store was made with, if any."""
    meta_uri = StoreLayout(store).meta
    if not storage.exists(meta_uri, **storage_options):
        return None
    return int(read_json(meta_uri, **storage_options)["n_buckets"])


def preflight(
    inputs: Sequence[str], metadata_uri: str, fmt: str = "wat", **storage_options: Any
) -> tuple[Metadata, list[str]]:
    """Check a run's inputs before any work: (metadata, input files) or a UserError."""
    if fmt not in INPUT_SUFFIXES:
        raise UserError(f"unknown input format {fmt!r} (known: {', '.join(INPUT_SUFFIXES)})")
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


def peak_rss_mb() -> float:
    """This worker process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def written(uris: Iterable[str], **storage_options: Any) -> dict[str, str]:
    """Identity of each file just written; a task returns it so that a later run can tell
    whether its outputs are still the ones it made (not gone, not overwritten)."""
    return {u: file_identity(u, **storage_options) for u in uris}


def changed_outputs(result: dict[str, Any], **storage_options: Any) -> list[str]:
    """The outputs a cached result names that are gone or no longer what it wrote."""
    return [
        uri for uri, identity in result["outputs"].items()
        if file_identity(uri, **storage_options) != identity
    ]


def write_json(uri: str, data: dict[str, Any], **storage_options: Any) -> str:
    """Write JSON atomically; returns the sha256 of the bytes written."""
    blob = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    storage.write_bytes_atomic(uri, blob, **storage_options)
    return hashlib.sha256(blob).hexdigest()


def read_json(uri: str, **storage_options: Any) -> dict[str, Any]:
    return orjson.loads(storage.read_bytes(uri, **storage_options))


# -- stage 1: a batch of input files ------------------------------------------------------------


def matcher_for(metadata_uri: str, metadata_sha256: str, **storage_options: Any) -> Matcher:
    """This process's matcher for the metadata file (built or loaded at most once)."""

    def entries() -> list[str]:
        metadata = load_metadata(metadata_uri, **storage_options)
        if metadata.sha256 != metadata_sha256:
            raise RuntimeError(f"metadata changed during the run: {metadata_uri}")
        return metadata.entries

    return get_matcher(metadata_sha256, entries)


def extract_files(
    files: Sequence[str], fmt: str = "auto", **storage_options: Any
) -> tuple[pa.Table, ExtractStats]:
    stats = ExtractStats()
    tables = []
    for uri in files:
        table, file_stats = EXTRACTORS[format_of(uri, fmt)](uri, **storage_options)
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
    n_buckets: int,
    fmt: str = "auto",
    languages: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Extract and match a batch of files; write its matched pairs split by uuid bucket.

    `languages`: keep only texts that fastText identifies as one of these (None: keep all).

    The manifest is written last: a batch without one is unfinished and read by no one.
    """
    opts = storage_options or {}
    layout = OutputLayout(output)
    started = time.perf_counter()
    pairs, stats = extract_files(files, fmt, **opts)
    if languages:
        pairs, other_language = keep_languages(pairs, list(languages), LanguageIdentifier())
        stats.skip("other_language", other_language)
    else:
        pairs = pairs.append_column(LANGUAGE[0], pa.nulls(pairs.num_rows, pa.string()))
        pairs = pairs.append_column(LANGUAGE[1], pa.nulls(pairs.num_rows, pa.float32()))
    extracted = time.perf_counter()
    matched, unmatched = match_pairs(pairs, matcher_for(metadata_uri, metadata_sha256, **opts))
    matched_at = time.perf_counter()
    manifest: dict[str, Any] = {
        "batch_id": batch_id, "files": list(files), "n_buckets": n_buckets,
        "buckets": [], "rows": [], "sha256": [],
    }
    for bucket, rows in buckets.split_by_bucket(matched, n_buckets).items():
        sha = storage.write_parquet_atomic(layout.matched_part(bucket, batch_id), rows, **opts)
        manifest["buckets"].append(bucket)
        manifest["rows"].append(rows.num_rows)
        manifest["sha256"].append(sha)
    manifest_sha = write_json(layout.manifest(batch_id), manifest, **opts)
    return {
        "batch_id": batch_id,
        "manifest_uri": layout.manifest(batch_id),
        "manifest_sha256": manifest_sha,
        "extract": stats.to_dict(),
        "pairs_matched": matched.num_rows,
        "pairs_unmatched": unmatched,
        "seconds": {
            "extract": extracted - started,
            "match": matched_at - extracted,
            "write": time.perf_counter() - matched_at,
        },
        "peak_rss_mb": peak_rss_mb(),
        "outputs": written([layout.manifest(batch_id)], **opts),
    }


def batches_digest(batches: Iterable[dict[str, Any]]) -> str:
    """Identity of a set of committed batches: what every bucket task reads from."""
    items = sorted((b["batch_id"], b["manifest_sha256"]) for b in batches)
    return hashlib.sha256(orjson.dumps(items)).hexdigest()


# -- stage 2: one bucket ------------------------------------------------------------------------

INDEX = pa.schema(
    [("bucket", pa.int32()), ("batch_id", pa.string()), ("rows", pa.int64()),
     ("sha256", pa.string())]
)


def build_bucket_index(
    manifest_uris: Sequence[str], out_uri: str, **storage_options: Any
) -> dict[str, Any]:
    """One table of every committed part (bucket, batch, rows, sha256), sorted by bucket, so a
    bucket task reads only its own slice instead of every manifest."""
    columns: dict[str, list[Any]] = {name: [] for name in INDEX.names}
    for uri in manifest_uris:
        manifest = read_json(uri, **storage_options)
        n = len(manifest["buckets"])
        columns["bucket"].extend(manifest["buckets"])
        columns["batch_id"].extend([manifest["batch_id"]] * n)
        columns["rows"].extend(manifest["rows"])
        columns["sha256"].extend(manifest["sha256"])
    table = pa.table(columns, schema=INDEX).sort_by([("bucket", "ascending")])
    storage.write_parquet_atomic(out_uri, table, **storage_options)
    return {"uri": out_uri, "outputs": written([out_uri], **storage_options)}


def read_bucket_inputs(
    layout: OutputLayout,
    bucket: int,
    index_uri: str,
    sub: tuple[int, int] | None = None,
    **storage_options: Any,
) -> pa.Table:
    """The bucket's rows (with sub=(i, k): those of its sub-bucket i of k), each part checked
    against its manifest's sha256.

    A missing or corrupt part un-commits its batch (its manifest is removed) and raises, so
    that the batch is recomputed.
    """
    mine = _bucket_parts(index_uri, bucket, **storage_options)
    tables = []
    for batch_id, sha in zip(mine["batch_id"].to_pylist(), mine["sha256"].to_pylist(),
                             strict=True):
        uri = layout.matched_part(bucket, batch_id)
        try:
            data = storage.read_bytes(uri, **storage_options)
        except FileNotFoundError:
            data = b""
        if buckets.sha256_hex(data) != sha:
            storage.remove(layout.manifest(batch_id), **storage_options)
            storage.remove(uri, **storage_options)
            raise buckets.CorruptIntermediateError(uri)
        table = pq.read_table(pa.BufferReader(data))
        if sub is not None:
            table = table.filter(pa.array(sub_bucket_of(table["uuid"], sub[1]) == sub[0]))
        tables.append(table)
    return buckets.concat(tables, MATCHED)


def _bucket_parts(index_uri: str, bucket: int, **storage_options: Any) -> pa.Table:
    index = storage.read_parquet(index_uri, **storage_options)
    return index.filter(pc.equal(index["bucket"], bucket))


def max_bucket_rows() -> int:
    """Pairs a bucket task holds at once (about 0.8 KB each, bench/bench_scale.py): a bucket
    with more is processed as sub-buckets, so a worker's memory does not grow with it."""
    return int(os.environ.get("METACLIP_MAX_BUCKET_ROWS", DEFAULT_MAX_BUCKET_ROWS))


def sub_bucket_of(uuids: pa.Array | pa.ChunkedArray, n_subs: int) -> np.ndarray:
    """Sub-bucket of each uuid: from other uuid digits than its bucket, so all the texts of an
    image share one sub-bucket and the split is even."""
    return buckets.bucket_of(uuids, n_subs, digits_from=8)


def read_seen_uuids(
    store: str | None, bucket: int, tag: str, **storage_options: Any
) -> pa.Array | None:
    """Uuids curated by other runs (earlier dumps) in this bucket of the exclusion store."""
    if not store:
        return None
    layout = StoreLayout(store)
    tables = [
        storage.read_parquet(uri, columns=["uuid"], **storage_options)
        for uri in storage.list_files(layout.bucket_dir(bucket), **storage_options)
        if uri.endswith(".parquet") and uri != layout.part(bucket, tag)
    ]
    if not tables:
        return None
    return pa.concat_tables(tables)["uuid"].combine_chunks().unique()


def process_bucket(
    bucket: int,
    index_uri: str,
    output: str,
    exclude_store: str | None = None,
    store_tag: str = "",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deduplicate one bucket across all batches, drop earlier dumps' images, count entries.

    A bucket of more than max_bucket_rows() pairs is done as sub-buckets by uuid, one at a
    time, each written to its own dedup part (every part is then read once per sub-bucket).
    """
    opts = storage_options or {}
    layout = OutputLayout(output)
    started = time.perf_counter()
    rows = sum(_bucket_parts(index_uri, bucket, **opts)["rows"].to_pylist())
    n_subs = max(1, -(-rows // max_bucket_rows()))
    subs: list[int | None] = [None] if n_subs == 1 else list(range(n_subs))
    seen = read_seen_uuids(exclude_store, bucket, store_tag, **opts)
    totals = {"pairs_in": 0, "pairs_unique": 0, "duplicates": 0, "excluded_seen": 0, "images": 0}
    counts = []
    for sub in subs:
        part = read_bucket_inputs(
            layout, bucket, index_uri, None if sub is None else (sub, n_subs), **opts
        )
        totals["pairs_in"] += part.num_rows
        unique, duplicates = buckets.dedup_pairs(part)
        del part  # the bucket's input is the largest thing a worker holds: free it first
        unique, excluded = buckets.exclude_uuids(unique, seen)
        storage.write_parquet_atomic(layout.dedup_part(bucket, sub), unique, **opts)
        counts.append(SparseCounts.from_entry_ids(unique["entry_ids"]))
        totals["pairs_unique"] += unique.num_rows
        totals["duplicates"] += duplicates
        totals["excluded_seen"] += excluded
        totals["images"] += len(pc.unique(unique["uuid"])) if unique.num_rows else 0
    SparseCounts.sum(counts).save(layout.bucket_counts(bucket), **opts)
    dedup_uris = [layout.dedup_part(bucket, sub) for sub in subs]
    return {
        "bucket": bucket,
        "dedup_uris": dedup_uris,
        "counts_uri": layout.bucket_counts(bucket),
        **totals,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
        "outputs": written([*dedup_uris, layout.bucket_counts(bucket)], **opts),
    }


# -- stage 3: global counts ---------------------------------------------------------------------


def reduce_counts(uris: Sequence[str], out_uri: str, **storage_options: Any) -> dict[str, Any]:
    total = SparseCounts.sum(SparseCounts.load(u, **storage_options) for u in uris)
    total.save(out_uri, **storage_options)
    return {"uri": out_uri, "outputs": written([out_uri], **storage_options)}


def write_entry_counts(
    total_uri: str, metadata_uri: str, out_uri: str, **storage_options: Any
) -> dict[str, Any]:
    """The published global counts: dense over every metadata entry."""
    metadata = load_metadata(metadata_uri, **storage_options)
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


# -- stage 4: sampling --------------------------------------------------------------------------

_PROBS: dict[tuple[str, float], np.ndarray] = {}


def _entry_probabilities(counts_uri: str, t: float, **storage_options: Any) -> np.ndarray:
    key = (counts_uri, t)
    if key not in _PROBS:
        counts, _ = read_entry_counts(counts_uri, **storage_options)
        _PROBS.clear()  # one run's probabilities at a time per process
        _PROBS[key] = balance.entry_probabilities(counts, t)
    return _PROBS[key]


def candidates(table: pa.Table, seed: int, one_per_image: bool) -> pa.Table:
    """The rows that get a keep draw: one text per image, or every (image, text) pair."""
    if not one_per_image or table.num_rows == 0:
        return table
    chosen = balance.choose_one_per_image(table["uuid"].combine_chunks(),
                                          table["text"].to_pylist(), seed)
    return table.take(pa.array(chosen))


def sample_bucket(
    bucket: int,
    output: str,
    counts_uri: str,
    t: float,
    seed: int,
    one_per_image: bool = True,
    exclude_store: str | None = None,
    store_tag: str = "",
    storage_options: dict[str, Any] | None = None,
    dedup_uris: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Balanced sampling of one deduplicated bucket into its curated part (one per sub-bucket
    where the bucket was deduplicated as sub-buckets: `dedup_uris`, default the one part)."""
    opts = storage_options or {}
    layout = OutputLayout(output)
    started = time.perf_counter()
    probs = _entry_probabilities(counts_uri, t, **opts)
    dedup_uris = list(dedup_uris or [layout.dedup_part(bucket)])
    subs: list[int | None] = [None] if len(dedup_uris) == 1 else list(range(len(dedup_uris)))
    outputs, kept_uuids, n_candidates, n_kept = [], [], 0, 0
    for sub, uri in zip(subs, dedup_uris, strict=True):
        table = candidates(storage.read_parquet(uri, **opts), seed, one_per_image)
        mask = balance.sample_mask(
            table["entry_ids"], table["uuid"].to_pylist(), table["text"].to_pylist(), probs,
            seed,
        )
        curated = curated_from_matched(table.filter(pa.array(mask)))
        outputs.append(layout.curated_part(bucket, sub))
        storage.write_parquet_atomic(outputs[-1], curated, **opts)
        n_candidates, n_kept = n_candidates + table.num_rows, n_kept + curated.num_rows
        kept_uuids.append(curated["uuid"])
    if exclude_store:
        outputs.append(StoreLayout(exclude_store).part(bucket, store_tag))
        uuids = pa.table({"uuid": pa.chunked_array(kept_uuids, pa.string())})
        storage.write_parquet_atomic(outputs[-1], uuids, **opts)
    return {
        "bucket": bucket,
        "curated_uris": outputs[: len(dedup_uris)],
        "candidates": n_candidates,
        "rows_kept": n_kept,
        "seconds": time.perf_counter() - started,
        "outputs": written(outputs, **opts),
    }


def dedup_parts(run_record: dict[str, Any], bucket: int) -> list[str]:
    """A finished run's dedup parts of a bucket (one, or one per sub-bucket)."""
    recorded = (run_record.get("dedup_uris") or {}).get(str(bucket))
    return list(recorded) if recorded else [OutputLayout(run_record["output"]).dedup_part(bucket)]


def rebalanced_summary(
    old: dict[str, Any],
    sampled: Sequence[dict[str, Any]],
    counts: np.ndarray,
    t: float,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    """A run's summary after sampling again with another t or seed."""
    return {
        **old,
        "t": t,
        "seed": seed,
        "p": balance.t_to_p(counts, t),
        "entries_over_t": balance.entries_over_t(counts, t),
        "pairs_curated": sum(int(s["rows_kept"]) for s in sampled),
        "rebalanced": {"from_t": old["t"], "from_seed": old["seed"], "seconds": seconds},
    }


def default_store_tag(output: str) -> str:
    """A run's name in the exclusion store: runs into the same output share it."""
    return "run-" + hashlib.sha1(output.rstrip("/").encode()).hexdigest()[:12]


def check_store(store: str, n_buckets: int, **storage_options: Any) -> None:
    """An exclusion store is bucketed once; every run that uses it must agree."""
    existing = store_buckets(store, **storage_options)
    if existing is None:
        write_json(StoreLayout(store).meta, {"n_buckets": n_buckets}, **storage_options)
    elif existing != n_buckets:
        raise UserError(
            f"exclusion store {store} has {existing} buckets; run with n_buckets={existing}"
        )


def iter_candidate_units(
    output: str, one_per_image: bool = True, **storage_options: Any
) -> Iterator[tuple[pa.ListArray, np.ndarray]]:
    """Per bucket: entry ids of every matched text and its weight in the expected size.

    A text's weight is 1 / (texts of its image) when one text per image is drawn, else 1.
    """
    run = read_json(OutputLayout(output).run_record, **storage_options)
    for uri in (u for bucket in range(run["n_buckets"]) for u in dedup_parts(run, bucket)):
        if not storage.exists(uri, **storage_options):
            continue
        table = storage.read_parquet(uri, columns=["uuid", "entry_ids"], **storage_options)
        weights = np.ones(table.num_rows)
        if one_per_image and table.num_rows:
            uuids = table["uuid"].combine_chunks().dictionary_encode()
            per_image = np.bincount(uuids.indices.to_numpy())
            weights = 1.0 / per_image[uuids.indices.to_numpy()]
        yield table["entry_ids"].combine_chunks(), weights
