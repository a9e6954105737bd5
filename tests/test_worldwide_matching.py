"""MetaCLIP 2 ("worldwide") matching against a naive oracle written straight from the reference,
facebookresearch/MetaCLIP metaclip/curation/substr_matching.py, on real text in 15 scripts
(tests/data/worldwide/texts.jsonl, see its PROVENANCE.txt) and on random mixes; its disk cache
(integrity as for the English matcher) and the per-process LRU of loaded matchers."""

from __future__ import annotations

import json
import os
import random
import stat
import string
from pathlib import Path

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip.matching import (
    DamagedCacheError,
    Matcher,
    UnsafeCacheError,
    WorldwideMatcher,
    cjk_or_similar_mask,
    get_matcher,
    get_worldwide_matcher,
    is_cjk_or_similar,
    spaced_entry,
    worldwide_matcher_path,
)
from metaclip.matching import cache as matcher_cache
from metaclip.matching.scripts import CJK_OR_SIMILAR_RANGES
from metaclip.metadata.text import _SPLIT_RANGES
from tests.naive import naive_match

DATA = Path(__file__).parent / "data" / "worldwide"

# -- the oracle, from substr_matching.py ------------------------------------------------------

REFERENCE_EXTRA_PUNCTUATION = [
    "，", "。", "、", "；", "：", "？", "！", "“", "”", "‘", "’", "（", "）",
    "【", "】", "《", "》", "〈", "〉", "「", "」", "『", "』", "～", "—",
]  # fmt: skip


def reference_is_punctuation(char: str) -> bool:
    return char in string.punctuation or char in REFERENCE_EXTRA_PUNCTUATION


def reference_is_cjk_or_similar(char: str) -> bool:
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0x2CEB0 <= cp <= 0x2EBEF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2E80 <= cp <= 0x2EFF
        or 0x2F00 <= cp <= 0x2FDF
        or 0x2FF0 <= cp <= 0x2FFF
        or 0x0E00 <= cp <= 0x0E7F
        or 0x0E80 <= cp <= 0x0EFF
        or 0x1000 <= cp <= 0x109F
        or 0x1780 <= cp <= 0x17FF
        or 0x0F00 <= cp <= 0x0FFF
        or reference_is_punctuation(char)
    )


def reference_spacing(text: str) -> str:
    spaced = f" {text} "
    for punct in [",", ".", ";", ":", "?", "!", "`"]:
        spaced = spaced.replace(punct, f" {punct} ")
    for char in ["\t", "\n", "\r"]:
        spaced = spaced.replace(char, " ")
    return spaced


def reference_spaced_metadata(entries: list[str]) -> list[tuple[int, str]]:
    out = []
    for idx, entry in enumerate(entries):
        if not entry:  # the reference fails on it; ours skips it
            continue
        spaced = entry
        if not reference_is_cjk_or_similar(spaced[0]):
            spaced = f" {spaced}"
        if not reference_is_cjk_or_similar(spaced[-1]):
            spaced = f"{spaced} "
        out.append((idx, spaced))
    return out


def oracle_all(texts: list[str | None], entries: list[str]) -> list[list[int]]:
    """For each text, the sorted ids of the entries whose spaced form occurs in the spaced
    text. Entries holding NUL or SOH never match (the documented deviation)."""
    keys = [(i, k) for i, k in reference_spaced_metadata(entries) if not {"\x00", "\x01"} & set(k)]
    out = []
    for text in texts:
        spaced = "" if text is None else reference_spacing(text)
        out.append(sorted(idx for idx, key in keys if key in spaced))
    return out


def oracle(text: str | None, entries: list[str]) -> list[int]:
    return oracle_all([text], entries)[0]


def matches(matcher: WorldwideMatcher, texts: list[str | None], batch_chars: int = 10**7):
    return matcher.match_arrow(pa.array(texts, pa.string()), batch_chars=batch_chars).to_pylist()


# -- character classes and padding ------------------------------------------------------------


def test_character_classes_equal_the_reference():
    rng = random.Random(0)
    edges = [b + d for lo, hi in CJK_OR_SIMILAR_RANGES for b in (lo, hi) for d in (-1, 0, 1)]
    codes = list(range(0x10000)) + edges + [rng.randrange(0x10000, 0x110000) for _ in range(5000)]
    expected = [reference_is_cjk_or_similar(chr(c)) for c in codes]
    assert [is_cjk_or_similar(chr(c)) for c in codes] == expected
    assert cjk_or_similar_mask(np.array(codes)).tolist() == expected
    assert set(CJK_OR_SIMILAR_RANGES) == set(_SPLIT_RANGES)  # the metadata builder's ranges


def test_matching_punctuation_is_substr_matchings_list_without_the_inverted_question_mark():
    assert not is_cjk_or_similar("¿")  # in the metadata builder's list, not in matching's
    assert spaced_entry("¿qué") == " ¿qué "
    assert all(is_cjk_or_similar(p) for p in REFERENCE_EXTRA_PUNCTUATION + list("'-\"("))


def test_kana_and_hangul_are_not_cjk_or_similar_as_in_the_reference():
    assert not is_cjk_or_similar("の") and not is_cjk_or_similar("パ")
    assert not is_cjk_or_similar("한")
    assert spaced_entry("ごろから") == " ごろから "  # padded: kana is not in the ranges
    assert spaced_entry("日本語") == "日本語"
    assert spaced_entry("言語の") == "言語の "
    assert spaced_entry("「ABC」") == "「ABC」"
    assert spaced_entry("cat") == " cat "
    assert spaced_entry("Python（") == " Python（"


def test_examples_of_the_feature():
    matcher = WorldwideMatcher.build(["猫", "cat", "black cat"])
    assert matcher.match("黑色的猫咪") == [0]
    assert matcher.match("concatenate") == []
    assert matcher.match("a black cat.") == [1, 2]


def test_kana_final_entry_needs_a_space_after_it_like_the_reference():
    text = "Python の開発は、1990 年ごろから開始されています。"
    entries = ["開始", "されています", "ごろから", "Python", "の開発は", "の"]
    assert matches(WorldwideMatcher.build(entries), [text]) == [oracle(text, entries)]
    assert oracle(text, entries) == [0, 3]  # only 開始 and Python: no space after the others


def test_duplicate_entries_all_reported():
    entries = ["猫", "dog", "猫", "dog", "「ABC」", "「ABC」"]
    matcher = WorldwideMatcher.build(entries)
    assert matcher.match("a dog, 猫 and 「ABC」") == [0, 1, 2, 3, 4, 5]


def test_padded_entries_match_like_the_english_matcher():
    words = ["cat", "black cat", "dog", "hot dog", "St. Louis", "a", "A", "the cat", "é", "NY C"]
    texts = ["A black cat, and a dog.", "hot dog!", "", "St. Louis", "the cat the cat", "a\x00b"]
    english = Matcher.build(words).match_arrow(pa.array(texts)).to_pylist()
    assert matches(WorldwideMatcher.build(words), texts) == english
    assert english == [naive_match(t, words) for t in texts]


def test_nulls_empty_inputs_and_arrow_types():
    matcher = WorldwideMatcher.build(["猫", "dog"])
    assert matcher.match_arrow(pa.array([], pa.string())).to_pylist() == []
    assert matcher.match_arrow(pa.array([None, None])).to_pylist() == [[], []]
    chunked = pa.chunked_array([["猫猫", None], ["a dog"]], pa.large_string())
    assert matcher.match_arrow(chunked).to_pylist() == [[0], [], [1]]
    offsets, ids = matcher.match_batch(["dog 猫", "x"])
    assert offsets.tolist() == [0, 2, 2] and ids.tolist() == [0, 1]
    assert WorldwideMatcher.build([]).match("anything") == []
    assert WorldwideMatcher.build(["", "猫"]).match("猫") == [1]  # empty entries skipped


# -- real text --------------------------------------------------------------------------------


def real_texts() -> list[dict]:
    with open(DATA / "texts.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def cut_entries(texts: list[str], seed: int, per_text: int = 12) -> list[str]:
    """Entries cut out of the texts: words, substrings, single characters, and spans starting
    or ending at punctuation (the anchored kinds)."""
    rng = random.Random(seed)
    entries: list[str] = []
    for text in texts:
        words = [w for w in text.split(" ") if w]
        entries += rng.sample(words, min(3, len(words)))
        for _ in range(per_text):
            start = rng.randrange(len(text))
            entries.append(text[start : start + rng.randint(1, 6)].strip())
        edges = [i for i, ch in enumerate(text) if reference_is_punctuation(ch)]
        for i in rng.sample(edges, min(3, len(edges))):
            entries.append(text[max(0, i - rng.randint(1, 4)) : i + 1])  # ends at punctuation
            entries.append(text[i : i + rng.randint(1, 5)])  # starts at punctuation
    return [e for e in entries if e]


def test_real_texts_in_many_scripts_match_the_oracle():
    rows = real_texts()
    texts = [r["text"] for r in rows]
    entries = cut_entries(texts, seed=1) + list("猫中日本語ไทยລາວខ្មែរမြန်བོད") + ["（", "」", "，"]
    entries += [entries[5], entries[40]]  # repeated entries: every id reported
    matcher = WorldwideMatcher.build(entries)
    # Each text alone, and pairs of texts of different languages glued together.
    rng, glues = random.Random(2), ["", " ", "。", "\t"]
    glued = [f"{rng.choice(texts)}{rng.choice(glues)}{rng.choice(texts)}" for _ in range(200)]
    all_texts = texts + glued
    got = matches(matcher, all_texts, batch_chars=997)
    assert got == oracle_all(all_texts, entries)
    hit_languages = {r["lang"] for r, ids in zip(rows, got, strict=False) if ids}
    assert len(hit_languages) == len({r["lang"] for r in rows})  # every language has hits
    anchored = sum(1 for e in set(entries) if spaced_entry(e) != f" {e} ")
    assert anchored > len(set(entries)) / 3  # both kinds of entries are well exercised


def test_one_by_one_equals_batch_on_real_texts():
    texts = [r["text"] for r in real_texts()]
    entries = cut_entries(texts, seed=3, per_text=4)
    matcher = WorldwideMatcher.build(entries)
    assert [matcher.match(t) for t in texts] == matches(matcher, texts)


def test_other_real_alt_texts_match_the_oracle():
    """The real alt texts kept next to texts.jsonl (see ALT_TEXTS_PROVENANCE.txt there): more
    scripts, when the file is present."""
    path = DATA / "alt_texts.jsonl"
    if not path.exists():
        pytest.skip("tests/data/worldwide/alt_texts.jsonl is not there")
    with open(path, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh][:800]
    entries = cut_entries(texts, seed=4, per_text=3)
    got = matches(WorldwideMatcher.build(entries), texts, batch_chars=5000)
    assert got == oracle_all(texts, entries)


# -- random mixes -----------------------------------------------------------------------------

MIXED = list("ab Z д ก ລ 猫咪 の 한 ٣ .,;:?!` '-\"( ，。「」 ¿ \t\n\r") + ["\x00", "\x01", "\u200b"]
texts_strategy = st.lists(st.one_of(st.none(), st.text(st.sampled_from(MIXED), max_size=30)),
                          max_size=20)  # fmt: skip
entries_strategy = st.lists(st.text(st.sampled_from(MIXED), max_size=5), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(entries=entries_strategy, texts=texts_strategy, batch_chars=st.sampled_from([1, 40, 10**6]))
def test_property_mixed_scripts_match_the_oracle(entries, texts, batch_chars):
    """Scripts, ASCII and full-width punctuation, whitespace, NUL and SOH, repeated entries."""
    matcher = WorldwideMatcher.build(entries)
    assert matches(matcher, texts, batch_chars) == oracle_all(texts, entries)


@settings(max_examples=100, deadline=None)
@given(entries=entries_strategy, text=st.text(st.sampled_from(MIXED), max_size=40))
def test_property_matches_the_reference_automaton(entries, text):
    """Against pyahocorasick run as substr_match runs it, on lists without repeated keys (the
    reference's automaton keeps one id per key) and without NUL or SOH."""
    entries = [e for e in dict.fromkeys(entries) if "\x00" not in e and "\x01" not in e]
    spaced_metadata = reference_spaced_metadata(entries)
    if not spaced_metadata:
        return
    automaton = ahocorasick.Automaton()
    for idx, key in spaced_metadata:
        automaton.add_word(key, (idx, key))
    automaton.make_automaton()
    found = {entry_id for _, (entry_id, _) in automaton.iter(reference_spacing(text))}
    assert WorldwideMatcher.build(entries).match(text) == sorted(found)


# -- disk cache -------------------------------------------------------------------------------

ENTRIES = ["猫", "black cat", "「ABC」", "日本語", "言語の", "'hood", "april fools'", "St. Louis"]
TEXTS = ["a black cat", "日本語の「ABC」", "the 'hood", "april fools' day", "黑猫 St. Louis"]


def _expected(texts=TEXTS):
    return oracle_all(texts, ENTRIES)


def test_save_load_roundtrip(tmp_path):
    matcher = WorldwideMatcher.build(ENTRIES)
    path = tmp_path / "cache" / "w.matcher"
    matcher.save(path)
    loaded = WorldwideMatcher.load(path)
    assert matches(loaded, TEXTS) == matches(matcher, TEXTS) == _expected()
    assert loaded.n_entries == len(ENTRIES)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    written = [p for p in path.parent.iterdir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in written)
    manifest = json.loads(Path(f"{path}.manifest.json").read_text())
    assert set(manifest["sha256"]) == {"npz", "vocab"}  # no long entries: no automaton file


class _Spy:
    """Counts calls of the parsers the cache must not reach before its hashes are checked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for owner, name in ((ahocorasick, "load"), (np, "load"), (feather, "read_table")):
            original = getattr(owner, name)
            monkeypatch.setattr(owner, name, self._wrap(f"{owner.__name__}.{name}", original))

    def _wrap(self, label, original):  # type: ignore[no-untyped-def]
        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls.append(label)
            return original(*args, **kwargs)

        return spy


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(matcher_cache, "_WORLDWIDE", matcher_cache.BoundedMatchers())
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})


def _counting(entries=ENTRIES):
    calls: list[int] = []

    def load_entries() -> list[str]:
        calls.append(1)
        return entries

    return calls, load_entries


def test_built_once_per_process_and_cached_on_disk(tmp_path, monkeypatch, fresh_cache):
    calls, load_entries = _counting()
    first = get_worldwide_matcher("sha-w", load_entries, cache_dir=tmp_path)
    assert get_worldwide_matcher("sha-w", load_entries, cache_dir=tmp_path) is first
    monkeypatch.setattr(matcher_cache, "_WORLDWIDE", matcher_cache.BoundedMatchers())  # new process
    again = get_worldwide_matcher("sha-w", load_entries, cache_dir=tmp_path)
    assert calls == [1] and again is not first
    assert matches(again, TEXTS) == _expected()
    # The English matcher of the same metadata is another set, in another file.
    english = get_matcher("sha-w", load_entries, cache_dir=tmp_path)
    assert english.match("日本語の") == [] and matches(again, ["日本語の"]) == [[3]]
    english_path = matcher_cache.automaton_path("sha-w", tmp_path)
    assert worldwide_matcher_path("sha-w", tmp_path) != english_path


@pytest.mark.parametrize("how", ["flip", "append", "delete"])
@pytest.mark.parametrize("suffix", ["", ".vocab", ".manifest.json"])
def test_a_tampered_cache_is_caught_by_hash_and_rebuilt(tmp_path, monkeypatch, fresh_cache,
                                                        suffix, how):  # fmt: skip
    get_worldwide_matcher("sha-t", lambda: ENTRIES, cache_dir=tmp_path)
    file = Path(f"{worldwide_matcher_path('sha-t', tmp_path)}{suffix}")
    if how == "flip":
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0x01
        file.write_bytes(bytes(data))
    elif how == "append":
        file.write_bytes(file.read_bytes() + b"\x00extra")
    else:
        file.unlink()
    spy = _Spy(monkeypatch)
    with pytest.raises(DamagedCacheError):
        WorldwideMatcher.load(worldwide_matcher_path("sha-t", tmp_path))
    assert spy.calls == []  # nothing parsed before the hashes were checked
    monkeypatch.setattr(matcher_cache, "_WORLDWIDE", matcher_cache.BoundedMatchers())
    calls, load_entries = _counting()
    assert matches(get_worldwide_matcher("sha-t", load_entries, cache_dir=tmp_path), TEXTS) == (
        _expected()
    )
    assert calls == [1]  # rebuilt, and written again whole:
    assert matches(WorldwideMatcher.load(worldwide_matcher_path("sha-t", tmp_path)), TEXTS) == (
        _expected()
    )


def test_an_english_set_is_not_taken_for_a_worldwide_one(tmp_path):
    path = tmp_path / "c" / "x.matcher"
    Matcher.build(ENTRIES).save(path)
    with pytest.raises(DamagedCacheError, match="not a worldwide matcher"):
        WorldwideMatcher.load(path)


def test_a_cache_others_could_write_is_not_used(tmp_path, monkeypatch, fresh_cache, caplog):
    cache_dir = tmp_path / "automata"
    get_worldwide_matcher("sha-u", lambda: ENTRIES, cache_dir=cache_dir)
    monkeypatch.setattr(matcher_cache, "_WORLDWIDE", matcher_cache.BoundedMatchers())
    cache_dir.chmod(0o777)
    before = sorted(os.listdir(cache_dir))
    spy = _Spy(monkeypatch)
    calls, load_entries = _counting()
    matcher = get_worldwide_matcher("sha-u", load_entries, cache_dir=cache_dir)
    assert calls == [1] and spy.calls == []  # rebuilt in memory, nothing parsed
    assert sorted(os.listdir(cache_dir)) == before and "matcher cache not used" in caplog.text
    assert matches(matcher, TEXTS) == _expected()
    with pytest.raises(UnsafeCacheError):
        WorldwideMatcher.load(worldwide_matcher_path("sha-u", cache_dir))


# -- the per-process LRU ----------------------------------------------------------------------


def test_lru_evicts_the_least_recently_used_under_a_tiny_budget(tmp_path, monkeypatch,
                                                                fresh_cache):  # fmt: skip
    lists = {"zh": ["猫", "日本語", "黑色"], "en": ["black cat", "'hood"], "th": ["ไทย", "จันทร์"]}
    sizes = {lang: WorldwideMatcher.build(entries).nbytes for lang, entries in lists.items()}
    budget = max(sizes["zh"] + sizes["en"], sizes["en"] + sizes["th"], sizes["zh"] + sizes["th"])
    monkeypatch.setenv("METACLIP_MATCHER_MEMORY_MB", str((budget + 1) / 2**20))  # two fit
    loads: list[str] = []
    original_load = WorldwideMatcher.load.__func__

    def counting_load(cls, path):  # type: ignore[no-untyped-def]
        loads.append(path.name.split("-")[0])
        return original_load(cls, path)

    monkeypatch.setattr(WorldwideMatcher, "load", classmethod(counting_load))
    calls: list[str] = []

    def get(lang: str) -> WorldwideMatcher:
        return get_worldwide_matcher(lang, lambda: calls.append(lang) or lists[lang], tmp_path)

    zh = get("zh")
    assert get("en") and get("zh") is zh  # zh is now the most recently used
    get("th")  # evicts en, the least recently used
    assert list(matcher_cache._WORLDWIDE.matchers) == ["zh", "th"]
    assert matcher_cache._WORLDWIDE.total_bytes <= budget
    assert get("zh") is zh and loads == []
    again = get("en")  # back from the disk cache, not rebuilt; th goes
    assert loads == ["en"] and calls == ["zh", "en", "th"]
    assert list(matcher_cache._WORLDWIDE.matchers) == ["zh", "en"]
    assert again.match("a black cat") == [0]


def test_a_matcher_larger_than_the_budget_is_kept_alone(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("METACLIP_MATCHER_MEMORY_MB", "0.001")
    first = get_worldwide_matcher("a", lambda: ["猫"], tmp_path)
    get_worldwide_matcher("b", lambda: ["dog"], tmp_path)
    assert list(matcher_cache._WORLDWIDE.matchers) == ["b"]
    assert first.match("猫") == [0]  # a caller's reference stays usable


def test_memory_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv("METACLIP_MATCHER_MEMORY_MB", raising=False)
    assert matcher_cache.matcher_memory_budget() == 1200 * 2**20
    monkeypatch.setenv("METACLIP_MATCHER_MEMORY_MB", "64")
    assert matcher_cache.matcher_memory_budget() == 64 * 2**20
    monkeypatch.setenv("METACLIP_MATCHER_MEMORY_MB", "lots")
    assert matcher_cache.matcher_memory_budget() == 1200 * 2**20
