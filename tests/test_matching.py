from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip.matching import Matcher, get_matcher, spacing
from metaclip.matching import cache as matcher_cache
from tests.naive import naive_match, naive_spacing

WORDS = ["cat", "black cat", "dog", "hot dog", "St. Louis", "a", "A", "the cat", "é", "猫", "NY C"]


def test_spacing_matches_metaclip_description():
    assert spacing("Hi, you.") == " Hi ,  you .  "
    assert spacing("a\tb\nc\rd") == " a b c d "
    assert spacing("`x`") == "  ` x `  "


@pytest.mark.parametrize(
    "text",
    ["A black cat, and a dog.", "hot dog!", "", "St. Louis", "the cat the cat", "猫 猫", "a\x00b"],
)
def test_match_equals_oracle_on_examples(text):
    matcher = Matcher.build(WORDS)
    assert matcher.match(text) == naive_match(text, WORDS)


def test_case_sensitive_and_whole_words():
    matcher = Matcher.build(["Cat", "cat"])
    assert matcher.match("cat") == [1]
    assert matcher.match("Cat") == [0]
    assert matcher.match("cats") == []


def test_duplicate_entries_all_reported():
    matcher = Matcher.build(["dog", "cat", "dog"])
    assert matcher.has_duplicates
    assert matcher.match("a dog and a cat") == [0, 1, 2]


def test_batch_equals_one_by_one_across_chunk_boundaries():
    rng = random.Random(3)
    texts = [" ".join(rng.choice(WORDS + ["x", ",", "."]) for _ in range(rng.randint(0, 8)))
             for _ in range(500)]
    matcher = Matcher.build(WORDS)
    lists = matcher.match_arrow(pa.array(texts), batch_chars=97).to_pylist()
    assert lists == [naive_match(t, WORDS) for t in texts]


alphabet = st.sampled_from(list("ab .,;:?!`\t\n\rxé猫") + ["\x00"])
texts_strategy = st.text(alphabet=alphabet, max_size=30)
entries_strategy = st.lists(
    st.text(alphabet=st.sampled_from(list("ab .,:!xé猫")), max_size=5), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(entries=entries_strategy, texts=st.lists(texts_strategy, max_size=20))
def test_property_batch_matches_oracle(entries, texts):
    """Random texts with punctuation, unicode, whitespace and overlapping entries."""
    matcher = Matcher.build(entries)
    offsets, ids = matcher.match_batch(texts)
    got = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]
    assert got == [naive_match(t, entries) for t in texts]


@settings(max_examples=150, deadline=None)
@given(
    entries=entries_strategy,
    texts=st.lists(st.one_of(st.none(), texts_strategy), max_size=20),
    start=st.integers(0, 3),
)
def test_large_strings_nulls_and_slices_match_as_plain_strings(entries, texts, start):
    """The tokens are views on the Arrow data: offsets of a slice, 64-bit offsets and nulls."""
    matcher = Matcher.build(entries)
    expected = [naive_match(t or "", entries) for t in texts[start:]]
    for kind in (pa.string(), pa.large_string()):
        assert matcher.match_arrow(pa.array(texts, kind).slice(start)).to_pylist() == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_spacing_equals_independent_version(text):
    assert spacing(text) == naive_spacing(text)


@pytest.mark.slow
def test_real_captions_match_oracle(real_captions):
    """Thousands of real COCO and CC3M captions against entries drawn from their own words."""
    rng = random.Random(0)
    words = sorted({w for c in real_captions for w in c.split()})
    bigrams = sorted({" ".join(c.split()[i : i + 2]) for c in real_captions[:3000]
                      for i in range(len(c.split()) - 1)})
    entries = rng.sample(words, 1500) + rng.sample(bigrams, 800) + ["a", "A", "man", "Man"]
    matcher = Matcher.build(entries)
    got = matcher.match_arrow(pa.array(real_captions)).to_pylist()
    expected = [naive_match(c, entries) for c in real_captions]
    assert got == expected
    assert sum(map(bool, got)) > len(real_captions) * 0.9  # the test exercises real hits


def test_save_load_roundtrip(tmp_path):
    matcher = Matcher.build(WORDS + ["dog"])
    matcher.save(tmp_path / "m.automaton")
    loaded = Matcher.load(tmp_path / "m.automaton")
    text = "the cat and a hot dog in NY C."
    assert loaded.match(text) == matcher.match(text) == naive_match(text, WORDS + ["dog"])


def test_matcher_built_once_per_process_and_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    calls = []

    def entries():
        calls.append(1)
        return WORDS

    first = get_matcher("sha-x", entries, cache_dir=tmp_path)
    assert get_matcher("sha-x", entries, cache_dir=tmp_path) is first
    assert len(calls) == 1
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})  # a new worker process
    again = get_matcher("sha-x", entries, cache_dir=tmp_path)
    assert len(calls) == 1  # loaded from disk, not rebuilt
    assert again.match("a black cat") == naive_match("a black cat", WORDS)


def test_damaged_disk_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    path = matcher_cache.automaton_path("sha-y", tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"garbage")
    matcher = get_matcher("sha-y", lambda: WORDS, cache_dir=tmp_path)
    assert matcher.match("hot dog") == naive_match("hot dog", WORDS)
