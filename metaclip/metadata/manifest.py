"""Small JSON manifests that mark a unit of work as done.

Work outputs live in content-addressed folders (named by metaclip.cachekeys.make_key over their
inputs' identities and parameters); a manifest is written last, atomically, so its presence means
the folder is complete and a rerun may reuse it, with or without Prefect's result cache.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import orjson

from metaclip import storage
from metaclip.metadata.streams import InputDigest

T = TypeVar("T")


def all_exist(uris: list[str], storage_options: dict[str, Any] | None = None) -> bool:
    """Whether every output is there (for results whose outputs are content-addressed)."""
    return all(storage.exists(u, **(storage_options or {})) for u in uris)


def save(uri: str, obj: Any, storage_options: dict[str, Any] | None = None) -> None:
    data = orjson.dumps(dataclasses.asdict(obj), option=orjson.OPT_INDENT_2)
    storage.write_bytes_atomic(uri, data, **(storage_options or {}))


def load(uri: str, cls: type[T], storage_options: dict[str, Any] | None = None) -> T | None:
    """The manifest at `uri` as a `cls`, or None when there is none (or it is unreadable)."""
    opts = storage_options or {}
    if not storage.exists(uri, **opts):
        return None
    try:
        body = orjson.loads(storage.read_bytes(uri, **opts))
        if "inputs" in body:
            body["inputs"] = [InputDigest(**d) for d in body["inputs"]]
        return cls(**body)
    except (orjson.JSONDecodeError, TypeError, OSError):
        return None  # a manifest from another version: redo the work
