"""Each segmenter of a language written without spaces, on real text: the fixture Wikipedia text
(tests/data/worldwide_sources) and, for Tibetan and Burmese, glibc's locale data (the day and
month names of /usr/share/i18n/locales/bo_CN and my_MM, decoded from their <Uxxxx> form).

A segmenter only cuts: its tokens put back together are the piece it was given (less the marks
and zero-width spaces the fallbacks turn into breaks). The counting around it is the reference's
(test_metadata_worldwide.py compares whole lists).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from metaclip.metadata.segmenters import (
    SEGMENTERS,
    is_weird_token,
    load_segmenter,
    segmented_tokens,
    segmenter_name,
    segmenter_version,
)
from metaclip.metadata.text import BREAK, strip_markup
from tests import test_metadata_worldwide_reference as ref

WIKI = Path(__file__).parent / "data" / "worldwide_sources" / "wiki"
LOCALES = Path("/usr/share/i18n/locales")
TOOLS = {"zh": "jieba", "ja": "fugashi", "th": "pythainlp", "km": "khmernltk", "lo": "laonlp"}


def fixture_pieces(wiki: str, limit: int = 400) -> list[str]:
    text = strip_markup((WIKI / wiki / "AA" / "wiki_00").read_text(encoding="utf-8"))
    return [piece for line in text.splitlines() for piece in line.split()][:limit]


def locale_strings(name: str) -> list[str]:
    """The quoted strings of a glibc locale file, decoded (<U0F56> -> U+0F56)."""
    path = LOCALES / name
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    text = path.read_text(encoding="utf-8", errors="replace")
    quoted = re.findall(r'"((?:<U[0-9A-Fa-f]{4,5}>)+)"', text)
    return [re.sub(r"<U([0-9A-Fa-f]{4,5})>", lambda m: chr(int(m.group(1), 16)), q)
            for q in quoted]  # fmt: skip


@pytest.mark.parametrize("wiki", sorted(TOOLS))
def test_a_segmenter_cuts_real_text_without_losing_it(wiki: str, tmp_path: Path) -> None:
    pytest.importorskip(TOOLS[wiki])
    name = segmenter_name(wiki)
    assert name is not None and segmenter_version(name).startswith(name)
    segment = load_segmenter(name, str(tmp_path))
    pieces = fixture_pieces(wiki)
    cut = [segment(piece) for piece in pieces]
    # khmer-nltk drops zero-width spaces, as the reference's Khmer segmenter does
    kept = [piece.replace("\u200b", "") if wiki == "km" else piece for piece in pieces]
    assert ["".join(tokens) for tokens in cut] == kept
    assert sum(len(tokens) for tokens in cut) > 1.5 * len(pieces)  # it does cut


@pytest.mark.slow
def test_segmenters_write_nothing_outside_their_folder(tmp_path: Path) -> None:
    """pythainlp would create ~/pythainlp-data, jieba write to the system's temporary folder."""
    for module in ("jieba", "pythainlp"):
        pytest.importorskip(module)
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    code = ("from metaclip.metadata.segmenters import load_segmenter as load;"
            f"print(load('pythainlp-newmm', '')('ภาษาไทย'), load('jieba', {str(cache)!r})('中文'))")
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
    for name in ("PYTHAINLP_DATA", "PYTHAINLP_DATA_DIR", "PYTHAINLP_READ_ONLY"):
        env.pop(name, None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    assert list(home.iterdir()) == [] and [p.name for p in cache.iterdir()] == ["jieba.cache"]


@pytest.mark.parametrize(("wiki", "locale"), [("bo", "bo_CN"), ("dz", "dz_BT"), ("my", "my_MM")])
def test_syllable_fallbacks_on_real_text(wiki: str, locale: str) -> None:
    name = segmenter_name(wiki)
    assert name is not None and SEGMENTERS[name].reference in ("botok", "mmCRFseg")
    segment = load_segmenter(name, "")
    strings = [s for s in locale_strings(locale) if s.strip()]
    assert strings
    for text in strings:
        for piece in text.split():
            tokens = segment(piece)
            kept = "".join(t for t in tokens if t != BREAK)
            marks = "\u0f01-\u0f0a\u0f0d-\u0f14\u0f3a-\u0f3d\u104a\u104b\u200b"
            assert kept == re.sub(f"[{marks}]", "", piece)
            assert all(t == BREAK or len(t) < len(piece) or len(tokens) == 1 for t in tokens)
    assert any(len(segment(p)) > 1 for s in strings for p in s.split())  # words are cut
    if wiki != "my":  # a Tibetan syllable followed by another keeps its tsheg
        tibetan = re.compile("[\u0f00-\u0fff]+")
        pairs = [(a, b) for s in strings for p in s.split()
                 for a, b in zip(segment(p), segment(p)[1:], strict=False)
                 if tibetan.fullmatch(a) and tibetan.fullmatch(b)]  # fmt: skip
        assert pairs and all(a.endswith(("\u0f0b", "\u0f0c")) for a, _ in pairs)


@pytest.mark.parametrize("wiki", sorted(TOOLS))
def test_counted_tokens_follow_count_ngrams(wiki: str, tmp_path: Path) -> None:
    """Our stream (BREAK for a chain's end) gives the reference's unigrams and bigrams."""
    pytest.importorskip(TOOLS[wiki])
    segment = load_segmenter(str(segmenter_name(wiki)), str(tmp_path))
    text = (WIKI / wiki / "AA" / "wiki_00").read_text(encoding="utf-8")
    tokens = segmented_tokens(strip_markup(text), segment)
    unigrams: dict[str, int] = {}
    bigrams: dict[str, int] = {}
    for a, b in zip([BREAK, *tokens], tokens, strict=False):
        if b != BREAK:
            unigrams[b] = unigrams.get(b, 0) + 1
            if a != BREAK:
                bigrams[f"{a} {b}"] = bigrams.get(f"{a} {b}", 0) + 1
    expected = ref.build_ngrams([text], wiki, segment)
    assert unigrams == dict(expected["unigram"]) and bigrams == dict(expected["bigram"])


def test_weird_tokens_are_the_references() -> None:
    samples = [p for w in ("zh", "ja") for p in fixture_pieces(w, 2000)]
    samples += ["(a", "a)", "「x」", "x」", "『x", "x『", "“q", "ok"]
    assert [is_weird_token(s) for s in samples] == [ref.check_weird_token(s) for s in samples]
