"""The worldwide (MetaCLIP 2) recipe inside the curation stages (docs/curation.md).

- batch: every text's fastText label mapped to a metadata language (`add_metadata_languages`;
  `other` where the language has no metadata in the run), each language's texts matched
  against that language's list only, their ids made global (`match_by_language`);
- write-entry-counts: every language's list numbered globally, each entry with its language
  (`global_entries`);
- sample: each language's t from English's t_en (`entry_probabilities`); the run's thresholds
  as data, `language_thresholds.json` (`thresholds_report`, `write_thresholds`).

Ids are global throughout (metaclip.metadata.multilingual), so dedup, counts, buckets and the
balanced draw are the English recipe's own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.curation import thresholds
from metaclip.curation.counts import read_language_counts
from metaclip.curation.settings import RunSettings
from metaclip.errors import MetadataError
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import write_json
from metaclip.io.schemas import ENTRY_IDS, MATCHED_WORLDWIDE, METADATA_LANGUAGE
from metaclip.metadata.languages import OTHER, metadata_language
from metaclip.metadata.multilingual import WorldwideMetadata, load_index, load_language


class TextMatcher(Protocol):
    def match_arrow(self, texts: pa.Array) -> pa.ListArray | pa.ChunkedArray: ...


# --------------------------------------------------------------------------- the metadata


def run_index(uri: str, sha256: str, **storage_options: Any) -> WorldwideMetadata:
    """The run's index, as the preflight read it (a worker re-reads it: the same bytes)."""
    index = load_index(uri, **storage_options)
    if index.sha256 != sha256:
        raise RuntimeError(f"metadata changed during the run: {index.uri}")
    return index


def global_entries(index: WorldwideMetadata, **storage_options: Any) -> tuple[list[str], pa.Array]:
    """Every language's entries in global id order, and each entry's language."""
    entries: list[str] = []
    for item in index.lists:
        listed = load_language(index, item.language, **storage_options).entries
        if len(listed) != item.entries:  # the offsets would be wrong: refuse
            raise MetadataError(f"{index.list_uri(item.language)} has {len(listed)} entries; "
                                f"{index.uri} says {item.entries}")  # fmt: skip
        entries.extend(listed)
    sizes = [item.entries for item in index.lists]
    codes = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    return entries, pa.array(index.languages, pa.string()).take(pa.array(codes))


# --------------------------------------------------------------------------- a batch


def add_metadata_languages(pairs: pa.Table, available: Collection[str]) -> pa.Table:
    """Append `language`: each text's metadata language from its fastText label (`lang`), or
    OTHER where that language has no metadata among `available` (or the text no label)."""
    labels = pc.dictionary_encode(pairs["lang"].combine_chunks())
    known = frozenset(available)
    mapped = pa.array(
        [metadata_language(label, known) for label in labels.dictionary.to_pylist()], pa.string()
    )
    language = pc.fill_null(mapped.take(labels.indices), OTHER)
    return pairs.append_column(METADATA_LANGUAGE, language)


def global_ids(local: pa.ListArray | pa.ChunkedArray, offset: int) -> pa.ListArray:
    """A language's local entry ids made global: shifted by the id of its first entry."""
    if isinstance(local, pa.ChunkedArray):
        local = local.combine_chunks()
    starts = local.offsets  # a slice's offsets are not rebased; flatten() is
    values = pc.add_checked(local.flatten(), pa.scalar(offset, pa.int32()))
    return pa.ListArray.from_arrays(pc.subtract(starts, starts[0]), values)


def match_by_language(
    pairs: pa.Table,
    offsets: Mapping[str, int],
    matcher_for: Callable[[str], TextMatcher],
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """Match each language's rows against its own list only, ids made global; OTHER's rows are
    not matched. Returns the matched rows, in input order, and per language (OTHER too)
    {"pairs": its rows, "matched": its matched rows}."""
    languages = pc.dictionary_encode(pairs["language"].combine_chunks())
    codes = languages.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(languages.dictionary) + 1))
    pieces, positions, stats = [], [], {}
    for code, language in enumerate(languages.dictionary.to_pylist()):
        rows = order[bounds[code] : bounds[code + 1]]
        stats[language] = {"pairs": len(rows), "matched": 0}
        if language == OTHER:
            continue
        part = pairs.take(pa.array(rows))
        local = matcher_for(language).match_arrow(part["text"].combine_chunks())
        ids = global_ids(local, offsets[language])
        hit = pc.greater(pc.list_value_length(ids), 0)
        pieces.append(part.append_column(ENTRY_IDS, ids).filter(hit))
        positions.append(rows[hit.to_numpy(zero_copy_only=False)])
        stats[language]["matched"] = pieces[-1].num_rows
    stats = dict(sorted(stats.items()))
    if not pieces:
        return MATCHED_WORLDWIDE.empty_table(), stats
    restore = np.argsort(np.concatenate(positions), kind="stable")
    return pa.concat_tables(pieces).take(pa.array(restore)), stats


def language_tally(languages: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Rows per language."""
    return {row["values"]: row["counts"] for row in pc.value_counts(languages).to_pylist()}


# --------------------------------------------------------------------------- the thresholds


def thresholds_of(
    counts: np.ndarray, offsets: Mapping[str, int], t_en: float
) -> tuple[float, dict[str, float]]:
    """(p, t of each language): MetaCLIP 2's rule (metaclip.curation.thresholds)."""
    return thresholds.language_thresholds(thresholds.counts_by_language(counts, offsets), t_en)


def entry_probabilities(counts_uri: str, t_en: float, **storage_options: Any) -> np.ndarray:
    """p_e of every global entry, each language's with its own t."""
    counts, offsets = read_language_counts(counts_uri, **storage_options)
    _, ts = thresholds_of(counts, offsets, t_en)
    return thresholds.entry_probabilities(counts, offsets, ts)


def thresholds_report(counts: np.ndarray, offsets: Mapping[str, int], t_en: float) -> dict:
    """The body of language_thresholds.json: the tail share p that English's t_en gives, and
    per language (code order) its t, the global id of its first entry, its entries, matches
    (the sum of its counts), entries matched, and entries over its t (capped)."""
    p, ts = thresholds_of(counts, offsets, t_en)
    languages: dict[str, dict[str, Any]] = {}
    for language, (start, end) in thresholds.language_spans(offsets, len(counts)).items():
        own, t = counts[start:end], ts[language]
        languages[language] = {
            "t": t, "offset": start, "entries": end - start, "matches": int(own.sum()),
            "entries_matched": int((own > 0).sum()), "entries_over_t": int((own > t).sum()),
        }  # fmt: skip
    return {
        "recipe": WORLDWIDE_RECIPE,
        "t_en": t_en,
        "p": p,
        "entries_over_t": sum(row["entries_over_t"] for row in languages.values()),
        "languages": languages,
    }


def write_thresholds(
    settings: RunSettings, counts_uri: str, **storage_options: Any
) -> dict[str, Any] | None:
    """Write a worldwide run's language_thresholds.json and return it (NoEnglishMatches when no
    text matched English). An English run writes none (and removes a worldwide run's)."""
    uri = OutputLayout(settings.output).language_thresholds
    if not settings.worldwide:
        storage.remove(uri, **storage_options)
        return None
    counts, offsets = read_language_counts(counts_uri, **storage_options)
    report = thresholds_report(counts, offsets, float(settings.t))
    write_json(uri, report, **storage_options)
    return report


def language_offsets(
    settings: RunSettings, counts_uri: str, storage_options: Mapping[str, Any]
) -> dict[str, int] | None:
    """Each language's first global id, read from the run's entry counts (None: English)."""
    if not settings.worldwide:
        return None
    return read_language_counts(counts_uri, **storage_options)[1]
