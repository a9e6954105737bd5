"""The matcher disk cache's integrity and ownership: what makes a cache set safe to parse.

The disk cache (one set per metadata file: `<sha>-f<format>-ac<pyahocorasick>.matcher`, an npz of
the tables, `.vocab` a Feather file, `.ac` pyahocorasick's native automaton, `.manifest.json`)
is parsed only when it can be trusted:
- the manifest, written last by `Matcher.save`, holds the sha256 of every file of the set;
  `Matcher.load` checks every hash before parsing anything, and a missing, changed, extended or
  unexpected file is damage: the matcher is rebuilt and the set written again;
- the native automaton (parsed by C code) and the rest are read only from a cache directory
  no other user could write: the directory and every file of the set owned by this user and
  not group- or world-writable, and each directory above it owned by this user or root and
  not writable by others unless sticky (like /tmp). Otherwise the matcher is built in memory,
  nothing is written there, and a warning says why;
- the npz is read with allow_pickle=False.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

MANIFEST_FORMAT = "metaclip-matcher-cache/1"
_MANIFEST_MAX_BYTES = 1 << 16


class CacheError(ValueError):
    """A matcher cache set that must not be parsed."""


class DamagedCacheError(CacheError):
    """The set does not match its manifest (or has none): rebuild it."""


class UnsafeCacheError(CacheError):
    """The set or its directory could be written by another user: do not read it."""


def _make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing folder above it, each readable by its owner only."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def _manifest_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.manifest.json")


def _set_paths(path: Path) -> dict[str, Path]:
    """The files of a saved set by role (the manifest aside)."""
    return {"npz": path, "vocab": Path(f"{path}.vocab"), "ac": Path(f"{path}.ac")}


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    """The manifest's sha256 per role; DamagedCacheError unless it is exactly what save wrote
    (missing, oversized, not JSON, other keys or roles)."""
    manifest = _manifest_path(path)
    try:
        with open(manifest, "rb") as fh:
            blob = fh.read(_MANIFEST_MAX_BYTES + 1)
    except FileNotFoundError:
        raise DamagedCacheError(f"{path}: no manifest") from None
    try:
        if len(blob) > _MANIFEST_MAX_BYTES:
            raise ValueError("oversized")
        body = json.loads(blob)
        hashes = body["sha256"]
        if (
            set(body) != {"format", "sha256"}
            or body["format"] != MANIFEST_FORMAT
            or not isinstance(hashes, dict)
            or not {"npz", "vocab"} <= set(hashes) <= {"npz", "vocab", "ac"}
            or not all(isinstance(h, str) and len(h) == 64 for h in hashes.values())
        ):
            raise ValueError("not a matcher cache manifest")
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedCacheError(f"{manifest}: {exc}") from None
    return hashes


def _verified_bytes(file: Path, sha256: str | None, keep: bool = True) -> bytes:
    """The file's bytes when they hash to `sha256` (b"" unless `keep`), else DamagedCacheError."""
    try:
        if keep:
            data = file.read_bytes()
            actual = hashlib.sha256(data).hexdigest()
        else:
            data, actual = b"", _sha256_file(file)
    except FileNotFoundError:
        raise DamagedCacheError(f"{file}: missing") from None
    if actual != sha256:
        raise DamagedCacheError(f"{file}: sha256 differs from the manifest's")
    return data


def _writable_by_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _file_problem(file: Path) -> str | None:
    """Why a file of the set cannot be trusted (owned by another user, a link or not a plain
    file, group- or world-writable), or None (also when it is missing: the hashes decide)."""
    if not hasattr(os, "geteuid"):
        return None
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{file} is not a plain file"
    if st.st_uid != os.geteuid():
        return f"{file} is owned by uid {st.st_uid}, not this user"
    if _writable_by_others(st.st_mode):
        return f"{file} is group- or world-writable"
    return None


def cache_dir_problem(directory: Path) -> str | None:
    """Why another user could write the cache directory `directory`, or None.

    The directory itself (when it exists) must be owned by this user and not group- or
    world-writable; every directory above it, and every symbolic link on the way, owned by
    this user or root, and a directory above writable by others only when sticky (/tmp).
    """
    if not hasattr(os, "geteuid"):
        return None
    uid = os.geteuid()
    chains = [Path(os.path.abspath(directory)), Path(os.path.realpath(directory))]
    for chain in chains:
        for position, current in enumerate([chain, *chain.parents]):
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                continue  # save creates it, private
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid not in (uid, 0):
                    return f"{current} is a link owned by uid {st.st_uid}"
                continue
            if position == 0:
                if st.st_uid != uid:
                    return f"{current} is owned by uid {st.st_uid}, not this user"
                if _writable_by_others(st.st_mode):
                    return f"{current} is group- or world-writable"
            elif st.st_uid not in (uid, 0):
                return f"{current} is owned by uid {st.st_uid}"
            elif _writable_by_others(st.st_mode) and not st.st_mode & stat.S_ISVTX:
                return f"{current} is writable by other users and not sticky"
    return None
