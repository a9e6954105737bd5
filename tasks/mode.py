"""Prefect tasks of the MoDE data-experts flow: each wraps one function of metaclip.mode.

Every task takes the run's `storage` (metaclip.config.StorageConfig: plain options and Secret
block names, never secrets) and resolves it here, where files are opened: the curated shards
with the `inputs` location, everything under the MoDE output with the `output` location.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from metaclip.config import StorageConfig
from metaclip.mode import assign, embedding, inputs
from metaclip_prefect.tasks.caching import cache_on_locations
from metaclip_prefect.tasks.credentials import resolve
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS


@task(
    name="mode-embed",
    cache_key_fn=cache_on_locations(
        {"curated_uri": "inputs"}, ("out_uri", "encoder", "normalize", "dtype")
    ),
    **IO_TASK_OPTIONS,
)
def embed_shard(
    curated_uri: str,
    out_uri: str,
    encoder: str,
    normalize: bool,
    dtype: str,
    batch_size: int,
    storage: StorageConfig,
) -> dict[str, Any]:
    return embedding.embed_shard(
        curated_uri, out_uri, encoder, normalize, dtype, batch_size,
        input_options=resolve(storage.inputs), output_options=resolve(storage.output),
    )  # fmt: skip


@task(
    name="mode-sample",
    cache_key_fn=cache_on_locations(
        {"embeddings_uri": "output"}, ("out_uri", "rate", "seed", "shard_index")
    ),
    **IO_TASK_OPTIONS,
)
def sample_shard(
    embeddings_uri: str,
    out_uri: str,
    rate: float,
    seed: int,
    shard_index: int,
    storage: StorageConfig,
) -> dict[str, Any]:
    return assign.sample_shard(
        embeddings_uri, out_uri, rate, seed, shard_index, **resolve(storage.output)
    )


@task(
    name="mode-fit",
    cache_key_fn=cache_on_locations(
        {"sample_uris": "output"},
        ("out_uri", "n_fine", "n_coarse", "balanced", "niter", "seed", "meta"),
    ),
    **IO_TASK_OPTIONS,
)
def fit_centres(
    sample_uris: list[str],
    out_uri: str,
    n_fine: int,
    n_coarse: int,
    balanced: bool,
    niter: int,
    seed: int,
    meta: dict[str, Any],
    storage: StorageConfig,
) -> dict[str, Any]:
    return inputs.fit_from_samples(
        sample_uris, out_uri, n_fine, n_coarse, balanced, niter, seed, meta,
        **resolve(storage.output),
    )  # fmt: skip


@task(
    name="mode-assign",
    cache_key_fn=cache_on_locations(
        {"curated_uri": "inputs", "embeddings_uri": "output", "centres_uri": "output"},
        ("shard", "output", "outside_share", "seed", "n_examples"),
    ),
    **IO_TASK_OPTIONS,
)
def assign_shard(
    curated_uri: str,
    embeddings_uri: str,
    centres_uri: str,
    shard: str,
    output: str,
    outside_share: float,
    seed: int,
    n_examples: int,
    storage: StorageConfig,
) -> dict[str, Any]:
    return assign.assign_shard(
        curated_uri, embeddings_uri, centres_uri, shard, output, outside_share, seed,
        n_examples, input_options=resolve(storage.inputs),
        output_options=resolve(storage.output),
    )  # fmt: skip
