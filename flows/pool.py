"""Write a finished curation's matched pool (metaclip.curation.pool) into its output, from the
run's deduplicated buckets: no extraction, matching or counting again. What `curate
--write-pool` writes as it goes, for a run made without it.

Everything it reads and writes is under the output it is given (as rebalance).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from metaclip.config import PoolConfig
from metaclip.curation.dedup import dedup_parts
from metaclip.curation.settings import RunSettings
from metaclip_prefect.flows.curate import pool_buckets, pool_summary
from metaclip_prefect.flows.rebalance import finished_run
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
    writing_output,
)
from metaclip_prefect.tasks.credentials import stores_for


@flow(name="pool", log_prints=True, task_runner=DeferredDaskTaskRunner(), **CHECKED_BY_CONFIG)
def write_pool(
    output: str,
    output_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Write `output`/pool: every pair the run's balanced sampling draws from, and the global
    entry counts, for online balancing in the training loader (docs/online.md)."""
    params = dict(locals())
    return checked_run(lambda: PoolConfig.from_params(**params), run_pool)


def run_pool(config: PoolConfig) -> dict[str, Any]:
    record, _ = finished_run(config)
    settings = RunSettings.from_record(record, config.output, storage=config.storage)
    stores = stores_for(config.storage, None)
    with writing_output(config, **stores.output):
        buckets = [
            {"bucket": b, "dedup_uris": dedup_parts(record, b)}
            for b in range(settings.n_buckets)
        ]
        manifest = pool_buckets(buckets, record["counts_uri"], settings, stores)
        return {"output": config.output, "pool": pool_summary(config.output, manifest)}
