"""Merging source lists into metadata.json, with a provenance file beside it.

Order of metadata.json (the entry id is the position):
1. a base entry list when extending one (for example MetaCLIP's published metadata.json), as is;
2. the seeds "0" to "99" not already there;
3. each source's new entries, sources in the order wordnet, unigram, bigram, title, then extra
   lists as given; within a source in its rank order (metaclip.metadata.sources), extra lists in
   their own order.
Entries from sources and extra lists are stripped of surrounding whitespace and dropped when
empty or punctuation only. With max_entries, additions stop once the list is that long.

provenance.json records the inputs (with sha256), thresholds, entries per source (kept by the
source, new to metadata, dropped), pairwise overlaps between sources, the id range each block
occupies, the total and metadata.json's sha256 (which metaclip.metadata.load_metadata reports).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from metaclip import PIPELINE_VERSION, __version__
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.metadata.load import load_metadata, parse_metadata
from metaclip.metadata.sources import SOURCE_NAMES, SourceList, read_entries
from metaclip.metadata.streams import InputDigest, sha256sums
from metaclip.metadata.text import PUNCTUATION, SEED_ENTRIES, TOKENIZER_VERSION, clean_entry

PROVENANCE_FORMAT = "metaclip-metadata-provenance/1"
_INLINE_INPUTS = 100  # more input files than this are listed in a SHA256SUMS file instead


@dataclass
class _Block:
    name: str
    first_id: int
    candidates: list[str]
    kept: set[str] = field(default_factory=set)
    added: int = 0
    dropped: int = 0
    truncated: int = 0


def _add_block(block: _Block, entries: list[str], seen: set[str], cap: int | None) -> None:
    for raw in block.candidates:
        entry = clean_entry(raw)
        if entry is None:
            block.dropped += 1
            continue
        block.kept.add(entry)
        if entry in seen:
            continue
        if cap is not None and len(entries) >= cap:
            block.truncated += 1
            continue
        seen.add(entry)
        entries.append(entry)
        block.added += 1


def _read_extra(uri: str, opts: dict[str, Any]) -> tuple[list[str], InputDigest]:
    data = storage.read_bytes(uri, **opts)
    return parse_metadata(data, uri), InputDigest(uri, len(data), hashlib.sha256(data).hexdigest())


def _ordered(sources: Sequence[SourceList]) -> list[SourceList]:
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise UserError(f"a source is given twice: {names}")
    return sorted(sources, key=lambda s: SOURCE_NAMES.index(s.name))


def _load_source(source: SourceList, opts: dict[str, Any]) -> list[str]:
    try:
        return read_entries(source.uri, opts)
    except FileNotFoundError as exc:
        raise UserError(
            f"source list missing: {source.uri} (deleted after it was built? rerun with --refresh)"
        ) from exc


def merge_entries(
    sources: Sequence[SourceList],
    base: str | None = None,
    extra: Sequence[str] = (),
    max_entries: int | None = None,
    input_options: dict[str, Any] | None = None,
    output_options: dict[str, Any] | None = None,
) -> tuple[list[str], list[_Block], dict[str, Any]]:
    """The merged entry list, its blocks and the records of base and extra inputs (base and
    extra read with `input_options`, the source lists, written by the build, with
    `output_options`)."""
    read, opts = input_options or {}, output_options or {}
    entries: list[str] = []
    blocks: list[_Block] = []
    records: dict[str, Any] = {}
    if base:
        meta = load_metadata(base, **read)
        entries = list(meta.entries)  # kept exactly, duplicates and all, so ids do not move
        blocks.append(_Block("base", 0, entries, set(entries), added=len(entries)))
        records["base"] = {"uri": base, "sha256": meta.sha256, "entries": len(meta)}
    seen = set(entries)
    blocks.append(_Block("seeds", len(entries), list(SEED_ENTRIES)))
    _add_block(blocks[-1], entries, seen, max_entries)
    for source in _ordered(sources):
        blocks.append(_Block(source.name, len(entries), _load_source(source, opts)))
        _add_block(blocks[-1], entries, seen, max_entries)
    for i, uri in enumerate(extra, 1):
        candidates, digest = _read_extra(uri, read)
        blocks.append(_Block(f"extra-{i}", len(entries), candidates))
        _add_block(blocks[-1], entries, seen, max_entries)
        records[f"extra-{i}"] = digest
    return entries, blocks, records


def _overlaps(blocks: Sequence[_Block]) -> dict[str, dict[str, int]]:
    return {
        a.name: {b.name: len(a.kept & b.kept) for b in blocks if b.name != a.name} for a in blocks
    }


def inputs_record(
    name: str, inputs: Sequence[InputDigest], output: str, opts: dict[str, Any]
) -> dict[str, Any]:
    listing = sha256sums(inputs)
    record: dict[str, Any] = {
        "files": len(inputs),
        "bytes": sum(d.bytes for d in inputs),
        "sha256sums_sha256": hashlib.sha256(listing.encode()).hexdigest(),
    }
    if len(inputs) <= _INLINE_INPUTS:
        record["list"] = [asdict(d) for d in sorted(inputs, key=lambda d: d.uri)]
    else:
        rel = f"sources/{name}.SHA256SUMS"
        storage.write_bytes_atomic(storage.join(output, rel), listing.encode(), **opts)
        record["sha256sums"] = rel
    return record


def _source_record(
    source: SourceList, block: _Block, output: str, opts: dict[str, Any]
) -> dict[str, Any]:
    return {
        "entry_list": source.uri,
        "params": source.params,
        "inputs": inputs_record(source.name, source.inputs, output, opts),
        "stats": source.stats,
        "entries": source.entries,
        "valid_entries": len(block.kept),
        "dropped_empty_or_punctuation": block.dropped,
        "added": block.added,
        "truncated": block.truncated,
    }


def provenance(
    sources: Sequence[SourceList],
    blocks: Sequence[_Block],
    records: dict[str, Any],
    total: int,
    sha256: str,
    max_entries: int | None,
    output: str,
    opts: dict[str, Any],
) -> dict[str, Any]:
    by_name = {b.name: b for b in blocks}
    source_records = {
        s.name: _source_record(s, by_name[s.name], output, opts) for s in _ordered(sources)
    }
    for name, digest in records.items():
        if name.startswith("extra-"):
            b = by_name[name]
            source_records[name] = {
                "inputs": {"files": 1, "list": [asdict(digest)]},
                "entries": len(b.candidates),
                "valid_entries": len(b.kept),
                "dropped_empty_or_punctuation": b.dropped,
                "added": b.added,
                "truncated": b.truncated,
            }
    return {
        "format": PROVENANCE_FORMAT,
        "metadata": "metadata.json",
        "total": total,
        "sha256": sha256,
        "builder": {
            "package": "metaclip-prefect",
            "version": __version__,
            "pipeline_version": PIPELINE_VERSION,
            "tokenizer_version": TOKENIZER_VERSION,
        },
        "rules": {
            "seeds": f"{SEED_ENTRIES[0]}..{SEED_ENTRIES[-1]}",
            "cleaning": "strip whitespace; drop empty or punctuation-only entries",
            "punctuation": "".join(sorted(PUNCTUATION)),
            "order": "base as is; seeds; sources wordnet, unigram, bigram, title, extras; "
            "within a source by score descending, then entry",
            "max_entries": max_entries,
        },
        "base": records.get("base"),
        "blocks": [{"source": b.name, "first_id": b.first_id, "entries": b.added} for b in blocks],
        "sources": source_records,
        "overlaps": _overlaps([b for b in blocks if b.name != "base"]),
    }


def build_metadata_files(
    sources: Sequence[SourceList],
    output: str,
    base: str | None = None,
    extra: Sequence[str] = (),
    max_entries: int | None = None,
    input_options: dict[str, Any] | None = None,
    output_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write metadata.json and provenance.json into `output`; return the provenance. `base`
    and `extra` are read with `input_options`; everything under `output` uses
    `output_options`."""
    opts = output_options or {}
    entries, blocks, records = merge_entries(sources, base, extra, max_entries, input_options, opts)
    data = orjson.dumps(entries)
    sha256 = hashlib.sha256(data).hexdigest()
    prov = provenance(sources, blocks, records, len(entries), sha256, max_entries, output, opts)
    storage.write_bytes_atomic(storage.join(output, "metadata.json"), data, **opts)
    body = orjson.dumps(prov, option=orjson.OPT_INDENT_2)
    storage.write_bytes_atomic(storage.join(output, "provenance.json"), body, **opts)
    return prov
