"""The pool stage (metaclip.curation.pool) as plain functions, against the naive run of
tests/stages.py: the pool is the curation's candidates, the curation's draw over it is the
curated set, and every epoch's online sample is a naive restatement of the decision."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip.io.paths import OutputLayout
from metaclip.io.schemas import POOL
from metaclip.online.decide import CURATION_DRAW, OnlineBalance
from metaclip.online.pool import read_pool
from tests.naive import naive_keep_probability
from tests.stages import (
    SEED,
    T,
    curate_plain,
    make_inputs,
    make_metadata,
    naive_run,
    run_curated,
    run_pool,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("pool-stages")
    files = make_inputs(root / "inputs")
    entries = make_metadata(root / "metadata.json", files)
    run = curate_plain(files, str(root / "metadata.json"), root / "out", n_buckets=4)
    return SimpleNamespace(root=root, files=files, entries=entries, run=run,
                           naive=naive_run(files, entries), manifest=run_pool(run))  # fmt: skip


def pool_table(output: str) -> pa.Table:
    pool = read_pool(output)
    return pa.concat_tables([pq.read_table(p.uri) for p in pool.parts])


def rows(table: pa.Table) -> set[tuple[str, str, tuple[int, ...]]]:
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                   map(tuple, table["entry_ids"].to_pylist()), strict=True))  # fmt: skip


def naive_pair_key(uuid: str, text: str) -> int:
    digest = hashlib.blake2b(f"{uuid}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def naive_epoch_draw(key: int, seed: int, epoch: int) -> float:
    """docs/online.md's draw, restated: splitmix64 of the pair key xor the (seed, epoch) salt,
    its top 53 bits as a fraction."""
    salt = naive_pair_key("metaclip-epoch", f"{seed}\x1f{epoch}")  # blake2b of the same bytes
    mask = 2**64 - 1
    z = ((key ^ salt) + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return ((z ^ (z >> 31)) >> 11) / 2**53


def test_the_pool_is_the_curations_candidates(world):
    table = pool_table(world.run.output)
    assert table.schema == POOL
    naive = world.naive
    assert rows(table) == {(u, x, tuple(naive.unique[u, x])) for u, x in naive.candidates}
    assert table.num_rows == len(naive.candidates) == world.manifest["rows"]
    keys = [naive_pair_key(u, x) for u, x in zip(table["uuid"].to_pylist(),
                                                 table["caption"].to_pylist(), strict=True)]
    assert table["pair_key"].to_pylist() == keys


def test_the_manifest_names_every_part_and_the_counts(world):
    layout = OutputLayout(world.run.output)
    pool = read_pool(world.run.output)
    assert pool.root == layout.pool_dir and pool.curation_t == T and pool.curation_seed == SEED
    for part in pool.parts:
        data = Path(part.uri).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part.sha256
        assert pq.read_metadata(part.uri).num_rows == part.rows
    assert Path(layout.pool_counts).read_bytes() == Path(world.run.counts_uri).read_bytes()


def test_the_curations_draw_over_the_pool_keeps_exactly_the_curated_set(world):
    table = pool_table(world.run.output)
    balance = OnlineBalance.from_pool(world.run.output)
    mask = balance.keep_mask(CURATION_DRAW, table["entry_ids"], uuids=table["uuid"].to_pylist(),
                             texts=table["caption"].to_pylist())  # fmt: skip
    assert rows(table.filter(pa.array(mask))) == run_curated(world.run) == world.naive.kept


@pytest.mark.parametrize("t", [1, T, 10])
def test_every_epoch_is_the_naive_decision(world, t):
    table = pool_table(world.run.output)
    counts = world.naive.counts
    balance = OnlineBalance.from_pool(world.run.output, t=t)
    for epoch in range(6):
        mask = balance.keep_mask(epoch, table["entry_ids"], keys=table["pair_key"])
        naive = [
            naive_epoch_draw(naive_pair_key(u, x), SEED, epoch)
            < naive_keep_probability(ids, counts, t)
            for u, x, ids in zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                                 table["entry_ids"].to_pylist(), strict=True)
        ]  # fmt: skip
        assert mask.tolist() == naive


def test_epochs_differ_in_the_head_and_keep_the_tail(world):
    table = pool_table(world.run.output)
    balance = OnlineBalance.from_pool(world.run.output)
    masks = [balance.keep_mask(e, table["entry_ids"], keys=table["pair_key"]) for e in range(8)]
    probs = np.array([naive_keep_probability(ids, world.naive.counts, T)
                      for ids in table["entry_ids"].to_pylist()])  # fmt: skip
    tail = probs == 1.0
    assert tail.any() and (~tail).any()
    assert all(m[tail].all() for m in masks)
    assert len({m[~tail].tobytes() for m in masks}) > 1


def test_sub_buckets_and_a_rerun_give_the_same_pool(world, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METACLIP_MAX_BUCKET_ROWS", "8")
        run2 = curate_plain(world.files, world.run.settings.metadata_uri, tmp_path / "out-2",
                            n_buckets=2)  # fmt: skip
    assert any(len(b["dedup_uris"]) > 1 for b in run2.buckets)
    run_pool(run2)
    assert rows(pool_table(run2.output)) == rows(pool_table(world.run.output))
    stale = Path(OutputLayout(run2.output).pool_part(7))
    stale.write_bytes(Path(read_pool(run2.output).parts[0].uri).read_bytes())
    run_pool(run2)  # a part no bucket writes (an earlier run's) goes
    assert not stale.exists()
    assert rows(pool_table(run2.output)) == rows(pool_table(world.run.output))


def test_every_pair_is_in_the_pool_without_one_text_per_image(world, tmp_path):
    run = replace(world.run, settings=replace(world.run.settings, one_text_per_image=False,
                                              output=str(tmp_path / "all")))  # fmt: skip
    manifest = run_pool(run)
    naive = world.naive
    assert rows(pool_table(run.output)) == {(u, x, tuple(ids)) for (u, x), ids
                                            in naive.unique.items()}  # fmt: skip
    assert manifest["curation"]["one_text_per_image"] is False


def test_a_curation_into_an_output_with_a_pool_rewrites_the_pool(world, tmp_path):
    """A rerun without write_pool must not leave a pool describing the previous run."""
    from metaclip.config import CurateConfig, Stores
    from metaclip_prefect.flows.curate import plan_run

    def planned(output: Path) -> bool:
        config = CurateConfig.from_params(inputs=world.files[:1], output=str(output),
                                          metadata=str(world.root / "metadata.json"))  # fmt: skip
        return plan_run(config, Stores())[0].write_pool

    assert planned(tmp_path / "fresh") is False
    assert planned(Path(world.run.output)) is True  # it has a pool (the module's run_pool)
