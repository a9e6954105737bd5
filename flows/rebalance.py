"""Rebalance a finished curation with another t or seed: sampling only, no extraction,
matching, dedup or counting again (they are read from the run's _work/). A worldwide run's t
is t_en: p and every language's t follow from it again (language_thresholds.json rewritten).

Everything it reads and writes is under the output it is given: the work record's paths are
relative to the output, so a copied or moved output rebalances in place and the folder it was
copied from is never touched.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from prefect import flow

from metaclip.config import PoolConfig, RebalanceConfig
from metaclip.curation import worldwide
from metaclip.curation.counts import read_entry_counts
from metaclip.curation.dedup import dedup_parts
from metaclip.curation.record import read_run_record, write_run_record
from metaclip.curation.sample import rebalanced_summary
from metaclip.curation.settings import RunSettings
from metaclip.errors import UserError
from metaclip.io import results, storage
from metaclip.io.paths import OutputLayout
from metaclip.reporting import summary
from metaclip_prefect.flows.curate import (
    finish_run,
    pool_buckets,
    pool_summary,
    run_outputs,
    sample_buckets,
)
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
    writing_output,
)
from metaclip_prefect.tasks.credentials import resolve, stores_for


@flow(name="rebalance", log_prints=True, task_runner=DeferredDaskTaskRunner(), **CHECKED_BY_CONFIG)
def rebalance(
    output: str,
    t: float,
    seed: int | None = None,
    output_options: dict[str, Any] | str | None = None,
    exclude_store_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Write a new balanced set into `output`/curated from the run's matches and counts.
    t: the new balancing threshold (a worldwide run's: the new t_en)."""
    params = dict(locals())
    return checked_run(lambda: RebalanceConfig.from_params(**params), run_rebalance)


def run_rebalance(config: RebalanceConfig) -> dict[str, Any]:
    record, old = finished_run(config)
    settings = _settings(record, config)
    stores = stores_for(config.storage, settings.exclude_store)
    with writing_output(config, **stores.output):
        layout = OutputLayout(config.output)
        storage.remove(layout.completion, **stores.output)  # it no longer describes the output
        buckets = [
            {"bucket": b, "dedup_uris": dedup_parts(record, b)}
            for b in range(settings.n_buckets)
        ]
        started = time.perf_counter()
        thresholds = worldwide.write_thresholds(settings, record["counts_uri"], **stores.output)
        sampled = sample_buckets(buckets, record["counts_uri"], settings, stores)
        counts, _ = read_entry_counts(record["counts_uri"], **stores.output)
        result = rebalanced_summary(
            old, sampled, counts, settings.t, settings.seed, time.perf_counter() - started,
            thresholds,
        )  # fmt: skip
        offsets = worldwide.language_offsets(settings, record["counts_uri"], stores.output)
        if offsets is not None:
            result.update(
                summary.rebalanced_worldwide_block(old, sampled, counts, settings.t, offsets)
            )
        if settings.write_pool or storage.exists(layout.pool_manifest, **stores.output):
            # the pool follows the new seed (its text choice) and names the new t
            settings = replace(settings, write_pool=True)
            manifest = pool_buckets(buckets, record["counts_uri"], settings, stores)
            result["pool"] = pool_summary(config.output, manifest)
        # this output's, wherever it was copied from
        result["outputs"] = run_outputs(layout, settings.worldwide, settings.write_pool)
        write_run_record(
            config.output, settings.record(), record["counts_uri"], record["dedup_uris"],
            **stores.output,
        )  # fmt: skip
        return finish_run(result, sampled, record["counts_uri"], settings, stores, None)


def finished_run(config: RebalanceConfig | PoolConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finished curation's work record and summary (UserError when there is none)."""
    opts = resolve(config.storage.output)
    layout = OutputLayout(config.output)
    record = read_run_record(config.output, **opts)
    if not storage.exists(layout.summary, **opts):
        raise UserError(f"no finished curation in {config.output} (no summary.json)")
    return record, results.read_json(layout.summary, **opts)


def _settings(record: dict[str, Any], config: RebalanceConfig) -> RunSettings:
    """The run's settings, with this output, the new t (and seed), and this call's storage."""
    changed = {"t": config.t, "storage": config.storage}
    if config.seed is not None:
        changed["seed"] = config.seed
    return RunSettings.from_record(record, config.output, **changed)
