"""The worldwide (MetaCLIP 2) recipe in the curation: every stage as plain functions on WAT files
of real texts in many scripts (tests/stages.py), checked against a naive MetaCLIP 2 written from
the reference's curate.py and substr_matching.py (tests/naive.py) with the library's own
deterministic draws; then once end to end through the curate and rebalance flows on a local
Dask cluster (marked slow).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip.config import CurateConfig
from metaclip.curation import thresholds, worldwide
from metaclip.curation.counts import read_language_counts
from metaclip.curation.plan import check_metadata
from metaclip.curation.sample import rebalanced_summary
from metaclip.curation.settings import RunSettings
from metaclip.errors import UserError
from metaclip.io.paths import OutputLayout
from metaclip.io.results import read_json
from metaclip.io.schemas import CURATED, CURATED_WORLDWIDE, curated_from_matched
from metaclip.metadata.multilingual import language_list, write_index
from tests.naive import naive_language_thresholds, naive_match_worldwide
from tests.stages import (
    SEED,
    curate_plain,
    curated_language_rows,
    language_texts,
    make_settings,
    make_worldwide_inputs,
    make_worldwide_metadata,
    naive_worldwide_run,
    run_sample,
)

# Languages with metadata here; the inputs hold more (Polish, Turkish, Persian ...): `other`.
LANGUAGES = ("ar", "de", "el", "en", "es", "fr", "he", "hi", "ja", "km", "ko", "my", "ru", "th",
             "zh")  # fmt: skip
T_EN = 3.0
WORLDWIDE = {"recipe": "worldwide", "t": T_EN}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("worldwide")
    files = make_worldwide_inputs(root / "inputs")
    lists = make_worldwide_metadata(root / "metadata", language_texts(files), LANGUAGES)
    return SimpleNamespace(root=root, files=files, metadata=str(root / "metadata"), lists=lists,
                           naive=naive_worldwide_run(files, lists, T_EN))  # fmt: skip


@pytest.fixture(scope="module")
def run(world):
    return curate_plain(world.files, world.metadata, world.root / "out", n_buckets=4, **WORLDWIDE)


def offsets_of(lists: dict[str, list[str]]) -> dict[str, int]:
    sizes = np.cumsum([0] + [len(lists[x]) for x in sorted(lists)])
    return {language: int(start) for language, start in zip(sorted(lists), sizes, strict=False)}


def global_naive(world) -> set[tuple[str, str, tuple[int, ...], str]]:
    """Every matched distinct pair of the naive run, with global ids and its language."""
    offsets = offsets_of(world.lists)
    return {(u, x, tuple(offsets[lang] + i for i in ids), lang)
            for (u, x), (lang, ids) in world.naive.unique.items()}  # fmt: skip


# --------------------------------------------------------------------------- configuration


BASE = {"inputs": ["a.wat.gz"], "metadata": "m", "output": "/tmp/out"}


def test_the_recipe_sets_t_and_languages_by_default():
    english = CurateConfig.from_params(**BASE)
    assert (english.recipe, english.t, english.languages) == ("english", 20_000, ("en",))
    ww = CurateConfig.from_params(**BASE, recipe="worldwide")
    assert ww.t == thresholds.DEFAULT_T_EN == 170_000 and ww.languages is None
    # as a flow passes its defaults: t None, languages ["en"] (the English recipe's)
    flow = CurateConfig.from_params(**BASE, recipe="worldwide", t=None, languages=["en"])
    assert flow.t == 170_000 and flow.languages is None
    subset = CurateConfig.from_params(**BASE, recipe="worldwide", t=5, languages=["zh", "en"])
    assert subset.t == 5 and subset.languages == ("zh", "en")


@pytest.mark.parametrize(("params", "message"), [
    ({"recipe": "global"}, r"^recipe: must be one of english, worldwide, not 'global'$"),
    ({"recipe": "worldwide", "languages": ["zh", "ja"]}, r"^languages: .*include en$"),
    ({"recipe": "worldwide", "t": 0}, r"^t: must be a positive finite number"),
])  # fmt: skip
def test_a_bad_recipe_parameter_is_one_line(params, message):
    with pytest.raises(UserError, match=message):
        CurateConfig.from_params(**BASE, **params)


def test_the_metadata_must_suit_the_recipe(world, tmp_path):
    with pytest.raises(UserError, match="--recipe worldwide"):
        check_metadata(world.metadata)
    index = check_metadata(world.metadata, worldwide=True, languages=["en", "zh"])
    assert index.languages == sorted(LANGUAGES)
    plain = tmp_path / "metadata.json"
    plain.write_text(json.dumps(["cat"]))
    with pytest.raises(UserError, match="needs worldwide metadata"):
        check_metadata(str(plain), worldwide=True)
    with pytest.raises(UserError, match=r"has no metadata for: pl, xh \("):
        check_metadata(world.metadata, worldwide=True, languages=["en", "xh", "pl"])
    no_english = tmp_path / "no-en"
    (no_english / "de").mkdir(parents=True)
    (no_english / "de" / "metadata.json").write_text(json.dumps(["Hund"]))
    write_index(str(no_english), [language_list(str(no_english), "de", "de/metadata.json")])
    with pytest.raises(UserError, match="has no metadata for: en"):
        check_metadata(str(no_english), worldwide=True)


def test_the_run_record_keeps_the_recipe(run):
    record = run.settings.record()
    assert record["recipe"] == "worldwide" and record["t"] == T_EN
    again = RunSettings.from_record(json.loads(json.dumps(record)), run.output)
    assert again.worldwide and again.record() == record
    old = {k: v for k, v in record.items() if k != "recipe"}  # a record from before recipes
    assert RunSettings.from_record(old, run.output).recipe == "english"


# --------------------------------------------------------------------------- the stages


def test_each_text_is_matched_in_its_own_language_only(run, world):
    rows = set()
    for b in run.batches:
        manifest = read_json(b["manifest_uri"])
        for bucket in manifest["buckets"]:
            t = pq.read_table(OutputLayout(run.output).matched_part(bucket, b["batch_id"]))
            assert t.column_names[-2:] == ["language", "entry_ids"]
            rows.update(zip(t["uuid"].to_pylist(), t["text"].to_pylist(),
                            map(tuple, t["entry_ids"].to_pylist()), t["language"].to_pylist(),
                            strict=True))  # fmt: skip
    assert rows == global_naive(world)
    assert len({lang for *_, lang in rows}) >= 10  # many languages and scripts matched


def test_batches_count_pairs_per_language(run, world):
    total: Counter[str] = Counter()
    for b in run.batches:
        by_language = b["languages"]
        assert sum(x["pairs"] for x in by_language.values()) == b["extract"]["pairs"]
        assert sum(x["matched"] for x in by_language.values()) == b["pairs_matched"]
        assert b["pairs_matched"] + b["pairs_unmatched"] == b["extract"]["pairs"]
        assert by_language.get("other", {"matched": 0})["matched"] == 0
        total.update({lang: x["pairs"] for lang, x in by_language.items()})
    assert total["other"] > 0  # Polish, Turkish ...: no metadata here, counted, not matched
    assert set(total) <= {*LANGUAGES, "other"}
    naive_other = sum(lang == "other" for lang in world.naive.language.values())
    assert 0 < naive_other <= total["other"]  # the naive counts distinct pairs only


def test_counts_are_per_language_entry_in_one_id_space(run, world):
    counts, offsets = read_language_counts(run.counts_uri)
    assert offsets == offsets_of(world.lists)
    table = pq.read_table(run.counts_uri)
    assert table["entry"].to_pylist() == [e for x in sorted(world.lists) for e in world.lists[x]]
    spans = thresholds.language_spans(offsets, len(counts))
    for language, (start, end) in spans.items():
        assert counts[start:end].tolist() == world.naive.counts[language], language
        assert set(table["language"].to_pylist()[start:end]) == {language}


def test_thresholds_are_metaclip2s(run, world):
    naive = world.naive
    report = run.thresholds
    assert report == read_json(OutputLayout(run.output).language_thresholds)
    assert report["recipe"] == "worldwide" and report["t_en"] == T_EN
    assert report["p"] == pytest.approx(naive.p) and 0 < report["p"] < 1
    assert {x: row["t"] for x, row in report["languages"].items()} == naive.ts
    for language, row in report["languages"].items():
        counts = np.array(naive.counts[language])
        assert row["matches"] == counts.sum() and row["entries"] == len(counts)
        assert row["entries_over_t"] == (counts > row["t"]).sum()
    assert report["entries_over_t"] > 0  # some head entries are capped, in several languages
    assert sum(row["entries_over_t"] > 0 for row in report["languages"].values()) >= 3


def test_curated_rows_equal_a_naive_metaclip2(run, world):
    kept = world.naive.kept
    curated = curated_language_rows([u for s in run.sampled for u in s["curated_uris"]])
    assert curated == kept
    images = {u for u, _ in world.naive.unique}
    assert 0 < len(curated) < len(images)  # balancing dropped some head pairs, kept others
    assert len({u for u, *_ in curated}) == len(curated)  # one text per image
    assert len({lang for *_, lang in curated}) >= 8
    tally: Counter[str] = Counter()
    for s in run.sampled:
        tally.update({lang: x["kept"] for lang, x in s["languages"].items()})
    assert +tally == Counter(lang for *_, lang in curated)
    part = pq.read_table(run.sampled[0]["curated_uris"][0])
    assert part.schema.equals(CURATED_WORLDWIDE) and part.column_names[:2] == ["url", "caption"]


def test_a_language_subset_leaves_the_others_unmatched(world, tmp_path):
    subset = ("de", "en", "zh")
    run = curate_plain(world.files, world.metadata, tmp_path / "subset", n_buckets=2,
                       languages=subset, **WORLDWIDE)  # fmt: skip
    naive = naive_worldwide_run(world.files, world.lists, T_EN, languages=subset)
    assert curated_language_rows([u for s in run.sampled for u in s["curated_uris"]]) == naive.kept
    assert {lang for b in run.batches for lang in b["languages"]} <= {*subset, "other"}
    assert run.thresholds["languages"]["ja"]["matches"] == 0  # in the index, not matched


@pytest.mark.parametrize("t_en", [1.0, 10.0])
def test_sampling_again_with_another_t_en_equals_a_fresh_naive_run(run, world, tmp_path, t_en):
    s = replace(run.settings, t=t_en, output=str(tmp_path / "rebalanced"))
    report = worldwide.write_thresholds(s, run.counts_uri)
    sampled = [run_sample(s, run.stores, b["bucket"], run.counts_uri, b["dedup_uris"])
               for b in run.buckets]  # fmt: skip
    naive = naive_worldwide_run(world.files, world.lists, t_en)
    assert curated_language_rows([u for x in sampled for u in x["curated_uris"]]) == naive.kept
    assert report["p"] == pytest.approx(naive.p)
    assert {x: row["t"] for x, row in report["languages"].items()} == naive.ts
    summary = rebalanced_summary(run.summary, sampled, run.counts, t_en, s.seed, 0.0, report)
    assert summary["p"] == report["p"] and summary["entries_over_t"] == report["entries_over_t"]
    assert summary["pairs_curated"] == len(naive.kept)


def test_no_english_match_fails_the_run(world, tmp_path):
    lists = {**world.lists, "en": ["no English text holds this entry"]}
    folder = tmp_path / "metadata"
    for language, entries in lists.items():
        (folder / language).mkdir(parents=True)
        (folder / language / "metadata.json").write_text(json.dumps(entries, ensure_ascii=False))
    write_index(str(folder), [language_list(str(folder), x, f"{x}/metadata.json") for x in lists])
    with pytest.raises(thresholds.NoEnglishMatches, match="^no text matched the English"):
        curate_plain(world.files[-1:], str(folder), tmp_path / "out", n_buckets=2, **WORLDWIDE)


def test_an_english_run_writes_no_thresholds_and_keeps_its_schema(tmp_path):
    s = make_settings(tmp_path, "m.json", "ab" * 32, 2)
    layout = OutputLayout(s.output)
    Path(layout.language_thresholds).write_text("{}")  # a worldwide run's, earlier
    assert worldwide.write_thresholds(s, "unused") is None
    assert not Path(layout.language_thresholds).exists()
    assert "recipe" not in s.record() and not s.worldwide  # English run keys unchanged
    matched = pa.table({"url": ["u"], "text": ["t"], "uuid": ["0" * 24],
                        "entry_ids": pa.array([[1]], pa.list_(pa.int32())), "text_key": ["alt"],
                        "language": ["en"]})  # fmt: skip
    assert curated_from_matched(matched).schema.equals(CURATED)
    assert curated_from_matched(matched, worldwide=True).schema.equals(CURATED_WORLDWIDE)


# --------------------------------------------------------------------------- the pieces


def test_match_by_language_keeps_row_order_and_leaves_other_unmatched():
    lists = {"en": ["cat", "black cat"], "zh": ["猫", "黑色"]}
    offsets = {"en": 0, "zh": 2}

    class Naive:  # a stand-in matcher: the reference's matching, local ids
        def __init__(self, language: str) -> None:
            self.entries = lists[language]

        def match_arrow(self, texts: pa.Array) -> pa.ListArray:
            ids = [naive_match_worldwide(t, self.entries) for t in texts.to_pylist()]
            return pa.array(ids, pa.list_(pa.int32())).slice(0)

    texts = ["a black cat", "黑色的猫", "kot", "cat", "无关", "un chat"]
    pairs = pa.table({"text": texts, "language": ["en", "zh", "other", "en", "zh", "other"]})
    matched, stats = worldwide.match_by_language(pairs, offsets, Naive)
    assert matched["text"].to_pylist() == ["a black cat", "黑色的猫", "cat"]
    assert matched["entry_ids"].to_pylist() == [[0, 1], [2, 3], [0]]
    assert stats == {"en": {"pairs": 2, "matched": 2}, "other": {"pairs": 2, "matched": 0},
                     "zh": {"pairs": 2, "matched": 1}}  # fmt: skip
    sliced = pa.array([[9], [0, 1], [1]], pa.list_(pa.int32())).slice(1)
    assert worldwide.global_ids(sliced, 5).to_pylist() == [[5, 6], [6]]


def test_metadata_languages_follow_the_lid_table():
    pairs = pa.table({"lang": ["en", "yue", "lrc", None, "pl", "zh"]})
    got = worldwide.add_metadata_languages(pairs, {"en", "zh"})["language"].to_pylist()
    assert got == ["en", "zh", "other", "other", "other", "zh"]


@pytest.mark.parametrize("seed", range(6))
def test_language_thresholds_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    counts = {
        "en": rng.integers(0, 50, 40),
        "de": rng.integers(0, 9, 25),
        "zh": np.zeros(7, dtype=np.int64),  # matched nothing: t = 0
        "ja": np.r_[np.zeros(30, np.int64), [1]],  # p nearer 0 than its one count: t = 0
    }
    t_en = float(rng.integers(2, 40))
    p, ts = thresholds.language_thresholds(counts, t_en)
    naive_p, naive_ts = naive_language_thresholds({k: v.tolist() for k, v in counts.items()}, t_en)
    assert p == pytest.approx(naive_p) and ts == naive_ts
    assert ts["zh"] == 0 and (ts["ja"] == 0) == (p < 0.5)
    order = ["en", "de", "zh", "ja"]  # global ids: the languages one after another
    offsets = {"en": 0, "de": 40, "zh": 65, "ja": 72}
    flat = np.concatenate([counts[x] for x in order])
    probs = thresholds.entry_probabilities(flat, offsets, ts)
    expected = [ts[x] / max(c, ts[x]) if ts[x] else 0.0 for x in order for c in counts[x]]
    assert probs.tolist() == pytest.approx(expected)
    assert thresholds.counts_by_language(flat, offsets)["de"].tolist() == counts["de"].tolist()
    with pytest.raises(thresholds.NoEnglishMatches):
        thresholds.language_thresholds({**counts, "en": np.zeros(3, np.int64)}, t_en)


# --------------------------------------------------------------------------- the flow (slow)


def flow_rows(output: Path) -> set[tuple[str, str, tuple[int, ...], str]]:
    return curated_language_rows(sorted(str(p) for p in (output / "curated").glob("*.parquet")))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_worldwide_flow_on_a_dask_cluster_equals_the_naive_recipe(world, tmp_path):
    """curate (worldwide; languages left at the flow's default: every language of the index)
    on a local Dask cluster; a rerun has nothing to do; rebalance with another t_en."""
    from metaclip_prefect.flows.curate import curate
    from metaclip_prefect.flows.rebalance import rebalance

    output = tmp_path / "out"
    params = dict(inputs=world.files, metadata=world.metadata, output=str(output),
                  recipe="worldwide", t=T_EN, seed=SEED, batch_size=1, n_buckets=4, n_workers=2,
                  dashboard_address=":0")  # fmt: skip
    state = curate(**params, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert flow_rows(output) == world.naive.kept
    report = json.loads((output / "language_thresholds.json").read_text())
    assert report["p"] == pytest.approx(world.naive.p)
    assert {x: row["t"] for x, row in report["languages"].items()} == world.naive.ts
    assert summary["outputs"]["language_thresholds"] == str(output / "language_thresholds.json")
    assert summary["pairs_curated"] == len(world.naive.kept)

    files = [p for p in output.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    again = curate(**params, return_state=True)
    assert again.is_completed() and again.result() == summary  # complete: nothing to do
    assert {p: p.stat().st_mtime_ns for p in files} == before
    (output / "complete.json").unlink()  # as after a crash at the very end: the task path
    parts = {p: p.stat().st_mtime_ns for p in (output / "_work").rglob("*.parquet")}
    again = curate(**params, return_state=True)
    assert again.is_completed() and again.result()["task_results"]["computed"] == 0
    assert {p: p.stat().st_mtime_ns for p in parts} == parts  # every task reused
    assert flow_rows(output) == world.naive.kept

    state = rebalance(output=str(output), t=10.0, n_workers=2, dashboard_address=":0",
                      return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    naive = naive_worldwide_run(world.files, world.lists, 10.0)
    assert flow_rows(output) == naive.kept
    assert state.result()["p"] == pytest.approx(naive.p)
