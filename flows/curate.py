"""The curation flow: WAT files + metadata -> matched pairs in uuid buckets -> dedup and global
counts -> balanced set.

`curate` validates its inputs before any work (a bad metadata file stops it in one line), then
runs `curate_batches` on the Dask task runner chosen by its parameters.
"""

from __future__ import annotations

import time
from typing import Any

from metaclip_prefect.flows.runners import dask_task_runner
from metaclip_prefect.flows.verified import gather_verified
from metaclip_prefect.tasks.artifacts import publish_summary
from metaclip_prefect.tasks.curate import (
    dedup_and_count,
    extract_and_match,
    index_buckets,
    reduce_counts,
    sample,
    write_entry_counts,
)
from metaclip_prefect.tasks.datacard import publish_datacard
from prefect import flow, get_run_logger
from prefect.states import Failed

from metaclip import completion, crawls, curation, results, summary
from metaclip.balance import DEFAULT_T
from metaclip.buckets import CorruptIntermediateError
from metaclip.counts import read_entry_counts
from metaclip.errors import UserError
from metaclip.lid import DEFAULT_LANGUAGES
from metaclip.paths import OutputLayout


@flow(name="curate", log_prints=True)
def curate(
    inputs: list[str],
    metadata: str,
    output: str,
    t: float = DEFAULT_T,
    seed: int = 0,
    batch_size: int = 16,
    n_buckets: int | None = None,
    one_text_per_image: bool = True,
    exclude_store: str | None = None,
    store_tag: str | None = None,
    input_format: str = "auto",
    languages: list[str] | None = DEFAULT_LANGUAGES,
    crawl: str | None = None,
    crawl_data_root: str = crawls.DATA_ROOT,
    max_files: int | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    reduce_fanout: int = 16,
    storage_options: dict[str, Any] | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Curate image-text pairs from WAT or WARC files (by name, or input_format "wat"/"warc";
    local paths, globs, directories or s3:// URIs),
    or from a whole crawl: `crawl` (e.g. CC-MAIN-2024-22) expands to its wat.paths.gz under
    `crawl_data_root` (the public bucket: pass storage_options={"anon": True}).

    n_buckets: uuid buckets for global dedup (default: from the number of files, 10 to 20 WAT
    files a bucket; an exclusion store's own count when it has one); it sizes the bucket tasks
    and never changes the output. exclude_store: uuids curated by earlier runs (earlier dumps),
    left out here; this run's are added. languages: keep texts fastText identifies as one of
    these (the MetaCLIP recipe: English); None or [] keeps every language.
    """
    opts = storage_options or {}
    logger = get_run_logger()
    try:
        if crawl:
            inputs = [*inputs, *crawls.wat_inputs(crawl_data_root, crawl, max_files, **opts)]
        meta, files = curation.preflight(inputs, metadata, input_format, **opts)
        if n_buckets is None:
            from_store = exclude_store and curation.store_buckets(exclude_store, **opts)
            n_buckets = from_store or curation.auto_buckets(len(files))
        if exclude_store:
            curation.check_store(exclude_store, n_buckets, **opts)
    except UserError as exc:  # before any work: one line, no traceback
        logger.error("%s", exc)
        return Failed(message=str(exc))
    logger.info(
        "%d input files, %d metadata entries (sha256 %s), %d buckets, output %s",
        len(files), len(meta), meta.sha256[:12], n_buckets, output,
    )
    params = {
        "metadata_uri": meta.uri,
        "metadata_sha256": meta.sha256,
        "output": output,
        "t": t,
        "seed": seed,
        "batch_size": batch_size,
        "n_buckets": n_buckets,
        "one_per_image": one_text_per_image,
        "exclude_store": exclude_store,
        "store_tag": store_tag or curation.default_store_tag(output),
        "input_format": input_format,
        "languages": list(languages) if languages else None,
        "reduce_fanout": reduce_fanout,
    }
    # An exclusion store changes under other runs, so those runs always take the task path.
    key = None if exclude_store else completion.run_key(files, params, **opts)
    done = key and completion.completed_summary(output, key, **opts)
    if done:
        logger.info(
            "%s is complete for these inputs and parameters: nothing to do (remove %s to run "
            "the cached tasks again)", output, OutputLayout(output).completion,
        )
        publish_summary(done)
        return done
    try:
        runner = dask_task_runner(dask_address, n_workers, dashboard_address)
    except UserError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    return curate_batches.with_options(task_runner=runner)(
        files=files, params=params, storage_options=opts, run_key=key
    )


@flow(name="curate-batches")
def curate_batches(
    files: list[str],
    params: dict[str, Any],
    storage_options: dict[str, Any],
    run_key: str | None = None,
) -> dict[str, Any]:
    opts, p = storage_options, params
    layout = OutputLayout(p["output"])
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    batch_calls = [
        ((batch, batch_id, p["output"], p["metadata_uri"], p["metadata_sha256"],
          p["n_buckets"], p["input_format"], p["languages"], opts), {})
        for batch_id, batch in curation.make_batches(files, p["batch_size"])
    ]
    batches = gather_verified(extract_and_match, batch_calls, opts)
    seconds["extract_and_match"] = time.perf_counter() - started

    started = time.perf_counter()
    try:
        buckets = _dedup_buckets(batches, p, opts)
    except CorruptIntermediateError as exc:
        get_run_logger().warning("%s: recomputing the batches concerned", exc)
        batches = gather_verified(extract_and_match, batch_calls, opts)
        buckets = _dedup_buckets(batches, p, opts)
    seconds["dedup"] = time.perf_counter() - started

    started = time.perf_counter()
    counts_uri = _global_counts([b["counts_uri"] for b in buckets], layout, p, opts)
    counts, _ = read_entry_counts(counts_uri, **opts)
    dedup_uris = {str(b["bucket"]): b["dedup_uris"] for b in buckets}
    results.write_json(
        layout.run_record, {**p, "counts_uri": counts_uri, "dedup_uris": dedup_uris}, **opts
    )
    seconds["count"] = time.perf_counter() - started

    started = time.perf_counter()
    sampled = sample_buckets(buckets, counts_uri, p, opts)
    seconds["sample"] = time.perf_counter() - started

    result = summary.build_summary(
        batches=batches,
        buckets=buckets,
        sampled=sampled,
        counts=counts,
        params=p,
        outputs={
            "curated": layout.curated_dir,
            "entry_counts": layout.entry_counts,
            "summary": layout.summary,
        },
        stage_seconds=seconds,
    )
    results.write_json(layout.summary, result, **opts)
    publish_summary(result)
    card = publish_datacard(p["output"], p["t"], storage_options=opts)
    if run_key:
        outputs = [u for s in sampled for u in s["outputs"]]
        outputs += [counts_uri, layout.summary, *card.values()]
        completion.record_completion(p["output"], run_key, outputs, result, **opts)
    return result


def _dedup_buckets(
    batches: list[dict[str, Any]], p: dict[str, Any], opts: dict[str, Any]
) -> list[dict[str, Any]]:
    digest = curation.batches_digest(batches)
    index_call = (
        ([b["manifest_uri"] for b in batches], digest,
         OutputLayout(p["output"]).bucket_index(digest), opts),
        {},
    )
    index_uri = gather_verified(index_buckets, [index_call], opts)[0]["uri"]
    calls = [
        ((bucket, index_uri, p["output"], p["exclude_store"], p["store_tag"], opts), {})
        for bucket in range(p["n_buckets"])
    ]
    return gather_verified(dedup_and_count, calls, opts)


def _global_counts(
    leaves: list[str], layout: OutputLayout, p: dict[str, Any], opts: dict[str, Any]
) -> str:
    """Tree reduction: no task ever holds more than `reduce_fanout` partial counts."""
    total_uri = ""
    for level in curation.reduction_plan(leaves, layout, p["reduce_fanout"]):
        calls = [((group, out, opts), {}) for group, out in level]
        total_uri = gather_verified(reduce_counts, calls, opts)[-1]["uri"]
    call = ((total_uri, p["metadata_uri"], layout.entry_counts, opts), {})
    return gather_verified(write_entry_counts, [call], opts)[0]["uri"]


def sample_buckets(
    buckets: list[dict[str, Any]], counts_uri: str, p: dict[str, Any], opts: dict[str, Any]
) -> list[dict[str, Any]]:
    calls = [
        ((b["bucket"], b["dedup_uris"], p["output"], counts_uri, p["t"], p["seed"],
          p["one_per_image"], p["exclude_store"], p["store_tag"], opts), {})
        for b in buckets
    ]
    return gather_verified(sample, calls, opts)
