"""The build-metadata flow: MetaCLIP's entry list from WordNet, Wikipedia n-grams and titles.

Stages (each a set of parallel tasks on Dask; every source is optional):
  wordnet-source
  count-text-batch | count-file-batch -> reduce-unigrams -> unigram-source
                                         join-bigrams -> score-bigrams -> bigram-source
  count-title-batch -> title-source
  merge-metadata (metadata.json + provenance.json)
The outer flow checks the options and inputs (a mistake fails it before any work) and starts
the Dask task runner: a local cluster, or the scheduler at `dask_address`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metaclip_prefect.flows.runners import dask_task_runner
from prefect import Task, flow, get_run_logger
from prefect.states import Failed

from metaclip.errors import UserError
from metaclip.metadata.plan import BuildPlan, Thresholds, plan_build
from metaclip.metadata.sources import SourceList
from tasks import metadata as t

Calls = list[tuple[tuple[Any, ...], dict[str, Any]]]


def _run(task: Task, calls: Calls, refresh: bool, opts: dict[str, Any]) -> list[Any]:
    """Run calls in parallel; a cached result whose outputs are gone or were overwritten since
    (result.intact() says) is computed again, as flows/verified.py does for dict results."""
    task = task.with_options(refresh_cache=True) if refresh else task
    futures = [task.submit(*args, **kwargs) for args, kwargs in calls]
    results = [f.result() for f in futures]
    stale = [i for i, r in enumerate(results) if not r.intact(opts)]
    redo = task.with_options(refresh_cache=True)
    again = {i: redo.submit(*calls[i][0], **calls[i][1]) for i in stale}
    for i, future in again.items():
        results[i] = future.result()
    return results


def _ngram_sources(
    plan: BuildPlan, max_items: int, refresh: bool, opts: dict[str, Any]
) -> list[SourceList]:
    if plan.ngram_stage is None:
        return []
    stage, parts, th = plan.ngram_stage, plan.partitions, plan.thresholds
    fmt, layout = plan.text_format, plan.count_layout
    batches = _run(
        t.count_text_batch,
        [((j.files, j.target, parts, max_items, fmt, opts), {}) for j in plan.text_jobs],
        refresh,
        opts,
    ) + _run(
        t.count_file_batch,
        [
            ((j.files, j.kind, j.target, parts, max_items, layout, opts), {})
            for j in plan.count_jobs
        ],
        refresh,
        opts,
    )
    unigrams = _run(
        t.reduce_unigrams, [((batches, p, stage, opts), {}) for p in range(parts)], refresh, opts
    )
    out = []
    if plan.unigrams:
        out += _run(
            t.unigram_source,
            [((unigrams, batches, th.min_unigram_count, plan.source_uri("unigram"), opts), {})],
            refresh,
            opts,
        )
    if plan.bigrams:
        pmi = th.min_bigram_pmi
        joined = _run(
            t.join_bigrams,
            [((batches, p, parts, unigrams, pmi, stage, opts), {}) for p in range(parts)],
            refresh,
            opts,
        )
        scored = _run(
            t.score_bigrams,
            [((joined, q, unigrams, pmi, stage, opts), {}) for q in range(parts)],
            refresh,
            opts,
        )
        out += _run(
            t.bigram_source,
            [((scored, joined, unigrams, batches, pmi, plan.source_uri("bigram"), opts), {})],
            refresh,
            opts,
        )
    return out


def _title_source(plan: BuildPlan, refresh: bool, opts: dict[str, Any]) -> list[SourceList]:
    if not plan.title_jobs:
        return []
    th = plan.thresholds
    batches = _run(
        t.count_title_batch,
        [
            ((j.files, j.target, plan.pageview_domains, th.min_hourly_views, opts), {})
            for j in plan.title_jobs
        ],
        refresh,
        opts,
    )
    params = {"domains": plan.pageview_domains, "min_hourly_views": th.min_hourly_views}
    return _run(
        t.title_source,
        [((batches, params, th.min_title_views, plan.source_uri("title"), opts), {})],
        refresh,
        opts,
    )


@flow(name="build-metadata", log_prints=True)
def build_metadata(
    output: str,
    wordnet: str | None = None,
    wiki_text: list[str] | None = None,
    unigram_counts: list[str] | None = None,
    bigram_counts: list[str] | None = None,
    pageviews: list[str] | None = None,
    extra: list[str] | None = None,
    base: str | None = None,
    min_unigram_count: int = 100,
    min_bigram_pmi: float = 30.0,
    min_title_views: int = 70,
    min_hourly_views: int = 50,
    pageview_domains: list[str] | None = None,
    skip: list[str] | None = None,
    max_entries: int | None = None,
    partitions: int = 32,
    batch_mb: int = 64,
    text_format: str = "auto",
    count_layout: str = "auto",
    max_items: int = 1_000_000,
    work_dir: str | None = None,
    refresh: bool = False,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build metadata.json and provenance.json in `output` (see docs/metadata.md).

    A source is built when its input is given: `wordnet` ('nltk', a WordNet 3.0 folder or an
    archive), `wiki_text` (plain text or WikiExtractor JSON lines) or `unigram_counts` and
    `bigram_counts`, `pageviews`. `max_items` bounds each counting task's in-memory n-grams;
    `refresh` ignores Prefect's cached results (finished outputs on storage are still reused).
    """
    opts = storage_options or {}
    thresholds = Thresholds(min_unigram_count, min_bigram_pmi, min_title_views, min_hourly_views)
    try:
        plan = plan_build(
            output,
            wordnet=wordnet,
            wiki_text=wiki_text or [],
            unigram_counts=unigram_counts or [],
            bigram_counts=bigram_counts or [],
            pageviews=pageviews or [],
            extra=extra or [],
            base=base,
            thresholds=thresholds,
            skip=skip or [],
            pageview_domains=pageview_domains or ["en"],
            partitions=partitions,
            batch_bytes=batch_mb << 20,
            text_format=text_format,
            count_layout=count_layout,
            work_dir=work_dir,
            storage_options=opts,
        )
    except UserError as exc:  # before any work: one line, no traceback
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))  # type: ignore[return-value]
    runner = dask_task_runner(dask_address, n_workers, dashboard_address)
    return build_metadata_sources.with_options(task_runner=runner)(
        plan=plan,
        max_entries=max_entries,
        max_items=max_items,
        refresh=refresh,
        storage_options=opts,
    )


@flow(name="build-metadata-sources")
def build_metadata_sources(
    plan: BuildPlan,
    max_entries: int | None,
    max_items: int,
    refresh: bool,
    storage_options: dict[str, Any],
) -> dict[str, Any]:
    opts = storage_options
    sources: list[SourceList] = []
    if plan.wordnet:
        args = (plan.wordnet, plan.wordnet_files, plan.source_uri("wordnet"), None, opts)
        sources += _run(t.wordnet_source, [(args, {})], refresh, opts)
    sources += _ngram_sources(plan, max_items, refresh, opts)
    sources += _title_source(plan, refresh, opts)
    merged = t.merge_metadata.submit(sources, plan.output, plan.base, plan.extra, max_entries, opts)
    return merged.result()


__all__: Sequence[str] = ("build_metadata", "build_metadata_sources")
