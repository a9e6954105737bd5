"""Prefect tasks for building metadata: thin wrappers over metaclip.metadata.

Each task does a batch of files or one partition. Transient I/O failures are retried (see
tasks/retry.py). Results are persisted and keyed with tasks/caching.py cache_on, so a rerun skips
finished work (the flow recomputes a cached result whose outputs are gone, and the library also
reuses finished, content-addressed outputs by itself). The final merge is never cached: it is
cheap, and it writes the files users look at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metaclip_prefect.tasks.caching import cache_on
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS
from prefect import task

from metaclip.metadata import build, ngrams, pmi, titles, wordnet
from metaclip.metadata.ngrams import NgramBatch
from metaclip.metadata.pmi import JoinedPartition, ScoredPartition, UnigramPartition
from metaclip.metadata.sources import SourceList
from metaclip.metadata.titles import TitleBatch

Options = dict[str, Any] | None


_UNCACHED = {k: v for k, v in IO_TASK_OPTIONS.items() if k != "persist_result"}


def _inputs(batches: Sequence[NgramBatch], kinds: set[str]) -> list[Any]:
    return [d for b in batches if kinds & set(b.kinds) for d in b.inputs]


@task(
    name="wordnet-source",
    cache_key_fn=cache_on(files=("key_files",), params=("source", "uri", "pos")),
    **IO_TASK_OPTIONS,
)
def wordnet_source(
    source: str,
    key_files: list[str],
    uri: str,
    pos: str | None = None,
    storage_options: Options = None,
) -> SourceList:
    return wordnet.wordnet_source(source, uri, pos, storage_options)


@task(
    name="count-text-batch",
    cache_key_fn=cache_on(files=("files",), params=("directory", "partitions", "text_format")),
    **IO_TASK_OPTIONS,
)
def count_text_batch(
    files: list[str],
    directory: str,
    partitions: int,
    max_items: int,
    text_format: str,
    storage_options: Options = None,
) -> NgramBatch:
    return ngrams.count_text_batch(
        files, directory, partitions, max_items, text_format, storage_options
    )


@task(
    name="count-file-batch",
    cache_key_fn=cache_on(files=("files",), params=("kind", "directory", "partitions", "layout")),
    **IO_TASK_OPTIONS,
)
def count_file_batch(
    files: list[str],
    kind: str,
    directory: str,
    partitions: int,
    max_items: int,
    layout: str,
    storage_options: Options = None,
) -> NgramBatch:
    return ngrams.count_file_batch(
        files, kind, directory, partitions, max_items, layout, storage_options
    )


@task(
    name="reduce-unigrams",
    cache_key_fn=cache_on(params=("batches", "partition", "stage")),
    **IO_TASK_OPTIONS,
)
def reduce_unigrams(
    batches: list[NgramBatch], partition: int, stage: str, storage_options: Options = None
) -> UnigramPartition:
    return pmi.reduce_unigram_partition(batches, partition, stage, storage_options)


@task(
    name="join-bigrams",
    cache_key_fn=cache_on(
        params=("batches", "partition", "partitions", "unigrams", "min_pmi", "stage")
    ),
    **IO_TASK_OPTIONS,
)
def join_bigrams(
    batches: list[NgramBatch],
    partition: int,
    partitions: int,
    unigrams: list[UnigramPartition],
    min_pmi: float,
    stage: str,
    storage_options: Options = None,
) -> JoinedPartition:
    total = sum(u.total for u in unigrams)
    return pmi.join_first_word(
        batches, partition, partitions, unigrams[partition], total, min_pmi, stage, storage_options
    )


@task(
    name="score-bigrams",
    cache_key_fn=cache_on(params=("joined", "partition", "unigrams", "min_pmi", "stage")),
    **IO_TASK_OPTIONS,
)
def score_bigrams(
    joined: list[JoinedPartition],
    partition: int,
    unigrams: list[UnigramPartition],
    min_pmi: float,
    stage: str,
    storage_options: Options = None,
) -> ScoredPartition:
    total = sum(u.total for u in unigrams)
    return pmi.score_second_word(
        joined, partition, unigrams[partition], total, min_pmi, stage, storage_options
    )


@task(
    name="unigram-source",
    cache_key_fn=cache_on(params=("unigrams", "batches", "min_count", "uri")),
    **IO_TASK_OPTIONS,
)
def unigram_source(
    unigrams: list[UnigramPartition],
    batches: list[NgramBatch],
    min_count: int,
    uri: str,
    storage_options: Options = None,
) -> SourceList:
    inputs = _inputs(batches, {"unigram"})
    return pmi.unigram_source(unigrams, inputs, min_count, uri, storage_options)


@task(
    name="bigram-source",
    cache_key_fn=cache_on(params=("scored", "joined", "unigrams", "batches", "min_pmi", "uri")),
    **IO_TASK_OPTIONS,
)
def bigram_source(
    scored: list[ScoredPartition],
    joined: list[JoinedPartition],
    unigrams: list[UnigramPartition],
    batches: list[NgramBatch],
    min_pmi: float,
    uri: str,
    storage_options: Options = None,
) -> SourceList:
    total = sum(u.total for u in unigrams)
    inputs = _inputs(batches, {"unigram", "bigram"})
    return pmi.bigram_source(scored, joined, total, inputs, min_pmi, uri, storage_options)


@task(
    name="count-title-batch",
    cache_key_fn=cache_on(files=("files",), params=("uri", "domains", "min_hourly_views")),
    **IO_TASK_OPTIONS,
)
def count_title_batch(
    files: list[str],
    uri: str,
    domains: list[str],
    min_hourly_views: int,
    storage_options: Options = None,
) -> TitleBatch:
    return titles.count_title_batch(files, uri, domains, min_hourly_views, storage_options)


@task(
    name="title-source",
    cache_key_fn=cache_on(params=("batches", "params", "min_views", "uri")),
    **IO_TASK_OPTIONS,
)
def title_source(
    batches: list[TitleBatch],
    params: dict[str, Any],
    min_views: int,
    uri: str,
    storage_options: Options = None,
) -> SourceList:
    return titles.title_source(batches, params, min_views, uri, storage_options)


@task(
    name="merge-metadata",
    **_UNCACHED,
)
def merge_metadata(
    sources: list[SourceList],
    output: str,
    base: str | None,
    extra: list[str],
    max_entries: int | None,
    storage_options: Options = None,
) -> dict[str, Any]:
    return build.build_metadata_files(sources, output, base, extra, max_entries, storage_options)
