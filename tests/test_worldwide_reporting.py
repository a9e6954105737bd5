"""Reporting on a worldwide (MetaCLIP 2) run: the per-language table and the exact expected
size as a function of t_en against naive references written here from the reference's
formulas, the summary's per-language block, and the card's Languages section and plot."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pyarrow as pa
import pytest

from metaclip.curation import balance, thresholds
from metaclip.curation.counts import SparseCounts, entry_counts_table
from metaclip.errors import UserError
from metaclip.extraction.limits import DEFAULT_LIMITS
from metaclip.extraction.pairs import ExtractStats
from metaclip.io import storage
from metaclip.io.schemas import CURATED, CURATED_WORLDWIDE
from metaclip.metadata.multilingual import language_list, load_index, write_index
from metaclip.reporting import datacard, expected_size, languages, summary
from metaclip_prefect.tasks import datacard as datacard_task
from tests.naive import (
    naive_keep_probability,
    naive_language_thresholds,
    naive_t_to_p,
    naive_worldwide_keep_probability,
)
from tests.stages import (
    curate_plain,
    language_texts,
    make_worldwide_inputs,
    make_worldwide_metadata,
    naive_worldwide_run,
)

LIST = pa.list_(pa.int32())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T_EN = 25.0
# Entries per metadata language, and how many texts each language's pool has. sw has a list but
# no text: its t is 0. Languages are numbered in code order, as the index numbers them.
SIZES = {"de": 60, "en": 120, "fr": 50, "ja": 40, "sw": 10, "zh": 30}
TEXTS = {"de": 600, "en": 1500, "fr": 400, "ja": 300, "sw": 0, "zh": 200}


# --------------------------------------------------------------------------- naive references
# tests/naive.py: MetaCLIP 2's t_to_p, p_to_t and keep probability, written for clarity.


def naive_size(rows: list[list[int]], weights: list[float], row_languages: list[str],
               counts: list[int], ts: dict[str, float]) -> float:
    """sum over candidate texts of weight * (1 - prod_e (1 - p_e)), p_e at its language's t."""
    return sum(w * naive_worldwide_keep_probability(row, counts, ts[language])
               for row, w, language in zip(rows, weights, row_languages, strict=True))


# --------------------------------------------------------------------------- a small world


def zipf_rows(n_rows: int, n_entries: int, offset: int, rng: np.random.Generator) -> list:
    """Zipf-like entry popularity, 1 to 4 distinct entries per text, ids made global."""
    weights = 1.0 / np.arange(1, n_entries + 1)
    weights /= weights.sum()
    return [sorted({int(i) + offset for i in rng.choice(n_entries, rng.integers(1, 5), p=weights)})
            for _ in range(n_rows)]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """An index written with write_index, texts per language, their counts and weights."""
    folder = tmp_path_factory.mktemp("worldwide-index")
    lists = []
    for language, size in SIZES.items():
        (folder / language).mkdir()
        words = [f"{language} word {i}" for i in range(size)]
        (folder / language / "metadata.json").write_text(json.dumps(words))
        lists.append(language_list(str(folder), language, f"{language}/metadata.json"))
    write_index(str(folder), lists)
    index = load_index(str(folder))
    offsets = index.offsets()
    rng = np.random.default_rng(11)
    rows, row_language = [], []
    for language, n in TEXTS.items():
        rows += zipf_rows(n, SIZES[language], offsets[language], rng)
        row_language += [language] * n
    order = rng.permutation(len(rows))  # languages mixed, as buckets hold them
    rows, row_language = [rows[i] for i in order], [row_language[i] for i in order]
    image = np.sort(rng.integers(0, len(rows) * 2 // 3, size=len(rows)))  # 1 to ~4 texts each
    per_image = Counter(image.tolist())
    weights = [1.0 / per_image[i] for i in image.tolist()]
    counts = SparseCounts.from_entry_ids(pa.array(rows, type=LIST)).to_dense(index.n_entries)
    by_language = {k: counts[offsets[k] : offsets[k] + SIZES[k]].tolist() for k in SIZES}
    return SimpleNamespace(folder=folder, index=index, offsets=offsets, rows=rows,
                           row_language=row_language, image=image, weights=weights,
                           counts=counts, by_language=by_language)  # fmt: skip


def units_of(world: SimpleNamespace, chunk: int = 700) -> list[expected_size.Units]:
    return [(pa.array(world.rows[i : i + chunk], type=LIST), np.array(world.weights[i : i + chunk]))
            for i in range(0, len(world.rows), chunk)]  # fmt: skip


def naive_thresholds(world: SimpleNamespace, t_en: float) -> tuple[float, dict[str, float]]:
    return naive_language_thresholds(world.by_language, t_en)


def naive_world_size(world: SimpleNamespace, t_en: float, only: str | None = None) -> float:
    """The naive expected size at t_en (of one language's texts only, with `only`)."""
    picked = [i for i, k in enumerate(world.row_language) if only in (None, k)]
    return naive_size([world.rows[i] for i in picked], [world.weights[i] for i in picked],
                      [world.row_language[i] for i in picked], world.counts.tolist(),
                      naive_thresholds(world, t_en)[1])  # fmt: skip


def naive_head(world: SimpleNamespace, t_en: float) -> int:
    """Entries counted more than their language's t."""
    _, ts = naive_thresholds(world, t_en)
    return sum(c > ts[k] for k in SIZES for c in world.by_language[k])


# --------------------------------------------------------------------------- the table


def test_language_table_is_the_naive_one(world):
    matched = {k: 2 * n + 7 for k, n in TEXTS.items()}  # as the batches would count them
    curated = {"en": 400, "de": 300, "ja": 150, "fr": 200, "zh": 100}
    rows = languages.language_table(world.offsets, world.counts, T_EN, curated, matched)
    p, ts = naive_thresholds(world, T_EN)
    assert thresholds.t_to_p(world.by_language["en"], T_EN) == pytest.approx(p)
    assert [r["language"] for r in rows] == sorted(SIZES, key=lambda k: -matched[k])
    for row in rows:
        own, t = world.by_language[row["language"]], ts[row["language"]]
        assert row["entries"] == SIZES[row["language"]]
        assert row["entries_matched"] == sum(c > 0 for c in own)
        assert row["matches"] == sum(own)
        assert row["t"] == t
        assert row["p"] == (pytest.approx(naive_t_to_p(own, t)) if sum(own) else None)
        assert row["entries_over_t"] == sum(c > t for c in own)
        assert row["pairs_matched"] == matched[row["language"]]
        assert row["pairs_curated"] == curated.get(row["language"], 0)
        assert row["pairs_distinct"] is None and row["expected_curated"] is None
    assert ts["sw"] == 0 and ts["en"] == T_EN and all(ts[k] > 0 for k in ("de", "fr", "ja"))
    # Each language's own tail share lands near the common p (the reference's p_to_t).
    assert all(abs(r["p"] - p) < 0.15 for r in rows if r["p"] is not None)

    head, rest = languages.top_and_rest(rows, 2)
    assert [r["language"] for r in head] == [r["language"] for r in rows[:2]]
    assert rest["language"] == "other 4 languages" and rest["t"] is None
    assert rest["matches"] == sum(r["matches"] for r in rows[2:])
    assert rest["pairs_curated"] == sum(r["pairs_curated"] for r in rows[2:])
    assert rest["pairs_distinct"] is None  # unknown for some: not summed as zero
    assert languages.top_and_rest(rows, 10) == (rows, None)


def test_offsets_that_do_not_fit_the_counts_are_refused(world):
    for offsets, n_entries in ((world.offsets, world.offsets["zh"] - 1), ({"en": 3}, 10)):
        with pytest.raises(UserError, match="do not number"):
            languages.language_slices(offsets, n_entries)


# --------------------------------------------------------------------------- expected size


def test_expected_size_against_t_en_is_the_naive_expectation(world, monkeypatch):
    monkeypatch.setattr(expected_size, "_BLOCK_CELLS", 256)  # many blocks: seams must not show
    rule = languages.LanguageT(world.counts, world.offsets)
    t_ens = rule.t_grid(T_EN)
    assert T_EN in t_ens and t_ens[-1] > max(world.by_language["en"])
    sizes = expected_size.expected_sizes_under(units_of(world), rule, t_ens)
    for t_en, size in zip(t_ens[::6], sizes[::6], strict=True):
        assert size == pytest.approx(naive_world_size(world, t_en), rel=1e-9, abs=1e-9)
    assert (np.diff(sizes) >= -1e-9).all()  # p, hence every language's t, grows with t_en
    assert sizes[-1] == pytest.approx(sum(world.weights))  # past English's largest count: all
    # The same size from the curation's own probability vector, through the shared function.
    p, ts = thresholds.language_thresholds(
        thresholds.counts_by_language(world.counts, world.offsets), T_EN)
    probs = thresholds.entry_probabilities(world.counts, world.offsets, ts)
    np.testing.assert_array_equal(rule.probs(T_EN), probs)
    at_t = sizes[list(t_ens).index(T_EN)]
    assert expected_size.expected_size(units_of(world), probs) == pytest.approx(at_t, rel=1e-12)
    assert rule.thresholds(T_EN) == (p, ts)


def test_english_rule_is_unchanged_and_english_only_worldwide_is_english(world):
    en = slice(world.offsets["en"], world.offsets["en"] + SIZES["en"])
    counts = world.counts[en]
    rows = [[e - en.start for e in r] for r, k in zip(world.rows, world.row_language,
                                                     strict=True) if k == "en"]  # fmt: skip
    units = [(pa.array(rows, type=LIST), np.ones(len(rows)))]
    ts = expected_size.t_grid(counts, T_EN)
    english = expected_size.expected_sizes(units, counts, ts)
    np.testing.assert_array_equal(
        english, expected_size.expected_sizes_under(units, expected_size.SingleT(counts), ts))
    only_en = languages.LanguageT(counts, {"en": 0})
    np.testing.assert_array_equal(english, expected_size.expected_sizes_under(units, only_en, ts))
    naive = sum(naive_keep_probability(row, counts.tolist(), T_EN) for row in rows)
    assert english[list(ts).index(T_EN)] == pytest.approx(naive, rel=1e-9)


def test_scan_counts_texts_and_expected_kept_by_language(world):
    rule = languages.LanguageT(world.counts, world.offsets)
    scan = expected_size.scan_candidates(units_of(world), world.counts, T_EN,
                                         np.array([T_EN]), rule)  # fmt: skip
    distinct = languages.sums_by_language(world.offsets, scan.texts_by_first)
    assert distinct == {k: float(TEXTS[k]) for k in SIZES}
    kept = languages.sums_by_language(world.offsets, scan.kept_by_first)
    assert sum(kept.values()) == pytest.approx(scan.sizes[0])
    for language in ("en", "ja"):
        assert kept[language] == pytest.approx(naive_world_size(world, T_EN, language), rel=1e-9)


# --------------------------------------------------------------------------- the summary


def fake_results(world: SimpleNamespace) -> dict:
    tally = Counter(world.row_language)
    batch = {"extract": ExtractStats(files=1, pairs=4000).to_dict(), "pairs_matched": 3000,
             "pairs_unmatched": 1000, "seconds": {"extract": 1.0, "match": 1.0},
             "languages": {**{k: {"pairs": tally[k] + 5, "matched": tally[k]} for k in tally},
                           "other": {"pairs": 40, "matched": 0}}}  # fmt: skip
    bucket = {"pairs_unique": 3000, "duplicates": 0, "excluded_seen": 0, "images": 2000,
              "seconds": 1.0}  # fmt: skip
    sampled = {"rows_kept": 900, "seconds": 1.0,
               "languages": {"en": {"candidates": 700, "kept": 500},
                             "de": {"candidates": 450, "kept": 400}}}  # fmt: skip
    return {"batches": [batch, batch], "buckets": [bucket], "sampled": [sampled, sampled],
            "counts": world.counts, "outputs": {}, "stage_seconds": {}}  # fmt: skip


def params(recipe: str | None) -> dict:
    record = {"metadata_uri": "m/languages.json", "metadata_sha256": "ab" * 32, "t": T_EN,
              "seed": 0, "one_per_image": True, "limits": DEFAULT_LIMITS.to_dict()}  # fmt: skip
    return record if recipe is None else {**record, "recipe": recipe}


def test_summary_has_a_language_block_for_worldwide_runs_only(world):
    results = fake_results(world)
    english = summary.build_summary(**results, params=params(None))
    assert english == summary.build_summary(**results, params=params("english"),
                                            language_offsets=world.offsets)  # fmt: skip
    assert "languages" not in english and "recipe" not in english
    assert english["p"] == balance.t_to_p(world.counts, T_EN)

    s = summary.build_summary(**results, params=params("worldwide"), language_offsets=world.offsets)
    p, _ = naive_thresholds(world, T_EN)
    assert s["recipe"] == "worldwide" and s["p"] == pytest.approx(p)
    assert s["entries_over_t"] == naive_head(world, T_EN)
    en = s["languages"]["en"]
    assert (en["pairs_read"], en["pairs_matched"]) == (2 * TEXTS["en"] + 10, 2 * TEXTS["en"])
    assert (en["pairs_candidates"], en["pairs_curated"]) == (1400, 1000) and en["t"] == T_EN
    assert s["languages"]["fr"]["pairs_curated"] == 0  # no candidate of fr in the sample
    assert s["languages"]["other"] == {"pairs_read": 80, "pairs_matched": 0}
    assert s["languages"]["sw"]["t"] == 0 and "p" not in s["languages"]["sw"]  # none matched
    assert list(s["languages"])[0] == "en"  # most pairs matched first
    no_offsets = summary.build_summary(**results, params=params("worldwide"))
    assert no_offsets["p"] is None and no_offsets["languages"]["en"]["pairs_matched"] > 0


# --------------------------------------------------------------------------- the card


def write_worldwide_run(world: SimpleNamespace, root: Path, seed: int = 3) -> None:
    """A finished worldwide output: entry counts with languages, a curated part (one text per
    image, kept with the per-language thresholds) with its language column, its summary."""
    out = str(root)
    names = [f"{k} word {i}" for k in SIZES for i in range(SIZES[k])]
    language = pa.array([k for k in SIZES for _ in range(SIZES[k])], pa.string())
    storage.write_parquet_atomic(f"{out}/entry_counts.parquet", entry_counts_table(
        world.counts, names, world.index.sha256, world.index.uri, language))  # fmt: skip
    uuids = pa.array([f"{i:024x}" for i in world.image.tolist()])
    texts = [f"text {i}" for i in range(len(world.rows))]
    chosen = pa.array(balance.choose_one_per_image(uuids, texts, seed))
    ids = pa.array(world.rows, type=LIST).take(chosen)
    probs = languages.LanguageT(world.counts, world.offsets).probs(T_EN)
    mask = balance.sample_mask(ids, uuids.take(chosen).to_pylist(),
                               [texts[i] for i in chosen.to_pylist()], probs, seed)
    keep, n = pa.array(mask), int(mask.sum())
    curated = pa.table({"url": [f"http://x/{i}.jpg" for i in range(n)], "caption": ["c"] * n,
                        "uuid": uuids.take(chosen).filter(keep), "entry_ids": ids.filter(keep),
                        "text_key": ["alt"] * n,
                        "language": pa.array(world.row_language).take(chosen).filter(keep)},
                       schema=CURATED_WORLDWIDE)  # fmt: skip
    storage.write_parquet_atomic(f"{out}/curated/part-00000.parquet", curated)
    results = fake_results(world)
    results["sampled"] = [{"rows_kept": n, "seconds": 1.0}]
    s = summary.build_summary(**results, params={**params("worldwide"), "metadata_uri":
                              world.index.uri}, language_offsets=world.offsets)  # fmt: skip
    (root / "summary.json").write_bytes(orjson.dumps(s, option=orjson.OPT_SERIALIZE_NUMPY))


def test_worldwide_card_has_the_languages_section_and_plot(world, tmp_path):
    write_worldwide_run(world, tmp_path / "run")
    run = datacard.load_run(str(tmp_path / "run"))
    assert run.language_offsets == world.offsets
    card = datacard.build_datacard(run, candidates=lambda: units_of(world), targets=[300],
                                   top_languages=3)  # fmt: skip
    p, _ = naive_thresholds(world, T_EN)
    assert card["recipe"] == "worldwide" and card["t"] == T_EN
    assert card["distribution"]["p"] == pytest.approx(p)
    assert card["distribution"]["entries_over_t"] == naive_head(world, T_EN)
    naive = naive_world_size(world, T_EN)
    assert card["expected_size"]["at_t"] == pytest.approx(naive, rel=1e-9)
    # Each language's t moves in steps of its counts, so the size is a step function of t_en
    # (fine-grained at real scale, coarse here): the target's t_en is where it steps over it.
    t_ens = card["expected_size"]["t"]
    step = t_ens[1] / t_ens[0]  # the grid's ratio; the solver narrows inside one step
    sizes = [naive_world_size(world, card["targets"][0]["t"] * r) for r in (1 / step, step)]
    assert sizes[0] <= 300 / 0.9 <= sizes[1]

    rows = {r["language"]: r for r in card["languages"]["rows"]}
    curated = storage.read_parquet(str(tmp_path / "run" / "curated" / "part-00000.parquet"))
    by_column = Counter(curated["language"].to_pylist())  # the curation's own language column
    assert {k: r["pairs_curated"] for k, r in rows.items()} == {k: by_column[k] for k in SIZES}
    assert {k: r["pairs_matched"] for k, r in rows.items()} == {k: 2 * TEXTS[k] for k in SIZES}
    assert rows["en"]["pairs_distinct"] == TEXTS["en"]
    assert sum(r["expected_curated"] for r in rows.values()) == pytest.approx(naive)
    for row in rows.values():  # the run's draw is one sample of each language's expectation
        assert abs(row["pairs_curated"] - row["expected_curated"]) <= 5 * (
            row["expected_curated"] ** 0.5) + 1
    assert card["languages"]["other_pairs_read"] == 80
    assert (card["languages"]["languages_matched"], card["languages"]["languages"]) == (5, 6)
    assert all("language" in row for row in card["top_before"])

    written = datacard.write_datacard(run, card)
    assert sorted(written) == ["count_distribution.png", "datacard.json", "datacard.md",
                               "expected_size.png", "languages.png"]  # fmt: skip
    for name in ("languages.png", "count_distribution.png", "expected_size.png"):
        assert Path(written[name]).read_bytes().startswith(PNG_MAGIC)
    md = Path(written["datacard.md"]).read_text()
    for text in ("## Languages", "![languages](languages.png)", "t_en (English's t",
                 "## Expected curated size as a function of t_en", "| other 3 languages |",
                 "80 pairs read were in languages without metadata", "## t_en for a target size",
                 "| language | entries matched / in list | t | tail share at t |"):
        assert text in md, text
    on_disk = orjson.loads(Path(written["datacard.json"]).read_bytes())
    assert on_disk["languages"]["rows"][0]["language"] == "en"

    blobs = datacard.render_card(run, card)
    assert datacard_task.card_artifact_markdown(card, blobs, written).count(
        "](data:image/png;base64,") == 3
    assert datacard_task.republish_datacard(str(tmp_path / "run"))  # every plot it names is there


def test_english_card_has_no_worldwide_content(world, tmp_path):
    """An English run's card: the rule, keys, files and Markdown of before the worldwide recipe
    (its bytes were checked unchanged against the code before it)."""
    out = tmp_path / "en"
    names = [f"entry {i}" for i in range(len(world.counts))]
    storage.write_parquet_atomic(str(out / "entry_counts.parquet"),
                                 entry_counts_table(world.counts, names, "ab" * 32, "m.json"))
    n = 5
    curated = pa.table({"url": ["u"] * n, "caption": ["c"] * n, "uuid": ["x"] * n,
                        "entry_ids": pa.array(world.rows[:n], type=LIST), "text_key": ["alt"] * n},
                       schema=CURATED)  # fmt: skip
    storage.write_parquet_atomic(str(out / "curated" / "part-00000.parquet"), curated)
    (out / "summary.json").write_text(json.dumps({"t": T_EN, "pairs_matched": 10}))
    run = datacard.load_run(str(out))
    assert run.language_offsets is None
    assert isinstance(datacard.threshold_rule(run), expected_size.SingleT)
    card = datacard.build_datacard(run, candidates=lambda: units_of(world))
    assert not {"recipe", "languages"} & set(card)
    assert all("language" not in row for row in card["top_before"])
    assert datacard.card_plot_files(card) == datacard.PLOT_FILES
    blobs = datacard.render_card(run, card)
    assert sorted(blobs) == ["count_distribution.png", "datacard.json", "datacard.md",
                             "expected_size.png"]  # fmt: skip
    md = blobs["datacard.md"].decode()
    assert "## Languages" not in md and "as a function of t\n" in md
    assert "| t | tail share p" not in md and "| t | 25 |" in md  # the English overview
    assert "| rank | entry | count before |" in md


# --------------------------------------------------------------------------- a real run


def test_card_of_a_worldwide_run_made_by_the_stages(tmp_path):
    """Every stage run as a plain function (tests/stages.py) on real multilingual texts: the
    card's thresholds, curated pairs and expected size against MetaCLIP 2's naive recipe."""
    t_en, ww_languages = 3.0, ("de", "el", "en", "es", "fr", "ja", "ru", "th", "zh")
    files = make_worldwide_inputs(tmp_path / "inputs")
    lists = make_worldwide_metadata(tmp_path / "metadata", language_texts(files), ww_languages)
    run = curate_plain(files, str(tmp_path / "metadata"), tmp_path / "out", n_buckets=3,
                       recipe="worldwide", t=t_en)  # fmt: skip
    naive = naive_worldwide_run(files, lists, t_en)
    card = datacard.build_datacard(datacard.load_run(run.output),
                                   candidates=datacard.candidate_source(run.output))  # fmt: skip
    rows = {r["language"]: r for r in card["languages"]["rows"]}
    assert card["languages"]["p"] == pytest.approx(naive.p)
    assert {k: r["t"] for k, r in rows.items()} == naive.ts
    kept = Counter(row[-1] for row in naive.kept)
    assert {k: r["pairs_curated"] for k, r in rows.items()} == {k: kept[k] for k in rows}
    distinct = Counter(language for language, _ in naive.unique.values())
    assert {k: r["pairs_distinct"] for k, r in rows.items()} == {k: distinct[k] for k in rows}
    assert all(r["pairs_matched"] >= r["pairs_distinct"] for r in rows.values())
    # Expected size: per image, the mean keep probability of its matched texts.
    texts: dict[str, list[float]] = {}
    for (uuid, _), (language, ids) in naive.unique.items():
        keep = naive_worldwide_keep_probability(ids, naive.counts[language], naive.ts[language])
        texts.setdefault(uuid, []).append(keep)
    expected = sum(sum(k) / len(k) for k in texts.values())
    assert card["expected_size"]["at_t"] == pytest.approx(expected, rel=1e-9)
    assert card["languages"]["other_pairs_read"] > 0  # the inputs hold Polish, Turkish ...


def test_the_summary_artifact_has_a_languages_table():
    from metaclip_prefect.tasks.artifacts import summary_markdown

    summary = {"recipe": "worldwide", "t": 170_000, "pairs_curated": 9, "languages": {
        "zh": {"pairs_read": 10, "pairs_matched": 5, "pairs_curated": 3, "t": 4},
        "other": {"pairs_read": 7, "pairs_matched": 0},
        "en": {"pairs_read": 20, "pairs_matched": 12, "pairs_curated": 6, "t": 170_000},
    }}  # fmt: skip
    text = summary_markdown(summary, "out")
    table = text.split("## Languages (by pairs matched)")[1].strip().splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == ["en", "zh", "other"]
    assert "| en | 20 | 12 | 6 | 170,000 |  |" in table  # no entries_matched given
    assert "languages." not in text.split("## Languages")[0]  # not flattened into Other
