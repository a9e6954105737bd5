"""What a stage returns besides its files: the identities of what it wrote, JSON records,
its peak memory. Task results hold these so a later run can tell whether they still stand.
"""

from __future__ import annotations

import hashlib
import resource
from collections.abc import Iterable
from typing import Any

import orjson

from metaclip import storage
from metaclip.cachekeys import file_identity


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
