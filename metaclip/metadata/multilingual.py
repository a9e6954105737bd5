"""Worldwide metadata: one entry list per language, and the index that names them.

Layout of a worldwide metadata folder (what `metaclip build-metadata --language(s)` writes and
what the worldwide curation reads):

    <folder>/languages.json          the index (below)
    <folder>/<language>/metadata.json  that language's entry list (a JSON list of strings)
    <folder>/<language>/provenance.json

languages.json is {"format": INDEX_FORMAT, "languages": {language: {"path": relative path of
its list, "sha256": of the list's bytes, "entries": its length}}}. The curation is given the
index (or its folder); the index's own sha256 identifies the whole set, since it holds every
list's sha256, and each list is checked against its sha256 when loaded.

Entry ids: within a language, an entry's id is its position in that language's list (as in
MetaCLIP 2's per-language count arrays). Across languages, the curation numbers entries
globally: languages in code order, each language's ids shifted by the number of entries before
it (`offsets`), so counts, partitions and the balanced sample work on one id space.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from metaclip.errors import MetadataError
from metaclip.io import storage
from metaclip.metadata.load import Metadata, parse_metadata

INDEX_NAME = "languages.json"
INDEX_FORMAT = "metaclip-worldwide-metadata/1"


@dataclass(frozen=True)
class LanguageList:
    language: str
    path: str  # relative to the index's folder
    sha256: str
    entries: int


@dataclass(frozen=True)
class WorldwideMetadata:
    """An index: its URI, the sha256 of its bytes and its languages in code order."""

    uri: str
    sha256: str
    lists: tuple[LanguageList, ...]

    @property
    def languages(self) -> list[str]:
        return [item.language for item in self.lists]

    def offsets(self) -> dict[str, int]:
        """Global id of each language's first entry."""
        sizes = np.cumsum([0] + [item.entries for item in self.lists])
        return {item.language: int(sizes[i]) for i, item in enumerate(self.lists)}

    @property
    def n_entries(self) -> int:
        return sum(item.entries for item in self.lists)

    def language_of_ids(self, ids: np.ndarray) -> np.ndarray:
        """Index into `languages` of each global entry id."""
        starts = np.array(list(self.offsets().values()), dtype=np.int64)
        return np.searchsorted(starts, ids, side="right") - 1

    def item(self, language: str) -> LanguageList:
        for item in self.lists:
            if item.language == language:
                return item
        raise KeyError(language)

    def list_uri(self, language: str) -> str:
        return storage.join(folder_of(self.uri), self.item(language).path)


def folder_of(index: str) -> str:
    """The folder holding an index."""
    return index.rstrip("/").rsplit("/", 1)[0]


def index_uri(uri: str) -> str:
    """The index of a worldwide metadata given as its folder or as the index itself."""
    return uri if uri.rstrip("/").endswith(INDEX_NAME) else storage.join(uri, INDEX_NAME)


def is_worldwide(uri: str, **storage_options: Any) -> bool:
    """Whether `uri` names a worldwide index (or a folder holding one)."""
    if uri.rstrip("/").endswith(INDEX_NAME):
        return True
    return storage.exists(storage.join(uri, INDEX_NAME), **storage_options)


def index_body(lists: list[LanguageList]) -> dict[str, Any]:
    ordered = sorted(lists, key=lambda item: item.language)
    return {
        "format": INDEX_FORMAT,
        "languages": {
            item.language: {"path": item.path, "sha256": item.sha256, "entries": item.entries}
            for item in ordered
        },
    }


def write_index(folder: str, lists: list[LanguageList], **storage_options: Any) -> str:
    """Write `<folder>/languages.json` atomically; returns its sha256."""
    data = orjson.dumps(index_body(lists), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    storage.write_bytes_atomic(storage.join(folder, INDEX_NAME), data, **storage_options)
    return hashlib.sha256(data).hexdigest()


def language_list(folder: str, language: str, relpath: str, **storage_options: Any) -> LanguageList:
    """The index row of a list already written at `<folder>/<relpath>`."""
    data = storage.read_bytes(storage.join(folder, relpath), **storage_options)
    entries = parse_metadata(data, relpath)
    return LanguageList(language, relpath, hashlib.sha256(data).hexdigest(), len(entries))


def parse_index(data: bytes, uri: str) -> WorldwideMetadata:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MetadataError(f"{uri}: not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != INDEX_FORMAT:
        raise MetadataError(f"{uri}: not a worldwide metadata index ({INDEX_FORMAT})")
    rows = body.get("languages")
    if not isinstance(rows, dict) or not rows:
        raise MetadataError(f"{uri}: the index names no language")
    lists = []
    for language in sorted(rows):
        row = rows[language]
        try:
            item = LanguageList(language, str(row["path"]), str(row["sha256"]), int(row["entries"]))
        except (KeyError, TypeError, ValueError):
            raise MetadataError(f"{uri}: bad row for language {language!r}") from None
        if item.path.startswith("/") or ".." in item.path.split("/") or "://" in item.path:
            raise MetadataError(f"{uri}: {language}'s list must be a path inside the folder")
        lists.append(item)
    return WorldwideMetadata(uri, hashlib.sha256(data).hexdigest(), tuple(lists))


def load_index(uri: str, **storage_options: Any) -> WorldwideMetadata:
    uri = index_uri(uri)
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        raise MetadataError(f"worldwide metadata index not found: {uri}") from None
    return parse_index(data, uri)


def load_language(index: WorldwideMetadata, language: str, **storage_options: Any) -> Metadata:
    """One language's list, checked against the index's sha256."""
    uri = index.list_uri(language)
    data = storage.read_bytes(uri, **storage_options)
    sha = hashlib.sha256(data).hexdigest()
    if sha != index.item(language).sha256:
        raise MetadataError(f"{uri} does not match its sha256 in {index.uri}")
    return Metadata(uri, parse_metadata(data, uri), sha)
