"""The data card: exact expected sizes, choosing t, plots, Markdown/JSON, comparison, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
import typer
from matplotlib import image as mpimg
from typer.testing import CliRunner

from metaclip.curation import balance
from metaclip.curation.counts import SparseCounts, entry_counts_table
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.schemas import CURATED
from metaclip.reporting import datacard, expected_size
from metaclip_prefect.flows.cli_stats import register
from tests.naive import naive_keep_probability

LIST = pa.list_(pa.int32())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def zipf_rows(n_rows: int, n_entries: int, seed: int) -> list[list[int]]:
    """Zipf-like entry popularity, 1 to 4 distinct entries per row (many repeated sets)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_entries + 1)
    weights /= weights.sum()
    return [
        sorted(set(rng.choice(n_entries, size=rng.integers(1, 5), p=weights).tolist()))
        for _ in range(n_rows)
    ]


def counts_of(rows: list[list[int]], n_entries: int) -> np.ndarray:
    return SparseCounts.from_entry_ids(pa.array(rows, type=LIST)).to_dense(n_entries)


# --------------------------------------------------------------------------- expected sizes


def test_expected_sizes_equal_the_direct_sum(monkeypatch):
    rows = zipf_rows(3000, 150, seed=1)
    counts = counts_of(rows, 150)
    weights = np.random.default_rng(2).choice([1.0, 0.5, 1 / 3], size=len(rows))
    ts = np.array([0.5, 1, 7, 40, 333.3, 1e6])
    direct = [sum(w * naive_keep_probability(r, counts.tolist(), t) for r, w in
                  zip(rows, weights, strict=True)) for t in ts]
    monkeypatch.setattr(expected_size, "_BLOCK_CELLS", 64)  # many blocks: their seams must not show
    chunks = [(pa.array(rows[i : i + 700], type=LIST), weights[i : i + 700])
              for i in range(0, len(rows), 700)]
    np.testing.assert_allclose(expected_size.expected_sizes(chunks, counts, ts), direct, rtol=1e-9)
    assert expected_size.expected_sizes(chunks, counts, [1e6])[0] == pytest.approx(weights.sum())


def test_expected_size_is_the_mean_of_seeded_samplings():
    """Per pair: the mean kept size over 200 seeds is within 5 standard errors of it."""
    rows = zipf_rows(1500, 80, seed=3)
    counts, t, seeds = counts_of(rows, 80), 40.0, 200
    ids = pa.array(rows, type=LIST)
    keep = balance.keep_probabilities(ids, balance.entry_probabilities(counts, t))
    uuids, texts = [f"{i:024x}" for i in range(len(rows))], ["a caption"] * len(rows)
    kept = np.array([balance.uniform_draws(s, uuids, texts) < keep for s in range(seeds)])
    scan = expected_size.scan_candidates([(ids, np.ones(len(rows)))], counts, t, np.array([t]))
    stderr = math.sqrt((keep * (1 - keep)).sum() / seeds)
    assert abs(kept.sum(axis=1).mean() - scan.sizes[0]) <= 5 * stderr
    # The "after" curve: each entry's expected count against its sampled mean.
    per_entry = np.stack([SparseCounts.from_entry_ids(ids.filter(pa.array(k))).to_dense(80)
                          for k in kept[:50]]).astype(float)
    sd = per_entry.std(axis=0) / math.sqrt(50) + 1e-9
    assert (np.abs(per_entry.mean(axis=0) - scan.expected_counts) <= 5 * sd + 1e-6).all()


def test_expected_size_with_one_text_drawn_per_image():
    """Per image: pick one of its texts uniformly, keep it with its probability."""
    rng = np.random.default_rng(5)
    rows = zipf_rows(2400, 60, seed=4)
    image = np.sort(rng.integers(0, 1000, size=len(rows)))
    _, first, per_image = np.unique(image, return_index=True, return_counts=True)
    weights = 1.0 / np.repeat(per_image, per_image)
    counts, t = counts_of(rows, 60), 25.0
    keep = balance.keep_probabilities(pa.array(rows, type=LIST),
                                      balance.entry_probabilities(counts, t))
    sizes = []
    for _ in range(400):
        pick = first + (rng.random(len(first)) * per_image).astype(int)
        sizes.append((rng.random(len(pick)) < keep[pick]).sum())
    image_keep = np.add.reduceat(keep * weights, first)  # P(image kept): a mixture
    stderr = math.sqrt((image_keep * (1 - image_keep)).sum() / len(sizes))
    expected = expected_size.expected_sizes([(pa.array(rows, type=LIST), weights)], counts, [t])[0]
    assert expected == pytest.approx(image_keep.sum())
    assert abs(np.mean(sizes) - expected) <= 5 * stderr


def test_t_for_a_target_with_a_success_rate():
    rows = zipf_rows(2000, 100, seed=6)
    counts, units = counts_of(rows, 100), [(pa.array(rows, type=LIST), np.ones(2000))]
    ts = expected_size.t_grid(counts, 20)
    sizes = expected_size.expected_sizes(units, counts, ts)

    def sizes_at(grid: np.ndarray) -> np.ndarray:
        return expected_size.expected_sizes(units, counts, grid)

    row = expected_size.solve_t(sizes_at, ts, sizes, 1000, success_rate=0.85, passes=2)
    assert row["target_curated"] == pytest.approx(1000 / 0.85)
    reached = sizes_at(np.array([row["t"]]))[0]
    assert reached * 0.85 == pytest.approx(1000, rel=1e-3)
    far = expected_size.solve_t(sizes_at, ts, sizes, 10**6, success_rate=0.9)
    assert far["t"] is None and "unreachable" in far["note"]
    with pytest.raises(UserError):
        expected_size.solve_t(sizes_at, ts, sizes, 1000, success_rate=1.5)


# --------------------------------------------------------------------------- a run on disk

ENTRIES = [f"entry {i}" for i in range(60)] + ["the", "photo"]


def write_run(root: Path, seed: int, t: float = 30.0) -> list[list[int]]:
    """A small finished output: entry counts, summary, a curated shard, a matched part."""
    rows = zipf_rows(1200, len(ENTRIES), seed=seed)
    counts = counts_of(rows, len(ENTRIES))
    out = str(root)
    storage.write_parquet_atomic(f"{out}/entry_counts.parquet",
                                 entry_counts_table(counts, ENTRIES, "ab" * 32, "meta.json"))
    ids = pa.array(rows, type=LIST)
    uuids = [f"{seed}-{i}" for i in range(len(rows))]
    mask = balance.sample_mask(ids, uuids, uuids, balance.entry_probabilities(counts, t), 0)
    n = int(mask.sum())
    curated = pa.table({"url": [f"http://x/{i}.jpg" for i in range(n)], "caption": ["c"] * n,
                        "uuid": [u for u, k in zip(uuids, mask, strict=True) if k],
                        "entry_ids": ids.filter(pa.array(mask)), "text_key": ["alt"] * n},
                       schema=CURATED)
    storage.write_parquet_atomic(f"{out}/curated/part-00000.parquet", curated)
    storage.write_parquet_atomic(f"{out}/_work/matched/00000.parquet", pa.table({"entry_ids": ids}))
    summary = {"t": t, "seed": 0, "pairs_read": 3000, "pairs_matched": len(rows),
               "pairs_curated": n, "metadata": {"sha256": "ab" * 32, "uri": "meta.json"}}
    (root / "summary.json").write_text(json.dumps(summary))
    return rows


def units_of(rows: list[list[int]]) -> datacard.UnitSource:
    return lambda: [(pa.array(rows, type=LIST), np.ones(len(rows)))]


def assert_png(path: Path) -> None:
    blob = path.read_bytes()
    assert blob.startswith(PNG_MAGIC) and len(blob) > 10_000
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


@pytest.mark.slow
def test_card_files_plots_markdown_and_json(tmp_path):
    rows = write_run(tmp_path / "run", seed=7)
    run = datacard.load_run(str(tmp_path / "run"))
    card = datacard.build_datacard(run, None, units_of(rows), targets=[500, 10**6],
                                   success_rate=0.9, top=10)
    written = datacard.write_datacard(run, card)
    out = tmp_path / "run" / "datacard"
    assert sorted(p.name for p in out.iterdir()) == sorted(written) == sorted(
        ["datacard.json", "datacard.md", "count_distribution.png", "expected_size.png"])
    assert_png(out / "count_distribution.png")
    assert_png(out / "expected_size.png")

    doc = orjson.loads((out / "datacard.json").read_bytes())
    assert doc["t"] == 30.0
    assert doc["distribution"]["p"] == pytest.approx(balance.t_to_p(run.counts, 30.0))
    assert doc["distribution"]["entries_over_t"] == balance.entries_over_t(run.counts, 30.0)
    assert doc["top_before"][0]["count"] == run.counts.max()
    assert doc["top_before"][0]["after"] == run.curated_counts[doc["top_before"][0]["entry_id"]]
    exact = expected_size.expected_sizes(units_of(rows)(), run.counts, [30.0])[0]
    assert doc["expected_size"]["at_t"] == pytest.approx(exact)
    assert abs(doc["pairs"]["curated"] - exact) < 5 * math.sqrt(exact)  # the real draw agrees
    assert doc["targets"][0]["t"] > 0 and doc["targets"][1]["t"] is None
    assert "expected_after" not in doc  # one number per entry: kept out of the JSON

    md = (out / "datacard.md").read_text()
    for text in ("# Data card", "![entry counts](count_distribution.png)",
                 "![expected size](expected_size.png)", "## t for a target size",
                 "tail share p", f"| 1 | {ENTRIES[int(np.argmax(run.counts))]} |"):
        assert text in md


@pytest.mark.slow
def test_card_without_candidates_or_curated_shards(tmp_path):
    write_run(tmp_path / "run", seed=8)
    for part in (tmp_path / "run" / "curated").iterdir():
        part.unlink()
    assert not datacard.load_run(str(tmp_path / "run")).curated_counts.any()  # nothing kept
    (tmp_path / "run" / "curated").rmdir()
    run = datacard.load_run(str(tmp_path / "run"))
    card = datacard.build_datacard(run, t=5.0)
    assert run.curated_counts is None and "expected_size" not in card
    assert "## Expected curated size" not in datacard.render_markdown(card)
    written = datacard.write_datacard(run, card)
    assert "expected_size.png" not in written
    assert_png(Path(written["count_distribution.png"]))


def test_comparison_aligns_entries_by_text(tmp_path):
    a = datacard.RunData("a", np.array([50, 5, 100, 0], np.uint64), ["cat", "dog", "the", "x"],
                         {"t": 20})
    b = datacard.RunData("b", np.array([300, 40, 2, 30], np.uint64),
                         ["the", "dog", "cat", "bird"], {"t": 25})
    cmp = datacard.compare_runs(a, b)
    assert [e["entry"] for e in cmp["entered"]] == ["dog", "bird"]
    assert cmp["entered"][1] == {"entry": "bird", "count_a": 0.0, "count_b": 30.0}
    assert [e["entry"] for e in cmp["left"]] == ["cat"]
    assert (cmp["head_entered"], cmp["head_left"], cmp["head_stayed"]) == (2, 1, 1)
    assert cmp["p_change"] == pytest.approx(2 / 372 - 5 / 155)
    assert cmp["p_b_at_t_a"] == pytest.approx(2 / 372)
    md = datacard.render_comparison_markdown(cmp)
    assert "## Entered the head" in md and "| bird | 0 | 30 |" in md
    written = datacard.write_comparison(a, b, cmp, str(tmp_path / "cmp"))
    assert_png(Path(written["comparison.png"]))


# --------------------------------------------------------------------------- the CLI

runner = CliRunner()


@pytest.fixture
def app(monkeypatch) -> typer.Typer:
    cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(cli)
    # Candidates from the run's matched part (whatever the curation's own iterator reads).
    monkeypatch.setattr(datacard, "candidate_source", lambda output: lambda: list(
        datacard.matched_pair_units(output)))
    return cli


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stats", "{tmp}/nowhere"], "not a curation output (no entry_counts.parquet)"),
        (["stats", "nosuchscheme://bucket/run"], "cannot open"),
        (["stats", "{tmp}/garbage"], "cannot read the run in"),
        (["stats", "{tmp}/run", "--t", "-3"], "--t must be positive"),
        (["stats", "{tmp}/run", "--success-rate", "1.5"], "--success-rate must be in (0, 1]"),
        (["stats", "{tmp}/run", "--target", "0"], "--target sizes must be positive"),
        (["compare", "{tmp}/run", "{tmp}/nowhere"], "not a curation output"),
    ],
)
def test_cli_mistakes_are_one_line_with_exit_2(app, tmp_path, args, message):
    write_run(tmp_path / "run", seed=9)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "entry_counts.parquet").write_bytes(b"not parquet")
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert_one_line_error(result, message)
    assert not (tmp_path / "run" / "datacard").exists()


@pytest.mark.slow
def test_cli_stats_and_compare(app, tmp_path):
    write_run(tmp_path / "a", seed=10)
    write_run(tmp_path / "b", seed=11, t=60.0)
    result = runner.invoke(app, ["stats", str(tmp_path / "a"), "--target", "300", "--top", "5"])
    assert result.exit_code == 0, result.output
    assert "tail share p" in result.output and "300 downloaded pairs at 90% success: t =" in (
        result.output.replace("\n", " "))
    assert (tmp_path / "a" / "datacard" / "datacard.md").exists()
    result = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"),
                                 "--write", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "p moved by" in result.output
    assert_png(tmp_path / "cmp" / "comparison.png")
    assert runner.invoke(app, ["stats", "--help"]).exit_code == 0


# --------------------------------------------------------------------------- in a flow run


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_publish_datacard_writes_files_and_artifacts(tmp_path, monkeypatch):
    """More on the artifact (embedded plots, keys, its flow run) in tests/test_artifacts.py."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from metaclip_prefect.tasks.artifacts import artifact_key
    from metaclip_prefect.tasks.datacard import publish_datacard

    write_run(tmp_path / "run", seed=12)
    monkeypatch.setattr(datacard, "candidate_source", lambda output: lambda: list(
        datacard.matched_pair_units(output)))

    @flow
    def card_flow(output: str) -> dict[str, str]:
        return publish_datacard(output, 30.0, targets=[400])

    ours = str(tmp_path / "run")
    written = card_flow(ours)
    assert sorted(written) == ["count_distribution.png", "datacard.json", "datacard.md",
                               "expected_size.png"]
    assert_png(Path(written["expected_size.png"]))

    key = artifact_key("datacard", ours)
    with get_client(sync_client=True) as client:
        (markdown,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert markdown.type == "markdown" and f"# Data card: `{ours}`" in markdown.data
    assert "tail share p" in markdown.data and "](data:image/png;base64," in markdown.data
