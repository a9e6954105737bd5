"""The cache-key recipe, owned here and nowhere else.

A key names a unit of work by what determines its output:
- each input file's identity: path with size and mtime locally; ETag (or version id) on S3,
- the metadata's sha256 where the work depends on the entry list,
- the parameters that change the output,
- the pipeline version (bumped when outputs change meaning),
and never the run id or the task's source alone, so a rerun of the same work hits the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from metaclip import PIPELINE_VERSION
from metaclip.io import storage


def file_identity(uri: str, **storage_options: Any) -> str:
    """A string that changes when the file's content may have changed."""
    fs, path = storage.filesystem(uri, **storage_options)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return f"{uri}|missing"  # a missing input is a counted skip; its key says so
    if storage.is_local(uri):
        mtime = info.get("mtime") or info.get("created") or 0
        return f"{path}|{info.get('size')}|{mtime}"
    tag = info.get("VersionId") or info.get("ETag") or info.get("etag") or info.get("md5")
    if tag is None:  # other stores: size and modification time are the best we have
        tag = f"{info.get('size')}|{info.get('LastModified') or info.get('mtime')}"
    return f"{uri}|{tag}"


def make_key(
    name: str,
    params: Mapping[str, Any] | None = None,
    files: Iterable[str] = (),
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Hash a unit of work's name, output-changing parameters and input file identities."""
    opts = dict(storage_options or {})
    body = {
        "name": name,
        "pipeline": PIPELINE_VERSION,
        "params": dict(params or {}),
        "files": [file_identity(f, **opts) for f in files],
    }
    blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:32]}"
