"""MetaCLIP 2's t <-> p conversion (metaclip.curation.thresholds) on real counts, both ways,
against the reference restated naively (tests/naive.py).

Real counts: the entry counts of 10,000 real captions (COCO and CC3M, tests/data/captions)
matched against the 86,654 WordNet entries of the demo metadata with MetaCLIP's matching, the
kind of counts curation balances; and, where jieba is installed (the worldwide group), the real
word frequencies of jieba's dictionary (about 350k Chinese words) as a second language.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from metaclip.curation import thresholds
from metaclip.matching import Matcher
from tests.naive import naive_language_thresholds, naive_p_to_t, naive_t_to_p

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ROOT / "tests" / "data" / "captions"


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    entries = json.loads((ROOT / "metaclip" / "demo_data" / "metadata.json").read_text())
    texts = []
    for name in ("coco_val2017_5000.txt", "cc3m_val_5000.txt"):
        texts += (CAPTIONS / name).read_text(encoding="utf-8").splitlines()
    ids = Matcher.build(entries).match_arrow(pa.array(texts, pa.string())).flatten()
    counts = np.bincount(ids.to_numpy(), minlength=len(entries)).astype(np.uint64)
    assert counts.sum() > 10_000 and (counts > 0).sum() > 1_000  # a real, skewed pool
    return counts


@pytest.fixture(scope="module")
def chinese() -> np.ndarray:
    jieba = pytest.importorskip("jieba")
    path = Path(jieba.__file__).parent / "dict.txt"
    freqs = [int(line.split(" ")[1]) for line in path.read_text(encoding="utf-8").splitlines()]
    return np.array(freqs, dtype=np.uint64)


def _ts(counts: np.ndarray) -> list[int]:
    positive = counts[counts > 0]
    return sorted({1, 2, 3, *np.quantile(positive, [0.5, 0.9, 0.99, 0.999]).astype(int).tolist(),
                   int(positive.max()), int(positive.max()) + 1})  # fmt: skip


def test_t_to_p_and_p_to_t_equal_the_reference_on_real_counts(english):
    as_list = english.tolist()
    for t in _ts(english):
        p = thresholds.t_to_p(english, t)
        assert p == naive_t_to_p(as_list, t)
        assert thresholds.p_to_t(english, p) == naive_p_to_t(as_list, p)
    for p in np.linspace(0.0, 1.0, 21):
        assert thresholds.p_to_t(english, p) == naive_p_to_t(as_list, p)


def test_a_round_trip_lands_within_one_count_of_p(english):
    """t -> p -> t': t' is the count whose inclusive share is nearest p, so the share below t'
    misses p by at most that gap plus the share of the entries counted exactly t'."""
    total = float(english.sum())
    ordered = np.sort(english)
    portion = np.cumsum(ordered, dtype=np.float64) / total
    for t in _ts(english):
        p = thresholds.t_to_p(english, t)
        t_back = thresholds.p_to_t(english, p)
        gap = float(np.abs(portion - p).min())
        at_t_back = float(english[english == t_back].sum()) / total
        assert abs(thresholds.t_to_p(english, t_back) - p) <= gap + at_t_back + 1e-12
        assert t_back in set(english.tolist())  # the candidates are the counts themselves


def test_two_real_languages_get_the_references_thresholds(english, chinese):
    for t_en in (2, 10, 100):
        p, ts = thresholds.language_thresholds({"en": english, "zh": chinese}, t_en)
        naive_p, naive_ts = naive_language_thresholds(
            {"en": english.tolist(), "zh": chinese.tolist()}, t_en
        )
        assert p == naive_p and ts == naive_ts
        assert ts["en"] == t_en
        # the same tail share carried over: zh's share below its t is near p
        assert abs(thresholds.t_to_p(chinese, ts["zh"]) - p) < 0.05
