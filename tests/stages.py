"""The curation pipeline as plain function calls (no Prefect, no Dask), and a naive reference.

Every stage function is called through ONE helper here (run_batch ... run_sample, and
make_settings for the run's settings), so that a change of a stage's signature is made in one
place. `curate_plain` chains them as flows/curate.py does; `naive_run` recomputes the same run
from the extracted pairs with tests/naive.py (naive substring matching, direct counts, the
product formula) and the library's deterministic draws.

The inputs are the real fixtures of tests/data (see their PROVENANCE.txt), copied under names
that fix the batching: WAT and WARC files mixed, two WARCs that share real pairs (the same
Semantic Scholar images), a byte copy of a WAT file, and a missing file.

The worldwide (MetaCLIP 2) recipe runs through the same helpers (`recipe="worldwide"`), on
`make_worldwide_inputs` (WAT files, some written here from real multilingual alt texts) and a
small worldwide metadata (`make_worldwide_metadata`); `naive_worldwide_run` is its reference.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip.config import Stores
from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.curation import batch, dedup, pool, reduce, sample, worldwide
from metaclip.curation.balance import uniform_draws
from metaclip.curation.counts import read_entry_counts, read_language_counts
from metaclip.curation.plan import make_batches, preflight
from metaclip.curation.record import write_run_record
from metaclip.curation.settings import RunSettings
from metaclip.extraction.lid import LanguageIdentifier
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import write_json
from metaclip.metadata.languages import NO_SPACE_LANGUAGES
from metaclip.metadata.multilingual import language_list, write_index
from metaclip.reporting.summary import build_summary
from tests.naive import (
    naive_counts,
    naive_keep_probability,
    naive_language_thresholds,
    naive_match,
    naive_match_worldwide,
    naive_worldwide_keep_probability,
)
from tools.watgen import WatWriter

DATA = Path(__file__).parent / "data"
T = 3
SEED = 11
BATCH_SIZE = 4  # the 7 inputs make 2 batches: 00..03 and 04..06
REDUCE_FANOUT = 2  # 4 buckets: a tree of 2 levels

# (name in the inputs folder, fixture it is a copy of); None: the file is missing.
INPUTS = [
    ("00-fixture-0000.warc.wat.gz", "wat/fixture-0000.warc.wat.gz"),
    ("01-dolma-sample-0000.warc.gz", "warc/dolma-sample-0000.warc.gz"),
    ("02-fixture-0001.warc.wat.gz", "wat/fixture-0001.warc.wat.gz"),
    ("03-fixture-0002.warc.wat.gz", "wat/fixture-0002.warc.wat.gz"),
    ("04-dolma-sample-0001.warc.gz", "warc/dolma-sample-0001.warc.gz"),  # shares pairs with 01
    ("05-copy-of-fixture-0001.warc.wat.gz", "wat/fixture-0001.warc.wat.gz"),  # = 02, byte for byte
    ("06-missing.warc.wat.gz", None),
]


# --------------------------------------------------------------------------- one helper a stage


def make_settings(
    output: str | Path,
    metadata_uri: str,
    metadata_sha256: str,
    n_buckets: int,
    **changed: Any,
) -> RunSettings:
    """A run's settings as the flow's preflight fixes them (languages: all, no fastText)."""
    fields: dict[str, Any] = dict(
        inputs=(), metadata=metadata_uri, output=str(output), t=T, seed=SEED, languages=None,
        batch_size=BATCH_SIZE, reduce_fanout=REDUCE_FANOUT, metadata_uri=metadata_uri,
        metadata_sha256=metadata_sha256, n_buckets=n_buckets, store_tag="test-run",
    )  # fmt: skip
    fields.update(changed)
    return RunSettings(**fields)


def settings_from_record(record: dict[str, Any], output: str) -> RunSettings:
    return RunSettings.from_record(record, output)


def run_batch(s: RunSettings, stores: Stores, batch_id: str, files: Sequence[str]) -> dict:
    return batch.process_batch(s, stores, batch_id, list(files))


def run_index(s: RunSettings, stores: Stores, manifest_uris: Sequence[str], out_uri: str) -> dict:
    return dedup.build_bucket_index(s, stores, list(manifest_uris), out_uri)


def run_bucket(s: RunSettings, stores: Stores, bucket: int, index_uri: str) -> dict:
    return dedup.process_bucket(s, stores, bucket, index_uri)


def run_reduce(s: RunSettings, stores: Stores, uris: Sequence[str], out_uri: str) -> dict:
    return reduce.reduce_counts(s, stores, list(uris), out_uri)


def run_entry_counts(s: RunSettings, stores: Stores, total_uri: str, out_uri: str) -> dict:
    return reduce.write_entry_counts(s, stores, total_uri, out_uri)


def run_sample(
    s: RunSettings, stores: Stores, bucket: int, counts_uri: str, dedup_uris: Sequence[str]
) -> dict:
    return sample.sample_bucket(s, stores, bucket, counts_uri, list(dedup_uris))


def run_pool(run: Run, **changed: Any) -> dict:
    """The pool stage over every bucket of a run, then its manifest (as flows/curate.py)."""
    s = replace(run.settings, write_pool=True, **changed)
    pooled = [pool.pool_bucket(s, run.stores, b["bucket"], b["dedup_uris"]) for b in run.buckets]
    return pool.finish_pool(s, run.counts_uri, pooled)


# --------------------------------------------------------------------------- inputs, metadata


def make_inputs(folder: Path) -> list[str]:
    """The input files (copies of the fixtures, and one missing), in batching order."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in INPUTS:
        if source is not None:
            shutil.copyfile(DATA / source, folder / name)
    return [str(folder / name) for name, _ in INPUTS]


def extract(uri: str) -> list[dict[str, Any]]:
    """One file's pairs (the library's extraction: the stages after it are what is checked)."""
    extractor = extract_wat_file if ".wat" in Path(uri).name else extract_warc_file
    table, _ = extractor(uri)
    return table.to_pylist()


def make_metadata(path: Path, files: Sequence[str]) -> list[str]:
    """Entries drawn from the inputs' own texts (words, word pairs, numbers), and the words of
    the pairs the two WARC files share, so that those are matched and must be deduplicated."""
    texts = [r["text"] for f in files for r in extract(f)]
    words = sorted({w for t in texts for w in t.split()})
    pairs = sorted({" ".join(t.split()[i : i + 2]) for t in texts for i in range(len(t.split()))})
    entries = [str(i) for i in range(100)] + words[::2] + pairs[::7] + ["Scholar", "Icon"]
    entries = list(dict.fromkeys(entries))
    path.write_text(json.dumps(entries))
    return entries


# --------------------------------------------------------------------------- the chain


@dataclass
class Run:
    settings: RunSettings
    stores: Stores
    files: list[str]
    entries: list[str]
    batches: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    sampled: list[dict[str, Any]]
    plan: list[list[tuple[list[str], str]]]  # the tree reduction's levels
    counts_uri: str
    counts: np.ndarray
    summary: dict[str, Any]
    thresholds: dict[str, Any] | None = None  # worldwide: language_thresholds.json

    @property
    def output(self) -> str:
        return self.settings.output


def curate_plain(
    inputs: Sequence[str], metadata_uri: str, output: str | Path, n_buckets: int, **changed: Any
) -> Run:
    """Every stage, in the flow's order: preflight, batches, index, buckets, tree reduction,
    dense counts, work record, sampling, summary (written to summary.json)."""
    stores = Stores()
    ww = changed.get("recipe") == WORLDWIDE_RECIPE
    meta, files = preflight(list(inputs), metadata_uri, "auto", worldwide=ww,
                            languages=changed.get("languages"))  # fmt: skip
    s = make_settings(output, meta.uri, meta.sha256, n_buckets, **changed)
    layout = OutputLayout(s.output)
    batches = [run_batch(s, stores, bid, fs) for bid, fs in make_batches(files, s.batch_size)]
    digest = batch.batches_digest(batches)
    index = run_index(s, stores, [b["manifest_uri"] for b in batches], layout.bucket_index(digest))
    buckets = [run_bucket(s, stores, b, index["uri"]) for b in range(s.n_buckets)]
    levels = reduce.reduction_plan([b["counts_uri"] for b in buckets], layout, s.reduce_fanout)
    total_uri = ""
    for level in levels:
        total_uri = [run_reduce(s, stores, group, out)["uri"] for group, out in level][-1]
    counts_uri = run_entry_counts(s, stores, total_uri, layout.entry_counts)["uri"]
    counts, _ = read_entry_counts(counts_uri)
    dedup_uris = {str(b["bucket"]): b["dedup_uris"] for b in buckets}
    write_run_record(s.output, s.record(), counts_uri, dedup_uris)
    thresholds = worldwide.write_thresholds(s, counts_uri)
    sampled = [run_sample(s, stores, b["bucket"], counts_uri, b["dedup_uris"]) for b in buckets]
    summary = build_summary(
        batches=batches, buckets=buckets, sampled=sampled, counts=counts, params=s.record(),
        outputs={"curated": layout.curated_dir, "entry_counts": layout.entry_counts,
                 "summary": layout.summary},
        stage_seconds={}, language_offsets=read_language_counts(counts_uri)[1] if ww else None,
    )  # fmt: skip
    write_json(layout.summary, summary)
    entries = [] if ww else json.loads(storage.read_bytes(metadata_uri))
    return Run(s, stores, files, entries, batches, buckets, sampled, levels, counts_uri, counts,
               summary, thresholds)  # fmt: skip


def curated_rows(curated_uris: Sequence[str]) -> set[tuple[str, str, tuple[int, ...]]]:
    """(uuid, caption, entry ids) of every curated row, from the given parts."""
    rows: set[tuple[str, str, tuple[int, ...]]] = set()
    for uri in curated_uris:
        table = pq.read_table(uri)
        rows.update(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                        map(tuple, table["entry_ids"].to_pylist()), strict=True))  # fmt: skip
    return rows


def run_curated(run: Run) -> set[tuple[str, str, tuple[int, ...]]]:
    return curated_rows([u for s in run.sampled for u in s["curated_uris"]])


# --------------------------------------------------------------------------- the reference


@dataclass
class Naive:
    pairs_read: int  # extracted pairs, every file (within-file duplicates already dropped)
    matched: list[tuple[str, str, str]]  # (uuid, text, source) of every matched extracted pair
    unique: dict[tuple[str, str], list[int]]  # distinct matched (uuid, text) -> entry ids
    counts: list[int]
    candidates: list[tuple[str, str]]  # the (uuid, text) pairs that get a keep draw
    kept: set[tuple[str, str, tuple[int, ...]]]
    expected: float  # the expected number kept (sum of the candidates' keep probabilities)
    variance: float


def naive_candidates(
    unique: Iterable[tuple[str, str]], seed: int, one_per_image: bool
) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The texts of each image, and the (uuid, text) pairs offered to the keep draw: one text
    per image chosen by its lowest "choose" draw, else every pair."""
    by_image: dict[str, list[str]] = {}
    for u, text in unique:
        by_image.setdefault(u, []).append(text)
    candidates: list[tuple[str, str]] = []
    for u, texts in by_image.items():
        if one_per_image:
            draws = uniform_draws(seed, [u] * len(texts), texts, purpose="choose")
            candidates.append((u, texts[int(np.argmin(draws))]))
        else:
            candidates.extend((u, text) for text in texts)
    return by_image, candidates


def naive_run(
    files: Sequence[str], entries: list[str], t: float = T, seed: int = SEED,
    one_per_image: bool = True,
) -> Naive:  # fmt: skip
    """Algorithm 1 with MetaCLIP 2's global dedup: distinct (uuid, text) pairs are counted,
    then one text per image is chosen uniformly and kept with probability 1 - prod(1 - p_e)."""
    rows = [r for f in files for r in extract(f)]
    matched, unique = [], {}
    for r in rows:
        ids = naive_match(r["text"], entries)
        if ids:
            matched.append((r["uuid"], r["text"], r["source"]))
            unique[r["uuid"], r["text"]] = ids
    counts = naive_counts(unique.values(), len(entries))
    by_image, candidates = naive_candidates(unique, seed, one_per_image)
    weights: list[float] = []
    keep_draws = uniform_draws(seed, [u for u, _ in candidates], [x for _, x in candidates])
    kept = {
        (u, x, tuple(unique[u, x]))
        for (u, x), draw in zip(candidates, keep_draws, strict=True)
        if draw < naive_keep_probability(unique[u, x], counts, t)
    }
    # An image's chance to be kept: the mean of its texts' (one is drawn), else each pair's.
    for u, texts in by_image.items():
        probs = [naive_keep_probability(unique[u, x], counts, t) for x in texts]
        weights.extend([sum(probs) / len(probs)] if one_per_image else probs)
    q = np.array(weights)
    return Naive(len(rows), matched, unique, counts, candidates, kept, float(q.sum()),
                 float((q * (1 - q)).sum()))  # fmt: skip


# --------------------------------------------------------------------------- worldwide (MetaCLIP 2)

# REAL short texts in many scripts (alt and title texts, headings, names: tests/data/worldwide/
# ALT_TEXTS_PROVENANCE.txt), and the committed WAT fixtures (real English, German, Hebrew ...
# pages: tests/data/wat/PROVENANCE.txt).
ALT_TEXTS = DATA / "worldwide" / "alt_texts.jsonl"
WORLDWIDE_WATS = ("wat/fixture-0000.warc.wat.gz", "wat/fixture-0002.warc.wat.gz")
DERIVED_SITE = "https://worldwide.example.org"  # make_worldwide_wat's pages and images
TEXTS_PER_PAGE = 24


def _page(images: Sequence[dict[str, str]]) -> str:
    tags = "".join(
        f'<img src="{html.escape(i["url"])}" {k}="{html.escape(i[k])}">\n'
        for i in images for k in ("alt", "title") if k in i
    )  # fmt: skip
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>\n{tags}</body></html>'


def worldwide_images(texts: Sequence[str]) -> list[dict[str, str]]:
    """Images carrying the texts: most have one (alt), every fifth one a title too, from the
    far half of the list (most often another language), so one text per image is drawn
    across languages; every seventh text is also the alt of a second image (counts above 1)."""
    half = len(texts) // 2
    images = []
    for i, text in enumerate(texts):
        image = {"url": f"{DERIVED_SITE}/img/{i:05d}.jpg", "alt": text}
        if i % 5 == 0 and i < half:
            image["title"] = texts[i + half]
        images.append(image)
        if i % 7 == 0:
            images.append({"url": f"{DERIVED_SITE}/img/{i:05d}-again.jpg", "alt": text})
    return images


def make_worldwide_wat(path: Path) -> None:
    """A DERIVED WAT file (tools/watgen.py says so in its warcinfo): pages whose images carry
    the real texts of ALT_TEXTS (worldwide_images)."""
    texts = [json.loads(line)["text"] for line in ALT_TEXTS.read_text("utf-8").splitlines()]
    images = worldwide_images(texts)
    with WatWriter(path, seed="worldwide") as writer:
        for n, start in enumerate(range(0, len(images), TEXTS_PER_PAGE)):
            page = _page(images[start : start + TEXTS_PER_PAGE])
            writer.add_page(f"{DERIVED_SITE}/page/{n:04d}.html", page)


def make_worldwide_inputs(folder: Path) -> list[str]:
    """Two committed WAT fixtures and a derived WAT of real texts in many scripts."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in WORLDWIDE_WATS:
        shutil.copyfile(DATA / name, folder / Path(name).name)
    make_worldwide_wat(folder / "multilingual-0000.warc.wat.gz")
    return sorted(str(p) for p in folder.glob("*.wat.gz"))


def language_texts(files: Sequence[str]) -> dict[str, list[str]]:
    """Every extracted text, by its fastText label."""
    texts = [r["text"] for f in files for r in extract(f)]
    labels, _ = LanguageIdentifier().identify(pa.array(texts, pa.string()))
    out: dict[str, list[str]] = {}
    for text, label in zip(texts, labels.to_pylist(), strict=True):
        out.setdefault(label or "", []).append(text)
    return out


def make_worldwide_metadata(
    folder: Path, texts: dict[str, list[str]], languages: Sequence[str]
) -> dict[str, list[str]]:
    """A worldwide metadata folder (index and one list per language) with entries drawn from
    each language's own texts: words and word pairs, character pairs where words are not
    spaced (Chinese, Japanese, Thai ...). Returns the lists by language."""
    lists: dict[str, list[str]] = {}
    for language in sorted(languages):
        own = texts.get(language, [])
        if language in NO_SPACE_LANGUAGES:
            entries = sorted({t[i : i + 2] for t in own for i in range(len(t) - 1)})[::3]
        else:
            words = sorted({w for t in own for w in t.split()})
            pairs = sorted({" ".join(t.split()[i : i + 2]) for t in own
                            for i in range(len(t.split()) - 1)})  # fmt: skip
            entries = words[::2] + pairs[::5]
        lists[language] = [e for e in dict.fromkeys(entries) if e.strip()] or ["-"]
    items = []
    for language, entries in lists.items():
        (folder / language).mkdir(parents=True, exist_ok=True)
        (folder / language / "metadata.json").write_text(json.dumps(entries, ensure_ascii=False))
        items.append(language_list(str(folder), language, f"{language}/metadata.json"))
    write_index(str(folder), items)
    return lists


Row = tuple[str, str, tuple[int, ...], str]  # uuid, caption, global entry ids, language


def curated_language_rows(curated_uris: Sequence[str]) -> set[Row]:
    """(uuid, caption, entry ids, language) of every curated row of a worldwide run."""
    rows: set[Row] = set()
    for uri in curated_uris:
        t = pq.read_table(uri)
        rows.update(zip(t["uuid"].to_pylist(), t["caption"].to_pylist(),
                        map(tuple, t["entry_ids"].to_pylist()), t["language"].to_pylist(),
                        strict=True))  # fmt: skip
    return rows


def naive_metadata_language(label: str | None, available: set[str]) -> str:
    """docs/curation.md's table: a fastText label is its metadata language, but yue (Cantonese)
    is zh's; `other` when that language has no metadata in the run."""
    language = {"yue": "zh"}.get(label or "", label or "")
    return language if language in available else "other"


@dataclass
class NaiveWorldwide:
    language: dict[tuple[str, str], str]  # every distinct pair's metadata language
    unique: dict[tuple[str, str], tuple[str, list[int]]]  # matched pair -> (language, local ids)
    counts: dict[str, list[int]]  # per language, over its own (local) ids
    p: float
    ts: dict[str, float]
    kept: set[Row]


def naive_worldwide_run(
    files: Sequence[str], lists: dict[str, list[str]], t_en: float, seed: int = SEED,
    languages: Sequence[str] | None = None, one_per_image: bool = True,
) -> NaiveWorldwide:  # fmt: skip
    """MetaCLIP 2's recipe (curate.py) over the distinct (uuid, text) pairs: each text matched
    in its language only, counts per (language, entry), p from English's t_en and each
    language's t from p, one text per image drawn as the English reference does, kept with
    probability 1 - prod(1 - p_e) over the entries of its language."""
    rows = [r for f in files for r in extract(f)]
    labels, _ = LanguageIdentifier().identify(pa.array([r["text"] for r in rows], pa.string()))
    available = set(languages or lists)
    language: dict[tuple[str, str], str] = {}
    unique: dict[tuple[str, str], tuple[str, list[int]]] = {}
    for r, label in zip(rows, labels.to_pylist(), strict=True):
        key = (r["uuid"], r["text"])
        language[key] = lang = naive_metadata_language(label, available)
        ids = [] if lang == "other" else naive_match_worldwide(r["text"], lists[lang])
        if ids:
            unique[key] = (lang, ids)
    counts = {
        lang: naive_counts([ids for (l2, ids) in unique.values() if l2 == lang], len(entries))
        for lang, entries in lists.items()
    }
    p, ts = naive_language_thresholds(counts, t_en)
    offsets = dict(zip(sorted(lists), np.cumsum([0] + [len(lists[x]) for x in sorted(lists)]),
                       strict=False))  # fmt: skip
    by_image, candidates = naive_candidates(unique, seed, one_per_image)
    keep_draws = uniform_draws(seed, [u for u, _ in candidates], [x for _, x in candidates])
    kept: set[Row] = set()
    for (u, x), draw in zip(candidates, keep_draws, strict=True):
        lang, ids = unique[u, x]
        if draw < naive_worldwide_keep_probability(ids, counts[lang], ts[lang]):
            kept.add((u, x, tuple(int(offsets[lang]) + i for i in ids), lang))
    return NaiveWorldwide(language, unique, counts, p, ts, kept)
