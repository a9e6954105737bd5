"""Storage through fsspec: local paths and s3:// alike.

Every output is committed atomically: locally it is written beside its destination and renamed;
on S3 a PUT creates the object whole, so a reader never sees a partial file.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from metaclip.errors import UserError


def filesystem(uri: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return (filesystem, path-within-it) for a local path or URI."""
    try:
        return url_to_fs(uri, **storage_options)
    except (ImportError, ValueError) as exc:
        raise UserError(f"cannot open {uri!r}: {exc}") from exc


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def join(base: str, *parts: str) -> str:
    """Join path parts with '/', keeping a URI scheme intact."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def exists(uri: str, **storage_options: Any) -> bool:
    fs, path = filesystem(uri, **storage_options)
    return fs.exists(path)


def open_input(uri: str, **storage_options: Any) -> IO[bytes]:
    """Open a file for binary reading (no transparent decompression: readers decide)."""
    fs, path = filesystem(uri, **storage_options)
    return fs.open(path, "rb")


def list_files(dir_uri: str, **storage_options: Any) -> list[str]:
    """Files directly under a directory (or prefix), as URIs; empty if it does not exist."""
    fs, path = filesystem(dir_uri, **storage_options)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    prefix = "" if is_local(dir_uri) else dir_uri.split("://", 1)[0] + "://"
    return sorted(f"{prefix}{p}" for p in entries if not p.rstrip("/").endswith(path.rstrip("/")))


def remove(uri: str, **storage_options: Any) -> None:
    fs, path = filesystem(uri, **storage_options)
    if fs.exists(path):
        fs.rm(path)


def read_bytes(uri: str, **storage_options: Any) -> bytes:
    fs, path = filesystem(uri, **storage_options)
    return fs.cat_file(path)


def write_bytes_atomic(uri: str, data: bytes, **storage_options: Any) -> None:
    """Write data so that uri either holds all of it or is untouched."""
    fs, path = filesystem(uri, **storage_options)
    if is_local(uri):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


def write_parquet_atomic(uri: str, table: pa.Table, **storage_options: Any) -> str:
    """Write one Parquet file atomically; returns the sha256 of its bytes.

    Pages carry CRC checksums, which read_parquet verifies: a corrupt file fails loudly.
    """
    buf = io.BytesIO()
    pq.write_table(
        table, buf, compression="zstd", row_group_size=128 * 1024, write_page_checksum=True
    )
    data = buf.getvalue()
    write_bytes_atomic(uri, data, **storage_options)
    return hashlib.sha256(data).hexdigest()


def read_parquet(uri: str, columns: list[str] | None = None, **storage_options: Any) -> pa.Table:
    fs, path = filesystem(uri, **storage_options)
    with fs.open(path, "rb") as fh:
        return pq.read_table(fh, columns=columns, page_checksum_verification=True)


def expand_inputs(
    uris: Iterable[str],
    suffixes: tuple[str, ...] | None = None,
    missing_ok: bool = False,
    **storage_options: Any,
) -> list[str]:
    """Expand globs and directories into a sorted, de-duplicated list of file URIs.

    A directory expands to the files below it whose names end with one of `suffixes`.
    A pattern or directory that matches nothing is a user error; so is a missing file unless
    `missing_ok` (then it is kept, for the reader to count as skipped).
    """
    out: list[str] = []
    for uri in uris:
        fs, path = filesystem(uri, **storage_options)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        if any(ch in path for ch in "*?["):
            found = sorted(fs.glob(path))
        elif fs.isdir(path):
            found = sorted(p for p in fs.find(path) if not suffixes or p.endswith(suffixes))
        elif fs.exists(path) or missing_ok:
            found = [path]
        else:
            raise UserError(f"input not found: {uri}")
        if not found:
            raise UserError(f"no input files match {uri}")
        out.extend(f"{prefix}{p}" for p in found)
    return sorted(dict.fromkeys(out))
