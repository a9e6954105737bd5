"""Prefect tasks of the MoDE data-experts flow: each wraps one function of metaclip.experts.

Every task takes the run's `storage` (metaclip.config.StorageConfig: plain options and Secret
block names, never secrets) and resolves it here, where files are opened: the curated shards
with the `inputs` location, everything under the MoDE output with the `output` location.

Results are JSON data stored with a checksum under the MoDE output (`_work/tasks/`,
tasks.caching.cached_run; never Prefect's pickled result store), keyed by the task's name, the
parameters that change its output and its files' identities: a rerun skips finished work, and
a damaged or tampered stored result is recomputed (`cache: "damaged"`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prefect import task
from prefect.states import State

from metaclip.config import StorageConfig
from metaclip.experts import assign, embedding, inputs
from metaclip.experts.paths import ModeLayout
from metaclip_prefect.tasks.caching import DATA_CACHED_TASK, cached_run, identities_on
from metaclip_prefect.tasks.credentials import resolve

Result = dict[str, Any] | State


def _cached(
    name: str,
    output: str,
    storage: StorageConfig,
    params: Mapping[str, Any],
    files: Mapping[str, str | list[str]],
    compute: Callable[[], dict[str, Any]],
    refresh: bool,
) -> Result:
    """cached_run under the MoDE output: key over `params` and the identities of `files`
    (location -> URIs)."""
    return cached_run(
        name, output, {**params, "file_identities": identities_on(storage, **files)}, compute,
        output_options=resolve(storage.output), refresh=refresh,
        result_uri=ModeLayout(output).task_result,
    )  # fmt: skip


@task(name="mode-embed", **DATA_CACHED_TASK)
def embed_shard(
    curated_uri: str,
    out_uri: str,
    encoder: str,
    normalize: bool,
    dtype: str,
    batch_size: int,
    storage: StorageConfig,
    output: str,
    refresh: bool = False,
) -> Result:
    params = {"out_uri": out_uri, "encoder": encoder, "normalize": normalize, "dtype": dtype}
    return _cached(
        "mode-embed", output, storage, params, {"inputs": curated_uri},
        lambda: embedding.embed_shard(
            curated_uri, out_uri, encoder, normalize, dtype, batch_size,
            input_options=resolve(storage.inputs), output_options=resolve(storage.output),
        ),
        refresh,
    )  # fmt: skip


@task(name="mode-sample", **DATA_CACHED_TASK)
def sample_shard(
    embeddings_uri: str,
    out_uri: str,
    rate: float,
    seed: int,
    shard_index: int,
    storage: StorageConfig,
    output: str,
    refresh: bool = False,
) -> Result:
    params = {"out_uri": out_uri, "rate": rate, "seed": seed, "shard_index": shard_index}
    return _cached(
        "mode-sample", output, storage, params, {"output": embeddings_uri},
        lambda: assign.sample_shard(
            embeddings_uri, out_uri, rate, seed, shard_index, **resolve(storage.output)
        ),
        refresh,
    )  # fmt: skip


@task(name="mode-fit", **DATA_CACHED_TASK)
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
    output: str,
    refresh: bool = False,
) -> Result:
    params = {"out_uri": out_uri, "n_fine": n_fine, "n_coarse": n_coarse, "balanced": balanced,
              "niter": niter, "seed": seed, "meta": meta}  # fmt: skip
    return _cached(
        "mode-fit", output, storage, params, {"output": sample_uris},
        lambda: inputs.fit_from_samples(
            sample_uris, out_uri, n_fine, n_coarse, balanced, niter, seed, meta,
            **resolve(storage.output),
        ),
        refresh,
    )  # fmt: skip


@task(name="mode-assign", **DATA_CACHED_TASK)
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
    refresh: bool = False,
) -> Result:
    params = {"shard": shard, "output": output, "outside_share": outside_share, "seed": seed,
              "n_examples": n_examples}  # fmt: skip
    files = {"inputs": curated_uri, "output": [embeddings_uri, centres_uri]}
    return _cached(
        "mode-assign", output, storage, params, files,
        lambda: assign.assign_shard(
            curated_uri, embeddings_uri, centres_uri, shard, output, outside_share, seed,
            n_examples, input_options=resolve(storage.inputs),
            output_options=resolve(storage.output),
        ),
        refresh,
    )  # fmt: skip
