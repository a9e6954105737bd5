"""Wikipedia article titles from Wikimedia's hourly pageview files, counted as MetaCLIP does.

A pageview line is `domain_code page_title count_views total_response_size`. As MetaCLIP's
builder does, only rows of the chosen domain codes are read ("en": English Wikipedia, desktop;
MetaCLIP reads no other), the title's '_' become spaces, titles containing ':' (other
namespaces) are dropped, and an hourly row counts only when it has at least 50 views
(MetaCLIP's `int(count / 50) > 0`), adding all its views. Sums over all given files are kept at
>= 70. Lines that are not four space-separated fields or not UTF-8 are skipped and counted.

One task counts a batch of files into a small Parquet file (title, views): only titles with a
busy hour survive an hour, so these stay small; one task sums them, a few files at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from metaclip.io import storage
from metaclip.metadata import manifest
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import HashedInput, InputDigest

if TYPE_CHECKING:  # metaclip.config imports metaclip.metadata's constants
    from metaclip.config import BuildMetadataConfig, Stores

TITLE_SCHEMA = pa.schema([("title", pa.string()), ("views", pa.int64())])
_MERGE_FILES = 16


@dataclass(frozen=True)
class TitleBatch(manifest.AsData):
    uri: str
    inputs: list[InputDigest]
    stats: dict[str, int] = field(default_factory=dict)

    def outputs(self) -> list[str]:
        return [self.uri, f"{self.uri}.json"]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


def parse_pageview_line(line: bytes, prefixes: tuple[bytes, ...]) -> tuple[str, int] | None:
    """(title, views) of a pageview line in one of the domains, else None (module docstring)."""
    if not line.startswith(prefixes):
        return None
    fields = line.decode("utf-8").strip().split(" ")
    if len(fields) != 4:
        raise ValueError("not four fields")
    title = fields[1].strip().replace("_", " ")
    return title, int(fields[2])


def count_pageviews(
    stream: IO[bytes],
    domains: Iterable[str],
    min_hourly_views: int,
    counts: Counter[str],
    stats: Counter[str],
) -> None:
    """Add one pageview file's qualifying hourly rows to `counts`."""
    prefixes = tuple(f"{d} ".encode() for d in domains)
    for line in stream:
        try:
            parsed = parse_pageview_line(line, prefixes)
        except (UnicodeDecodeError, ValueError):
            stats["malformed_lines"] += 1
            continue
        if parsed is None:
            continue
        title, views = parsed
        stats["domain_rows"] += 1
        if views >= min_hourly_views and ":" not in title:
            counts[title] += views
            stats["counted_rows"] += 1


# The settings that change each task's output (with its files' identities, or the batches it
# sums, and its own file).
BATCH_KEYED_BY = ("pageview_domains", "min_hourly_views")
SOURCE_KEYED_BY = ("min_title_views",)


def count_title_batch(
    settings: BuildMetadataConfig, stores: Stores, files: list[str], uri: str
) -> TitleBatch:
    """Sum a batch of pageview files' qualifying views per title (rows of
    `settings.pageview_domains` with at least `settings.min_hourly_views` views) into the
    Parquet file `uri` (files read with the inputs' options, `uri` written with the output's)."""
    read, opts = stores.inputs, stores.output
    domains, min_hourly_views = settings.pageview_domains, settings.min_hourly_views
    done = manifest.load(f"{uri}.json", TitleBatch, opts)
    if done is not None:
        return done
    counts: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    digests: list[InputDigest] = []
    for file in files:
        source = HashedInput(file, read)
        with source.open() as stream:
            count_pageviews(stream, domains, min_hourly_views, counts, stats)
        assert source.digest is not None
        digests.append(source.digest)
    table = pa.table([list(counts), list(counts.values())], schema=TITLE_SCHEMA)
    storage.write_parquet_atomic(uri, table, **opts)
    batch = TitleBatch(uri, digests, dict(sorted(stats.items())))
    manifest.save(f"{uri}.json", batch, opts)
    return batch


def title_source(
    settings: BuildMetadataConfig,
    stores: Stores,
    batches: Sequence[TitleBatch],
    params: dict[str, Any],
    uri: str,
) -> SourceList:
    """The title source, written to `uri`: titles whose views, summed over all batches, reach
    `settings.min_title_views`; `params` (how the batches counted) go to its provenance."""
    opts, min_views = stores.output, settings.min_title_views
    summed = TITLE_SCHEMA.empty_table()
    for i in range(0, len(batches), _MERGE_FILES):  # a few files at a time: bounded memory
        group = [storage.read_parquet(b.uri, **opts) for b in batches[i : i + _MERGE_FILES]]
        merged = pa.concat_tables([summed, *group])
        grouped = merged.group_by("title", use_threads=False).aggregate([("views", "sum")])
        summed = grouped.rename_columns({"views_sum": "views"}).select(["title", "views"])
    kept = summed.filter(pc.greater_equal(summed.column("views"), min_views))
    entries = pa.table({"entry": kept.column("title"), "count": kept.column("views")})
    stats: Counter[str] = Counter({"distinct_titles": summed.num_rows})
    for b in batches:
        stats.update(b.stats)
    inputs = [d for b in batches for d in b.inputs]
    params = {**params, "min_views": min_views}
    return write_source_list(
        "title", uri, entries, params, inputs, dict(sorted(stats.items())), opts
    )
