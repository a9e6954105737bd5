"""Load a metadata entry list for curation.

Accepted: a JSON list of strings (MetaCLIP's published metadata.json as it is), or a text file
with one entry per line (.txt). The entry id is the position in the list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from metaclip.errors import MetadataError
from metaclip.io import storage


@dataclass(frozen=True)
class Metadata:
    uri: str
    entries: list[str]
    sha256: str  # of the file's bytes: identifies the entry list in caches and outputs

    def __len__(self) -> int:
        return len(self.entries)


def parse_metadata(data: bytes, uri: str) -> list[str]:
    if uri.endswith(".txt"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MetadataError(f"metadata file is not UTF-8: {uri}") from exc
        return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    try:
        entries = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MetadataError(f"metadata file is not valid JSON: {uri} ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise MetadataError(f"metadata file must be a JSON list of strings: {uri}")
    return entries


def load_metadata(uri: str, **storage_options: Any) -> Metadata:
    """Read and validate a metadata file; any problem is a MetadataError naming the file."""
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError as exc:
        raise MetadataError(f"metadata file not found: {uri}") from exc
    except (OSError, PermissionError) as exc:
        raise MetadataError(f"metadata file unreadable: {uri} ({exc})") from exc
    entries = parse_metadata(data, uri)
    if not entries:
        raise MetadataError(f"metadata file has no entries: {uri}")
    return Metadata(uri=uri, entries=entries, sha256=hashlib.sha256(data).hexdigest())
