"""Titles of every Wikipedia of a worldwide build, from the same hourly pageview files, counted
as MetaCLIP 2's build_title.py counts them.

A pageview line is `domain_code page_title count_views total_response_size`. As the reference
does, lines starting with `"" ` and lines that are not four space-separated fields are skipped,
the title is stripped and its '_' become spaces, and every row with views (count > 0) whose
title holds no ':' adds its views, summed over all the files: no hourly or total threshold (the
English build's min_hourly_views and min_title_views do not apply). Lines that are not UTF-8 or
whose count is not a number are skipped and counted.

Which domain codes feed a Wikipedia (code W, its domain D = W with '_' -> '-', e.g.
zh-classical): `title_projects = "wikipedia"` (default) reads D and its mobile domain D.m; with
"all", every domain whose first part is D, which is what the reference's code does (it removes
".m" and keeps what comes before the first '.'), so Wiktionary (D.d), Wikibooks (D.b) and the
other projects' titles count too.

One task reads a batch of files once for all the build's Wikipedias and writes one small
Parquet file (title, views) per Wikipedia into its folder; one task per Wikipedia sums its files
over the batches, a few at a time, and writes its title source: every title, by views.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from metaclip.io import storage
from metaclip.metadata import manifest
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import HashedInput, InputDigest
from metaclip.metadata.titles import TITLE_SCHEMA

if TYPE_CHECKING:  # metaclip.config imports metaclip.metadata's constants
    from metaclip.config import BuildMetadataConfig, Stores

TITLE_PROJECTS = ("wikipedia", "all")
_MERGE_FILES = 16


def domain_of(wiki: str) -> str:
    """A Wikipedia's pageview domain code (zh_classical -> zh-classical)."""
    return wiki.replace("_", "-")


def wiki_of_domain(domain: str, projects: str) -> str | None:
    """The Wikipedia code whose titles a domain code's rows are (module docstring)."""
    if projects == "all":
        return domain.replace(".m", "").split(".")[0].replace("-", "_")
    base = domain.removesuffix(".m")
    return None if "." in base else base.replace("-", "_")


@dataclass(frozen=True)
class WikiTitleBatch(manifest.AsData):
    directory: str
    wikis: list[str]
    inputs: list[InputDigest]
    stats: dict[str, int] = field(default_factory=dict)

    def uri(self, wiki: str) -> str:
        return storage.join(self.directory, f"{wiki}.parquet")

    def outputs(self) -> list[str]:
        return [storage.join(self.directory, "_manifest.json")]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


def count_lines(
    stream: Iterable[bytes],
    wanted: dict[str, Counter[str]],
    projects: str,
    stats: Counter[str],
) -> None:
    """Add one pageview file's rows to the counts of the `wanted` Wikipedias."""
    wiki_by_domain: dict[bytes, Counter[str] | None] = {}
    for line in stream:
        domain = line.split(b" ", 1)[0]
        if domain not in wiki_by_domain:
            wiki = wiki_of_domain(domain.decode("utf-8", "replace"), projects)
            wiki_by_domain[domain] = wanted.get(wiki) if wiki else None
        counts = wiki_by_domain[domain]
        if counts is None or line.startswith(b'"" '):
            continue
        try:
            fields = line.decode("utf-8").strip().split(" ")
            views = int(fields[2]) if len(fields) == 4 else 0
        except (UnicodeDecodeError, ValueError):
            stats["malformed_lines"] += 1
            continue
        title = fields[1].strip().replace("_", " ") if len(fields) == 4 else ""
        if views > 0 and title and ":" not in title:
            counts[title] += views
            stats["counted_rows"] += 1


# The settings that change a batch's output (with its files' identities and its wikis).
BATCH_KEYED_BY = ("title_projects",)


def count_wiki_titles(
    settings: BuildMetadataConfig, stores: Stores, files: list[str], directory: str,
    wikis: list[str],
) -> WikiTitleBatch:  # fmt: skip
    """Sum a batch of pageview files' views per title of each Wikipedia in `wikis` into
    `directory` (files read with the inputs' options, `directory` written with the output's)."""
    opts = stores.output
    done = manifest.load(storage.join(directory, "_manifest.json"), WikiTitleBatch, opts)
    if done is not None:
        return done
    counts: dict[str, Counter[str]] = {wiki: Counter() for wiki in wikis}
    stats: Counter[str] = Counter()
    digests: list[InputDigest] = []
    for file in files:
        source = HashedInput(file, stores.inputs)
        with source.open() as stream:
            count_lines(stream, counts, settings.title_projects, stats)
        assert source.digest is not None
        digests.append(source.digest)
    batch = WikiTitleBatch(directory, list(wikis), digests, dict(sorted(stats.items())))
    for wiki, titles in counts.items():
        table = pa.table([list(titles), list(titles.values())], schema=TITLE_SCHEMA)
        storage.write_parquet_atomic(batch.uri(wiki), table, **opts)
    manifest.save(storage.join(directory, "_manifest.json"), batch, opts)
    return batch


def _summed(uris: Sequence[str], opts: dict[str, Any]) -> pa.Table:
    summed = TITLE_SCHEMA.empty_table()
    for i in range(0, len(uris), _MERGE_FILES):  # a few files at a time: bounded memory
        group = [storage.read_parquet(u, **opts) for u in uris[i : i + _MERGE_FILES]]
        merged = pa.concat_tables([summed, *group])
        grouped = merged.group_by("title", use_threads=False).aggregate([("views", "sum")])
        summed = grouped.rename_columns({"views_sum": "views"}).select(["title", "views"])
    return summed


SOURCE_KEYED_BY = ("title_projects",)


def wiki_title_source(
    settings: BuildMetadataConfig, stores: Stores, batches: Sequence[WikiTitleBatch], wiki: str,
    uri: str,
) -> SourceList:  # fmt: skip
    """The title source of `wiki`, written to `uri`: every title with its summed views."""
    opts = stores.output
    summed = _summed([b.uri(wiki) for b in batches], opts)
    entries = pa.table({"entry": summed.column("title"), "count": summed.column("views")})
    params = {"projects": settings.title_projects, "domain": domain_of(wiki),
              "rule": "views > 0, no ':', '_' -> ' ', summed over all files"}  # fmt: skip
    stats = {"distinct_titles": summed.num_rows}
    inputs = [d for b in batches for d in b.inputs]
    return write_source_list("title", uri, entries, params, inputs, stats, opts)
