"""Helpers shared by the benchmarks: real data from ../shared, timing, memory."""

from __future__ import annotations

import csv
import gzip
import json
import os
import resource
import tarfile
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("METACLIP_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data"
RESULTS = Path(__file__).parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def real_captions() -> list[str]:
    """All real captions in ../shared: COCO val2017 (25k) and CC3M validation (15.8k)."""
    coco = json.loads((DATA / "captions" / "coco_captions_val2017.json").read_text())
    out = [a["caption"].strip() for a in coco["annotations"]]
    with open(DATA / "captions" / "cc3m_Validation_GCC-1.1.0-Validation.tsv", newline="") as fh:
        out.extend(row[0].strip() for row in csv.reader(fh, delimiter="\t") if row)
    return [c for c in out if c]


def real_alt_texts() -> list[str]:
    """Every distinct alt, title and data-image-title text of the real web pages in ../shared,
    as extraction gives them (MetaCLIP's cleaning, nothing more): the 110 saved pages of the
    trafilatura test cache (their <img> attributes, as ia-web-commons writes them into a WAT)
    and the images of the real crawl captures (Common Crawl WARC/WAT excerpts, Dolma, ClueWeb)."""
    from bench.make_bench_wat import PAGES_TAR, load_pages
    from metaclip.extraction.pairs import TEXT_KEYS
    from metaclip.extraction.urls import clean_text
    from metaclip.extraction.warc import extract_warc_file
    from metaclip.extraction.wat import extract_wat_file

    texts: dict[str, None] = {}
    for _uri, _data, _head, links in load_pages(PAGES_TAR):
        for link in links:
            if link.get("path") == "IMG@/src":
                for key in TEXT_KEYS:
                    if isinstance(link.get(key), str) and (text := clean_text(link[key])):
                        texts[text] = None
    captures = sorted((DATA / "cc-warc").glob("*.gz")) + sorted((DATA / "other-warc").glob("*.gz"))
    for path in captures:
        extract = extract_wat_file if path.name.endswith(".wat.gz") else extract_warc_file
        if path.name.endswith(".wet.gz"):
            continue
        texts.update(dict.fromkeys(extract(str(path))[0]["text"].to_pylist()))
    return list(texts)


def wordnet_names() -> list[str]:
    """WordNet 3.0 synset names the MetaCLIP way, read with NLTK from ../shared."""
    target = Path(tempfile.gettempdir()) / "metaclip-bench-wordnet"
    if not (target / "corpora" / "wordnet").exists():
        with tarfile.open(DATA / "wordnet" / "nltk_data-corpora-wordnet-3.0-debian.tar.gz") as tar:
            tar.extractall(target, filter="data")
    import nltk

    nltk.data.path.insert(0, str(target))
    from nltk.corpus import wordnet

    return sorted({s.name().split(".")[0].replace("_", " ") for s in wordnet.all_synsets()})


def metadata_500k() -> list[str]:
    """A 500k-entry list shaped like MetaCLIP's: WordNet names, then Wikipedia unigrams by
    count (pywordfreq's enwiki counts >= 100), then bigrams (symspell), 0..99 seeds."""
    entries: dict[str, None] = dict.fromkeys(str(i) for i in range(100))
    entries.update(dict.fromkeys(wordnet_names()))
    with gzip.open(DATA / "wordfreq" / "pywordfreq-0.4.2-enwiki-word_frequencies.gz", "rt") as fh:
        for line in fh:
            word, _, count = line.rstrip("\n").rpartition(";")
            if word and count.isdigit() and int(count) >= 100:
                entries[word] = None
    bigrams = DATA / "wordfreq" / "frequency_bigramdictionary_en_243_342.txt"
    with open(bigrams, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3:
                entries[f"{parts[0]} {parts[1]}"] = None
            if len(entries) >= 500_000:
                break
    return list(entries)[:500_000]


def save_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
