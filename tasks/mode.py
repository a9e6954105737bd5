"""Prefect tasks of the MoDE data-experts flow: each wraps one function of metaclip.mode."""

from __future__ import annotations

from typing import Any

from metaclip_prefect.tasks.caching import cache_on
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS
from prefect import task

from metaclip.mode import assign, embedding, inputs


@task(
    name="mode-embed",
    cache_key_fn=cache_on(
        files=("curated_uri",), params=("out_uri", "encoder", "normalize", "dtype")
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
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return embedding.embed_shard(
        curated_uri, out_uri, encoder, normalize, dtype, batch_size, **(storage_options or {})
    )


@task(
    name="mode-sample",
    cache_key_fn=cache_on(
        files=("embeddings_uri",), params=("out_uri", "rate", "seed", "shard_index")
    ),
    **IO_TASK_OPTIONS,
)
def sample_shard(
    embeddings_uri: str,
    out_uri: str,
    rate: float,
    seed: int,
    shard_index: int,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return assign.sample_shard(
        embeddings_uri, out_uri, rate, seed, shard_index, **(storage_options or {})
    )


@task(
    name="mode-fit",
    cache_key_fn=cache_on(
        files=("sample_uris",),
        params=("out_uri", "n_fine", "n_coarse", "balanced", "niter", "seed", "meta"),
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
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return inputs.fit_from_samples(
        sample_uris, out_uri, n_fine, n_coarse, balanced, niter, seed, meta,
        **(storage_options or {}),
    )


@task(
    name="mode-assign",
    cache_key_fn=cache_on(
        files=("curated_uri", "embeddings_uri", "centres_uri"),
        params=("shard", "output", "outside_share", "seed", "n_examples"),
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
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return assign.assign_shard(
        curated_uri, embeddings_uri, centres_uri, shard, output, outside_share, seed,
        n_examples, **(storage_options or {}),
    )
