"""Counting Wikipedia unigrams and bigrams: the map side, with bounded memory.

A map task counts one batch of text files (plain text, or WikiExtractor's JSON lines) or one
precomputed count file; the text of a language written without spaces is tokenised by its
segmenter (count_segmented_batch, metaclip.metadata.segmenters). Its counts are spilled,
whenever they outgrow `max_items` distinct keys, to Parquet files split by a stable hash:
unigrams by crc32(token) and bigrams by crc32(first word), each modulo the number of
partitions. No task ever holds all distinct n-grams; reducers (metaclip.metadata.pmi) merge one
partition each.

Layout of a batch folder: `unigram-p{p:04d}-s{s:03d}.parquet` (token, count),
`bigram-p{p:04d}-s{s:03d}.parquet` (w1, w2, count) for every partition p and spill s, then
`_manifest.json`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.metadata import manifest
from metaclip.metadata.segmenters import load_segmenter, segmented_tokens, segmenter_name
from metaclip.metadata.streams import InputDigest, open_text, peek_lines
from metaclip.metadata.text import BREAK, strip_markup, tokens_with_breaks

if TYPE_CHECKING:  # metaclip.config imports this module's constants
    from metaclip.config import BuildMetadataConfig, Stores

TEXT_FORMATS = ("auto", "text", "jsonl")
COUNT_LAYOUTS = ("auto", "last", "first")
_CHUNK_CHARS = 1 << 22  # tokenise about 4 MB of text per call
UNIGRAM_SCHEMA = pa.schema([("token", pa.string()), ("count", pa.int64())])
BIGRAM_SCHEMA = pa.schema([("w1", pa.string()), ("w2", pa.string()), ("count", pa.int64())])


@dataclass(frozen=True)
class NgramBatch(manifest.AsData):
    """A finished map task: where its partial counts are and what it read."""

    directory: str
    partitions: int
    spills: int
    kinds: list[str]  # "unigram", "bigram" or both
    inputs: list[InputDigest]
    stats: dict[str, int] = field(default_factory=dict)

    def outputs(self) -> list[str]:
        """What must still exist for this result to be reused (its manifest is written last)."""
        return [storage.join(self.directory, "_manifest.json")]

    def intact(self, storage_options: dict[str, Any] | None = None) -> bool:
        return manifest.all_exist(self.outputs(), storage_options)


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def partial_uri(directory: str, kind: str, partition: int, spill: int) -> str:
    return storage.join(directory, f"{kind}-p{partition:04d}-s{spill:03d}.parquet")


def _write_partitioned(
    table: pa.Table,
    key_column: str,
    directory: str,
    kind: str,
    partitions: int,
    spill: int,
    opts: dict[str, Any],
) -> None:
    keys = table.column(key_column).to_pylist()
    parts = np.fromiter((partition_of(k, partitions) for k in keys), np.int64, len(keys))
    order = np.argsort(parts, kind="stable")
    table = table.take(pa.array(order))
    bounds = np.searchsorted(parts[order], np.arange(partitions + 1))
    for p in range(partitions):
        piece = table.slice(bounds[p], bounds[p + 1] - bounds[p])
        storage.write_parquet_atomic(partial_uri(directory, kind, p, spill), piece, **opts)


class PartitionedCounter:
    """Unigram and bigram counts that spill to hash-partitioned Parquet files when large."""

    def __init__(
        self,
        directory: str,
        partitions: int,
        max_items: int,
        kinds: Iterable[str],
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.directory = directory
        self.partitions = partitions
        self.max_items = max_items
        self.kinds = list(kinds)
        self.opts = storage_options or {}
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.spills = 0
        self.has_breaks = False  # text streams carry BREAK; count files may hold a real '|'

    def add_tokens(self, tokens: list[str]) -> None:
        """Count a token stream in which BREAK separates segments."""
        self.has_breaks = True
        self.unigrams.update(tokens)
        self.bigrams.update(zip(tokens, tokens[1:], strict=False))
        self._maybe_spill()

    def add_unigram(self, token: str, count: int) -> None:
        self.unigrams[token] += count
        self._maybe_spill()

    def add_bigram(self, w1: str, w2: str, count: int) -> None:
        self.bigrams[(w1, w2)] += count
        self._maybe_spill()

    def _maybe_spill(self) -> None:
        if len(self.unigrams) + len(self.bigrams) > self.max_items:
            self.spill()

    def spill(self) -> None:
        if self.has_breaks:
            self.unigrams.pop(BREAK, None)
        if "unigram" in self.kinds:
            table = pa.table(
                [list(self.unigrams.keys()), list(self.unigrams.values())], schema=UNIGRAM_SCHEMA
            )
            _write_partitioned(
                table, "token", self.directory, "unigram", self.partitions, self.spills, self.opts
            )
        if "bigram" in self.kinds:
            pairs = [
                (k, v) for k, v in self.bigrams.items() if not self.has_breaks or BREAK not in k
            ]
            table = pa.table(
                [[k[0] for k, _ in pairs], [k[1] for k, _ in pairs], [v for _, v in pairs]],
                schema=BIGRAM_SCHEMA,
            )
            _write_partitioned(
                table, "w1", self.directory, "bigram", self.partitions, self.spills, self.opts
            )
        self.unigrams.clear()
        self.bigrams.clear()
        self.spills += 1


def _is_json_document(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _document_text(line: str, stats: Counter[str]) -> str:
    """A WikiExtractor JSON line's title and text, as its plain output would hold them."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        stats["bad_json_lines"] += 1
        return ""
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        stats["bad_json_lines"] += 1
        return ""
    stats["documents"] += 1
    title = doc.get("title")
    head = f"{title}\n" if isinstance(title, str) and title else ""
    return f"{head}{doc['text']}\n"


def text_chunks(stream: IO[str], text_format: str, stats: Counter[str]) -> Iterator[str]:
    """Chunks of whole lines of a text dump; JSON lines become each document's title and text."""
    fmt = text_format
    buffer: list[str] = []
    size = 0
    for line in stream:
        if fmt == "auto" and line.strip():
            fmt = "jsonl" if _is_json_document(line) else "text"
        piece = _document_text(line, stats) if fmt == "jsonl" and line.strip() else line
        buffer.append(piece if piece.endswith("\n") else piece + "\n")
        size += len(piece)
        if size >= _CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


# The settings that change a counting task's output (with its files' identities and folder).
TEXT_KEYED_BY = ("partitions", "text_format")
FILE_KEYED_BY = ("partitions", "count_layout")


def count_text_batch(
    settings: BuildMetadataConfig, stores: Stores, files: list[str], directory: str
) -> NgramBatch:
    """Count the unigrams and bigrams of a batch of text files (`settings.text_format`) into
    `directory` (module doc), in `settings.partitions` partitions, with at most
    `settings.max_items` n-grams in memory; the files are read with the inputs' options,
    `directory` written with the output's."""
    partitions, max_items = settings.partitions, settings.max_items
    text_format = settings.text_format
    read, opts = stores.inputs, stores.output
    done = manifest.load(storage.join(directory, "_manifest.json"), NgramBatch, opts)
    if done is not None:
        return done
    if text_format not in TEXT_FORMATS:
        raise UserError(f"text format must be one of {', '.join(TEXT_FORMATS)}: {text_format!r}")
    counter = PartitionedCounter(directory, partitions, max_items, ("unigram", "bigram"), opts)
    return _count_texts(files, tokens_with_breaks, counter, text_format, read)


def _count_texts(
    files: list[str],
    tokenize: Callable[[str], list[str]],
    counter: PartitionedCounter,
    text_format: str,
    read: dict[str, Any],
) -> NgramBatch:
    """Count the tokens `tokenize` finds in the files' chunks (BREAK ends a segment)."""
    stats: Counter[str] = Counter()
    digests: list[InputDigest] = []
    for uri in files:
        with open_text(uri, read, digests) as stream:
            for chunk in text_chunks(stream, text_format, stats):
                tokens = tokenize(chunk)
                stats["tokens"] += len(tokens) - tokens.count(BREAK)
                counter.add_tokens(tokens)
    counter.spill()
    return _finish(counter, digests, stats, counter.opts)


# The settings that change a segmented counting task's output (with its call's language).
SEGMENTED_KEYED_BY = TEXT_KEYED_BY


def count_segmented_batch(
    settings: BuildMetadataConfig, stores: Stores, files: list[str], directory: str, wiki: str
) -> NgramBatch:
    """count_text_batch for the text of a Wikipedia written without spaces: tokens from its
    segmenter, counted as MetaCLIP 2 counts them (metaclip.metadata.segmenters). The segmenter's
    caches go to the work folder when it is local, else to a temporary folder."""
    opts = stores.output
    done = manifest.load(storage.join(directory, "_manifest.json"), NgramBatch, opts)
    if done is not None:
        return done
    name = segmenter_name(wiki)
    if name is None:
        raise UserError(f"{wiki} is written with spaces: count it with count_text_batch")
    counter = PartitionedCounter(
        directory, settings.partitions, settings.max_items, ("unigram", "bigram"), opts
    )
    with _segmenter_cache(settings.work_dir) as cache_dir:
        segment = load_segmenter(name, cache_dir)
        return _count_texts(
            files, lambda chunk: segmented_tokens(strip_markup(chunk), segment), counter,
            settings.text_format, stores.inputs,
        )  # fmt: skip


@contextmanager
def _segmenter_cache(work_dir: str) -> Iterator[str]:
    """A local folder for segmenter caches: inside the work folder when that is local."""
    if storage.is_local(work_dir):
        yield os.path.join(work_dir.removeprefix("file://"), "segmenters")
        return
    with tempfile.TemporaryDirectory(prefix="metaclip-segmenters-") as tmp:
        yield tmp


def _finish(
    counter: PartitionedCounter,
    digests: list[InputDigest],
    stats: Counter[str],
    opts: dict[str, Any],
) -> NgramBatch:
    batch = NgramBatch(
        directory=counter.directory,
        partitions=counter.partitions,
        spills=counter.spills,
        kinds=counter.kinds,
        inputs=digests,
        stats=dict(sorted(stats.items())),
    )
    manifest.save(storage.join(counter.directory, "_manifest.json"), batch, opts)
    return batch


# Precomputed count files -------------------------------------------------------------------

# "<entry><sep><count>" or "<count><sep><entry>": sep is one tab, space or ';' (the last one on
# the line when the count comes last, so 'a;b;12' is the entry 'a;b').
_COUNT_LAST = re.compile(r"^(.*)[\t ;](\d+)\s*$")
_COUNT_FIRST = re.compile(r"^\s*(\d+)[\t ;](.*)$")


def sniff_count_layout(lines: list[str]) -> str:
    """'last' or 'first': where the count is, judged by which reading fits more sample lines."""
    last = sum(1 for line in lines if _COUNT_LAST.match(line))
    first = sum(1 for line in lines if _COUNT_FIRST.match(line))
    return "first" if first > last else "last"


def parse_count_line(line: str, kind: str, layout: str) -> tuple[tuple[str, ...], int] | None:
    """(words, count) of one count-file line, or None when the line does not fit."""
    line = line.rstrip("\r\n")
    if layout == "last":
        m = _COUNT_LAST.match(line)
        entry, count = (m.group(1), m.group(2)) if m else ("", "0")
    else:
        m = _COUNT_FIRST.match(line)
        entry, count = (m.group(2), m.group(1)) if m else ("", "0")
    n = int(count)
    if n <= 0:
        return None
    if kind == "unigram":
        token = entry.strip()
        return ((token,), n) if token else None
    words = entry.split()
    return (tuple(words), n) if len(words) == 2 else None


def _count_parquet(
    uri: str,
    kind: str,
    counter: PartitionedCounter,
    digests: list[InputDigest],
    opts: dict[str, Any],
) -> None:
    data = storage.read_bytes(uri, **opts)
    digests.append(InputDigest(uri, len(data), hashlib.sha256(data).hexdigest()))
    table = pq.read_table(io.BytesIO(data))
    names = set(table.column_names)
    if kind == "bigram" and {"w1", "w2", "count"} <= names:
        columns = (table.column(x).to_pylist() for x in ("w1", "w2", "count"))
        for w1, w2, n in zip(*columns, strict=True):
            if n and n > 0:
                counter.add_bigram(w1, w2, n)
        return
    col = next((c for c in ("token", "entry", "word") if c in names), None)
    if col is None or "count" not in names:
        raise UserError(f"{uri}: a count Parquet file needs token|entry and count columns")
    for entry, n in zip(
        table.column(col).to_pylist(), table.column("count").to_pylist(), strict=True
    ):
        if not n or n <= 0:
            continue
        if kind == "unigram":
            counter.add_unigram(entry, n)
        elif len(words := entry.split()) == 2:
            counter.add_bigram(words[0], words[1], n)


def count_file_batch(
    settings: BuildMetadataConfig, stores: Stores, files: list[str], kind: str, directory: str
) -> NgramBatch:
    """Partition precomputed `kind` ('unigram' or 'bigram') count files (lines laid out as
    `settings.count_layout` says) into `directory`, in `settings.partitions` partitions (files
    read with the inputs' options, `directory` written with the output's)."""
    partitions, max_items, layout = settings.partitions, settings.max_items, settings.count_layout
    read, opts = stores.inputs, stores.output
    done = manifest.load(storage.join(directory, "_manifest.json"), NgramBatch, opts)
    if done is not None:
        return done
    if layout not in COUNT_LAYOUTS:
        raise UserError(f"count layout must be one of {', '.join(COUNT_LAYOUTS)}: {layout!r}")
    counter = PartitionedCounter(directory, partitions, max_items, (kind,), opts)
    stats: Counter[str] = Counter()
    digests: list[InputDigest] = []
    for uri in files:
        if uri.endswith(".parquet"):
            _count_parquet(uri, kind, counter, digests, read)
            continue
        file_layout = sniff_count_layout(peek_lines(uri, 200, read)) if layout == "auto" else layout
        with open_text(uri, read, digests) as stream:
            _count_lines(stream, kind, file_layout, counter, stats)
    counter.spill()
    return _finish(counter, digests, stats, opts)


def _count_lines(
    stream: IO[str], kind: str, layout: str, counter: PartitionedCounter, stats: Counter[str]
) -> None:
    add = counter.add_unigram if kind == "unigram" else counter.add_bigram
    for line in stream:
        parsed = parse_count_line(line, kind, layout)
        if parsed is None:
            stats["skipped_lines"] += 1 if line.strip() else 0
            continue
        words, count = parsed
        add(*words, count)  # type: ignore[arg-type]
        stats["lines"] += 1
