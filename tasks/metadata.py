"""Prefect tasks for building metadata: thin wrappers over metaclip.metadata.

Each task does a batch of files or one partition. Transient I/O failures are retried (see
tasks/retry.py). Results are JSON data (each result type's to_dict()) stored with a checksum in
the build's work folder, inside its output (tasks.caching.cached_run; never Prefect's pickled
result store), keyed by the task's name, the parameters that change its output and its input
files' identities, so a rerun skips finished work (the flow recomputes a cached result whose
outputs are gone, and the library also reuses finished, content-addressed outputs by itself). A
damaged or tampered stored result is recomputed (`cache: "damaged"`). The final merge is never
cached: it is cheap, and it writes the files users look at.

Every task takes the run's `storage` (metaclip.config.StorageConfig: plain options and Secret
block names, never secrets) and resolves it here, in the worker, where files are opened:
inputs with the `inputs` location, the work folder and the output with the `output` location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from prefect import task
from prefect.states import State

from metaclip.config import StorageConfig
from metaclip.metadata import build, ngrams, pmi, titles, wordnet
from metaclip.metadata.manifest import AsData
from metaclip.metadata.ngrams import NgramBatch
from metaclip.metadata.plan import task_result
from metaclip.metadata.pmi import JoinedPartition, ScoredPartition, UnigramPartition
from metaclip.metadata.sources import SourceList
from metaclip.metadata.titles import TitleBatch
from metaclip_prefect.tasks.caching import (
    DATA_CACHED_TASK,
    UNCACHED_TASK,
    cached_run,
    identities_on,
)
from metaclip_prefect.tasks.credentials import resolve

# A task's result: its type's to_dict() and `cache` ("computed", "damaged"; "hit" in a state
# named "Cached").
Result = dict[str, Any] | State


def _inputs(batches: Sequence[NgramBatch], kinds: set[str]) -> list[Any]:
    return [d for b in batches if kinds & set(b.kinds) for d in b.inputs]


def _cached(
    name: str,
    work_dir: str,
    storage: StorageConfig,
    params: Mapping[str, Any],
    compute: Callable[[], AsData],
    refresh: bool,
    inputs: Sequence[str] | None = None,
) -> Result:
    """cached_run in the work folder: key over `params` and the identities of the `inputs`
    files (read with the inputs location's options)."""
    identities = identities_on(storage, inputs=inputs) if inputs is not None else {}
    return cached_run(
        name, work_dir, {**params, "file_identities": identities},
        lambda: compute().to_dict(),
        output_options=resolve(storage.output), refresh=refresh,
        result_uri=partial(task_result, work_dir),
    )  # fmt: skip


@task(name="wordnet-source", **DATA_CACHED_TASK)
def wordnet_source(
    source: str,
    key_files: list[str],
    uri: str,
    storage: StorageConfig,
    work_dir: str,
    pos: str | None = None,
    refresh: bool = False,
) -> Result:
    return _cached(
        "wordnet-source", work_dir, storage, {"source": source, "uri": uri, "pos": pos},
        lambda: wordnet.wordnet_source(
            source, uri, pos, resolve(storage.inputs), resolve(storage.output)
        ),
        refresh, inputs=key_files,
    )  # fmt: skip


@task(name="count-text-batch", **DATA_CACHED_TASK)
def count_text_batch(
    files: list[str],
    directory: str,
    partitions: int,
    max_items: int,
    text_format: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    params = {"directory": directory, "partitions": partitions, "text_format": text_format}
    return _cached(
        "count-text-batch", work_dir, storage, params,
        lambda: ngrams.count_text_batch(
            files, directory, partitions, max_items, text_format,
            input_options=resolve(storage.inputs), output_options=resolve(storage.output),
        ),
        refresh, inputs=files,
    )  # fmt: skip


@task(name="count-file-batch", **DATA_CACHED_TASK)
def count_file_batch(
    files: list[str],
    kind: str,
    directory: str,
    partitions: int,
    max_items: int,
    layout: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    params = {"kind": kind, "directory": directory, "partitions": partitions, "layout": layout}
    return _cached(
        "count-file-batch", work_dir, storage, params,
        lambda: ngrams.count_file_batch(
            files, kind, directory, partitions, max_items, layout,
            input_options=resolve(storage.inputs), output_options=resolve(storage.output),
        ),
        refresh, inputs=files,
    )  # fmt: skip


@task(name="reduce-unigrams", **DATA_CACHED_TASK)
def reduce_unigrams(
    batches: list[NgramBatch],
    partition: int,
    stage: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    return _cached(
        "reduce-unigrams", work_dir, storage,
        {"batches": batches, "partition": partition, "stage": stage},
        lambda: pmi.reduce_unigram_partition(batches, partition, stage, resolve(storage.output)),
        refresh,
    )  # fmt: skip


@task(name="join-bigrams", **DATA_CACHED_TASK)
def join_bigrams(
    batches: list[NgramBatch],
    partition: int,
    partitions: int,
    unigrams: list[UnigramPartition],
    min_pmi: float,
    stage: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    total = sum(u.total for u in unigrams)
    params = {"batches": batches, "partition": partition, "partitions": partitions,
              "unigrams": unigrams, "min_pmi": min_pmi, "stage": stage}  # fmt: skip
    return _cached(
        "join-bigrams", work_dir, storage, params,
        lambda: pmi.join_first_word(
            batches, partition, partitions, unigrams[partition], total, min_pmi, stage,
            resolve(storage.output),
        ),
        refresh,
    )  # fmt: skip


@task(name="score-bigrams", **DATA_CACHED_TASK)
def score_bigrams(
    joined: list[JoinedPartition],
    partition: int,
    unigrams: list[UnigramPartition],
    min_pmi: float,
    stage: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    total = sum(u.total for u in unigrams)
    params = {"joined": joined, "partition": partition, "unigrams": unigrams,
              "min_pmi": min_pmi, "stage": stage}  # fmt: skip
    return _cached(
        "score-bigrams", work_dir, storage, params,
        lambda: pmi.score_second_word(
            joined, partition, unigrams[partition], total, min_pmi, stage,
            resolve(storage.output),
        ),
        refresh,
    )  # fmt: skip


@task(name="unigram-source", **DATA_CACHED_TASK)
def unigram_source(
    unigrams: list[UnigramPartition],
    batches: list[NgramBatch],
    min_count: int,
    uri: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    inputs = _inputs(batches, {"unigram"})
    params = {"unigrams": unigrams, "batches": batches, "min_count": min_count, "uri": uri}
    return _cached(
        "unigram-source", work_dir, storage, params,
        lambda: pmi.unigram_source(unigrams, inputs, min_count, uri, resolve(storage.output)),
        refresh,
    )  # fmt: skip


@task(name="bigram-source", **DATA_CACHED_TASK)
def bigram_source(
    scored: list[ScoredPartition],
    joined: list[JoinedPartition],
    unigrams: list[UnigramPartition],
    batches: list[NgramBatch],
    min_pmi: float,
    uri: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    total = sum(u.total for u in unigrams)
    inputs = _inputs(batches, {"unigram", "bigram"})
    params = {"scored": scored, "joined": joined, "unigrams": unigrams, "batches": batches,
              "min_pmi": min_pmi, "uri": uri}  # fmt: skip
    return _cached(
        "bigram-source", work_dir, storage, params,
        lambda: pmi.bigram_source(
            scored, joined, total, inputs, min_pmi, uri, resolve(storage.output)
        ),
        refresh,
    )  # fmt: skip


@task(name="count-title-batch", **DATA_CACHED_TASK)
def count_title_batch(
    files: list[str],
    uri: str,
    domains: list[str],
    min_hourly_views: int,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    params = {"uri": uri, "domains": domains, "min_hourly_views": min_hourly_views}
    return _cached(
        "count-title-batch", work_dir, storage, params,
        lambda: titles.count_title_batch(
            files, uri, domains, min_hourly_views, resolve(storage.inputs),
            resolve(storage.output),
        ),
        refresh, inputs=files,
    )  # fmt: skip


@task(name="title-source", **DATA_CACHED_TASK)
def title_source(
    batches: list[TitleBatch],
    params: dict[str, Any],
    min_views: int,
    uri: str,
    storage: StorageConfig,
    work_dir: str,
    refresh: bool = False,
) -> Result:
    key_params = {"batches": batches, "params": params, "min_views": min_views, "uri": uri}
    return _cached(
        "title-source", work_dir, storage, key_params,
        lambda: titles.title_source(batches, params, min_views, uri, resolve(storage.output)),
        refresh,
    )  # fmt: skip


@task(name="merge-metadata", **UNCACHED_TASK)
def merge_metadata(
    sources: list[SourceList],
    output: str,
    base: str | None,
    extra: list[str],
    max_entries: int | None,
    storage: StorageConfig,
) -> dict[str, Any]:
    return build.build_metadata_files(
        sources, output, base, extra, max_entries,
        input_options=resolve(storage.inputs), output_options=resolve(storage.output),
    )  # fmt: skip
