"""What a stage returns besides its files: the identities of what it wrote, JSON records,
its peak memory. Task results hold these so a later run can tell whether they still stand.
"""

from __future__ import annotations

import hashlib
import resource
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from metaclip.io import storage
from metaclip.io.cachekeys import file_identity


def peak_rss_mb() -> float:
    """This worker process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def written(uris: Iterable[str], **storage_options: Any) -> dict[str, str]:
    """Identity of each file just written; a task returns it so that a later run can tell
    whether its outputs are still the ones it made (not gone, not overwritten)."""
    return {u: file_identity(u, **storage_options) for u in uris}


def changed_outputs(
    result: dict[str, Any],
    options_for: Callable[[str], dict[str, Any]] | None = None,
    **storage_options: Any,
) -> list[str]:
    """The outputs a cached result names that are gone or no longer what it wrote
    (options_for: each output's storage options, where they differ by location)."""
    return [
        uri for uri, identity in result["outputs"].items()
        if file_identity(uri, **(options_for(uri) if options_for else storage_options))
        != identity
    ]


def write_json(uri: str, data: dict[str, Any], **storage_options: Any) -> str:
    """Write JSON atomically; returns the sha256 of the bytes written."""
    blob = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    storage.write_bytes_atomic(uri, blob, **storage_options)
    return hashlib.sha256(blob).hexdigest()


def read_json(uri: str, **storage_options: Any) -> dict[str, Any]:
    return orjson.loads(storage.read_bytes(uri, **storage_options))


# --- task results as data ------------------------------------------------------------------
# A task's result is stored as JSON beside the run's work, with the sha256 of its canonical
# bytes and the key it answers: loading it parses data (never unpickles), and a record that
# fails either check is reported as damaged and recomputed by the caller.


def _canonical(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result, option=orjson.OPT_SORT_KEYS)


def store_result(
    uri: str, key: str, result: dict[str, Any], /, **storage_options: Any
) -> None:
    """Store a task's result as data. (Positional-only parameters: s3fs has an option named
    `key`, the access key id, which must reach **storage_options.)"""
    body = _canonical(result)
    record = {"key": key, "sha256": hashlib.sha256(body).hexdigest(), "result": result}
    storage.write_bytes_atomic(uri, orjson.dumps(record), **storage_options)


def load_result(
    uri: str, key: str, /, **storage_options: Any
) -> tuple[dict[str, Any] | None, bool]:
    """(result, damaged): (None, False) when there is none, (None, True) when the record is
    not valid JSON, answers another key or fails its checksum."""
    try:
        blob = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        return None, False
    try:
        record = orjson.loads(blob)
        result = record["result"]
        valid = (
            record["key"] == key
            and isinstance(result, dict)
            and hashlib.sha256(_canonical(result)).hexdigest() == record["sha256"]
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        valid = False
    return (result, False) if valid else (None, True)
