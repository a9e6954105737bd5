"""The two online-balancing loaders on a real pool: BalancedPool (a PyTorch IterableDataset over
the pool's Parquet) and BalancedShards / balanced (webdataset over img2dataset-like shards).

Whatever reads it (one reader, explicit ranks, DataLoader workers, real torch.distributed ranks,
shuffled or not, interrupted and resumed), an epoch yields exactly the rows
`OnlineBalance.keep_mask` keeps on the concatenated pool, each once.

The pool is the real one of tests/test_online_decide.py (real captions matched against the WordNet
metadata), written as 4 parts of uneven sizes with 700-row row groups, so readers' ranges and the
loader's chunks cross part and row-group boundaries.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
wds = pytest.importorskip("webdataset")

from metaclip.config.curation import ENGLISH_RECIPE  # noqa: E402
from metaclip.curation.counts import entry_counts_table  # noqa: E402
from metaclip.io import storage  # noqa: E402
from metaclip.io.paths import POOL_COUNTS, POOL_MANIFEST  # noqa: E402
from metaclip.online.decide import OnlineBalance, keep_probabilities  # noqa: E402
from metaclip.online.pool import pool_manifest  # noqa: E402
from metaclip.online.split import POSITION, Consumer  # noqa: E402
from metaclip.online.torch_pool import BalancedPool, collate  # noqa: E402
from metaclip.online.webdataset_stage import BalancedShards, balanced  # noqa: E402
from tests.test_online_decide import METADATA, real_pool_table  # noqa: E402

T = 10
SEED = 7
PART_BOUNDS = [0, 3100, 5000, 7777]  # then the end: 4 parts of uneven sizes
ROW_GROUP = 700
SHARD_ROWS = 2000  # the pool's first rows as webdataset shards (Python's tarfile is slow)
SHARD_SIZE = 400  # samples per shard: 5 shards
MTIME = 1_700_000_000  # a whole-second mtime: no pax header per member, twice as fast to read


# --------------------------------------------------------------------------- the pool on disk


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    table, counts, entries = real_pool_table()
    root = tmp_path_factory.mktemp("online-loaders") / "out" / "pool"
    root.mkdir(parents=True)
    counts_table = entry_counts_table(counts, entries, "0" * 64, str(METADATA))
    storage.write_parquet_atomic(str(root / POOL_COUNTS), counts_table)
    bounds = [*PART_BOUNDS, table.num_rows]
    parts = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        path = root / f"part-{i:05d}.parquet"
        pq.write_table(table.slice(lo, hi - lo), path, row_group_size=ROW_GROUP,
                       write_page_checksum=True)  # fmt: skip
        parts.append({"uri": str(path), "rows": hi - lo,
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})  # fmt: skip
    counts_bytes = (root / POOL_COUNTS).read_bytes()
    manifest = pool_manifest(ENGLISH_RECIPE, T, SEED, True, counts_bytes, parts)
    (root / POOL_MANIFEST).write_text(json.dumps(manifest))
    # the parts read back are the table, in order
    assert pa.concat_tables(pq.read_table(p["uri"]) for p in parts).equals(table)
    assert all(pq.read_metadata(p["uri"]).num_row_groups > 1 for p in parts)

    shard_dir = root.parent / "shards"
    shard_dir.mkdir()
    pattern = str(shard_dir / "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=SHARD_SIZE, verbose=0, mtime=MTIME) as writer:
        for i, row in enumerate(table.slice(0, SHARD_ROWS).to_pylist()):
            writer.write(webdataset_sample(i, row))
    shards = sorted(str(p) for p in shard_dir.glob("*.tar"))
    assert len(shards) == SHARD_ROWS // SHARD_SIZE

    balance = OnlineBalance.from_pool(str(root))
    assert (balance.t, balance.seed) == (T, SEED)
    return {"root": str(root), "table": table, "shards": shards, "balance": balance,
            "uuids": np.array(table["uuid"].to_pylist(), dtype=object)}  # fmt: skip


def webdataset_sample(i: int, row: dict) -> dict:
    """A sample as img2dataset writes it with the pool's columns saved: the caption, a json of
    them, an image (any small bytes: nothing decodes it here)."""
    meta = {"url": row["url"], "caption": row["caption"], "key": f"{i:09d}", "status": "success",
            "uuid": row["uuid"], "entry_ids": row["entry_ids"], "text_key": row["text_key"],
            "pair_key": row["pair_key"]}  # fmt: skip
    return {"__key__": f"{i:09d}", "txt": row["caption"], "json": meta,
            "jpg": b"\xff\xd8\xff\xe0" + row["uuid"].encode()}  # fmt: skip


def expected(world, epoch: int, rows: int | None = None) -> list[str]:
    """The uuids `epoch` keeps, in pool order: keep_mask on the concatenated parts (or on the
    first `rows` of them)."""
    table = world["table"]
    mask = world["balance"].keep_mask(epoch, table["entry_ids"], keys=table["pair_key"])
    return world["uuids"][:rows][mask[:rows]].tolist()


def expected_shards(world, epoch: int) -> list[str]:
    return expected(world, epoch, SHARD_ROWS)


def uuids_of(samples) -> list[str]:
    return [s["uuid"] if "uuid" in s else orjson.loads(s["json"])["uuid"] for s in samples]


def pool(world, **kw) -> BalancedPool:
    kw.setdefault("rank", 0)
    kw.setdefault("world_size", 1)
    return BalancedPool(world["root"], **kw)


def shards(world, **kw) -> BalancedShards:
    kw.setdefault("rank", 0)
    kw.setdefault("world_size", 1)
    return BalancedShards(world["shards"], world["balance"], **kw)


# --------------------------------------------------------------------------- 1. BalancedPool


@pytest.mark.parametrize("shuffle", [False, True])
def test_an_epoch_is_exactly_what_keep_mask_keeps(world, shuffle):
    table = world["table"]
    for epoch in range(3):
        rows = list(pool(world, epoch=epoch, shuffle=shuffle))
        want = expected(world, epoch)
        got = uuids_of(rows)
        assert Counter(got) == Counter(want) and len(got) == len(set(got))
        if not shuffle:
            assert got == want  # parts, row groups and rows in pool order
        else:
            assert got != want
        # each yielded row is the pool's row, every column, and its position marker
        by_uuid = {r["uuid"]: r for r in table.to_pylist()}
        for row in rows:
            index, position, readers = row.pop(POSITION)
            assert (index, readers) == (0, 1) and 0 < position <= table.num_rows
            assert row == by_uuid[row["uuid"]]


def test_set_epoch_draws_a_new_sample(world):
    dataset = pool(world, epoch=0)
    first = uuids_of(dataset)
    assert Counter(first) == Counter(expected(world, 0))
    dataset.set_epoch(1)
    second = uuids_of(dataset)
    assert Counter(second) == Counter(expected(world, 1))
    assert set(first) != set(second)
    dataset.set_epoch(0)
    assert uuids_of(dataset) == first  # the same epoch, the same order


def test_the_shuffle_differs_between_epochs(world):
    a = uuids_of(pool(world, epoch=0))
    b = uuids_of(pool(world, epoch=1))
    both = set(a) & set(b)
    assert [u for u in a if u in both] != [u for u in b if u in both]


def test_rank_and_world_size_default_to_the_environment(world, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    dataset = BalancedPool(world["root"], epoch=2)
    assert (dataset.rank, dataset.world_size) == (1, 3)
    assert uuids_of(dataset) == uuids_of(pool(world, epoch=2, rank=1, world_size=3))


# --------------------------------------------------------------------------- 2. explicit ranks


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_ranks_split_the_epoch_with_no_overlap(world, world_size, shuffle):
    per_rank = [uuids_of(pool(world, epoch=1, shuffle=shuffle, rank=r, world_size=world_size))
                for r in range(world_size)]  # fmt: skip
    union = Counter(u for uuids in per_rank for u in uuids)
    assert union == Counter(expected(world, 1))
    assert max(union.values()) == 1
    assert all(per_rank)
    if not shuffle:  # reader i of n reads rows [i N / n, (i + 1) N / n)
        assert [u for uuids in per_rank for u in uuids] == expected(world, 1)


# --------------------------------------------------------------------------- 3. resuming


def resume_points(dataset: BalancedPool, samples: list[dict], every: int = 1) -> set[int]:
    """Sample counts to stop after: at and around chunk boundaries (every `every`-th), inside
    chunks, at the ends."""
    consumer = Consumer(dataset.rank, dataset.world_size)
    ends = np.array([s[POSITION][1] for s in samples])
    boundaries = np.cumsum([c.rows for c in dataset.chunks(consumer)])
    assert len(boundaries) >= 4
    points = {0, 1, len(samples) - 1, len(samples)}
    for b in boundaries[1::every]:
        k = int((ends <= b).sum())  # the last sample of a chunk
        points |= {k - 1, k, k + 1, k + 7}
    return {k for k in points if 0 <= k <= len(samples)}


def resumed(world, state, **kw) -> list[dict]:
    fresh = pool(world, **kw)
    fresh.load_state_dict(state)
    return list(fresh)


def check_resume(world, every: int, **kw) -> None:
    """Stop after k samples (the state only from what is observed, as with DataLoader
    workers), resume in a fresh loader: exactly the rest of the epoch, in the same order."""
    full = list(pool(world, **kw))
    points = resume_points(pool(world, **kw), full, every)
    assert len(points) >= 8
    for k in sorted(points):
        observer = pool(world, **kw)
        for sample in full[:k]:
            observer.observe(sample)
        rest = resumed(world, observer.state_dict(), **kw)
        assert uuids_of(rest) == uuids_of(full[k:]), k
        assert [s[POSITION] for s in rest] == [s[POSITION] for s in full[k:]]


@pytest.mark.parametrize("shuffle,rank,world_size", [(True, 0, 1), (False, 1, 2)])
def test_a_resumed_epoch_yields_exactly_the_rest(world, shuffle, rank, world_size):
    check_resume(world, 5, epoch=3, shuffle=shuffle, rank=rank, world_size=world_size)


@pytest.mark.slow
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("rank,world_size", [(0, 1), (0, 2), (1, 2)])
def test_a_resumed_epoch_yields_exactly_the_rest_at_every_chunk(world, shuffle, rank, world_size):
    check_resume(world, 1, epoch=6, shuffle=shuffle, rank=rank, world_size=world_size)


def test_the_loaders_own_state_follows_its_iteration(world):
    dataset = pool(world, epoch=4)
    full = uuids_of(pool(world, epoch=4))
    taken = uuids_of(islice(iter(dataset), 123))  # in-process: the state advances as it yields
    assert taken + uuids_of(resumed(world, dataset.state_dict(), epoch=0)) == full
    list(dataset)  # a whole epoch: the position is the reader's last row
    state = dataset.state_dict()
    assert state["positions"] == {"0": world["table"].num_rows} and state["epoch"] == 4
    assert resumed(world, state) == []


def test_a_state_at_an_exact_chunk_boundary(world):
    dataset = pool(world, epoch=5)
    full = list(dataset)
    chunks = dataset.chunks(Consumer())
    for boundary in np.cumsum([c.rows for c in chunks])[:-1]:
        state = {**dataset.state_dict(), "positions": {"0": int(boundary)}}
        rest = resumed(world, state)
        assert rest and rest == [s for s in full if s[POSITION][1] > boundary]


def test_a_state_is_refused_at_another_t_or_seed_or_reader_count(world):
    dataset = pool(world, epoch=1)
    list(islice(iter(dataset), 50))
    state = dataset.state_dict()
    for kw in ({"t": 20}, {"seed": SEED + 1}):
        with pytest.raises(ValueError, match="saved at t="):
            pool(world, **kw).load_state_dict(state)
    two = pool(world, rank=0, world_size=2)
    two.load_state_dict(state)
    with pytest.raises(ValueError, match="same number"):
        next(iter(two))


# --------------------------------------------------------------------------- 4. webdataset


def test_the_shards_hold_the_pool(world):
    samples = list(wds.WebDataset(world["shards"], shardshuffle=False))
    assert uuids_of(samples) == world["uuids"][:SHARD_ROWS].tolist()
    meta = orjson.loads(samples[17]["json"])
    assert meta["pair_key"] == world["table"]["pair_key"][17].as_py()


@pytest.mark.parametrize("epoch", [0, 6])
def test_balanced_shards_yield_exactly_what_keep_mask_keeps(world, epoch):
    got = list(shards(world, epoch=epoch))
    assert uuids_of(got) == expected_shards(world, epoch)  # shards in order, samples in order
    assert all(set(s) >= {"__key__", "json", "txt", "jpg", POSITION} for s in got)


@pytest.mark.parametrize("world_size", [2, 3])
def test_balanced_shards_split_by_rank(world, world_size):
    per_rank = [uuids_of(shards(world, epoch=2, rank=r, world_size=world_size))
                for r in range(world_size)]  # fmt: skip
    union = Counter(u for uuids in per_rank for u in uuids)
    assert union == Counter(expected_shards(world, 2)) and max(union.values()) == 1
    assert all(per_rank)


def check_shards_resume(world, points, **kw) -> dict:
    full = list(shards(world, **kw))
    for k in points(len(full)):
        observer = shards(world, **kw)
        for sample in full[:k]:
            observer.observe(sample)
        fresh = shards(world, **kw)
        fresh.load_state_dict(observer.state_dict())
        assert uuids_of(fresh) == uuids_of(full[k:]), k
    return observer.state_dict()


def test_balanced_shards_resume_exactly(world):
    state = check_shards_resume(world, lambda n: (1, n // 2), epoch=2)
    with pytest.raises(ValueError, match="saved at t="):
        BalancedShards(world["shards"], OnlineBalance.from_pool(world["root"], t=T + 1),
                       rank=0, world_size=1).load_state_dict(state)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("rank,world_size", [(0, 1), (1, 2), (2, 3)])
def test_balanced_shards_resume_exactly_anywhere(world, rank, world_size):
    def points(n):
        return sorted({0, 1, 2, 17, n // 3, n // 2, n - 2, n - 1, n} & set(range(n + 1)))

    check_shards_resume(world, points, epoch=5, rank=rank, world_size=world_size)


def test_the_balanced_stage_on_a_webdataset_keeps_the_same_samples(world):
    for epoch in (0, 3):
        dataset = wds.WebDataset(world["shards"], shardshuffle=False)
        got = list(dataset.compose(balanced(world["balance"], epoch)))
        assert uuids_of(got) == expected_shards(world, epoch)


def test_balanced_shards_after_decode_keep_their_positions(world):
    """wds.decode passes "__"-prefixed keys through: observe works after it."""
    source = shards(world, epoch=1)
    pipeline = wds.DataPipeline(source, wds.decode(), wds.to_tuple("json", "__position__"),
                                wds.batched(64))  # fmt: skip
    observer, taken = shards(world, epoch=1), []
    for i, (metas, positions) in enumerate(pipeline):
        if i == 10:
            break
        taken += [m["uuid"] for m in metas]
        observer.observe({POSITION: positions})
    fresh = shards(world, epoch=1)
    fresh.load_state_dict(observer.state_dict())
    assert taken + uuids_of(fresh) == expected_shards(world, 1)


@pytest.fixture(scope="module")
def damaged(world, tmp_path_factory):
    """One shard of 60 good rows with damaged samples among them, and two rows whose json has
    no pair_key (the key then comes from uuid and caption): one the epoch keeps, one it drops."""
    epoch, balance, table = 0, world["balance"], world["table"]
    mask = balance.keep_mask(epoch, table["entry_ids"], keys=table["pair_key"])
    ids = table["entry_ids"].combine_chunks()
    probs = keep_probabilities(ids.offsets.to_numpy(), ids.values.to_numpy(), balance.probs)
    head = np.flatnonzero(probs < 1)
    head = head[head >= 200]
    kept_head, dropped_head = int(head[mask[head]][0]), int(head[~mask[head]][0])
    rows = table.to_pylist()
    good = list(range(60))
    base = webdataset_sample(0, rows[0])
    bad_meta = {k: v for k, v in base["json"].items()}
    damaged_samples = {
        "invalid json": {**base, "json": b'{"uuid": "x", "entry_ids": [1'},
        "not an object": {**base, "json": b"[1, 2, 3]"},
        "null json": {**base, "json": b"null"},
        "no entry ids": {**base, "json": {k: v for k, v in bad_meta.items() if k != "entry_ids"}},
        "bad entry id": {**base, "json": {**bad_meta, "entry_ids": ["two"]}},
        "bad pair key": {**base, "json": {**bad_meta, "pair_key": "abc"}},
        "negative pair key": {**base, "json": {**bad_meta, "pair_key": -1}},
        "float pair key": {**base, "json": {**bad_meta, "pair_key": 1.8e19}},
        "pair key too big": {**base, "json": {**bad_meta, "pair_key": 2**64}},
        "no uuid and no key": {**base, "json": {k: v for k, v in bad_meta.items()
                                                if k not in ("uuid", "pair_key")}},
        "no json": {k: v for k, v in base.items() if k != "json"},
        "entry id too big": {**base, "json": {**bad_meta,
                                              "entry_ids": [3, len(balance.probs)]}},
        "negative entry id": {**base, "json": {**bad_meta, "entry_ids": [-1, 3]}},
    }  # fmt: skip
    samples = [webdataset_sample(i, rows[i]) for i in good]
    for offset, sample in enumerate(damaged_samples.values()):
        samples.insert(3 + 4 * offset, {**sample, "__key__": f"bad-{offset:03d}"})
    for i in (kept_head, dropped_head):
        sample = webdataset_sample(i, rows[i])
        sample["json"] = {k: v for k, v in sample["json"].items() if k != "pair_key"}
        samples.insert(30, sample)
    path = tmp_path_factory.mktemp("damaged") / "damaged-000000.tar"
    with wds.TarWriter(str(path), mtime=MTIME) as writer:
        for sample in samples:
            writer.write(sample)
    want = {world["uuids"][i] for i in good if mask[i]} | {world["uuids"][kept_head]}
    return {"path": str(path), "epoch": epoch, "want": want, "good": good,
            "dropped": world["uuids"][dropped_head]}  # fmt: skip


def test_damaged_samples_are_skipped_and_counted(world, damaged):
    reader = BalancedShards([damaged["path"]], world["balance"], epoch=damaged["epoch"],
                            rank=0, world_size=1)  # fmt: skip
    got = uuids_of(reader)
    assert set(got) == damaged["want"] and len(got) == len(set(got))
    assert damaged["dropped"] not in got
    assert reader.skipped == Counter({"damaged json": 10, "no json": 1,
                                      "entry id out of range": 2})  # fmt: skip
    # the rest of the shard was read: the last good rows the epoch keeps are there
    table = world["table"]
    mask = world["balance"].keep_mask(damaged["epoch"], table["entry_ids"], keys=table["pair_key"])
    last_kept = max(i for i in damaged["good"] if mask[i])
    assert world["uuids"][last_kept] in got
    stage = wds.WebDataset([damaged["path"]], shardshuffle=False)
    assert set(uuids_of(stage.compose(balanced(world["balance"], damaged["epoch"])))) == set(got)


# --------------------------------------------------------------------------- 5-7. slow


# DataLoader workers start from a forkserver: a forked child of a process that has run a Prefect
# flow (this test session runs flows in other modules) exits with code 1 (Prefect's at-fork
# handlers); a training script that never ran a flow is not affected (tests/test_online_docs.py
# runs the docs' loops, default start method, in a fresh interpreter).
WORKERS = "forkserver"


def loader_uuids(dataset, workers: int, batch_size: int = 64) -> list[str]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         collate_fn=collate, multiprocessing_context=WORKERS)
    return [u for batch in loader for u in batch_uuids(batch)]


def batch_uuids(batch: dict) -> list[str]:
    """A collate()d batch's uuids: a pool row's own, a raw webdataset sample's in its json."""
    if "uuid" in batch:
        return batch["uuid"]
    return [orjson.loads(raw)["uuid"] for raw in batch["json"]]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
def test_a_dataloader_with_workers_yields_the_epoch(world):
    want = Counter(expected(world, 2))
    for workers in (1, 4):
        got = loader_uuids(pool(world, epoch=2), workers)
        assert Counter(got) == want, workers
    by_rank = [loader_uuids(pool(world, epoch=2, rank=r, world_size=2), 2) for r in range(2)]
    assert Counter(u for uuids in by_rank for u in uuids) == want


@pytest.mark.slow
def test_a_dataloader_with_workers_resumes_exactly(world):
    def loader(dataset):
        return torch.utils.data.DataLoader(dataset, batch_size=50, num_workers=2,
                                           collate_fn=collate, multiprocessing_context=WORKERS)

    dataset, consumed = pool(world, epoch=3), []
    batches = iter(loader(dataset))
    for _ in range(37):  # the workers have prefetched more than this
        batch = next(batches)
        consumed += batch["uuid"]
        dataset.observe(batch)
    state = dataset.state_dict()
    del batches
    assert state["consumers"] == 2 and len(state["positions"]) == 2
    fresh = pool(world, epoch=0)
    fresh.load_state_dict(state)
    rest = [u for batch in loader(fresh) for u in batch["uuid"]]
    assert not set(consumed) & set(rest)
    assert Counter(consumed + rest) == Counter(expected(world, 3))


@pytest.mark.slow
def test_webdataset_workers_yield_and_resume_exactly(world):
    want = Counter(expected_shards(world, 4))
    got = loader_uuids(shards(world, epoch=4), 2, batch_size=32)
    assert Counter(got) == want

    def pipeline(source):
        stages = wds.DataPipeline(source, wds.decode(), wds.to_tuple("json", "__position__"),
                                  wds.batched(32))  # fmt: skip
        return wds.WebLoader(stages, batch_size=None, num_workers=2,
                             multiprocessing_context=WORKERS)

    source, consumed = shards(world, epoch=4), []
    batches = iter(pipeline(source))
    for _ in range(25):
        metas, positions = next(batches)
        consumed += [m["uuid"] for m in metas]
        source.observe({POSITION: positions})
    state = source.state_dict()
    del batches
    assert state["consumers"] == 2
    fresh = shards(world, epoch=0)
    fresh.load_state_dict(state)
    rest = [m["uuid"] for metas, _ in pipeline(fresh) for m in metas]
    assert not set(consumed) & set(rest)
    assert Counter(consumed + rest) == want


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_reader(rank: int, world_size: int, port: int, root: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)  # fmt: skip
    try:
        dataset = BalancedPool(root, epoch=5)  # rank and world size from torch.distributed
        uuids = uuids_of(dataset)
        Path(out, f"rank-{rank}.json").write_text(
            json.dumps({"rank": dataset.rank, "world_size": dataset.world_size, "uuids": uuids})
        )
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_torch_distributed_ranks_split_the_epoch(world, tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.multiprocessing.spawn(_distributed_reader, nprocs=2, join=True,
                                args=(2, _free_port(), world["root"], str(tmp_path)))  # fmt: skip
    results = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world_size"]) for r in results] == [(0, 2), (1, 2)]
    union = Counter(u for r in results for u in r["uuids"])
    assert union == Counter(expected(world, 5)) and max(union.values()) == 1
    assert all(r["uuids"] for r in results)
