"""The curation flow: WAT files + metadata -> matched pairs -> global counts -> balanced set.

`curate` validates its inputs before any work (a bad metadata file stops it in one line), plans
batches, then runs `curate_batches` on the Dask task runner chosen by its parameters.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.runners import dask_task_runner
from flows.verified import gather_verified
from metaclip import curation, summary
from metaclip.balance import DEFAULT_T
from metaclip.counts import read_entry_counts
from metaclip.errors import UserError
from metaclip.paths import OutputLayout
from tasks.curate import balance, extract_and_match, reduce_counts, write_entry_counts


@flow(name="curate", log_prints=True)
def curate(
    inputs: list[str],
    metadata: str,
    output: str,
    t: float = DEFAULT_T,
    seed: int = 0,
    batch_size: int = 16,
    input_format: str = "wat",
    dask_address: str | None = None,
    n_workers: int | None = None,
    reduce_fanout: int = 16,
    storage_options: dict[str, Any] | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Curate image-text pairs from WAT files (local paths, globs, directories or s3:// URIs)."""
    opts = storage_options or {}
    logger = get_run_logger()
    try:
        meta, files = curation.preflight(inputs, metadata, input_format, **opts)
    except UserError as exc:  # before any work: one line, no traceback
        logger.error("%s", exc)
        return Failed(message=str(exc))
    logger.info(
        "%d input files, %d metadata entries (sha256 %s), output %s",
        len(files), len(meta), meta.sha256[:12], output,
    )
    runner = dask_task_runner(dask_address, n_workers, dashboard_address)
    return curate_batches.with_options(task_runner=runner)(
        files=files,
        metadata_uri=meta.uri,
        metadata_sha256=meta.sha256,
        output=output,
        t=t,
        seed=seed,
        batch_size=batch_size,
        input_format=input_format,
        reduce_fanout=reduce_fanout,
        storage_options=opts,
    )


@flow(name="curate-batches")
def curate_batches(
    files: list[str],
    metadata_uri: str,
    metadata_sha256: str,
    output: str,
    t: float,
    seed: int,
    batch_size: int,
    input_format: str,
    reduce_fanout: int,
    storage_options: dict[str, Any],
) -> dict[str, Any]:
    opts = storage_options
    layout = OutputLayout(output)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    batches = gather_verified(
        extract_and_match,
        [
            ((batch, batch_id, output, metadata_uri, metadata_sha256, input_format, opts), {})
            for batch_id, batch in curation.make_batches(files, batch_size)
        ],
        lambda r: [r["matched_uri"], r["counts_uri"]],
        opts,
    )
    seconds["extract_and_match"] = time.perf_counter() - started

    started = time.perf_counter()
    total_uri = ""
    leaves = [b["counts_uri"] for b in batches]
    for level in curation.reduction_plan(leaves, layout, reduce_fanout):
        calls = [((group, out, opts), {}) for group, out in level]
        total_uri = gather_verified(reduce_counts, calls, lambda r: [r], opts)[-1]
    counts_call = ((total_uri, metadata_uri, layout.entry_counts, opts), {})
    counts_uri = gather_verified(write_entry_counts, [counts_call], lambda r: [r], opts)[0]
    counts, _ = read_entry_counts(counts_uri, **opts)
    seconds["count"] = time.perf_counter() - started

    started = time.perf_counter()
    balance_calls = [
        ((b["matched_uri"], layout.curated_part(b["batch_id"]), counts_uri, t, seed, opts), {})
        for b in batches
    ]
    balanced = gather_verified(balance, balance_calls, lambda r: [r["curated_uri"]], opts)
    seconds["balance"] = time.perf_counter() - started

    result = summary.build_summary(
        batches=batches,
        balanced=balanced,
        counts=counts,
        t=t,
        seed=seed,
        metadata_uri=metadata_uri,
        metadata_sha256=metadata_sha256,
        outputs={
            "curated": layout.curated_dir,
            "entry_counts": layout.entry_counts,
            "summary": layout.summary,
        },
        stage_seconds=seconds,
    )
    curation.write_json(layout.summary, result, **opts)
    return result
