"""Rebalance a finished curation with another t or seed: sampling only, no extraction,
matching, dedup or counting again (they are read from the run's _work/)."""

from __future__ import annotations

import time
from typing import Any

from metaclip_prefect.flows.curate import sample_buckets
from metaclip_prefect.flows.runners import dask_task_runner
from metaclip_prefect.tasks.artifacts import publish_summary
from metaclip_prefect.tasks.datacard import publish_datacard
from prefect import flow, get_run_logger
from prefect.states import Failed

from metaclip import curation, results, storage
from metaclip.counts import read_entry_counts
from metaclip.errors import UserError
from metaclip.paths import OutputLayout


@flow(name="rebalance", log_prints=True)
def rebalance(
    output: str,
    t: float,
    seed: int | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    storage_options: dict[str, Any] | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Write a new balanced set into `output`/curated from the run's matches and counts."""
    opts = storage_options or {}
    layout = OutputLayout(output)
    try:
        params, old = _finished_run(layout, opts)
    except UserError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))
    params = {**params, "t": t, "seed": params["seed"] if seed is None else seed}
    runner = dask_task_runner(dask_address, n_workers, dashboard_address)
    return rebalance_buckets.with_options(task_runner=runner)(params, old, opts)


def _finished_run(layout: OutputLayout, opts: dict[str, Any]) -> tuple[dict, dict]:
    if not storage.exists(layout.run_record, **opts) or not storage.exists(layout.summary, **opts):
        raise UserError(f"no finished curation in {layout.root} (run `metaclip curate` first)")
    return results.read_json(layout.run_record, **opts), results.read_json(layout.summary, **opts)


@flow(name="rebalance-buckets")
def rebalance_buckets(
    params: dict[str, Any], old: dict[str, Any], storage_options: dict[str, Any]
) -> dict[str, Any]:
    layout = OutputLayout(params["output"])
    buckets = [
        {"bucket": b, "dedup_uris": curation.dedup_parts(params, b)}
        for b in range(params["n_buckets"])
    ]
    started = time.perf_counter()
    sampled = sample_buckets(buckets, params["counts_uri"], params, storage_options)
    counts, _ = read_entry_counts(params["counts_uri"], **storage_options)
    result = curation.rebalanced_summary(
        old, sampled, counts, params["t"], params["seed"], time.perf_counter() - started
    )
    results.write_json(layout.run_record, params, **storage_options)
    results.write_json(layout.summary, result, **storage_options)
    publish_summary(result)
    publish_datacard(params["output"], params["t"], storage_options=storage_options)
    return result
