"""Storage options with their credentials, resolved where files are opened, never stored.

A location's options (metaclip.config.Location) are plain, non-secret fsspec options; where
the run names a Prefect Secret block for the location (`credentials={"output": "my-s3"}`),
the block's JSON object (for example {"key": ..., "secret": ...}) is merged in here, in the
process that opens the files. The merged options live only in memory: they are never a flow
or task parameter, a log line, an artifact or part of a summary. Without a block, fsspec and
s3fs find credentials as usual (AWS_* variables, ~/.aws, instance roles).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from metaclip.config import Location, StorageConfig, Stores
from metaclip.errors import UserError


@lru_cache(maxsize=64)
def _block_options(name: str) -> bytes:
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except ValueError:
        raise UserError(f"credentials: no Prefect Secret block named {name!r}") from None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise UserError(f"credentials: Secret block {name!r} must hold a JSON object of options")
    return orjson.dumps(value)


def resolve(location: Location) -> dict[str, Any]:
    """The location's options with its block's merged in (nested objects such as client_kwargs
    are merged key by key: a block with credentials keeps the options' endpoint_url)."""
    options = dict(location.options)
    if location.secret_block:
        options = _merged(options, orjson.loads(_block_options(location.secret_block)))
    return options


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = _merged(out[name], value)
        else:
            out[name] = value
    return out


def stores_for(storage: StorageConfig, exclude_store: str | None = None) -> Stores:
    return Stores(
        inputs=resolve(storage.inputs),
        metadata=resolve(storage.metadata),
        output=resolve(storage.output),
        exclude_store=resolve(storage.exclude_store),
        exclude_store_root=exclude_store,
    )
