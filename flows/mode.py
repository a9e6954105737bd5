"""The MoDE data-experts flow: curated pairs -> embeddings -> fine/coarse k-means -> experts.

`data_experts` finds the curated shards before any work (none found stops it in one line), then
runs `build_experts` on the Dask task runner: one embedding task and one assignment task per
shard, a sampling task per shard and one k-means fit in between.
"""

from __future__ import annotations

import time
from typing import Any

from metaclip_prefect.flows.runners import dask_task_runner
from metaclip_prefect.flows.verified import gather_verified
from metaclip_prefect.tasks.mode import assign_shard, embed_shard, fit_centres, sample_shard
from prefect import flow, get_run_logger
from prefect.states import Failed

from metaclip.errors import UserError
from metaclip.mode import inputs
from metaclip.mode.assign import N_EXAMPLES
from metaclip.mode.embedding import BATCH_SIZE, DEFAULT_ENCODER
from metaclip.mode.kmeans import N_COARSE, N_FINE, N_ITER, Centres
from metaclip.mode.paths import ModeLayout, shard_id
from metaclip.mode.report import cluster_report
from metaclip.results import write_json


@flow(name="data-experts", log_prints=True)
def data_experts(
    curated: str,
    output: str,
    encoder: str = DEFAULT_ENCODER,
    n_fine: int = N_FINE,
    n_coarse: int = N_COARSE,
    balanced: bool = False,
    sample_size: int = inputs.SAMPLE_SIZE,
    outside_share: float = 0.0,
    seed: int = 0,
    niter: int = N_ITER,
    n_examples: int = N_EXAMPLES,
    normalize: bool = True,
    dtype: str = "float16",
    batch_size: int = BATCH_SIZE,
    dask_address: str | None = None,
    n_workers: int | None = None,
    storage_options: dict[str, Any] | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Split a curated set (curation output root, its curated/ folder or a glob) into experts."""
    opts = storage_options or {}
    logger = get_run_logger()
    try:
        shards = inputs.curated_shards(curated, **opts)
        rows = inputs.count_rows(shards, **opts)
    except UserError as exc:  # before any work: one line, no traceback
        logger.error("%s", exc)
        return Failed(message=str(exc))
    logger.info("%d curated shards, %d pairs, output %s", len(shards), sum(rows), output)
    runner = dask_task_runner(dask_address, n_workers, dashboard_address)
    return build_experts.with_options(task_runner=runner)(
        shards=shards,
        output=output,
        rate=inputs.sample_rate(sum(rows), sample_size),
        encoder=encoder,
        n_fine=n_fine,
        n_coarse=n_coarse,
        balanced=balanced,
        outside_share=outside_share,
        seed=seed,
        niter=niter,
        n_examples=n_examples,
        normalize=normalize,
        dtype=dtype,
        batch_size=batch_size,
        storage_options=opts,
    )


@flow(name="build-experts")
def build_experts(
    shards: list[str],
    output: str,
    rate: float,
    encoder: str,
    n_fine: int,
    n_coarse: int,
    balanced: bool,
    outside_share: float,
    seed: int,
    niter: int,
    n_examples: int,
    normalize: bool,
    dtype: str,
    batch_size: int,
    storage_options: dict[str, Any],
) -> dict[str, Any]:
    opts = storage_options
    layout = ModeLayout(output)
    ids = [shard_id(s) for s in shards]
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    embedded = gather_verified(
        embed_shard,
        [((s, layout.embeddings(i), encoder, normalize, dtype, batch_size, opts), {})
         for s, i in zip(shards, ids, strict=True)],
        opts,
    )
    seconds["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    sampled = gather_verified(
        sample_shard,
        [((e["embeddings_uri"], layout.sample(i), rate, seed, n, opts), {})
         for n, (e, i) in enumerate(zip(embedded, ids, strict=True))],
        opts,
    )
    meta = {"encoder": encoder, "normalize": normalize}
    fit_call = (([r["sample_uri"] for r in sampled], layout.centres, n_fine, n_coarse,
                 balanced, niter, seed, meta, opts), {})
    centres_uri = gather_verified(fit_centres, [fit_call], opts)[0]["centres_uri"]
    seconds["kmeans"] = time.perf_counter() - started

    started = time.perf_counter()
    assigned = gather_verified(
        assign_shard,
        [((s, e["embeddings_uri"], centres_uri, i, output, outside_share, seed, n_examples,
           opts), {})
         for s, e, i in zip(shards, embedded, ids, strict=True)],
        opts,
    )
    seconds["assign"] = time.perf_counter() - started

    report = cluster_report(assigned, Centres.load(centres_uri, **opts), n_examples)
    write_json(layout.clusters, report, **opts)
    result = {
        "shards": len(shards),
        "pairs": report["pairs"],
        "sample_rows": sum(r["rows"] for r in sampled),
        "expert_sizes": report["expert_sizes"],
        "outside_added": [e["outside_added"] for e in report["experts"]],
        "empty_fine_clusters": report["empty_fine_clusters"],
        "encoder": encoder,
        "n_fine": n_fine,
        "n_coarse": n_coarse,
        "balanced": balanced,
        "outside_share": outside_share,
        "seed": seed,
        "seconds": seconds,
        "outputs": {
            "experts": [layout.expert_dir(k) for k in range(n_coarse)],
            "centres": layout.centres,
            "clusters": layout.clusters,
            "summary": layout.summary,
        },
    }
    write_json(layout.summary, result, **opts)
    return result
