"""Unigram and bigram sources: tokenisation, partitioned counting, and PMI equal to NLTK's.

The real corpus is WordNet 3.0's verb glosses (English definitions), read from the archive
shipped in tests/data/wordnet.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import string
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder
from nltk.probability import FreqDist

from metaclip.config import BuildMetadataConfig, Stores
from metaclip.metadata.ngrams import (
    NgramBatch,
    count_file_batch,
    count_text_batch,
    parse_count_line,
    sniff_count_layout,
)
from metaclip.metadata.pmi import (
    bigram_source,
    join_first_word,
    reduce_unigram_partition,
    score_second_word,
    unigram_source,
)
from metaclip.metadata.text import BREAK, PUNCTUATION, segments, tokens_with_breaks

ARCHIVE = Path(__file__).parent / "data" / "wordnet" / "wordnet-3.0-nltk-minimal.tar.xz"
PARTS = 3
STORES = Stores()  # local files, no options


def _settings(tmp: Path, **fields: Any) -> BuildMetadataConfig:
    """The build settings the stages read: PARTS partitions, and `fields`."""
    return BuildMetadataConfig(str(tmp), str(tmp / "work"), partitions=PARTS, **fields)


@pytest.fixture(scope="module")
def glosses() -> list[str]:
    with tarfile.open(ARCHIVE) as tf:
        data = tf.extractfile("corpora/wordnet/data.verb").read().decode()  # type: ignore[union-attr]
    lines = [line for line in data.splitlines() if not line.startswith("  ")]
    return [line.split(" | ", 1)[1].strip() for line in lines][:6000]


def _run_pmi(batches: Sequence[NgramBatch], stage: Path, min_pmi: float) -> dict:
    s = _settings(stage, min_bigram_pmi=min_pmi)
    unigrams = [reduce_unigram_partition(s, STORES, batches, p, str(stage)) for p in range(PARTS)]
    total = sum(u.total for u in unigrams)
    joined = [join_first_word(s, STORES, batches, p, unigrams, str(stage)) for p in range(PARTS)]
    scored = [score_second_word(s, STORES, joined, q, unigrams, str(stage)) for q in range(PARTS)]
    uri = str(stage / f"bigram-{min_pmi}.parquet")
    bigram_source(s, STORES, scored, joined, unigrams, batches, uri)
    rows = pq.read_table(uri).to_pylist()
    return {
        "unigrams": unigrams,
        "total": total,
        "scores": {tuple(r["entry"].split(" ")): r["pmi"] for r in rows},
        "rows": rows,
    }


@pytest.fixture(scope="module")
def corpus_run(glosses: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("ngrams")
    half = len(glosses) // 2
    plain = tmp / "wiki_00.gz"  # plain text, gzipped
    with gzip.open(plain, "wt", encoding="utf-8") as fh:
        fh.write("".join(f"{g}\n" for g in glosses[:half]))
    jsonl = tmp / "wiki_01"  # WikiExtractor JSON lines, no suffix
    docs = [
        {"id": str(i), "title": f"Verb {i % 5}", "text": g} for i, g in enumerate(glosses[half:])
    ]
    jsonl.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    s = _settings(tmp, max_items=4000)
    batches = [
        count_text_batch(s, STORES, [str(plain)], str(tmp / "b0")),
        count_text_batch(s, STORES, [str(jsonl)], str(tmp / "b1")),
    ]
    nltk_docs = [s for g in glosses[:half] for s in segments(g)]
    nltk_docs += [s for d in docs for s in segments(f"{d['title']}\n{d['text']}")]
    finder = BigramCollocationFinder.from_documents(nltk_docs)
    return {
        "tmp": tmp,
        "plain": plain,
        "batches": batches,
        "finder": finder,
        "run": _run_pmi(batches, tmp / "stage", -math.inf),
    }


def test_pmi_equals_nltk_bigram_collocation_finder(corpus_run: dict) -> None:
    finder = corpus_run["finder"]
    expected = dict(finder.score_ngrams(BigramAssocMeasures.pmi))
    run = corpus_run["run"]
    assert run["total"] == finder.N > 70_000
    assert len(expected) > 30_000
    assert run["scores"] == expected  # same bigrams, bit-identical scores
    assert all(b.spills > 1 for b in corpus_run["batches"])  # spilled and merged back


def test_threshold_keeps_exactly_nltks_bigrams_at_or_above_it(corpus_run: dict) -> None:
    expected = {
        k for k, v in corpus_run["finder"].score_ngrams(BigramAssocMeasures.pmi) if v >= 12.0
    }
    run = _run_pmi(corpus_run["batches"], corpus_run["tmp"] / "stage", 12.0)
    assert 0 < len(run["scores"]) < len(corpus_run["run"]["scores"])
    assert set(run["scores"]) == expected
    pmis = [r["pmi"] for r in run["rows"]]
    assert pmis == sorted(pmis, reverse=True)


def test_unigram_source_keeps_tokens_counted_often_enough(corpus_run: dict, tmp_path: Path) -> None:
    word_fd = corpus_run["finder"].word_fd
    uri = str(tmp_path / "unigram.parquet")
    s = _settings(tmp_path, min_unigram_count=20)
    source = unigram_source(s, STORES, corpus_run["run"]["unigrams"], [], uri)
    rows = pq.read_table(uri).to_pylist()
    assert {r["entry"]: r["count"] for r in rows} == {w: c for w, c in word_fd.items() if c >= 20}
    assert source.entries == len(rows) and source.stats["total_unigrams"] == word_fd.N()
    keys = [(-r["count"], r["entry"].encode()) for r in rows]
    assert keys == sorted(keys)


def test_inputs_are_checksummed_as_stored(corpus_run: dict) -> None:
    digest = corpus_run["batches"][0].inputs[0]
    data = corpus_run["plain"].read_bytes()
    assert digest.bytes == len(data)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_precomputed_count_files_give_nltks_scores(corpus_run: dict, tmp_path: Path) -> None:
    finder = corpus_run["finder"]
    # Unigrams as pywordfreq writes them ('word;count', gzipped), with a header and an empty
    # word; bigrams count-first with tabs, plus one whose second word has no unigram count.
    uni = tmp_path / "1gram.txt.gz"
    with gzip.open(uni, "wt", encoding="utf-8") as fh:
        fh.write("word;count\n;99\n")
        fh.writelines(f"{w};{c}\n" for w, c in finder.word_fd.items())
    bi = tmp_path / "2gram.tsv"
    lines = [f"{c}\t{a}\t{b}\n" for (a, b), c in finder.ngram_fd.items()]
    bi.write_text("".join(lines) + "7\tthe\tunseenword\n", encoding="utf-8")
    s = _settings(tmp_path)
    batches = [
        count_file_batch(s, STORES, [str(uni)], "unigram", str(tmp_path / "u")),
        count_file_batch(s, STORES, [str(bi)], "bigram", str(tmp_path / "b")),
    ]
    assert batches[0].stats["skipped_lines"] == 2
    run = _run_pmi(batches, tmp_path / "stage", -math.inf)
    reference = BigramCollocationFinder(
        FreqDist(dict(finder.word_fd)), FreqDist(dict(finder.ngram_fd))
    )
    assert run["scores"] == dict(reference.score_ngrams(BigramAssocMeasures.pmi))


def test_rerun_reuses_finished_batches(corpus_run: dict) -> None:
    plain = corpus_run["plain"]
    s = _settings(corpus_run["tmp"], max_items=4000)
    again = count_text_batch(s, STORES, [str(plain)], str(corpus_run["tmp"] / "b0"))
    assert again == corpus_run["batches"][0]


def test_tokeniser_follows_the_documented_rules() -> None:
    assert segments("Hello, world. New-York (city)") == [
        ["Hello"],
        ["world"],
        ["New"],
        ["York"],
        ["city"],
    ]
    assert segments('<doc id="1" title="X">\nAn Apple pie</doc>') == [["An", "Apple", "pie"]]
    assert segments("a &lt;ref&gt;b c") == [["a", "b", "c"]]
    assert segments("AT&amp;T x &lt; y") == [["AT"], ["T", "x"], ["y"]]
    assert segments("a b\nc d") == [["a", "b"], ["c", "d"]]
    assert segments("東京 tower") == [["東", "京", "tower"]]
    assert segments("en–dash kept—em dash breaks") == [
        ["en–dash", "kept"],
        ["em", "dash", "breaks"],
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="<&"), max_size=80))
def test_tokens_carry_every_non_space_non_punctuation_character(text: str) -> None:
    tokens = tokens_with_breaks(text)
    words = [t for t in tokens if t != BREAK]
    assert all(not (set(t) & PUNCTUATION) and t.split() == [t] for t in words)
    kept = sorted(ch for ch in text if not ch.isspace() and ch not in PUNCTUATION)
    assert sorted("".join(words)) == kept


def test_count_file_lines() -> None:
    assert parse_count_line("a;b;12\n", "unigram", "last") == (("a;b",), 12)
    assert parse_count_line("new york\t7", "unigram", "last") == (("new york",), 7)
    assert parse_count_line("12\t1990", "unigram", "first") == (("1990",), 12)
    assert parse_count_line("abcs of 10956800", "bigram", "last") == (("abcs", "of"), 10956800)
    assert parse_count_line("one two three 5", "bigram", "last") is None
    assert parse_count_line("word;0", "unigram", "last") is None
    assert sniff_count_layout(["5\tcat", "7\tdog", "9\t1990"]) == "first"
    assert sniff_count_layout(["cat 5", "1990 7"]) == "last"
    assert string.punctuation[0] in PUNCTUATION
