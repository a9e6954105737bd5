"""Planning a metadata build: check the options, expand the inputs and cut them into batches.

Every unit of work gets a content-addressed place under the work folder (named by
metaclip.io.cachekeys.make_key over its input files' identities and the parameters that change its
output), so a rerun, or a run that adds input files, reuses whatever is already done. The work
folder (inside the output) also holds the tasks' results, as JSON data with a checksum
(`task_result`): `<work>/tasks/<task>/<key>.json`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.cachekeys import make_key
from metaclip.metadata.ngrams import COUNT_LAYOUTS, TEXT_FORMATS
from metaclip.metadata.streams import batch_by_size, file_sizes
from metaclip.metadata.text import TOKENIZER_VERSION
from metaclip.metadata.wordnet import wordnet_key_files


@dataclass(frozen=True)
class Job:
    """A batch of input files and where its output goes."""

    files: list[str]
    target: str
    kind: str = ""  # for count files: "unigram" or "bigram"


@dataclass(frozen=True)
class Thresholds:
    min_unigram_count: int = 100
    min_bigram_pmi: float = 30.0
    min_title_views: int = 70
    min_hourly_views: int = 50


@dataclass(frozen=True)
class BuildPlan:
    output: str
    work_dir: str
    partitions: int
    thresholds: Thresholds
    wordnet: str | None = None
    wordnet_files: list[str] = field(default_factory=list)
    text_jobs: list[Job] = field(default_factory=list)
    count_jobs: list[Job] = field(default_factory=list)
    ngram_stage: str | None = None
    unigrams: bool = False
    bigrams: bool = False
    title_jobs: list[Job] = field(default_factory=list)
    pageview_domains: list[str] = field(default_factory=lambda: ["en"])
    text_format: str = "auto"
    count_layout: str = "auto"
    base: str | None = None
    extra: list[str] = field(default_factory=list)

    def source_uri(self, name: str) -> str:
        return storage.join(self.output, "sources", f"{name}.parquet")


def task_result(work_dir: str, task: str, key: str) -> str:
    """A build task's result, as data (metaclip.io.results.store_result), in the work folder."""
    return storage.join(work_dir, "tasks", task, f"{key}.json")


def _check_options(
    wiki_text: Sequence[str],
    unigram_counts: Sequence[str],
    bigram_counts: Sequence[str],
    partitions: int,
    thresholds: Thresholds,
) -> None:
    if wiki_text and (unigram_counts or bigram_counts):
        raise UserError("give either a Wikipedia text dump or precomputed counts, not both")
    if bigram_counts and not unigram_counts:
        raise UserError("bigram PMI needs unigram counts: add --unigram-counts")
    if not 1 <= partitions <= 4096:
        raise UserError(f"partitions must be between 1 and 4096: {partitions}")
    if math.isnan(thresholds.min_bigram_pmi):
        raise UserError("the bigram PMI threshold must be a number")
    if thresholds.min_hourly_views < 1:
        raise UserError("the hourly view threshold must be at least 1")


def input_batches(
    uris: Sequence[str], batch_bytes: int, opts: dict[str, Any]
) -> list[list[str]]:
    """The files of `uris` (globs, folders, files), in batches of about `batch_bytes`."""
    files = storage.expand_inputs(uris, **opts)
    return batch_by_size(files, file_sizes(files, opts), batch_bytes)


def _ngram_jobs(
    work: str,
    wiki_text: Sequence[str],
    unigram_counts: Sequence[str],
    bigram_counts: Sequence[str],
    params: dict[str, Any],
    batch_bytes: int,
    opts: dict[str, Any],
) -> tuple[list[Job], list[Job]]:
    base = storage.join(work, "ngrams", "batches")
    text = (
        [
            Job(b, storage.join(base, make_key("text", params, b, opts)))
            for b in input_batches(wiki_text, batch_bytes, opts)
        ]
        if wiki_text
        else []
    )
    counts = [
        Job(b, storage.join(base, make_key(f"{kind}-counts", params, b, opts)), kind)
        for kind, uris in (("unigram", unigram_counts), ("bigram", bigram_counts))
        if uris
        for b in input_batches(uris, batch_bytes, opts)
    ]
    return text, counts


def plan_build(
    output: str,
    *,
    wordnet: str | None = None,
    wiki_text: Sequence[str] = (),
    unigram_counts: Sequence[str] = (),
    bigram_counts: Sequence[str] = (),
    pageviews: Sequence[str] = (),
    extra: Sequence[str] = (),
    base: str | None = None,
    thresholds: Thresholds | None = None,
    skip: Sequence[str] = (),
    pageview_domains: Sequence[str] = ("en",),
    partitions: int = 32,
    batch_bytes: int = 64 << 20,
    text_format: str = "auto",
    count_layout: str = "auto",
    work_dir: str | None = None,
    input_options: dict[str, Any] | None = None,
) -> BuildPlan:
    """Check a build's options and inputs (UserError on a mistake) and lay out its work.
    Reads only the inputs (with `input_options`): it lists them and takes their identities."""
    opts = input_options or {}
    th = thresholds or Thresholds()
    _check_options(wiki_text, unigram_counts, bigram_counts, partitions, th)
    if text_format not in TEXT_FORMATS or count_layout not in COUNT_LAYOUTS:
        raise UserError(f"bad text format {text_format!r} or count layout {count_layout!r}")
    unknown = set(skip) - {"wordnet", "unigram", "bigram", "title"}
    if unknown:
        raise UserError(f"unknown source to skip: {', '.join(sorted(unknown))}")
    work = work_dir or storage.join(output, "work")
    params = {
        "partitions": partitions,
        "tokenizer": TOKENIZER_VERSION,
        "text_format": text_format,
        "count_layout": count_layout,
    }
    text_jobs, count_jobs = (
        ([], [])
        if {"unigram", "bigram"} <= set(skip)
        else _ngram_jobs(work, wiki_text, unigram_counts, bigram_counts, params, batch_bytes, opts)
    )
    jobs = text_jobs + count_jobs
    stage = (
        storage.join(
            work,
            "ngrams",
            make_key("reduce", {"batches": [j.target for j in jobs], "partitions": partitions}),
        )
        if jobs
        else None
    )
    plan = BuildPlan(
        output=output,
        work_dir=work,
        partitions=partitions,
        thresholds=th,
        text_jobs=text_jobs,
        count_jobs=count_jobs,
        ngram_stage=stage,
        unigrams=bool(jobs) and "unigram" not in skip,
        bigrams=bool(text_jobs or any(j.kind == "bigram" for j in count_jobs))
        and "bigram" not in skip,
        pageview_domains=list(pageview_domains),
        text_format=text_format,
        count_layout=count_layout,
        base=base,
        extra=storage.expand_inputs(extra, **opts) if extra else [],
        **_wordnet_and_titles(
            work, wordnet, pageviews, pageview_domains, th, skip, batch_bytes, opts
        ),
    )
    if base:
        storage.expand_inputs([base], **opts)  # exists?
    if not (
        plan.wordnet or plan.unigrams or plan.bigrams or plan.title_jobs or plan.extra or plan.base
    ):
        raise UserError(
            "nothing to build: give --wordnet, --wiki-text, --unigram-counts, "
            "--pageviews, --extra or --base"
        )
    return plan


def _wordnet_and_titles(
    work: str,
    wordnet: str | None,
    pageviews: Sequence[str],
    domains: Sequence[str],
    th: Thresholds,
    skip: Sequence[str],
    batch_bytes: int,
    opts: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if wordnet and "wordnet" not in skip:
        out["wordnet"] = wordnet
        out["wordnet_files"] = wordnet_key_files(wordnet, opts)
    if pageviews and "title" not in skip:
        params = {"domains": list(domains), "min_hourly_views": th.min_hourly_views}
        base = storage.join(work, "titles")
        out["title_jobs"] = [
            Job(b, storage.join(base, make_key("pageviews", params, b, opts) + ".parquet"))
            for b in input_batches(pageviews, batch_bytes, opts)
        ]
    return out
