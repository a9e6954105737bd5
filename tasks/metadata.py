"""Prefect tasks for building metadata: each runs one stage function of metaclip.metadata,
`stage(settings, stores, **call)` with the build's checked configuration
(metaclip.config.BuildMetadataConfig) as its settings, made a task by tasks.caching.stage_task.

Each task does a batch of files or one partition. Transient I/O failures are retried (see
tasks/retry.py). Results are JSON data (each result type's to_dict()) stored with a checksum in
the build's work folder, inside its output (`<work>/tasks/`; never Prefect's pickled result
store), keyed by the task's name, the settings that change its output (the stage module's
KEYED_BY), its call's own arguments and its input files' identities, so a rerun skips finished
work (the flow recomputes a cached result whose outputs are gone, and the library also reuses
finished, content-addressed outputs by itself). A damaged or tampered stored result is
recomputed (`cache: "damaged"`). The final merge is never cached: it is cheap, and it writes the
files users look at.

Storage options are resolved in the worker, where files are opened: inputs with the `inputs`
location, the work folder and the output with the `output` location.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from prefect import task

from metaclip.config import BuildMetadataConfig, StorageConfig
from metaclip.metadata import build, ngrams, omw, pmi, titles, wiki_titles, wordnet, worldwide
from metaclip.metadata.plan import task_result
from metaclip.metadata.sources import SourceList
from metaclip.metadata.worldwide import WikiSources
from metaclip_prefect.tasks.caching import UNCACHED_TASK, stage_task
from metaclip_prefect.tasks.credentials import resolve, stores_for


def in_work_dir(settings: BuildMetadataConfig) -> Callable[[str, str], str]:
    """Where a build task's result is stored: `<work>/tasks/<task>/<key>.json`."""
    return partial(task_result, settings.work_dir)


_build_task = partial(stage_task, result_uri=in_work_dir)

# The WordNet files' identities key the source (the plan's wordnet_key_files); the reader
# finds them by itself.
wordnet_source = _build_task(
    "wordnet-source", wordnet.wordnet_source, wordnet.KEYED_BY,
    input_files=["key_files"], files_on="inputs", key_only=["key_files"],
)  # fmt: skip
count_text_batch = _build_task(
    "count-text-batch", ngrams.count_text_batch, ngrams.TEXT_KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
count_file_batch = _build_task(
    "count-file-batch", ngrams.count_file_batch, ngrams.FILE_KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
reduce_unigrams = _build_task(
    "reduce-unigrams", pmi.reduce_unigram_partition, pmi.REDUCE_KEYED_BY
)
join_bigrams = _build_task("join-bigrams", pmi.join_first_word, pmi.JOIN_KEYED_BY)
score_bigrams = _build_task("score-bigrams", pmi.score_second_word, pmi.SCORE_KEYED_BY)
unigram_source = _build_task("unigram-source", pmi.unigram_source, pmi.UNIGRAM_KEYED_BY)
bigram_source = _build_task("bigram-source", pmi.bigram_source, pmi.BIGRAM_KEYED_BY)
count_title_batch = _build_task(
    "count-title-batch", titles.count_title_batch, titles.BATCH_KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
title_source = _build_task("title-source", titles.title_source, titles.SOURCE_KEYED_BY)


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


# The worldwide build (MetaCLIP 2): per Wikipedia, its OMW lemmas, segmented counts, the head of
# its unigrams and its titles; per language, the merge; then the index. The pageview batches are
# read once for every Wikipedia of the build.
omw_source = _build_task(
    "omw-source", omw.omw_source, omw.KEYED_BY,
    input_files=["key_files"], files_on="inputs", key_only=["key_files"],
)  # fmt: skip
count_segmented_batch = _build_task(
    "count-segmented-batch", ngrams.count_segmented_batch, ngrams.SEGMENTED_KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
top_unigram_source = _build_task(
    "top-unigram-source", pmi.top_unigram_source, pmi.TOP_UNIGRAM_KEYED_BY
)
count_wiki_titles = _build_task(
    "count-wiki-titles", wiki_titles.count_wiki_titles, wiki_titles.BATCH_KEYED_BY,
    input_files=["files"], files_on="inputs",
)  # fmt: skip
wiki_title_source = _build_task(
    "wiki-title-source", wiki_titles.wiki_title_source, wiki_titles.SOURCE_KEYED_BY
)


@task(name="merge-language", **UNCACHED_TASK)
def merge_language(
    settings: BuildMetadataConfig, language: str, wikis: list[WikiSources], folder: str
) -> dict[str, Any]:
    stores = stores_for(settings.storage)
    return worldwide.merge_language(settings, stores, language, wikis, folder)


@task(name="copy-english-metadata", **UNCACHED_TASK)
def copy_english_metadata(settings: BuildMetadataConfig, uri: str, folder: str) -> dict[str, Any]:
    return worldwide.copy_english(settings, stores_for(settings.storage), uri, folder)


@task(name="write-language-index", **UNCACHED_TASK)
def write_language_index(
    settings: BuildMetadataConfig, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    return worldwide.write_language_index(settings, stores_for(settings.storage), rows)
