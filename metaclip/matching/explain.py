"""What a metadata list matches in given texts: the library side of `metaclip match`.

A plain metadata list (a JSON list or a .txt file) is matched with MetaCLIP's English semantics
(every entry padded with a space on both sides); a worldwide metadata (its languages.json or
folder) with MetaCLIP 2's (metaclip.matching.worldwide), each text against the list of its
language: the one given, or else the one fastText lid.176 identifies, mapped as the curation
maps it (metaclip.metadata.languages). Matchers are built in memory, never cached to disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.matching.matcher import Matcher
from metaclip.matching.worldwide import WorldwideMatcher
from metaclip.metadata.languages import OTHER, metadata_language
from metaclip.metadata.load import load_metadata
from metaclip.metadata.multilingual import is_worldwide, load_index, load_language


def read_texts(uri: str, column: str = "text", **storage_options: Any) -> list[str | None]:
    """Texts of a Parquet file's `column`, or of a UTF-8 text file (one text per line)."""
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        raise UserError(f"texts file not found: {uri}") from None
    if uri.endswith(".parquet"):
        table = pq.read_table(pa.BufferReader(data))
        if column not in table.column_names:
            raise UserError(f"{uri} has no column {column!r} (columns: "
                            f"{', '.join(table.column_names)})")  # fmt: skip
        values = table[column]
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            raise UserError(f"{uri}: column {column!r} is {values.type}, not text")
        return values.to_pylist()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{uri} is not UTF-8 text (or give a .parquet file)") from None
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def match_texts(
    texts: Sequence[str | None],
    metadata_uri: str,
    language: str | None = None,
    **storage_options: Any,
) -> Iterator[dict[str, Any]]:
    """One record per text: {"text", "language" (worldwide only), "entries", "entry_ids"}."""
    if is_worldwide(metadata_uri, **storage_options):
        yield from _match_worldwide(texts, metadata_uri, language, storage_options)
        return
    if language is not None:
        raise UserError("--language needs a worldwide metadata (its languages.json or folder)")
    metadata = load_metadata(metadata_uri, **storage_options)
    ids = Matcher.build(metadata.entries).match_arrow(pa.array(texts, pa.string())).to_pylist()
    for text, row in zip(texts, ids, strict=True):
        yield _record(text, None, row, metadata.entries)


def _match_worldwide(
    texts: Sequence[str | None],
    metadata_uri: str,
    language: str | None,
    opts: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    index = load_index(metadata_uri, **opts)
    available = set(index.languages)
    if language is not None and language not in available:
        raise UserError(f"language {language!r} is not in {index.uri} (it has: "
                        f"{', '.join(index.languages)})")  # fmt: skip
    languages = [language] * len(texts) if language else _identified(texts, available)
    results: list[dict[str, Any] | None] = [None] * len(texts)
    for lang in sorted(set(languages)):
        rows = [i for i, code in enumerate(languages) if code == lang]
        if lang == OTHER:
            for i in rows:
                results[i] = _record(texts[i], OTHER, [], [])
            continue
        entries = load_language(index, lang, **opts).entries
        chosen = pa.array([texts[i] for i in rows], pa.string())
        ids = WorldwideMatcher.build(entries).match_arrow(chosen).to_pylist()
        for i, row in zip(rows, ids, strict=True):
            results[i] = _record(texts[i], lang, row, entries)
    for record in results:
        assert record is not None
        yield record


def _identified(texts: Sequence[str | None], available: set[str]) -> list[str]:
    from metaclip.extraction.lid import LanguageIdentifier

    codes, _ = LanguageIdentifier().identify(pa.array(texts, pa.string()))
    return [metadata_language(code, available) for code in codes.to_pylist()]


def _record(
    text: str | None, language: str | None, ids: list[int] | None, entries: Sequence[str]
) -> dict[str, Any]:
    ids = ids or []
    record: dict[str, Any] = {"text": text}
    if language is not None:
        record["language"] = language
    record["entries"] = [entries[i] for i in ids]
    record["entry_ids"] = ids
    return record
