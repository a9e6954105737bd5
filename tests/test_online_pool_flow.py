"""The matched pool end to end: `curate --write-pool`, `metaclip pool` and `metaclip rebalance`
on the demo data, on a local Dask cluster and a real Prefect API (test server).

The pool (metaclip.curation.pool) is every candidate a curation draws its balanced set from:
the curation's own draw over it (epoch None) is exactly the curated set, its exact expected
size per epoch is the data card's, and a training loader reads it from local disk or S3.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from metaclip.curation import worldwide
from metaclip.curation.balance import uniform_draws
from metaclip.io import lease
from metaclip.io.paths import lock_uri
from metaclip.io.schemas import CURATED_WORLDWIDE, POOL, POOL_WORLDWIDE
from metaclip.online import decide
from metaclip.online.decide import CURATION_DRAW, OnlineBalance
from metaclip.online.pool import read_pool
from metaclip_prefect.flows.cli import DEMO_T, DEMO_T_EN, app
from metaclip_prefect.flows.curate import curate
from metaclip_prefect.flows.pool import write_pool
from metaclip_prefect.flows.rebalance import rebalance  # noqa: F401 - loaded before any invoke
from tests.support.s3servers import MotoServer
from tests.support.task_runs import task_states

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "metaclip" / "demo_data"
DEMO_WORLDWIDE = ROOT / "metaclip" / "demo_worldwide"
CURATED_COLUMNS = ["url", "caption", "uuid", "entry_ids", "text_key"]
EPOCHS = 300
# The flows (and Prefect's logging) are imported above, outside any CliRunner.invoke (as
# tests/test_cli.py explains: a second in-process run would fail in Prefect's logging).
runner = CliRunner()

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


# --------------------------------------------------------------------------- helpers


def curate_demo(output: Path, **overrides) -> dict:
    """The English demo curation (as `metaclip demo`), through the flow."""
    params = dict(inputs=[str(DEMO)], metadata=str(DEMO / "metadata.json"), output=str(output),
                  t=DEMO_T, batch_size=1, n_buckets=4, n_workers=2, dashboard_address=":0")
    params.update(overrides)
    state = curate(**params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def pool_table(location: Path | str) -> pa.Table:
    """The pool's rows, its parts in the manifest's order."""
    return pa.concat_tables([pq.read_table(p.uri) for p in read_pool(str(location)).parts])


def curated_table(output: Path) -> pa.Table:
    parts = sorted((output / "curated").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def sorted_rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    def plain(value):
        return tuple(value) if isinstance(value, list) else value

    cols = [table[c].to_pylist() for c in columns]
    return sorted(tuple(plain(v) for v in row) for row in zip(*cols, strict=True))


def curation_draw(location: Path | str, **kw) -> pa.Table:
    """The pool's rows that the curation's own draw keeps (epoch None), default its t and seed."""
    table = pool_table(location)
    balance = OnlineBalance.from_pool(str(location), **kw)
    mask = balance.keep_mask(CURATION_DRAW, table["entry_ids"], uuids=table["uuid"].to_pylist(),
                             texts=table["caption"].to_pylist())  # fmt: skip
    return table.filter(pa.array(mask))


def keep_probs(balance: OnlineBalance, table: pa.Table) -> np.ndarray:
    ids = table["entry_ids"].combine_chunks()
    return decide.keep_probabilities(ids.offsets.to_numpy(), ids.values.to_numpy(), balance.probs)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def naive_choice(pairs: pa.Table, seed: int) -> set[tuple[str, str]]:
    """One text per image among all its pairs, by the lowest "choose" draw (tests/test_flow.py's
    restatement of the curation's choice)."""
    by_image: dict[str, list[str]] = defaultdict(list)
    for u, x in zip(pairs["uuid"].to_pylist(), pairs["caption"].to_pylist(), strict=True):
        by_image[u].append(x)
    chosen = set()
    for u, texts in by_image.items():
        draws = uniform_draws(seed, [u] * len(texts), texts, purpose="choose")
        chosen.add((u, texts[int(np.argmin(draws))]))
    return chosen


def pairs_of(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(), strict=True))


# --------------------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def english(tmp_path_factory) -> SimpleNamespace:
    """The demo curation with --write-pool (one text per image, seed 0, t 8)."""
    output = tmp_path_factory.mktemp("english") / "out"
    return SimpleNamespace(output=output, summary=curate_demo(output, write_pool=True))


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> SimpleNamespace:
    """The same curation without a pool (its pool comes later, from `metaclip pool`)."""
    output = tmp_path_factory.mktemp("plain") / "out"
    return SimpleNamespace(output=output, summary=curate_demo(output))


@pytest.fixture(scope="module")
def all_texts(tmp_path_factory) -> SimpleNamespace:
    """Every (image, text) pair drawn: the pool holds every distinct matched pair."""
    output = tmp_path_factory.mktemp("all-texts") / "out"
    summary = curate_demo(output, write_pool=True, one_text_per_image=False)
    return SimpleNamespace(output=output, summary=summary)


# --------------------------------------------------------------------------- 1: the pool


def test_curate_writes_a_whole_pool(english):
    output, summary = english.output, english.summary
    pool_dir = output / "pool"
    manifest = json.loads((pool_dir / "pool.json").read_text())
    pool = read_pool(str(output))
    # one text per image: the candidates are the matched images (the summary names no other
    # candidate count for the English recipe)
    assert manifest["rows"] == sum(p["rows"] for p in manifest["parts"]) == pool.rows
    assert manifest["rows"] == summary["images_matched"] == summary["pool"]["rows"]
    assert summary["pairs_unique"] > summary["images_matched"]  # a choice was made
    assert manifest["curation"] == {"t": DEMO_T, "seed": 0, "one_text_per_image": True}
    assert summary["outputs"]["pool"] == str(pool_dir)
    assert summary["pool"]["parts"] == [str(pool_dir / p["path"]) for p in manifest["parts"]]
    on_disk = sorted(p.name for p in pool_dir.glob("part-*.parquet"))
    assert on_disk == sorted(p["path"] for p in manifest["parts"]) and len(on_disk) == 4
    for part in manifest["parts"]:
        data = (pool_dir / part["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part["sha256"], part["path"]
        assert pq.read_metadata(pool_dir / part["path"]).num_rows == part["rows"]
    counts = (pool_dir / "entry_counts.parquet").read_bytes()
    assert counts == (output / "entry_counts.parquet").read_bytes()
    assert hashlib.sha256(counts).hexdigest() == manifest["entry_counts"]["sha256"]

    table = pool_table(output)
    assert table.schema == POOL
    assert table.num_rows == manifest["rows"]
    assert len(set(table["uuid"].to_pylist())) == table.num_rows  # one text per image
    keys = [decide.pair_key(u, x) for u, x in
            zip(table["uuid"].to_pylist(), table["caption"].to_pylist(), strict=True)]
    assert table["pair_key"].to_pylist() == keys


# --------------------------------------------------------------------------- 2: exactness


def test_the_curation_draw_over_the_pool_is_the_curated_set(english):
    output = english.output
    kept = curation_draw(output)
    curated = curated_table(output)
    assert curated.num_rows == english.summary["pairs_curated"] == kept.num_rows
    assert sorted_rows(kept, CURATED_COLUMNS) == sorted_rows(curated, CURATED_COLUMNS)
    assert 0 < kept.num_rows < pool_table(output).num_rows  # the draw dropped some
    # epochs are other draws over the same pool: not the curated set, but of its size
    table = pool_table(output)
    balance = OnlineBalance.from_pool(str(output))
    masks = [balance.keep_mask(e, table["entry_ids"], keys=table["pair_key"]) for e in range(4)]
    assert len({m.tobytes() for m in masks}) > 1


# --------------------------------------------------------------------------- 3: metaclip pool


def test_pool_command_writes_the_same_pool_and_leaves_the_curation(english, plain):
    output = plain.output
    assert not (output / "pool").exists()
    curation = ["curated", "summary.json", "complete.json", "entry_counts.parquet", "datacard"]

    def curation_files() -> dict[str, bytes]:
        out = {}
        for name in curation:
            path = output / name
            out |= file_bytes(path) if path.is_dir() else {name: path.read_bytes()}
        return out

    before = curation_files()
    result = runner.invoke(app, ["pool", str(output), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"pool: {english.summary['pool']['rows']} pairs in {output / 'pool'}" in result.stdout
    assert curation_files() == before  # the curation, its summary and card: not one byte

    ours, theirs = read_pool(str(output)), read_pool(str(english.output))
    assert [Path(p.uri).name for p in ours.parts] == [Path(p.uri).name for p in theirs.parts]
    for mine, other in zip(ours.parts, theirs.parts, strict=True):  # bucket for bucket
        a, b = pq.read_table(mine.uri), pq.read_table(other.uri)
        assert a.sort_by("uuid").to_pylist() == b.sort_by("uuid").to_pylist()
    assert (ours.curation_t, ours.curation_seed) == (theirs.curation_t, theirs.curation_seed)
    assert ours.counts_sha256 == theirs.counts_sha256
    kept = curation_draw(output)
    assert sorted_rows(kept, CURATED_COLUMNS) == sorted_rows(curated_table(output), CURATED_COLUMNS)

    # Again: every bucket's pool task is a cache hit, and no part is written again.
    parts = {p: p.stat().st_mtime_ns for p in (output / "pool").glob("part-*.parquet")}
    state = write_pool(output=str(output), n_workers=2, dashboard_address=":0", return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["pool"]["rows"] == ours.rows
    states = task_states(state.state_details.flow_run_id)
    assert states["pool"] == ["Cached"] * 4, states
    assert {p: p.stat().st_mtime_ns for p in parts} == parts
    assert curation_files() == before


# --------------------------------------------------------------------------- 4: refusals


def test_pool_command_without_a_finished_curation_exits_2(tmp_path):
    (tmp_path / "out").mkdir()
    for folder in (tmp_path / "out", tmp_path / "missing"):
        result = runner.invoke(app, ["pool", str(folder)])
        assert result.exit_code == 2, result.output
        assert "no finished curation" in one_error_line(result)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert not any((tmp_path / "out").iterdir())


def test_pool_command_refuses_an_output_another_run_writes(english, tmp_path):
    copy = tmp_path / "busy"
    shutil.copytree(english.output, copy)
    shutil.rmtree(copy / "pool")
    with lease.held(lock_uri(str(copy)), "another-run"):
        before = file_bytes(copy)
        result = runner.invoke(app, ["pool", str(copy), "--workers", "1"])
        assert result.exit_code == 2, result.output
        assert "is being written by another-run" in one_error_line(result)
        assert file_bytes(copy) == before
    assert not (copy / "pool").exists()


# --------------------------------------------------------------------------- 5: rebalance


def test_rebalance_refreshes_the_pool(english, all_texts, tmp_path):
    copy = tmp_path / "rebalanced"
    shutil.copytree(english.output, copy)
    parts_before = {p.name: p.read_bytes() for p in (copy / "pool").glob("part-*.parquet")}

    result = runner.invoke(app, ["rebalance", str(copy), "--t", "4", "--workers", "2"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((copy / "pool" / "pool.json").read_text())
    assert manifest["curation"] == {"t": 4.0, "seed": 0, "one_text_per_image": True}
    # the same seed: the same text per image, the same parts (t does not change the pool)
    assert {p.name: p.read_bytes() for p in (copy / "pool").glob("part-*.parquet")} == parts_before
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["t"] == 4.0 and summary["pool"]["rows"] == manifest["rows"]
    kept = curation_draw(copy)
    assert sorted_rows(kept, CURATED_COLUMNS) == sorted_rows(curated_table(copy), CURATED_COLUMNS)
    assert kept.num_rows == summary["pairs_curated"] < english.summary["pairs_curated"]

    result = runner.invoke(app, ["rebalance", str(copy), "--t", "4", "--seed", "7",
                                 "--workers", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    pool = read_pool(str(copy))
    assert (pool.curation_t, pool.curation_seed) == (4.0, 7)
    assert pool.rows == english.summary["images_matched"]
    table = pool_table(copy)
    assert table.schema == POOL
    every_pair = pool_table(all_texts.output)
    assert pairs_of(table) == naive_choice(every_pair, 7)  # the text choice follows the seed
    assert pairs_of(table) != pairs_of(pool_table(english.output))  # and it changed
    assert pairs_of(pool_table(english.output)) == naive_choice(every_pair, 0)
    kept = curation_draw(copy)  # defaults: the pool's t 4 and seed 7
    curated = curated_table(copy)
    assert sorted_rows(kept, CURATED_COLUMNS) == sorted_rows(curated, CURATED_COLUMNS)
    assert curated.num_rows == json.loads((copy / "summary.json").read_text())["pairs_curated"]


# --------------------------------------------------------------------------- 6: the data card


def card_points(card: dict) -> list[tuple[float, float]]:
    """(t, expected size) at the card's own t and two other points of its grid."""
    ts, sizes = card["expected_size"]["t"], card["expected_size"]["pairs"]
    own = ts.index(card["t"])
    assert sizes[own] == card["expected_size"]["at_t"]
    picks = [own, len(ts) // 5, (4 * len(ts)) // 5]
    assert len(set(picks)) == 3
    return [(ts[i], sizes[i]) for i in picks]


def test_every_pair_pool_expectation_is_the_data_cards(all_texts):
    """Without one text per image, the pool is every pair the card's expectation runs over:
    the sum of the pool's keep probabilities is the card's expected size, and the epochs'
    sizes average to it."""
    output, summary = all_texts.output, all_texts.summary
    card = json.loads((output / "datacard" / "datacard.json").read_text())
    table = pool_table(output)
    assert table.num_rows == summary["pairs_unique"] == card["candidates"]["texts"]
    assert read_pool(str(output)).rows == table.num_rows
    for t, expected in card_points(card):
        balance = OnlineBalance.from_pool(str(output), t=t)
        probs = keep_probs(balance, table)
        assert probs.sum() == pytest.approx(expected, rel=1e-9), t
        sizes = [int(balance.keep_mask(e, table["entry_ids"], keys=table["pair_key"]).sum())
                 for e in range(EPOCHS)]  # fmt: skip
        sigma = math.sqrt(float((probs * (1 - probs)).sum()))
        assert sigma > 0, t  # some pairs are drawn at every one of these t
        standard_error = sigma / math.sqrt(EPOCHS)
        assert abs(np.mean(sizes) - expected) <= 4 * standard_error, (t, np.mean(sizes))


def test_one_text_pool_expectation_is_the_cards_up_to_the_choice(english, all_texts):
    """With one text per image the card's expected size is over the random choice of text:
        card(t) = sum over images i of mean over i's texts j of q_ij(t),
    q the keep probability. The pool fixes the run's choice c(i), and its exact expectation is
        pool(t) = sum_i q_i,c(i)(t).
    Were the choice uniform and independent per image (a hash of (seed, uuid, text)), pool(t)
    would have mean card(t) and variance V(t) = sum_i var_j(q_ij(t)); so
    |pool(t) - card(t)| <= 4 sqrt(V(t)) for all but ~1e-4 of seeds. For sure, whatever the
    seed, |pool(t) - card(t)| <= sum_i (max_j q_ij - min_j q_ij) (only images with several
    texts contribute). The every-pair run's pool holds every image's texts, so card(t) is
    computed here from it, exactly."""
    card = json.loads((english.output / "datacard" / "datacard.json").read_text())
    pool = pool_table(english.output)
    every_pair = pool_table(all_texts.output)
    assert pairs_of(pool) <= pairs_of(every_pair)
    images = np.unique(every_pair["uuid"].to_numpy(zero_copy_only=False), return_inverse=True)[1]
    n_images = int(images.max()) + 1
    assert n_images == pool.num_rows == card["candidates"]["units"]
    texts = np.bincount(images, minlength=n_images)
    assert (texts > 1).any()
    for t, expected in card_points(card):
        balance = OnlineBalance.from_pool(str(english.output), t=t)
        q_all, q_pool = keep_probs(balance, every_pair), keep_probs(balance, pool)
        mean = np.bincount(images, weights=q_all, minlength=n_images) / texts
        assert mean.sum() == pytest.approx(expected, rel=1e-9), t  # the card, restated
        variance = np.bincount(images, weights=q_all**2, minlength=n_images) / texts - mean**2
        lo, hi = np.full(n_images, np.inf), np.full(n_images, -np.inf)
        np.minimum.at(lo, images, q_all)
        np.maximum.at(hi, images, q_all)
        spread = hi - lo
        gap = abs(float(q_pool.sum()) - expected)
        assert gap <= spread.sum() + 1e-9, t
        assert gap <= 4 * math.sqrt(max(float(variance.sum()), 0.0)) + 1e-9 * expected, t


# --------------------------------------------------------------------------- 7: worldwide


def test_worldwide_pool_keeps_the_curated_set(tmp_path):
    output = tmp_path / "world"
    state = curate(inputs=[str(DEMO_WORLDWIDE)], metadata=str(DEMO_WORLDWIDE / "metadata"),
                   output=str(output), recipe="worldwide", t=DEMO_T_EN, batch_size=1,
                   n_buckets=4, n_workers=2, dashboard_address=":0", write_pool=True,
                   return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    summary = state.result()
    pool = read_pool(str(output))
    assert pool.worldwide and pool.curation_t == DEMO_T_EN
    table = pool_table(output)
    assert table.schema == POOL_WORLDWIDE and table.num_rows == pool.rows
    languages = summary["languages"]
    candidates = {x: f["pairs_candidates"] for x, f in languages.items()
                  if f.get("pairs_candidates")}  # fmt: skip
    assert sum(candidates.values()) == table.num_rows
    in_pool = dict(zip(*np.unique(table["language"].to_numpy(zero_copy_only=False),
                                  return_counts=True), strict=True))  # fmt: skip
    assert {x: int(n) for x, n in in_pool.items()} == candidates
    assert len(candidates) > 1

    balance = OnlineBalance.from_pool(str(output))
    counts_uri = str(output / "entry_counts.parquet")
    assert balance.probs.tolist() == worldwide.entry_probabilities(counts_uri, DEMO_T_EN).tolist()
    kept = curation_draw(output)
    curated = curated_table(output)
    columns = CURATED_WORLDWIDE.names
    assert curated.num_rows == summary["pairs_curated"] > 0
    assert sorted_rows(kept, columns) == sorted_rows(curated, columns)
    assert kept.num_rows < table.num_rows


# --------------------------------------------------------------------------- 8: S3


def test_a_pool_on_s3_gives_the_same_epoch(english):
    """The pool folder copied on its own to an S3-compatible server (moto, loopback): the
    loader reads it there and yields the same sample as from the local folder."""
    pytest.importorskip("torch")
    import s3fs

    from metaclip.online.torch_pool import BalancedPool

    local = english.output / "pool"
    with MotoServer() as server:
        opts = {"key": "testing", "secret": "testing",
                "client_kwargs": {"endpoint_url": server.endpoint}}
        fs = s3fs.S3FileSystem(**opts)
        fs.mkdir("training")
        for path in sorted(local.iterdir()):
            fs.put(str(path), f"training/pool/{path.name}")
        remote = BalancedPool("s3://training/pool", epoch=0, storage_options=opts)
        assert remote.pool.root == "s3://training/pool"
        from_s3 = list(remote)
    from_disk = list(BalancedPool(str(english.output), epoch=0))
    assert from_s3 == from_disk and from_disk
    table = pool_table(english.output)
    mask = OnlineBalance.from_pool(str(english.output)).keep_mask(0, table["entry_ids"],
                                                                  keys=table["pair_key"])
    assert sorted(r["pair_key"] for r in from_disk) == sorted(
        table.filter(pa.array(mask))["pair_key"].to_pylist()
    )
