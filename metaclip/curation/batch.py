"""Stage 1, a batch of input files: extract pairs, identify languages, match against the
metadata, split the matched rows by uuid bucket; a manifest written last commits the batch.

The worldwide recipe identifies every text's language, maps it to a metadata language and
matches each language's texts against its own list (metaclip.curation.worldwide).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.config import Stores
from metaclip.curation import partition, worldwide
from metaclip.curation.plan import format_of
from metaclip.curation.settings import RunSettings
from metaclip.extraction.lid import LanguageIdentifier, keep_languages
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits
from metaclip.extraction.pairs import ExtractStats, concat_pairs
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import peak_rss_mb, write_json, written
from metaclip.io.schemas import ENTRY_IDS, LANGUAGE
from metaclip.matching import Matcher, WorldwideMatcher, get_matcher, get_worldwide_matcher
from metaclip.metadata import load_metadata
from metaclip.metadata.multilingual import WorldwideMetadata, load_language

Extractor = Callable[..., tuple[pa.Table, ExtractStats]]
EXTRACTORS: dict[str, Extractor] = {"wat": extract_wat_file, "warc": extract_warc_file}


def matcher_for(metadata_uri: str, metadata_sha256: str, **storage_options: Any) -> Matcher:
    """This process's matcher for the metadata file (built or loaded at most once)."""

    def entries() -> list[str]:
        metadata = load_metadata(metadata_uri, **storage_options)
        if metadata.sha256 != metadata_sha256:
            raise RuntimeError(f"metadata changed during the run: {metadata_uri}")
        return metadata.entries

    return get_matcher(metadata_sha256, entries)


def worldwide_matcher_for(
    index: WorldwideMetadata, language: str, **storage_options: Any
) -> WorldwideMatcher:
    """This process's MetaCLIP 2 matcher for one language's list of the run's index (memory,
    else disk cache, else built from the list, checked against the index's sha256)."""

    def entries() -> list[str]:
        return load_language(index, language, **storage_options).entries

    return get_worldwide_matcher(index.item(language).sha256, entries)


def extract_files(
    files: Sequence[str],
    fmt: str = "auto",
    limits: ExtractLimits = DEFAULT_LIMITS,
    **storage_options: Any,
) -> tuple[pa.Table, ExtractStats]:
    """Every file's pairs, each file read within the per-record `limits` (extraction.limits)."""
    stats = ExtractStats()
    tables = []
    for uri in files:
        extract = EXTRACTORS[format_of(uri, fmt)]
        table, file_stats = extract(uri, limits=limits, **storage_options)
        tables.append(table)
        stats.merge(file_stats)
    return concat_pairs(tables), stats


def match_pairs(pairs: pa.Table, matcher: Matcher) -> tuple[pa.Table, int]:
    """Attach entry ids and keep matched rows: (matched table, number of unmatched rows)."""
    entry_ids = matcher.match_arrow(pairs["text"])
    table = pairs.append_column(ENTRY_IDS, entry_ids)
    matched = table.filter(pc.greater(pc.list_value_length(table["entry_ids"]), 0))
    return matched, pairs.num_rows - matched.num_rows


def identify_languages(
    pairs: pa.Table, settings: RunSettings, stats: ExtractStats, index: WorldwideMetadata | None
) -> pa.Table:
    """Add the language columns. English recipe: keep the texts fastText identifies as one of
    `settings.languages` (None: every text, unidentified). Worldwide: identify every text and
    add its metadata language (OTHER when it has no metadata among the run's languages)."""
    if index is not None:
        pairs, _ = keep_languages(pairs, None, LanguageIdentifier())
        return worldwide.add_metadata_languages(pairs, settings.languages or index.languages)
    if settings.languages:
        languages = list(settings.languages)
        pairs, other_language = keep_languages(pairs, languages, LanguageIdentifier())
        stats.skip("other_language", other_language)
        return pairs
    pairs = pairs.append_column(LANGUAGE[0], pa.nulls(pairs.num_rows, pa.string()))
    return pairs.append_column(LANGUAGE[1], pa.nulls(pairs.num_rows, pa.float32()))


def match_languages(
    pairs: pa.Table, settings: RunSettings, stores: Stores, index: WorldwideMetadata | None
) -> tuple[pa.Table, dict[str, dict[str, int]] | None]:
    """The matched rows, and (worldwide recipe) per metadata language, `other` too, its
    {"pairs", "matched"}."""
    if index is None:
        matcher = matcher_for(settings.metadata_uri, settings.metadata_sha256, **stores.metadata)
        return match_pairs(pairs, matcher)[0], None

    def matcher(language: str) -> worldwide.TextMatcher:
        return worldwide_matcher_for(index, language, **stores.metadata)

    return worldwide.match_by_language(pairs, index.offsets(), matcher)


# The settings that change a batch's output (its cache key, with its files' identities).
KEYED_BY = (
    "output", "recipe", "metadata_sha256", "n_buckets", "input_format", "languages", "limits",
)  # fmt: skip


def process_batch(
    settings: RunSettings, stores: Stores, batch_id: str, files: Sequence[str]
) -> dict[str, Any]:
    """Extract and match a batch of files; write its matched pairs split by uuid bucket.

    Texts are kept when fastText identifies them as one of `settings.languages` (None: all);
    worldwide recipe: every text is kept and matched in its own language (`identify_languages`).
    Every file is read within `settings.limits` (metaclip.extraction.limits).

    The manifest is written last: a batch without one is unfinished and read by no one.
    """
    opts = stores.output
    layout = OutputLayout(settings.output)
    n_buckets = settings.n_buckets
    started = time.perf_counter()
    pairs, stats = extract_files(files, settings.input_format, settings.limits, **stores.inputs)
    index = worldwide.run_index(
        settings.metadata_uri, settings.metadata_sha256, **stores.metadata
    ) if settings.worldwide else None  # fmt: skip
    pairs = identify_languages(pairs, settings, stats, index)
    extracted = time.perf_counter()
    matched, by_language = match_languages(pairs, settings, stores, index)
    unmatched = pairs.num_rows - matched.num_rows
    matched_at = time.perf_counter()
    manifest: dict[str, Any] = {
        "batch_id": batch_id,
        "files": list(files),
        "n_buckets": n_buckets,
        "buckets": [],
        "rows": [],
        "sha256": [],
    }
    for bucket, rows in partition.split_by_bucket(matched, n_buckets).items():
        sha = storage.write_parquet_atomic(layout.matched_part(bucket, batch_id), rows, **opts)
        manifest["buckets"].append(bucket)
        manifest["rows"].append(rows.num_rows)
        manifest["sha256"].append(sha)
    manifest_sha = write_json(layout.manifest(batch_id), manifest, **opts)
    result = {
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
    if by_language is not None:  # worldwide: per metadata language (and `other`)
        result["languages"] = by_language
    return result


def batches_digest(batches: Iterable[dict[str, Any]]) -> str:
    """Identity of a set of committed batches: what every bucket task reads from."""
    items = sorted((b["batch_id"], b["manifest_sha256"]) for b in batches)
    return hashlib.sha256(orjson.dumps(items)).hexdigest()
