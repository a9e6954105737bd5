"""MetaCLIP 2 ("worldwide") matching per core: WorldwideMatcher vs the reference loop, and the
memory of a worker holding 20 languages' matchers.

Throughput, per language, same texts, one process, measured in one run (interleaved, best of
--repeat): (a) the reference exactly as MetaCLIP 2 runs it (metaclip/curation/substr_matching.py):
an automaton from initialize_automaton(get_spaced_metadata(entries)), values (idx, key), and per
text `spacing`, `automaton.iter`, a set, a list; (b) WorldwideMatcher.match_arrow over all texts.
The two must give the same id sets for every text.

Full-size lists (MetaCLIP 2's caps: 251,465 unigrams + 100,646 bigrams + 61,235 titles):
- zh, no spaces: jieba 0.42.1's dictionary (349,046 real words with counts): its 251,465 most
  frequent words, then the other proper nouns (tags nr, ns, nt, nz; fewer than 61,235) standing
  in for titles, then distinct concatenations of two of the 20,000 most frequent words drawn by
  count up to 413,346 entries in all: PSEUDO bigrams (no Chinese bigram statistics offline).
  Texts: REAL, the lines with at least 3 Han characters of the 16 pages of a Common Crawl WARC
  excerpt (CC-MAIN-2020-34, in ../shared/data/cc-warc), repeated to --zh-texts.
- en, spaces: bench.common.metadata_500k (WordNet, Wikipedia unigram counts, bigrams) without
  its one empty entry (the reference fails on it); texts: real COCO and CC3M captions,
  repeated to --en-texts.

Memory: 20 languages' matchers (5 zh-like lists: the zh list with the pseudo bigrams drawn with
another seed; 15 en-like: the en list with a language tag added to every word), saved to a disk
cache, then loaded in a fresh process through get_worldwide_matcher, two rounds over the 20
languages, as a worker curating mixed batches does; peak RSS with the LRU bound (the default
1200 MB, 300 MB, 100 MB) and without (a bound no list reaches).

    python bench/bench_match_worldwide.py [--quick] [--zh-texts N] [--en-texts N] [--repeat 3]

Batches are large on purpose: the padded entries' Matcher builds Arrow hash sets over its
vocabulary on every call (a fixed cost, 0.25-0.5 s for the en list on a loaded 2-core machine),
which a small batch does not amortise.

Writes bench/results/match_worldwide.json (--quick: match_worldwide-quick.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ahocorasick  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.common import (  # noqa: E402
    DATA,
    Timer,
    metadata_500k,
    real_captions,
    rss_mb,
    save_result,
)
from metaclip.matching import (  # noqa: E402
    WorldwideMatcher,
    get_worldwide_matcher,
    spaced_entry,
    spacing,
    worldwide_matcher_path,
)
from metaclip.matching import cache as matcher_cache  # noqa: E402

CAPS = {"unigrams": 251_465, "titles": 61_235, "bigrams": 100_646}
ZH_WARC = DATA / "cc-warc" / "CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz"
HAN = re.compile("[\u4e00-\u9fff]")

# -- the reference ----------------------------------------------------------------------------


def reference_automaton(entries: list[str]) -> ahocorasick.Automaton:
    """initialize_automaton(get_spaced_metadata(entries)); spaced_entry is get_spaced_metadata's
    padding (tests/test_worldwide_matching.py checks it against the reference)."""
    automaton = ahocorasick.Automaton()
    for idx, key in ((i, spaced_entry(e)) for i, e in enumerate(entries)):
        automaton.add_word(key, (idx, key))
    automaton.make_automaton()
    return automaton


def reference_match(automaton: ahocorasick.Automaton, texts: list[str]) -> list[list[int]]:
    out = []
    for text in texts:
        spaced_txt = spacing(text)
        matched_entry_ids = set()
        for _, (entry_id, _) in automaton.iter(spaced_txt):
            matched_entry_ids.add(entry_id)
        out.append(list(matched_entry_ids))
    return out


# -- data -------------------------------------------------------------------------------------


def zh_entries(seed: int = 0) -> list[str]:
    import jieba

    rows = []
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as fh:
        for line in fh:
            word, count, tag = line.split()
            rows.append((word, int(count), tag))
    rows.sort(key=lambda row: -row[1])
    entries = dict.fromkeys(word for word, _, _ in rows[: CAPS["unigrams"]])
    titles = [w for w, _, tag in rows[CAPS["unigrams"] :] if tag in ("nr", "ns", "nt", "nz")]
    entries.update(dict.fromkeys(titles[: CAPS["titles"]]))
    top = rows[:20_000]
    words, weights = [w for w, _, _ in top], [c for _, c, _ in top]
    rng = random.Random(seed)
    while len(entries) < sum(CAPS.values()):  # bigrams also stand in for the missing titles
        first, second = rng.choices(words, weights, k=2)
        entries[first + second] = None
    return list(entries)


def zh_texts() -> list[str]:
    from selectolax.lexbor import LexborHTMLParser
    from warcio.archiveiterator import ArchiveIterator

    lines = []
    with open(ZH_WARC, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response":
                continue
            body = record.content_stream().read()
            declared = re.search(rb"charset=[\"']?([-\w]+)", body[:3000])
            charset = declared.group(1).decode() if declared else "utf-8"
            try:
                html = body.decode(charset, "replace")
            except LookupError:
                html = body.decode("utf-8", "replace")
            tree = LexborHTMLParser(html)
            for node in tree.css("script, style"):
                node.decompose()
            text = tree.body.text(separator="\n") if tree.body else ""
            lines += [s.strip() for s in text.split("\n") if len(HAN.findall(s)) >= 3]
    return lines


def repeated(texts: list[str], n: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(n)]


# -- throughput -------------------------------------------------------------------------------


def throughput(entries: list[str], texts: list[str], repeat: int) -> dict:
    with Timer() as ours_build:
        ours = WorldwideMatcher.build(entries)
    with Timer() as reference_build:
        reference = reference_automaton(entries)
    arrow_texts = pa.array(texts, pa.string())
    best = {"ours": float("inf"), "reference": float("inf")}
    for _ in range(repeat):  # interleaved, best of n: robust to a noisy shared machine
        start = time.perf_counter()
        got = ours.match_arrow(arrow_texts)
        best["ours"] = min(best["ours"], time.perf_counter() - start)
        start = time.perf_counter()
        expected = reference_match(reference, texts)
        best["reference"] = min(best["reference"], time.perf_counter() - start)
    lists = got.to_pylist()
    assert lists == [sorted(e) for e in expected], "the two matchers disagree"
    anchored = sum(len(t.keys.entries) for t in ours.tries)
    return {
        "entries": len(entries),
        "entries_padded_both_sides": ours.padded.n_entries,
        "entries_anchored": anchored,
        "texts": len(texts),
        "distinct_texts": len(set(texts)),
        "chars_per_text": sum(map(len, texts)) / len(texts),
        "matched_texts": sum(map(bool, lists)),
        "ids_per_text": sum(map(len, lists)) / len(texts),
        "texts_per_second": {k: len(texts) / v for k, v in best.items()},
        "speedup": best["reference"] / best["ours"],
        "identical": True,
        "build_seconds": {"ours": ours_build.seconds, "reference": reference_build.seconds},
        "ours_estimated_mb": ours.nbytes / 2**20,
        "reference_automaton_mb": reference.get_stats()["total_size"] / 2**20,
    }


# -- memory of 20 languages -------------------------------------------------------------------


def language_lists(zh: list[str], en: list[str], n_zh: int, n_en: int) -> dict[str, list[str]]:
    lists = {"zh0": zh}
    for k in range(1, n_zh):
        lists[f"zh{k}"] = zh_entries(seed=k)
    for k in range(n_en):
        tag = f"{k:x}" if k else ""
        lists[f"en{k}"] = [" ".join(w + tag for w in e.split(" ")) for e in en]
    return lists


def prepare_caches(lists: dict[str, list[str]], cache_dir: Path) -> dict[str, str]:
    """Build and save every language's matcher; its sha256 by language."""
    shas = {}
    for lang, entries in lists.items():
        sha = hashlib.sha256("\n".join(entries).encode()).hexdigest()
        WorldwideMatcher.build(entries).save(worldwide_matcher_path(sha, cache_dir))
        shas[lang] = sha
    return shas


def peak_rss_since_exec_mb() -> float:
    """VmHWM: unlike getrusage's maxrss, not inherited from the parent across fork and exec."""
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def memory_worker(cache_dir: Path, shas: dict[str, str], budget_mb: float | None) -> dict:
    """In a fresh process: two rounds of get_worldwide_matcher over all languages."""
    if budget_mb is not None:
        os.environ["METACLIP_MATCHER_MEMORY_MB"] = str(budget_mb)
    before = rss_mb()
    loads = 0

    def must_not_build() -> list[str]:
        raise AssertionError("the disk cache should have every matcher")

    with Timer() as timer:
        for _ in range(2):
            for sha in shas.values():
                cached = matcher_cache._WORLDWIDE.get(sha) is not None
                get_worldwide_matcher(sha, must_not_build, cache_dir)
                loads += not cached
    return {
        "budget_mb": matcher_cache.matcher_memory_budget() / 2**20,
        "languages": len(shas),
        "loads_from_disk": loads,
        "seconds": timer.seconds,
        "rss_before_mb": before,
        "rss_end_mb": rss_mb(),
        "peak_rss_mb": peak_rss_since_exec_mb(),
        "held_matchers": len(matcher_cache._WORLDWIDE.matchers),
        "held_estimated_mb": matcher_cache._WORLDWIDE.total_bytes / 2**20,
    }


def memory(lists: dict[str, list[str]], budgets: dict[str, float | None]) -> dict:
    with tempfile.TemporaryDirectory(prefix="metaclip-bench-ww-") as tmp:
        cache_dir = Path(tmp) / "automata"
        with Timer() as timer:
            shas = prepare_caches(lists, cache_dir)
        runs = {}
        for name, budget in budgets.items():
            args = [str(cache_dir), json.dumps(shas), json.dumps(budget)]
            out = subprocess.run(
                [sys.executable, __file__, "--memory-worker", *args],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            runs[name] = json.loads(out.stdout.strip().splitlines()[-1])
        disk_mb = sum(f.stat().st_size for f in cache_dir.iterdir()) / 2**20
    return {
        "lists": {lang: len(entries) for lang, entries in lists.items()},
        "build_and_save_seconds": timer.seconds,
        "disk_cache_mb": disk_mb,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts, 2 languages' memory")
    parser.add_argument("--zh-texts", type=int, default=None, help="default 50,000 (quick 5,000)")
    parser.add_argument("--en-texts", type=int, default=None, help="default 200,000 (quick 20,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-worker", nargs=3, metavar=("CACHE_DIR", "SHAS", "BUDGET"))
    args = parser.parse_args()
    if args.memory_worker:
        cache_dir, shas, budget = args.memory_worker
        print(json.dumps(memory_worker(Path(cache_dir), json.loads(shas), json.loads(budget))))
        return
    n_zh = args.zh_texts or (5_000 if args.quick else 50_000)
    n_en = args.en_texts or (20_000 if args.quick else 200_000)
    zh, en = zh_entries(), [e for e in metadata_500k() if e]
    result = {
        "quick": args.quick,
        "throughput": {
            "zh": throughput(zh, repeated(zh_texts(), n_zh), args.repeat),
            "en": throughput(en, repeated(real_captions(), n_en), args.repeat),
        },
    }
    print(json.dumps(result["throughput"], indent=2), flush=True)
    lists = language_lists(zh, en, *((1, 1) if args.quick else (5, 15)))
    budgets = {"unbounded": 1e6, "default": None, "300mb": 300.0, "100mb": 100.0}
    result[f"memory_{len(lists)}_languages"] = memory(lists, budgets)
    print(json.dumps(result, indent=2))
    name = "match_worldwide-quick" if args.quick else "match_worldwide"
    print(f"saved {save_result(name, result)}")


if __name__ == "__main__":
    main()
