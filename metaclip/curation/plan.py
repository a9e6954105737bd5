"""A run's plan, fixed before any work: its input files and format, its metadata (a list, or
a worldwide index for that recipe), the batches of files, the number of uuid buckets, the
exclusion store's agreement with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from metaclip.curation.thresholds import ENGLISH
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import StoreLayout
from metaclip.io.results import read_json, write_json
from metaclip.metadata import Metadata, load_metadata
from metaclip.metadata.multilingual import WorldwideMetadata, is_worldwide, load_index

INPUT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "wat": (".wat.gz", ".wat"),
    "warc": (".warc.gz", ".warc"),
    "auto": (".wat.gz", ".wat", ".warc.gz", ".warc"),
}


def format_of(uri: str, fmt: str) -> str:
    """The input format of a file: as given, or by its name with fmt="auto"."""
    if fmt != "auto":
        return fmt
    return "wat" if uri.endswith((".wat.gz", ".wat")) else "warc"


MAX_AUTO_BUCKETS = 4096
# A CommonCrawl WAT gives roughly 100k matched pairs: 10 to 20 files make 1 to 2M pairs a bucket,
# one or two sub-buckets of at most bucket.DEFAULT_MAX_BUCKET_ROWS.
FILES_PER_BUCKET = 20


def auto_buckets(n_files: int) -> int:
    """A bucket count for a pool of n_files WAT files: a power of two, 4 to 4096.

    The output never depends on it (dedup is exact and every draw is per row); it only sizes
    the bucket tasks. An exclusion store fixes it for all the runs that share the store.
    """
    wanted = max(1, -(-n_files // FILES_PER_BUCKET))
    return int(min(MAX_AUTO_BUCKETS, max(4, 2 ** (wanted - 1).bit_length())))


def store_buckets(store: str, **storage_options: Any) -> int | None:
    """The bucket count an existing exclusion store was made with, if any."""
    meta_uri = StoreLayout(store).meta
    if not storage.exists(meta_uri, **storage_options):
        return None
    return int(read_json(meta_uri, **storage_options)["n_buckets"])


def check_metadata(
    metadata_uri: str,
    worldwide: bool = False,
    languages: Sequence[str] | None = None,
    **storage_options: Any,
) -> Metadata | WorldwideMetadata:
    """The run's metadata, read: a list (English recipe) or a worldwide index that holds
    English and every language asked for (worldwide recipe); a UserError otherwise."""
    if not worldwide:
        if is_worldwide(metadata_uri, **storage_options):
            raise UserError(f"{metadata_uri} is worldwide metadata (one list per language): "
                            "curate it with --recipe worldwide")  # fmt: skip
        return load_metadata(metadata_uri, **storage_options)
    if not is_worldwide(metadata_uri, **storage_options):
        raise UserError(f"the worldwide recipe needs worldwide metadata (a folder with "
                        f"languages.json, `metaclip build-metadata --languages`): {metadata_uri}")
    index = load_index(metadata_uri, **storage_options)
    missing = sorted({ENGLISH, *(languages or ())} - set(index.languages))
    if missing:
        raise UserError(f"{index.uri} has no metadata for: {', '.join(missing)} (it has "
                        f"{', '.join(index.languages)})")  # fmt: skip
    return index


def preflight(
    inputs: Sequence[str],
    metadata_uri: str,
    fmt: str = "wat",
    metadata_options: dict[str, Any] | None = None,
    *,
    worldwide: bool = False,
    languages: Sequence[str] | None = None,
    **storage_options: Any,
) -> tuple[Metadata | WorldwideMetadata, list[str]]:
    """Check a run's inputs before any work: (metadata, input files) or a UserError.
    storage_options: the inputs'; metadata_options: the metadata's."""
    if fmt not in INPUT_SUFFIXES:
        raise UserError(f"unknown input format {fmt!r} (known: {', '.join(INPUT_SUFFIXES)})")
    metadata = check_metadata(metadata_uri, worldwide, languages, **(metadata_options or {}))
    files = storage.expand_inputs(inputs, INPUT_SUFFIXES[fmt], missing_ok=True, **storage_options)
    if not any(storage.exists(f, **storage_options) for f in files):
        raise UserError(f"none of the inputs exist: {', '.join(inputs)}")
    return metadata, files


def make_batches(files: Sequence[str], batch_size: int) -> list[tuple[str, list[str]]]:
    """Split files into (batch id, files); the id names the batch's outputs.

    The id holds the batch's position (for readable listings) and a hash of its files (so two
    different inputs never share an output name).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out = []
    for index, start in enumerate(range(0, len(files), batch_size)):
        batch = list(files[start : start + batch_size])
        digest = hashlib.sha1("\n".join(batch).encode()).hexdigest()[:8]
        out.append((f"{index:05d}-{digest}", batch))
    return out


def default_store_tag(output: str) -> str:
    """A run's name in the exclusion store: runs into the same output share it."""
    return "run-" + hashlib.sha1(output.rstrip("/").encode()).hexdigest()[:12]


def check_store(store: str, n_buckets: int, **storage_options: Any) -> None:
    """An exclusion store is bucketed once; every run that uses it must agree."""
    existing = store_buckets(store, **storage_options)
    if existing is None:
        write_json(StoreLayout(store).meta, {"n_buckets": n_buckets}, **storage_options)
    elif existing != n_buckets:
        raise UserError(
            f"exclusion store {store} has {existing} buckets; run with n_buckets={existing}"
        )
