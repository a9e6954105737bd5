"""The build-metadata flow: MetaCLIP's entry list from WordNet, Wikipedia n-grams and titles.

Stages (each a set of parallel tasks on Dask; every source is optional):
  wordnet-source
  count-text-batch | count-file-batch -> reduce-unigrams -> unigram-source
                                         join-bigrams -> score-bigrams -> bigram-source
  count-title-batch -> title-source
  merge-metadata (metadata.json + provenance.json)

Worldwide (`languages`, MetaCLIP 2), stage by stage across every Wikipedia of the run:
  omw-source
  count-text-batch | count-segmented-batch -> reduce-unigrams -> top-unigram-source
                                              join-bigrams -> score-bigrams -> bigram-source
  count-wiki-titles (each pageview batch read once for all) -> wiki-title-source
  merge-language (one per language) ; English: copy-english-metadata or the stages above
  write-language-index (languages.json)

`build_metadata` checks its whole configuration (metaclip.config.BuildMetadataConfig), then its
inputs (plan_build: they exist, their batches), before any work; it then takes the output's
lease (one writer per output; the work folder is inside the output) and runs every stage's
tasks on its own Dask task runner: tasks sit on the flow run the user started.

Task results are JSON data with a checksum in the work folder (`<work>/tasks/`, see
tasks/metadata.py), never Prefect's pickled result store: neither the tasks nor the flow persist
a Prefect result. The flow returns the provenance (as provenance.json) plus `task_results`: how
many task results came from the cache, were computed, or were found damaged and recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import Task, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from metaclip.config import BuildMetadataConfig
from metaclip.io import storage
from metaclip.metadata.inspection import source_table
from metaclip.metadata.manifest import AsData
from metaclip.metadata.ngrams import NgramBatch
from metaclip.metadata.plan import BuildPlan, Thresholds, plan_build
from metaclip.metadata.pmi import JoinedPartition, ScoredPartition, UnigramPartition
from metaclip.metadata.sources import SourceList
from metaclip.metadata.text import SEED_ENTRIES
from metaclip.metadata.titles import TitleBatch
from metaclip.metadata.wiki_titles import WikiTitleBatch
from metaclip.metadata.worldwide import WikiSources
from metaclip.metadata.worldwide_plan import ENGLISH, WikiPlan, WorldwidePlan, plan_worldwide
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
    writing_output,
)
from metaclip_prefect.tasks import metadata as t
from metaclip_prefect.tasks.artifacts import StageProgress, artifact_key, publish
from metaclip_prefect.tasks.credentials import resolve

Calls = Sequence[Mapping[str, Any]]


@flow(
    name="build-metadata",
    log_prints=True,
    task_runner=DeferredDaskTaskRunner(),
    # Nothing of the run goes to Prefect's (pickled) result store, whatever the settings say.
    **CHECKED_BY_CONFIG,
)
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
    languages: list[str] | str | None = None,
    wiki_text_root: str | None = None,
    english_metadata: str | None = None,
    unigram_fraction: float = 0.1,
    max_unigrams: int = 251_465,
    bigram_fraction: float = 0.4,
    max_bigrams: int = 100_646,
    title_fraction: float = 0.76,
    max_titles: int = 61_235,
    max_entry_length: int = 256,
    title_projects: str = "wikipedia",
    input_options: dict[str, Any] | str | None = None,
    output_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Build metadata.json and provenance.json in `output` (see docs/metadata.md).

    A source is built when its input is given: `wordnet` ('nltk', a WordNet 3.0 folder or an
    archive), `wiki_text` (plain text or WikiExtractor JSON lines) or `unigram_counts` and
    `bigram_counts`, `pageviews`. `max_items` bounds each counting task's in-memory n-grams;
    `work_dir` (intermediate counts and the tasks' stored results) is a folder inside `output`,
    `<output>/work` by default; `refresh` ignores the stored task results (finished outputs on
    storage are still reused).

    Worldwide (MetaCLIP 2): `languages` (codes, a comma-separated string, or 'all') builds one
    list per language into `<output>/<language>/` and the index `<output>/languages.json`,
    from `wiki_text_root/<wiki>/`, the OMW `wordnet` and the shared `pageviews`, selected with
    the per-language caps (`unigram_fraction` ... `max_entry_length`); English is
    `english_metadata` copied, or built by the English recipe.

    input_options, output_options: fsspec options of the inputs and of the output (a dict or a
    JSON object), never credentials. credentials: {"inputs"|"output": Prefect Secret block}.
    """
    params = dict(locals())
    return checked_run(lambda: BuildMetadataConfig.from_params(**params), run_build)


def run_build(config: BuildMetadataConfig) -> dict[str, Any]:
    """Plan the build (inputs listed and batched: UserError on a mistake), then, under the
    output's lease, every stage."""
    if config.worldwide:
        return run_worldwide(config)
    logger = get_run_logger()
    plan = plan_for(config)
    logger.info(
        "output %s: %s", config.output,
        ", ".join(_planned(plan)) or "base and extra lists only",
    )  # fmt: skip
    with writing_output(config, **resolve(config.storage.output)):
        stages = _Stages(config, resolve(config.storage.output))
        prov = build_sources(plan, config, stages)
    publish_provenance(prov, config.output)
    return {**prov, "task_results": stages.cache}


def publish_provenance(prov: dict[str, Any], output: str) -> None:
    """The entries per source, as an artifact of the run (versioned per output)."""
    rows = [
        f"| {r['source']} | {r['kept']:,} | {r['added']:,} | {r['first_id']:,} |"
        for r in source_table(prov)
    ]
    markdown = "\n".join([
        f"## `{output}/metadata.json`: {prov['total']:,} entries", "",
        "| source | kept by the source | new entries | first id |", "|---|---:|---:|---:|",
        *rows, "", f"sha256 `{prov['sha256']}`",
    ])  # fmt: skip
    publish(
        create_markdown_artifact, markdown=markdown, key=artifact_key("metadata", output),
        description=f"Entries per source of {output}/metadata.json.",
    )  # fmt: skip


def plan_for(config: BuildMetadataConfig) -> BuildPlan:
    """The checks that need I/O (the inputs are there; WordNet is readable), before any work."""
    return plan_build(
        config.output,
        wordnet=config.wordnet,
        wiki_text=config.wiki_text,
        unigram_counts=config.unigram_counts,
        bigram_counts=config.bigram_counts,
        pageviews=config.pageviews,
        extra=config.extra,
        base=config.base,
        thresholds=Thresholds(
            config.min_unigram_count, config.min_bigram_pmi, config.min_title_views,
            config.min_hourly_views,
        ),
        skip=config.skip,
        pageview_domains=config.pageview_domains,
        partitions=config.partitions,
        batch_bytes=config.batch_mb << 20,
        text_format=config.text_format,
        count_layout=config.count_layout,
        work_dir=config.work_dir,
        input_options=resolve(config.storage.inputs),
    )  # fmt: skip


def _planned(plan: BuildPlan) -> list[str]:
    jobs = len(plan.text_jobs) + len(plan.count_jobs)
    return [
        *(["wordnet"] if plan.wordnet else []),
        *([f"unigrams ({jobs} counting tasks)"] if plan.unigrams else []),
        *(["bigrams"] if plan.bigrams else []),
        *([f"titles ({len(plan.title_jobs)} counting tasks)"] if plan.title_jobs else []),
    ]


@dataclass(frozen=True)
class _Stages:
    """What every stage needs: the run's configuration (every task's settings; its output
    names the progress artifacts, its work folder holds the task results, its `refresh` ignores
    them), and the output's resolved options (for the flow's own checks only: tasks resolve
    their own). `cache` counts the stages' task results by how they were obtained."""

    settings: BuildMetadataConfig
    output_opts: dict[str, Any] = field(repr=False)  # may hold a Secret block's credentials
    cache: dict[str, int] = field(default_factory=lambda: {"hit": 0, "computed": 0, "damaged": 0})


def _run(task: Task, calls: Calls, stages: _Stages, kind: type[AsData]) -> list[Any]:
    """task(settings=<the run's configuration>, **call) for each call, in parallel, each result
    read back as a `kind`; a cached result whose outputs are gone or were overwritten since
    (result.intact() says) is computed again, as flows/verified.py does for dict results. A
    progress artifact on the run follows the stage."""
    if not calls:
        return []
    started = time.perf_counter()
    settings = stages.settings
    progress = StageProgress(task.name, len(calls), settings.output)
    calls = [{**call, "settings": settings, "refresh": settings.refresh} for call in calls]
    futures = [task.submit(**call) for call in calls]
    results = []
    for done, future in enumerate(futures, 1):
        results.append(future.result())
        progress.advance(done)
    stale = [i for i, r in enumerate(results) if not kind.from_dict(r).intact(stages.output_opts)]
    again = {i: task.submit(**{**calls[i], "refresh": True}) for i in stale}
    for i, future in again.items():
        results[i] = future.result()
    for r in results:
        status = r.get("cache", "computed")
        stages.cache[status] = stages.cache.get(status, 0) + 1
    get_run_logger().info(
        "%s: %d tasks done in %.1f s%s", task.name, len(calls), time.perf_counter() - started,
        f" ({len(stale)} recomputed: outputs gone)" if stale else "",
    )  # fmt: skip
    return [kind.from_dict(r) for r in results]


def build_sources(plan: BuildPlan, config: BuildMetadataConfig, stages: _Stages) -> dict[str, Any]:
    """Every source, then the merge: tasks of this flow run."""
    sources: list[SourceList] = []
    if plan.wordnet:
        call = {"key_files": plan.wordnet_files, "uri": plan.source_uri("wordnet")}
        sources += _run(t.wordnet_source, [call], stages, SourceList)
    sources += _ngram_sources(plan, stages)
    sources += _title_source(plan, stages)
    merged = t.merge_metadata.submit(
        sources=sources, output=plan.output, base=plan.base, extra=plan.extra,
        max_entries=config.max_entries, storage=config.storage,
    )  # fmt: skip
    return merged.result()


def _ngram_sources(plan: BuildPlan, stages: _Stages) -> list[SourceList]:
    if plan.ngram_stage is None:
        return []
    stage, parts = plan.ngram_stage, plan.partitions
    text_calls = [{"files": j.files, "directory": j.target} for j in plan.text_jobs]
    count_calls = [
        {"files": j.files, "kind": j.kind, "directory": j.target} for j in plan.count_jobs
    ]
    batches = _run(t.count_text_batch, text_calls, stages, NgramBatch) + _run(
        t.count_file_batch, count_calls, stages, NgramBatch
    )
    unigrams = _run(
        t.reduce_unigrams,
        [{"batches": batches, "partition": p, "stage": stage} for p in range(parts)],
        stages, UnigramPartition,
    )  # fmt: skip
    sources = []
    if plan.unigrams:
        call = {"unigrams": unigrams, "batches": batches, "uri": plan.source_uri("unigram")}
        sources += _run(t.unigram_source, [call], stages, SourceList)
    if plan.bigrams:
        joined = _run(
            t.join_bigrams,
            [{"batches": batches, "partition": p, "unigrams": unigrams, "stage": stage}
             for p in range(parts)],
            stages, JoinedPartition,
        )  # fmt: skip
        scored = _run(
            t.score_bigrams,
            [{"joined": joined, "partition": q, "unigrams": unigrams, "stage": stage}
             for q in range(parts)],
            stages, ScoredPartition,
        )  # fmt: skip
        call = {"scored": scored, "joined": joined, "unigrams": unigrams, "batches": batches,
                "uri": plan.source_uri("bigram")}  # fmt: skip
        sources += _run(t.bigram_source, [call], stages, SourceList)
    return sources


def _title_source(plan: BuildPlan, stages: _Stages) -> list[SourceList]:
    if not plan.title_jobs:
        return []
    batches = _run(
        t.count_title_batch,
        [{"files": j.files, "uri": j.target} for j in plan.title_jobs],
        stages, TitleBatch,
    )  # fmt: skip
    # How the batches counted, for the source's provenance.
    params = {"domains": plan.pageview_domains,
              "min_hourly_views": plan.thresholds.min_hourly_views}  # fmt: skip
    call = {"batches": batches, "params": params, "uri": plan.source_uri("title")}
    return _run(t.title_source, [call], stages, SourceList)


# --- worldwide (MetaCLIP 2): one list per language -----------------------------------------


def run_worldwide(config: BuildMetadataConfig) -> dict[str, Any]:
    """Plan the languages (UserError on a mistake), then, under the output's lease, every
    Wikipedia's sources, each language's list, English, and the index."""
    plan = plan_worldwide(config, resolve(config.storage.inputs))
    get_run_logger().info(
        "output %s: languages %s (%d Wikipedias, %d pageview tasks)", config.output,
        ", ".join(plan.names()), len(plan.wikis), len(plan.title_jobs),
    )  # fmt: skip
    with writing_output(config, **resolve(config.storage.output)):
        stages = _Stages(config, resolve(config.storage.output))
        rows = _language_lists(plan, stages) + _english(plan, config, stages)
        index = t.write_language_index.submit(
            settings=config, rows=[{k: r[k] for k in ("language", "path")} for r in rows]
        ).result()  # fmt: skip
    provenances = {r["language"]: r["provenance"] for r in rows}
    publish_languages(provenances, config.output)
    return {"index": index["index"], "index_sha256": index["sha256"],
            "languages": provenances, "task_results": stages.cache}  # fmt: skip


def publish_languages(provenances: Mapping[str, dict[str, Any]], output: str) -> None:
    """The entries per language, as an artifact of the run (versioned per output)."""
    rows = [f"| {lang} | {p['total']:,} | `{p['sha256'][:16]}` |"
            for lang, p in sorted(provenances.items())]  # fmt: skip
    markdown = "\n".join([
        f"## `{output}/languages.json`: {len(rows)} languages", "",
        "| language | entries | sha256 |", "|---|---:|---|", *rows,
    ])  # fmt: skip
    publish(
        create_markdown_artifact, markdown=markdown, key=artifact_key("metadata", output),
        description=f"Entries per language of {output}.",
    )  # fmt: skip


def _english(
    plan: WorldwidePlan, config: BuildMetadataConfig, stages: _Stages
) -> list[dict[str, Any]]:
    folder = storage.join(config.output, ENGLISH)
    if plan.english_copy:
        call = {"settings": config, "uri": plan.english_copy, "folder": folder}
        return [t.copy_english_metadata.submit(**call).result()]
    if plan.english is None:
        return []
    prov = build_sources(plan.english, config, stages)
    return [{"language": ENGLISH, "path": f"{ENGLISH}/metadata.json", "provenance": prov}]


def _by_wiki(
    task: Task, calls: Mapping[int, list[dict[str, Any]]], stages: _Stages, kind: type[AsData]
) -> dict[int, list[Any]]:
    """One stage's calls for every Wikipedia (by index in the plan) run together; the results
    regrouped by Wikipedia."""
    flat = [(i, call) for i, group in calls.items() for call in group]
    results = _run(task, [call for _, call in flat], stages, kind)
    out: dict[int, list[Any]] = {i: [] for i in calls}
    for (i, _), result in zip(flat, results, strict=True):
        out[i].append(result)
    return out


def _language_lists(plan: WorldwidePlan, stages: _Stages) -> list[dict[str, Any]]:
    """Every Wikipedia's sources, stage by stage across Wikipedias, then one merge per language."""
    wikis = plan.wikis
    sources: dict[int, list[SourceList]] = {i: [] for i in range(len(wikis))}
    omw = _by_wiki(t.omw_source, {
        i: [{"key_files": w.omw_files, "omw": w.omw, "uri": w.source_uri("wordnet")}]
        for i, w in enumerate(wikis) if w.omw
    }, stages, SourceList)  # fmt: skip
    for i, found in omw.items():
        sources[i] += found
    reserves = {i: len(SEED_ENTRIES) + sum(s.entries for s in sources[i]) for i in sources}
    for i, found in _wiki_ngrams(wikis, reserves, stages).items():
        sources[i] += found
    for i, found in _wiki_titles(plan, stages).items():
        sources[i] += found
    rows, start = [], 0
    for lang in plan.languages:
        group = [
            WikiSources(w.wiki, w.segmenter, w.segmenter_version, sources[start + k])
            for k, w in enumerate(lang.wikis)
        ]
        start += len(lang.wikis)
        call = {"settings": stages.settings, "language": lang.language, "wikis": group,
                "folder": lang.folder}  # fmt: skip
        rows.append(t.merge_language.submit(**call))
    return [future.result() for future in rows]


def _wiki_ngrams(
    wikis: Sequence[WikiPlan], reserves: Mapping[int, int], stages: _Stages
) -> dict[int, list[SourceList]]:
    """Unigram and bigram sources of every Wikipedia with text: counted with its tokeniser,
    reduced, the head of its unigrams kept (`reserves`), its bigrams scored."""
    skip, parts = stages.settings.skip, stages.settings.partitions
    with_text = {i: w for i, w in enumerate(wikis) if w.ngram_stage}
    batches = _count_batches(with_text, stages)
    reduce_calls = {i: [{"batches": batches[i], "partition": p, "stage": w.ngram_stage}
                        for p in range(parts)] for i, w in with_text.items()}  # fmt: skip
    unigrams = _by_wiki(t.reduce_unigrams, reduce_calls, stages, UnigramPartition)
    out: dict[int, list[SourceList]] = {i: [] for i in with_text}
    if "unigram" not in skip:
        calls = {i: [{"unigrams": unigrams[i], "batches": batches[i], "reserve": reserves[i],
                      "uri": w.source_uri("unigram")}] for i, w in with_text.items()}  # fmt: skip
        for i, found in _by_wiki(t.top_unigram_source, calls, stages, SourceList).items():
            out[i] += found
    if "bigram" not in skip:
        for i, found in _wiki_bigrams(with_text, batches, unigrams, stages).items():
            out[i] += found
    return out


def _count_batches(
    with_text: Mapping[int, WikiPlan], stages: _Stages
) -> dict[int, list[NgramBatch]]:
    spaced = {i: [{"files": j.files, "directory": j.target} for j in w.text_jobs]
              for i, w in with_text.items() if not w.segmenter}  # fmt: skip
    segmented = {
        i: [{"files": j.files, "directory": j.target, "wiki": w.wiki} for j in w.text_jobs]
        for i, w in with_text.items() if w.segmenter
    }  # fmt: skip
    return {
        **_by_wiki(t.count_text_batch, spaced, stages, NgramBatch),
        **_by_wiki(t.count_segmented_batch, segmented, stages, NgramBatch),
    }


def _wiki_bigrams(
    with_text: Mapping[int, WikiPlan],
    batches: Mapping[int, list[NgramBatch]],
    unigrams: Mapping[int, list[UnigramPartition]],
    stages: _Stages,
) -> dict[int, list[SourceList]]:
    parts = range(stages.settings.partitions)
    joined = _by_wiki(t.join_bigrams, {
        i: [{"batches": batches[i], "partition": p, "unigrams": unigrams[i],
             "stage": w.ngram_stage} for p in parts] for i, w in with_text.items()
    }, stages, JoinedPartition)  # fmt: skip
    scored = _by_wiki(t.score_bigrams, {
        i: [{"joined": joined[i], "partition": q, "unigrams": unigrams[i],
             "stage": w.ngram_stage} for q in parts] for i, w in with_text.items()
    }, stages, ScoredPartition)  # fmt: skip
    calls = {i: [{"scored": scored[i], "joined": joined[i], "unigrams": unigrams[i],
                  "batches": batches[i], "uri": w.source_uri("bigram")}]
             for i, w in with_text.items()}  # fmt: skip
    return _by_wiki(t.bigram_source, calls, stages, SourceList)


def _wiki_titles(plan: WorldwidePlan, stages: _Stages) -> dict[int, list[SourceList]]:
    """Every Wikipedia's title source, from pageview batches read once for all of them."""
    if not plan.title_jobs:
        return {}
    wikis = sorted({w.wiki for w in plan.wikis})
    calls = [{"files": j.files, "directory": j.target, "wikis": wikis} for j in plan.title_jobs]
    batches = _run(t.count_wiki_titles, calls, stages, WikiTitleBatch)
    per_wiki = {i: [{"batches": batches, "wiki": w.wiki, "uri": w.source_uri("title")}]
                for i, w in enumerate(plan.wikis)}  # fmt: skip
    return _by_wiki(t.wiki_title_source, per_wiki, stages, SourceList)


__all__: Sequence[str] = ("build_metadata", "run_build")
