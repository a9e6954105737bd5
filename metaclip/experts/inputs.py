"""Finding the curated shards and sizing the k-means sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.parquet as pq

from metaclip.errors import UserError
from metaclip.experts.embedding import load_array
from metaclip.experts.kmeans import N_COARSE, N_FINE, N_ITER, fit_centres
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import written

SAMPLE_SIZE = 1_000_000


def shard_source(curated: str, **storage_options: Any) -> str:
    """What curated_shards lists: a curation output root's curated/ folder when it has one,
    else `curated` as given (a folder, a glob or a file)."""
    root_dir = OutputLayout(curated).curated_dir
    if "*" not in curated and storage.exists(root_dir, **storage_options):
        return root_dir
    return curated


def curated_shards(curated: str, **storage_options: Any) -> list[str]:
    """Curated Parquet shards from a curation output root, its curated/ folder, a glob or files."""
    curated = shard_source(curated, **storage_options)
    shards = storage.expand_inputs([curated], suffixes=(".parquet",), **storage_options)
    if not shards:
        raise UserError(f"no curated Parquet shards under {curated}")
    return shards


def count_rows(uris: list[str], **storage_options: Any) -> list[int]:
    """Row counts from the Parquet footers only (no data read)."""
    counts = []
    for uri in uris:
        with storage.open_input(uri, **storage_options) as fh:
            counts.append(pq.ParquetFile(fh).metadata.num_rows)
    return counts


def sample_rate(total: int, sample_size: int) -> float:
    return 1.0 if total <= sample_size else sample_size / total


def fit_from_samples(
    sample_uris: list[str],
    out_uri: str,
    n_fine: int = N_FINE,
    n_coarse: int = N_COARSE,
    balanced: bool = False,
    niter: int = N_ITER,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    **storage_options: Any,
) -> dict[str, Any]:
    parts = [load_array(u, **storage_options).astype(np.float32) for u in sample_uris]
    sample = np.concatenate([p for p in parts if len(p)]) if any(len(p) for p in parts) else None
    if sample is None or len(sample) < n_fine:
        got = 0 if sample is None else len(sample)
        raise UserError(f"the k-means sample has {got} rows, fewer than n_fine={n_fine}")
    centres = fit_centres(sample, n_fine, n_coarse, balanced, niter, seed, meta)
    centres.save(out_uri, **storage_options)
    return {"centres_uri": out_uri, "outputs": written([out_uri], **storage_options)}
