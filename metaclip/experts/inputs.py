"""Finding the curated shards and sizing the k-means sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from metaclip.errors import UserError
from metaclip.experts.embedding import load_array
from metaclip.experts.kmeans import fit_centres
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import written

if TYPE_CHECKING:  # metaclip.config imports this module's constants
    from metaclip.config import ExpertsConfig, Stores

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


# The settings that change the centres (with the samples' identities, `out_uri` and `meta`).
FIT_KEYED_BY = (
    "n_fine", "n_coarse", "kmeans", "distance", "niter", "coarse_niter", "chunk_rows", "seed"
)  # fmt: skip


def fit_from_samples(
    settings: ExpertsConfig,
    stores: Stores,
    sample_uris: list[str],
    out_uri: str,
    meta: dict[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Fit the fine and coarse centres (kmeans.fit_centres with the settings' n_fine, n_coarse,
    kmeans, distance, niter, coarse_niter, chunk_rows and seed) on the samples; save them, with
    `meta`, to `out_uri` (all under the MoDE output, read and written with its options).
    `device` is where balanced k-means runs (a GPU when there is one, unless given); like the
    encoder's device it is not keyed: fits on either agree up to float rounding."""
    opts, n_fine = stores.output, settings.n_fine
    parts = [load_array(u, **opts).astype(np.float32) for u in sample_uris]
    sample = np.concatenate([p for p in parts if len(p)]) if any(len(p) for p in parts) else None
    if sample is None or len(sample) < n_fine:
        got = 0 if sample is None else len(sample)
        raise UserError(f"the k-means sample has {got} rows, fewer than n_fine={n_fine}")
    centres = fit_centres(
        sample, n_fine, settings.n_coarse, settings.kmeans, settings.niter, settings.seed, meta,
        distance=settings.distance, coarse_niter=settings.coarse_niter,
        chunk_rows=settings.chunk_rows, device=device,
    )  # fmt: skip
    centres.save(out_uri, **opts)
    return {"centres_uri": out_uri, "outputs": written([out_uri], **opts)}
