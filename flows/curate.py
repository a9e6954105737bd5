"""The curation flow: WAT files + metadata -> matched pairs in uuid buckets -> dedup and global
counts -> balanced set.

`curate` checks its whole configuration (metaclip.config) and then its inputs and metadata
before any work, takes the output's lease (one writer per output), and runs every stage's
tasks on its own Dask task runner: tasks, progress and artifacts all sit on the flow run the
user started. `run_curation` is the same work for a checked configuration (the monthly flow
calls it for each crawl).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from metaclip.config import CurateConfig, Stores
from metaclip.config.curation import ENGLISH_RECIPE
from metaclip.curation import completion, crawls, worldwide
from metaclip.curation.batch import batches_digest
from metaclip.curation.counts import read_entry_counts
from metaclip.curation.partition import CorruptIntermediateError
from metaclip.curation.plan import (
    auto_buckets,
    check_store,
    default_store_tag,
    make_batches,
    preflight,
    store_buckets,
)
from metaclip.curation.pool import finish_pool
from metaclip.curation.record import write_run_record
from metaclip.curation.reduce import reduction_plan
from metaclip.curation.settings import RunSettings
from metaclip.extraction.lid import DEFAULT_LANGUAGES
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import write_json
from metaclip.reporting import summary
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
    writing_output,
)
from metaclip_prefect.flows.verified import gather_verified
from metaclip_prefect.tasks.artifacts import StageProgress, publish_summary
from metaclip_prefect.tasks.credentials import stores_for
from metaclip_prefect.tasks.curate import (
    dedup_and_count,
    extract_and_match,
    index_buckets,
    reduce_counts,
    sample,
    write_entry_counts,
    write_pool,
)
from metaclip_prefect.tasks.datacard import publish_datacard, republish_datacard


@flow(name="curate", log_prints=True, task_runner=DeferredDaskTaskRunner(), **CHECKED_BY_CONFIG)
def curate(
    metadata: str,
    output: str,
    inputs: list[str] | None = None,
    t: float | None = None,
    recipe: str = ENGLISH_RECIPE,
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
    reduce_fanout: int = 16,
    limits: dict[str, int] | str | None = None,
    write_pool: bool = False,
    input_options: dict[str, Any] | str | None = None,
    metadata_options: dict[str, Any] | str | None = None,
    output_options: dict[str, Any] | str | None = None,
    exclude_store_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Curate image-text pairs from WAT or WARC files (by name, or input_format "wat"/"warc";
    local paths, globs, directories or s3:// URIs), or from a whole crawl: `crawl` (e.g.
    CC-MAIN-2024-22) expands to its wat.paths.gz under `crawl_data_root`.

    recipe: "english" (MetaCLIP: one metadata list, one t; default) or "worldwide" (MetaCLIP 2:
    `metadata` is a worldwide index, each text matched in its own language, English's t_en
    sets every language's t; docs/curation.md). t: the balancing threshold, default 20,000;
    worldwide: t_en, default 170,000.
    n_buckets: uuid buckets for global dedup (default: from the number of files, 10 to 20 WAT
    files a bucket; an exclusion store's own count when it has one); it sizes the bucket tasks
    and never changes the output. exclude_store: uuids curated by earlier runs (earlier dumps),
    left out here; this run's are added. languages: keep texts fastText identifies as one of
    these (the MetaCLIP recipe: English); None or [] keeps every language; worldwide: the
    metadata languages to curate, every one of the index's by default. limits: the
    per-record extraction limits that differ from the defaults, by name (metaclip.extraction.limits,
    docs/operations.md "Limits"), e.g. {"max_text_chars": 2000}. write_pool: also write the
    matched pool (output/pool/) that online balancing draws a new sample from every epoch
    (docs/online.md).

    *_options: fsspec options of each location (inputs and the crawl, metadata, output,
    exclusion store), never credentials; the public crawl bucket is read anonymously unless
    input_options say otherwise. credentials: {location: Prefect Secret block name}.
    """
    params = dict(locals())
    return checked_run(lambda: CurateConfig.from_params(**params), run_curation)


def run_curation(config: CurateConfig) -> dict[str, Any]:
    """Plan the run (inputs, metadata, buckets), return a finished identical run's summary, or
    take the output's lease and run every stage. UserError for a mistake found on the way."""
    logger = get_run_logger()
    stores = stores_for(config.storage, config.exclude_store)
    settings, files = plan_run(config, stores)
    logger.info(
        "%d input files, metadata %s (sha256 %s), %d buckets, output %s",
        len(files), settings.metadata_uri, settings.metadata_sha256[:12], settings.n_buckets,
        settings.output,
    )  # fmt: skip
    # An exclusion store changes under other runs, so those runs always take the task path.
    key = None if config.exclude_store else completion.run_key(
        files, settings.record(), **stores.inputs
    )  # fmt: skip
    done = key and completion.completed_summary(config.output, key, **stores.output)
    if done:
        logger.info(
            "%s is complete for these inputs and parameters: nothing to do (remove %s to run "
            "the cached tasks again)", config.output, OutputLayout(config.output).completion,
        )
        publish_summary(done, config.output)
        republish_datacard(config.output, stores.output)
        return done
    with writing_output(config, **stores.output):
        return curate_batches(files, settings, stores, key)


def plan_run(config: CurateConfig, stores: Stores) -> tuple[RunSettings, list[str]]:
    """The checks that need I/O, before any work: the crawl's WAT list, the metadata, the
    inputs, the bucket count and the exclusion store's agreement with it; whether the output
    already has a pool (which the run then rewrites)."""
    inputs = list(config.inputs)
    if config.crawl:
        inputs += crawls.wat_inputs(
            config.crawl_data_root, config.crawl, config.max_files, **_crawl_options(config, stores)
        )
    meta, files = preflight(
        inputs, config.metadata, config.input_format, stores.metadata,
        worldwide=config.worldwide, languages=config.languages, **stores.inputs,
    )  # fmt: skip
    n_buckets = config.n_buckets
    if n_buckets is None:
        from_store = config.exclude_store and store_buckets(
            config.exclude_store, **stores.exclude_store
        )
        n_buckets = from_store or auto_buckets(len(files))
    if config.exclude_store:
        check_store(config.exclude_store, n_buckets, **stores.exclude_store)
    settings = RunSettings.planned(
        config,
        metadata_uri=meta.uri,
        metadata_sha256=meta.sha256,
        n_buckets=n_buckets,
        store_tag=config.store_tag or default_store_tag(config.output),
        # an output that has a pool keeps one that describes it: the new run rewrites it
        write_pool=config.write_pool or storage.exists(
            OutputLayout(config.output).pool_manifest, **stores.output
        ),
    )
    return settings, files


def _crawl_options(config: CurateConfig, stores: Stores) -> dict[str, Any]:
    """The crawl source's options: the inputs', anonymous for the public bucket by default."""
    if not config.storage.inputs.options and not config.storage.inputs.secret_block and (
        config.crawl_data_root.startswith(crawls.DATA_ROOT)
    ):
        return {"anon": True}
    return stores.inputs


def curate_batches(
    files: list[str], settings: RunSettings, stores: Stores, run_key: str | None
) -> dict[str, Any]:
    """Every stage, under the output's lease. The previous run's completion record goes first:
    whatever happens next, complete.json only ever describes what one run wrote."""
    s = settings
    layout = OutputLayout(s.output)
    storage.remove(layout.completion, **stores.output)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    batch_calls = [
        {"batch_id": batch_id, "files": batch, "settings": s}
        for batch_id, batch in make_batches(files, s.batch_size)
    ]
    batches = _stage(extract_and_match, batch_calls, stores, s.output)
    seconds["extract_and_match"] = time.perf_counter() - started

    started = time.perf_counter()
    try:
        buckets = _dedup_buckets(batches, s, stores)
    except CorruptIntermediateError as exc:
        get_run_logger().warning("%s: recomputing the batches concerned", exc)
        redo = [{**call, "refresh": True} for call in batch_calls]
        batches = _stage(extract_and_match, redo, stores, s.output)
        buckets = _dedup_buckets(batches, s, stores)
    seconds["dedup"] = time.perf_counter() - started

    started = time.perf_counter()
    counts_uri = _global_counts([b["counts_uri"] for b in buckets], s, stores)
    counts, _ = read_entry_counts(counts_uri, **stores.output)
    dedup_uris = {str(b["bucket"]): b["dedup_uris"] for b in buckets}
    write_run_record(s.output, s.record(), counts_uri, dedup_uris, **stores.output)
    worldwide.write_thresholds(s, counts_uri, **stores.output)  # worldwide: p, t per language
    seconds["count"] = time.perf_counter() - started

    started = time.perf_counter()
    sampled = sample_buckets(buckets, counts_uri, s, stores)
    seconds["sample"] = time.perf_counter() - started
    pool = None
    if s.write_pool:
        started = time.perf_counter()
        pool = pool_buckets(buckets, counts_uri, s, stores)
        seconds["pool"] = time.perf_counter() - started

    result = summary.build_summary(
        batches=batches, buckets=buckets, sampled=sampled, counts=counts, params=s.record(),
        outputs=run_outputs(layout, s.worldwide, s.write_pool), stage_seconds=seconds,
        language_offsets=worldwide.language_offsets(s, counts_uri, stores.output),
    )  # fmt: skip
    result["task_results"] = _cache_report([*batches, *buckets, *sampled])
    if pool is not None:
        result["pool"] = pool_summary(s.output, pool)
    return finish_run(result, sampled, counts_uri, s, stores, run_key)


def run_outputs(
    layout: OutputLayout, language_thresholds: bool = False, pool: bool = False
) -> dict[str, str]:
    """Where a run's results are, as the summary names them (the worldwide recipe's
    thresholds, and the pool, too)."""
    outputs = {"curated": layout.curated_dir, "entry_counts": layout.entry_counts,
               "summary": layout.summary}  # fmt: skip
    if language_thresholds:
        outputs["language_thresholds"] = layout.language_thresholds
    if pool:
        outputs["pool"] = layout.pool_dir
    return outputs


def finish_run(
    result: dict[str, Any],
    sampled: list[dict[str, Any]],
    counts_uri: str,
    s: RunSettings,
    stores: Stores,
    run_key: str | None,
) -> dict[str, Any]:
    """Write the summary and the data card, publish them, and (curate only) the completion
    record naming exactly the files this run wrote."""
    layout = OutputLayout(s.output)
    storage_options = stores.output
    write_json(layout.summary, result, **storage_options)
    publish_summary(result, s.output)
    card = publish_datacard(s.output, s.t, storage_options=storage_options)
    if run_key:
        outputs = [u for part in sampled for u in part["curated_uris"]]
        outputs += [counts_uri, layout.summary, *card.values()]
        outputs += [layout.language_thresholds] if s.worldwide else []
        if "pool" in result:
            outputs += [*result["pool"]["parts"], layout.pool_counts, layout.pool_manifest]
        completion.record_completion(s.output, run_key, outputs, result, **storage_options)
    return result


def _cache_report(results: list[dict[str, Any]]) -> dict[str, int]:
    """How many task results came from the cache, were computed, or were found damaged (and
    recomputed)."""
    report = {"hit": 0, "computed": 0, "damaged": 0}
    for r in results:
        report[r.get("cache", "computed")] = report.get(r.get("cache", "computed"), 0) + 1
    return report


def _stage(task: Any, calls: list[dict[str, Any]], stores: Stores, output: str) -> list[dict]:
    """One stage's tasks, with a progress artifact on the run."""
    progress = StageProgress(task.name, len(calls), output)
    return gather_verified(task, calls, stores.for_written, progress.advance)


def _dedup_buckets(
    batches: list[dict[str, Any]], s: RunSettings, stores: Stores
) -> list[dict[str, Any]]:
    digest = batches_digest(batches)
    index_call = {
        "manifest_uris": [b["manifest_uri"] for b in batches],
        "out_uri": OutputLayout(s.output).bucket_index(digest), "settings": s,
    }  # fmt: skip
    index_uri = gather_verified(index_buckets, [index_call], stores.for_written)[0]["uri"]
    calls = [
        {"bucket": bucket, "index_uri": index_uri, "settings": s} for bucket in range(s.n_buckets)
    ]
    return _stage(dedup_and_count, calls, stores, s.output)


def _global_counts(leaves: list[str], s: RunSettings, stores: Stores) -> str:
    """Tree reduction: no task ever holds more than `reduce_fanout` partial counts."""
    layout = OutputLayout(s.output)
    total_uri = ""
    for level in reduction_plan(leaves, layout, s.reduce_fanout):
        calls = [{"uris": group, "out_uri": out, "settings": s} for group, out in level]
        total_uri = _stage(reduce_counts, calls, stores, s.output)[-1]["uri"]
    call = {"total_uri": total_uri, "out_uri": layout.entry_counts, "settings": s}
    return gather_verified(write_entry_counts, [call], stores.for_written)[0]["uri"]


def sample_buckets(
    buckets: list[dict[str, Any]], counts_uri: str, s: RunSettings, stores: Stores
) -> list[dict[str, Any]]:
    """Sample every bucket; then remove curated parts this sampling did not write (left by a
    run with more buckets or sub-buckets), so curated/ holds exactly this run's set."""
    calls = [
        {"bucket": b["bucket"], "dedup_uris": b["dedup_uris"], "counts_uri": counts_uri,
         "settings": s}
        for b in buckets
    ]  # fmt: skip
    sampled = _stage(sample, calls, stores, s.output)
    keep = {u for part in sampled for u in part["curated_uris"]}
    curated_dir = OutputLayout(s.output).curated_dir
    for uri in storage.list_files(curated_dir, **stores.output):
        if uri.endswith(".parquet") and uri not in keep:
            storage.remove(uri, **stores.output)
    return sampled


def pool_buckets(
    buckets: list[dict[str, Any]], counts_uri: str, s: RunSettings, stores: Stores
) -> dict[str, Any]:
    """Every bucket's candidates into pool/, then its manifest (metaclip.curation.pool)."""
    calls = [
        {"bucket": b["bucket"], "dedup_uris": b["dedup_uris"], "settings": s} for b in buckets
    ]
    pooled = _stage(write_pool, calls, stores, s.output)
    return finish_pool(s, counts_uri, pooled, **stores.output)


def pool_summary(output: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the summary says of a pool: where, how many rows, its parts."""
    layout = OutputLayout(output)
    return {
        "uri": layout.pool_dir,
        "rows": manifest["rows"],
        "parts": [storage.join(layout.pool_dir, p["path"]) for p in manifest["parts"]],
    }
