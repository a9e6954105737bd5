"""Small JSON manifests that mark a unit of work as done, and the results of the metadata
tasks as JSON data (to_dict / from_dict of each result type go through here).

Work outputs live in content-addressed folders (named by metaclip.io.cachekeys.make_key over their
inputs' identities and parameters); a manifest is written last, atomically, so its presence means
the folder is complete and a rerun may reuse it, with or without the task's stored result.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self, TypeVar

import orjson

from metaclip.io import storage
from metaclip.metadata.streams import InputDigest

T = TypeVar("T")


def all_exist(uris: list[str], storage_options: dict[str, Any] | None = None) -> bool:
    """Whether every output is there (for results whose outputs are content-addressed)."""
    return all(storage.exists(u, **(storage_options or {})) for u in uris)


def to_dict(obj: Any) -> dict[str, Any]:
    """A result dataclass as JSON data (its InputDigests as dicts)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], body: dict[str, Any]) -> T:
    """A result dataclass from its to_dict() data; keys that are not fields (a task result's
    `cache`) are left out. TypeError or KeyError when the data is not such a result."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    fields = {k: v for k, v in body.items() if k in names}
    if "inputs" in fields:
        fields["inputs"] = [InputDigest(**d) for d in fields["inputs"]]
    return cls(**fields)


class AsData:
    """Mixin of the metadata tasks' result dataclasses: `to_dict()` is what a task returns and
    stores (JSON data, never a pickle), `from_dict()` reads it back."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Self:
        return from_dict(cls, body)


def save(uri: str, obj: Any, storage_options: dict[str, Any] | None = None) -> None:
    data = orjson.dumps(to_dict(obj), option=orjson.OPT_INDENT_2)
    storage.write_bytes_atomic(uri, data, **(storage_options or {}))


def load(uri: str, cls: type[T], storage_options: dict[str, Any] | None = None) -> T | None:
    """The manifest at `uri` as a `cls`, or None when there is none (or it is unreadable)."""
    opts = storage_options or {}
    if not storage.exists(uri, **opts):
        return None
    try:
        body = orjson.loads(storage.read_bytes(uri, **opts))
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if not isinstance(body, dict) or set(body) - names:
            return None
        return from_dict(cls, body)
    except (orjson.JSONDecodeError, TypeError, OSError):
        return None  # a manifest from another version: redo the work
