"""Online balancing's decision (metaclip.online.decide), its pool manifest (metaclip.online.pool)
and its split among readers (metaclip.online.split), on a real pool, against naive restatements.

The pool: 10,000 real captions (COCO and CC3M, tests/data/captions) matched against the 86,654
WordNet entries of the demo metadata with MetaCLIP's matching (as test_worldwide_thresholds), the
rows with at least one match, each under a made-up URL; its counts are these rows' own. It is
skewed like a real pool ("a" 6,023 times, thousands of entries once), so a small t caps hundreds
of entries and most rows mix head and tail entries.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip.config.curation import ENGLISH_RECIPE
from metaclip.curation import balance
from metaclip.curation.counts import entry_counts_table, read_entry_counts
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import POOL_COUNTS, POOL_MANIFEST
from metaclip.io.schemas import POOL
from metaclip.matching import Matcher
from metaclip.online import split
from metaclip.online.decide import (
    CURATION_DRAW,
    OnlineBalance,
    epoch_draw,
    epoch_draws,
    epoch_salt,
    keep_probabilities,
    pair_keys,
)
from metaclip.online.pool import pool_manifest, read_pool
from metaclip.reporting.expected_size import expected_size

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ROOT / "tests" / "data" / "captions"
METADATA = ROOT / "metaclip" / "demo_data" / "metadata.json"
T = 10  # caps every entry seen more than 10 times: hundreds of the real pool's
SEED = 7
MASK64 = 2**64 - 1


# --------------------------------------------------------------------------- naive restatements


def naive_pair_key(uuid: str, text: str) -> int:
    digest = hashlib.blake2b(f"{uuid}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def naive_epoch_draw(key: int, seed: int, epoch: int) -> float:
    """docs/online.md's draw: splitmix64 of (pair key xor the (seed, epoch) salt), top 53 bits."""
    salt_bytes = f"metaclip-epoch\x1f{seed}\x1f{epoch}".encode()
    salt = int.from_bytes(hashlib.blake2b(salt_bytes, digest_size=8).digest(), "big")
    z = ((key ^ salt) + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return ((z ^ (z >> 31)) >> 11) / 2**53


def naive_curation_draw(seed: int, uuid: str, text: str) -> float:
    """The offline curation's draw: blake2b of (seed, uuid, text), top 53 bits."""
    data = f"{seed}\x1f{uuid}\x1f{text}".encode()
    return (int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 11) / 2**53


def naive_p(ids: list[int], counts: list[int], t: float) -> float:
    """1 - prod(1 - min(1, t / count_e)); 0 for a row without entries."""
    if not ids:
        return 0.0
    miss = 1.0
    for e in ids:
        miss *= 1.0 - min(1.0, t / counts[e])
    return 1.0 - miss


def z_score(kept: float, probs: np.ndarray) -> float:
    return (kept - probs.sum()) / math.sqrt((probs * (1 - probs)).sum())


# --------------------------------------------------------------------------- the real pool


@functools.lru_cache(maxsize=1)
def real_pool_table() -> tuple[pa.Table, np.ndarray, list[str]]:
    """(pool rows in the POOL schema, their entry counts, the metadata entries): the real
    captions with at least one WordNet match, each under its own made-up URL."""
    entries = json.loads(METADATA.read_text(encoding="utf-8"))
    texts: list[str] = []
    for name in ("coco_val2017_5000.txt", "cc3m_val_5000.txt"):
        texts += (CAPTIONS / name).read_text(encoding="utf-8").splitlines()
    ids = Matcher.build(entries).match_arrow(pa.array(texts, pa.string()))
    rows = np.flatnonzero(np.diff(ids.offsets.to_numpy()) > 0)
    urls = [f"https://images.example.org/{i:05d}/photo.jpg" for i in rows]
    uuids = [hashlib.sha224(u.encode()).hexdigest()[:24] for u in urls]
    captions = [texts[i] for i in rows]
    keys = [naive_pair_key(u, c) for u, c in zip(uuids, captions, strict=True)]
    table = pa.table(
        {
            "url": urls,
            "caption": captions,
            "uuid": uuids,
            "entry_ids": ids.take(pa.array(rows)),
            "text_key": ["alt"] * len(rows),
            "pair_key": pa.array(keys, pa.uint64()),
        },
        schema=POOL,
    )
    flat = table["entry_ids"].combine_chunks().flatten().to_numpy()
    counts = np.bincount(flat, minlength=len(entries)).astype(np.uint64)
    return table, counts, entries


@pytest.fixture(scope="module")
def pool():
    table, counts, entries = real_pool_table()
    entry_ids = table["entry_ids"].combine_chunks()
    id_lists = entry_ids.to_pylist()
    count_list = counts.tolist()
    probs = np.array([naive_p(ids, count_list, T) for ids in id_lists])
    return {
        "table": table, "counts": counts, "count_list": count_list, "entries": entries,
        "entry_ids": entry_ids, "id_lists": id_lists, "probs": probs,
        "keys": table["pair_key"].to_numpy(), "balance": OnlineBalance.from_counts(counts, T, SEED),
    }  # fmt: skip


def test_the_pool_is_real_and_skewed(pool):
    counts, probs = pool["counts"], pool["probs"]
    assert pool["table"].num_rows > 9_000 and len(pool["entries"]) > 80_000
    assert (counts > T).sum() > 500  # t caps many entries
    assert (probs == 1.0).sum() > 1_000 and (probs < 1.0).sum() > 1_000  # tail and head pairs
    assert len(set(pool["table"]["uuid"].to_pylist())) == pool["table"].num_rows
    assert pool["table"].schema == POOL


# --------------------------------------------------------------------------- 1. the formula


def test_keep_probabilities_equal_the_naive_formula(pool):
    ids = pool["entry_ids"]
    got = keep_probabilities(ids.offsets.to_numpy(), ids.values.to_numpy(), pool["balance"].probs)
    np.testing.assert_allclose(got, pool["probs"], rtol=0, atol=1e-12)
    offline = balance.keep_probabilities(ids, pool["balance"].probs)  # the curation's (in logs)
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-12)


def test_keep_one_makes_keep_masks_decisions_bit_for_bit(pool):
    """Rows without entries too (never kept), and a sliced list array (offsets not from 0)."""
    rng = np.random.default_rng(1)
    id_lists = pool["id_lists"][:3000] + [[]] * 50
    order = rng.permutation(len(id_lists))
    id_lists = [id_lists[i] for i in order]
    keys = rng.integers(0, 2**64, size=len(id_lists), dtype=np.uint64)
    padded = pa.array([[0, 1]] + id_lists, pa.list_(pa.int32())).slice(1)
    bal = pool["balance"]
    for epoch in range(5):
        mask = bal.keep_mask(epoch, padded, keys=keys)
        ones = [bal.keep_one(epoch, ids, int(k)) for ids, k in zip(id_lists, keys, strict=True)]
        assert mask.tolist() == ones
        assert not any(m for m, ids in zip(mask, id_lists, strict=True) if not ids)
        assert 0 < mask.sum() < len(mask)


def test_keep_mask_is_the_naive_decision(pool):
    """The whole decision restated: naive draw < naive probability, row by row."""
    bal, keys = pool["balance"], pool["keys"].tolist()
    for epoch in (0, 3):
        mask = bal.keep_mask(epoch, pool["table"]["entry_ids"], keys=pool["table"]["pair_key"])
        naive = [naive_epoch_draw(k, SEED, epoch) < p
                 for k, p in zip(keys, pool["probs"], strict=True)]  # fmt: skip
        assert mask.tolist() == naive


# --------------------------------------------------------------------------- 2. the rates


def test_single_entry_pairs_are_kept_at_min_1_t_over_count(pool):
    """A pair matching only entry e is kept with probability min(1, t / count_e): pooled over
    the real pool's single-entry pairs of capped entries and 300 epochs, within 5 sigma."""
    single = [i for i, ids in enumerate(pool["id_lists"]) if len(ids) == 1]
    head = np.array([i for i in single if pool["counts"][pool["id_lists"][i][0]] > T])
    assert len(head) >= 15
    expected = np.array([T / pool["count_list"][pool["id_lists"][i][0]] for i in head])
    entry_ids = pool["entry_ids"].take(pa.array(head))
    keys, epochs = pool["keys"][head], 300
    kept = sum(int(pool["balance"].keep_mask(e, entry_ids, keys=keys).sum())
               for e in range(epochs))  # fmt: skip
    assert abs(z_score(kept, np.tile(expected, epochs))) < 5
    # and each tail single-entry pair, every epoch
    tail = np.array([i for i in single if pool["counts"][pool["id_lists"][i][0]] <= T])
    tail_ids = pool["entry_ids"].take(pa.array(tail))
    assert all(pool["balance"].keep_mask(e, tail_ids, keys=pool["keys"][tail]).all()
               for e in range(10))  # fmt: skip


def test_kept_share_matches_the_keep_probability_in_every_band(pool):
    """Rows binned by their naive keep probability: each bin's kept count over 20 epochs is
    the sum of its probabilities within 5 sigma."""
    probs, bal = pool["probs"], pool["balance"]
    masks = np.array([bal.keep_mask(e, pool["entry_ids"], keys=pool["keys"]) for e in range(20)])
    edges = [0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = (probs > lo) & (probs <= hi) & (probs < 1.0)
        if rows.sum() < 30:
            continue
        kept = masks[:, rows].sum()
        assert abs(z_score(kept, np.tile(probs[rows], 20))) < 5, (lo, hi)


def test_epoch_size_is_the_exact_expected_size(pool):
    probs, bal = pool["probs"], pool["balance"]
    exact = expected_size([(pool["entry_ids"], np.ones(len(probs)))], bal.probs)
    assert exact == pytest.approx(probs.sum(), rel=1e-12)
    sigma = math.sqrt((probs * (1 - probs)).sum())
    sizes = [int(bal.keep_mask(e, pool["entry_ids"], keys=pool["keys"]).sum()) for e in range(20)]
    assert all(abs(size - exact) < 5 * sigma for size in sizes)
    assert abs(np.mean(sizes) - exact) < 5 * sigma / math.sqrt(len(sizes))
    assert len(set(sizes)) > 1


# --------------------------------------------------------------------------- 3. independent epochs


def test_epochs_resample_the_head_and_keep_the_tail(pool):
    probs, bal = pool["probs"], pool["balance"]
    head, tail = probs < 1.0, probs == 1.0
    masks = {e: bal.keep_mask(e, pool["entry_ids"], keys=pool["keys"]) for e in range(8)}
    for mask in masks.values():
        assert mask[tail].all()
    p = probs[head]
    for a, b in [(0, 1), (1, 2), (0, 5), (3, 7), (6, 2)]:
        kept_a, kept_b = masks[a][head], masks[b][head]
        assert (kept_a != kept_b).sum() > 100  # different head pairs
        both = int((kept_a & kept_b).sum())  # independent draws: P(both) = p^2
        assert abs(z_score(both, p**2)) < 5, (a, b)


def test_epochs_are_not_the_curations_draw(pool):
    table, bal = pool["table"], pool["balance"]
    uuids, texts = table["uuid"].to_pylist(), table["caption"].to_pylist()
    curated = bal.keep_mask(CURATION_DRAW, pool["entry_ids"], uuids=uuids, texts=texts)
    head = pool["probs"] < 1.0
    for epoch in range(3):
        mask = bal.keep_mask(epoch, pool["entry_ids"], keys=pool["keys"])
        assert (mask[head] != curated[head]).sum() > 100


# --------------------------------------------------------------------------- 4. the draws


def test_the_same_seed_and_epoch_give_the_same_sample(pool):
    ids, keys = pool["entry_ids"], pool["keys"]
    bal = pool["balance"]
    again = OnlineBalance.from_counts(pool["counts"], T, SEED)
    other = OnlineBalance.from_counts(pool["counts"], T, SEED + 1)
    for epoch in (0, 1, 12345):
        mask = bal.keep_mask(epoch, ids, keys=keys)
        assert np.array_equal(mask, again.keep_mask(epoch, ids, keys=keys))
        assert np.array_equal(mask, bal.keep_mask(epoch, ids, keys=pa.array(keys, pa.uint64())))
        assert not np.array_equal(mask, other.keep_mask(epoch, ids, keys=keys))
        assert not np.array_equal(mask, bal.keep_mask(epoch + 1, ids, keys=keys))


@pytest.mark.parametrize("source", ["sequential", "random", "pool"])
def test_epoch_draws_are_uniform(pool, source):
    """A chi-square over 100 bins (99 degrees of freedom: mean 99, sd 14) under 200, for
    structured keys (0, 1, 2, ...), random keys and the real pool's keys."""
    if source == "sequential":
        keys = np.arange(100_000, dtype=np.uint64)
    elif source == "random":
        keys = np.random.default_rng(3).integers(0, 2**64, size=100_000, dtype=np.uint64)
    else:
        keys = pool["keys"]
    for seed, epoch in [(0, 0), (SEED, 1), (2**40, 99)]:
        draws = epoch_draws(keys, seed, epoch)
        assert draws.min() >= 0.0 and draws.max() < 1.0
        hist = np.bincount((draws * 100).astype(int), minlength=100)
        expected = len(keys) / 100
        assert ((hist - expected) ** 2 / expected).sum() < 200


def test_epoch_draw_is_epoch_draws_bit_for_bit(pool):
    edge = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15]
    rng = np.random.default_rng(5)
    keys = np.array(edge + rng.integers(0, 2**64, 2000, dtype=np.uint64).tolist(), np.uint64)
    keys = np.concatenate([keys, pool["keys"][:2000]])
    for seed, epoch in [(0, 0), (SEED, 3), (123456789, 2**31)]:
        draws = epoch_draws(keys, seed, epoch)
        salt = epoch_salt(seed, epoch)
        singles = [epoch_draw(int(k), salt) for k in keys]
        assert draws.tolist() == singles  # floats compared exactly
        assert singles[:200] == [naive_epoch_draw(int(k), seed, epoch) for k in keys[:200]]


@pytest.mark.parametrize("epoch", [-1, 2.5, "1", None, 7.0, False])
def test_an_epoch_must_be_a_non_negative_integer(pool, epoch):
    with pytest.raises(ValueError, match="epoch"):
        epoch_salt(SEED, epoch)
    if epoch is not None:  # None is the curation's draw
        with pytest.raises(ValueError, match="epoch"):
            pool["balance"].keep_mask(epoch, pool["entry_ids"][:5], keys=pool["keys"][:5])
    assert epoch_salt(SEED, np.int64(4)) == epoch_salt(SEED, 4)


def test_a_cached_epoch_does_not_let_a_bad_epoch_through():
    epoch_salt(SEED, 1)
    for bad in (True, 1.0, np.float64(1.0)):
        with pytest.raises(ValueError, match="epoch"):
            epoch_salt(SEED, bad)


# --------------------------------------------------------------------------- 5. the curation's draw


def test_the_curation_draw_is_the_offline_sample_mask(pool):
    table, bal = pool["table"], pool["balance"]
    uuids, texts = table["uuid"].to_pylist(), table["caption"].to_pylist()
    mask = bal.keep_mask(CURATION_DRAW, table["entry_ids"], uuids=uuids, texts=texts)
    offline = balance.sample_mask(table["entry_ids"], uuids, texts, bal.probs, SEED)
    assert np.array_equal(mask, offline)
    naive = [naive_curation_draw(SEED, u, x) < p
             for u, x, p in zip(uuids, texts, pool["probs"], strict=True)]  # fmt: skip
    assert mask.tolist() == naive


def test_the_curation_draw_needs_uuids_and_texts(pool):
    table, bal = pool["table"].slice(0, 10), pool["balance"]
    with pytest.raises(ValueError, match="uuids and texts"):
        bal.keep_mask(CURATION_DRAW, table["entry_ids"], keys=table["pair_key"])
    with pytest.raises(ValueError, match="uuids and texts"):
        bal.keep_mask(CURATION_DRAW, table["entry_ids"], uuids=table["uuid"].to_pylist())
    with pytest.raises(ValueError, match="pair keys"):
        bal.keep_mask(0, table["entry_ids"])


def test_pair_keys_are_blake2b_of_uuid_and_text(pool):
    table = pool["table"]
    uuids, texts = table["uuid"].to_pylist(), table["caption"].to_pylist()
    keys = pair_keys(uuids, texts)
    assert keys.dtype == np.uint64
    assert keys.tolist() == [naive_pair_key(u, x) for u, x in zip(uuids, texts, strict=True)]
    assert pair_keys(["é", "x"], ["猫 on a mat", ""]).tolist() == [
        naive_pair_key("é", "猫 on a mat"), naive_pair_key("x", "")]  # fmt: skip
    # keys from uuids and texts give the same decision as stored keys
    bal = pool["balance"]
    by_keys = bal.keep_mask(2, table["entry_ids"], keys=table["pair_key"])
    assert np.array_equal(by_keys, bal.keep_mask(2, table["entry_ids"], uuids=uuids, texts=texts))


# --------------------------------------------------------------------------- 6. changing t


@pytest.mark.parametrize("t", [1, 3, 50, 400])
def test_a_new_t_is_a_naive_recomputation(pool, t):
    counts, count_list = pool["counts"], pool["count_list"]
    bal = OnlineBalance.from_counts(counts, t, SEED)
    naive_probs = [min(1.0, t / c) if c else 1.0 for c in count_list]
    np.testing.assert_allclose(bal.probs, naive_probs, rtol=1e-15, atol=0)
    assert bal.t == t and bal.seed == SEED
    probs = [naive_p(ids, count_list, t) for ids in pool["id_lists"]]
    mask = bal.keep_mask(4, pool["entry_ids"], keys=pool["keys"])
    naive = [naive_epoch_draw(k, SEED, 4) < p
             for k, p in zip(pool["keys"].tolist(), probs, strict=True)]  # fmt: skip
    assert mask.tolist() == naive


def test_t_above_every_count_keeps_everything(pool):
    bal = OnlineBalance.from_counts(pool["counts"], int(pool["counts"].max()) + 1, SEED)
    assert (bal.probs == 1.0).all()
    for epoch in range(4):
        assert bal.keep_mask(epoch, pool["entry_ids"], keys=pool["keys"]).all()
    empty = pa.array([[], [3]], pa.list_(pa.int32()))
    assert bal.keep_mask(0, empty, keys=np.array([1, 2], np.uint64)).tolist() == [False, True]
    with pytest.raises(ValueError, match="t must be positive"):
        OnlineBalance.from_counts(pool["counts"], 0)


# --------------------------------------------------------------------------- 7. the manifest


def write_pool(root: Path, table: pa.Table, counts: np.ndarray, entries: list[str],
               t: float = T, seed: int = SEED, n_parts: int = 3) -> dict:  # fmt: skip
    """A pool folder as the pool stage writes it: parts, the counts, pool.json last."""
    root.mkdir(parents=True, exist_ok=True)
    counts_table = entry_counts_table(counts, entries, "0" * 64, str(METADATA))
    storage.write_parquet_atomic(str(root / POOL_COUNTS), counts_table)
    parts, bounds = [], np.linspace(0, table.num_rows, n_parts + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        uri = str(root / f"part-{i:05d}.parquet")
        sha = storage.write_parquet_atomic(uri, table.slice(lo, hi - lo))
        parts.append({"uri": uri, "rows": int(hi - lo), "sha256": sha})
    counts_bytes = (root / POOL_COUNTS).read_bytes()
    manifest = pool_manifest(ENGLISH_RECIPE, t, seed, True, counts_bytes, parts)
    (root / POOL_MANIFEST).write_text(json.dumps(manifest))
    return manifest


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory, pool) -> Path:
    root = tmp_path_factory.mktemp("online-decide") / "out" / "pool"
    write_pool(root, pool["table"].slice(0, 600), pool["counts"], pool["entries"])
    return root


def test_a_good_manifest_reads(small_pool, pool):
    got = read_pool(str(small_pool))
    assert got.root == str(small_pool) and got.recipe == ENGLISH_RECIPE and not got.worldwide
    assert (got.curation_t, got.curation_seed, got.rows) == (T, SEED, 600)
    assert [p.rows for p in got.parts] == [200, 200, 200]
    for part in got.parts:
        assert hashlib.sha256(Path(part.uri).read_bytes()).hexdigest() == part.sha256
        assert Path(part.uri).parent == small_pool
    assert read_pool(str(small_pool.parent)).root == str(small_pool)  # a run's output
    counts, _ = read_entry_counts(got.counts_uri)
    assert np.array_equal(counts, pool["counts"])


def test_from_pool_uses_the_curations_t_and_seed(small_pool, pool):
    bal = OnlineBalance.from_pool(str(small_pool))
    assert (bal.t, bal.seed) == (T, SEED)
    assert np.array_equal(bal.probs, pool["balance"].probs)
    other = OnlineBalance.from_pool(str(small_pool.parent), t=50, seed=1)
    assert (other.t, other.seed) == (50, 1)
    assert np.array_equal(other.probs, OnlineBalance.from_counts(pool["counts"], 50).probs)


def _with(manifest_dir: Path, tmp_path: Path, edit) -> str:
    """A copy of the pool folder whose manifest `edit` changed."""
    root = tmp_path / "edited"
    root.mkdir()
    for f in manifest_dir.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((root / POOL_MANIFEST).read_text())
    edit(manifest)
    (root / POOL_MANIFEST).write_text(json.dumps(manifest))
    return str(root)


@pytest.mark.parametrize(
    "name", ["../x.parquet", "/etc/passwd", "a/b", "a\\b", "..", ".", "", None, 7]
)
@pytest.mark.parametrize("where", ["part", "counts"])
def test_a_path_leaving_the_pool_folder_is_refused(small_pool, tmp_path, name, where):
    def edit(manifest):
        if where == "part":
            manifest["parts"][1]["path"] = name
        else:
            manifest["entry_counts"]["path"] = name

    with pytest.raises(UserError, match="not a pool manifest"):
        read_pool(_with(small_pool, tmp_path, edit))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(format=2),
        lambda m: m.update(format="1"),
        lambda m: m.pop("format"),
        lambda m: m.pop("entry_counts"),
        lambda m: m["curation"].pop("t"),
        lambda m: m.update(parts=None),
        lambda m: m.update(rows="many"),
    ],
)
def test_a_wrong_format_is_refused(small_pool, tmp_path, edit):
    with pytest.raises(UserError, match="not a pool manifest"):
        read_pool(_with(small_pool, tmp_path, edit))


def test_no_pool_is_refused(tmp_path):
    with pytest.raises(UserError, match="no pool"):
        read_pool(str(tmp_path))


def test_counts_other_than_the_manifests_are_refused(small_pool, tmp_path, pool):
    root = Path(_with(small_pool, tmp_path, lambda m: None))
    OnlineBalance.from_pool(str(root))  # the copy itself is good
    changed = pool["counts"].copy()
    changed[0] += 1
    table = entry_counts_table(changed, pool["entries"], "0" * 64, str(METADATA))
    storage.write_parquet_atomic(str(root / POOL_COUNTS), table)
    with pytest.raises(ValueError, match="sha256"):
        OnlineBalance.from_pool(str(root))


# --------------------------------------------------------------------------- 8. the split


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 10**7) | st.integers(0, 40),
    world_size=st.integers(1, 9),
    workers=st.integers(1, 9),
)
def test_consumers_partition_the_rows(total, world_size, workers):
    consumers = [split.Consumer(r, world_size, w, workers)
                 for r in range(world_size) for w in range(workers)]  # fmt: skip
    assert sorted(c.index for c in consumers) == list(range(world_size * workers))
    assert all(c.count == world_size * workers for c in consumers)
    ranges = sorted(c.rows(total) for c in consumers)
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    sizes = [hi - lo for lo, hi in ranges]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1  # balanced


def test_consumers_partition_small_pools_exactly():
    for total in range(0, 30):
        for world_size in range(1, 5):
            for workers in range(1, 5):
                seen = []
                for r in range(world_size):
                    for w in range(workers):
                        lo, hi = split.Consumer(r, world_size, w, workers).rows(total)
                        seen += range(lo, hi)
                assert seen == list(range(total))


def test_a_state_loads_only_at_its_t_and_seed():
    state = split.EpochState(epoch=3, t=T, seed=SEED)
    state.advance(1, 40, 2)
    saved = state.to_dict()
    assert json.loads(json.dumps(saved)) == saved  # plain JSON, for any checkpoint format
    same = split.EpochState(t=T, seed=SEED)
    same.load(saved)
    assert (same.epoch, same.consumers, same.positions) == (3, 2, {1: 40})
    for t, seed in [(T + 1, SEED), (T, SEED + 1), (T * 2, 0)]:
        with pytest.raises(ValueError, match="saved at t="):
            split.EpochState(t=t, seed=seed).load(saved)
    with pytest.raises(ValueError, match="format"):
        same.load({**saved, "format": 99})


def test_a_state_resumes_only_with_the_same_number_of_readers():
    state = split.EpochState(t=T, seed=SEED)
    state.observe({split.POSITION: (1, 17, 4)})  # one sample's marker
    state.observe({split.POSITION: [(0, 5, 4), (3, 9, 4), (0, 8, 4)]})  # a collate()d batch
    state.observe([{split.POSITION: (2, 2, 4)}, {split.POSITION: (2, 1, 4)}])  # samples
    assert state.positions == {0: 8, 1: 17, 2: 2, 3: 9}
    assert state.position(split.Consumer(0, 2, 1, 2)) == 17
    assert state.position(split.Consumer(0, 1, 1, 4)) == 17  # the same reader, counted anew
    with pytest.raises(ValueError, match="same number"):
        state.position(split.Consumer(0, 1, 1, 2))
    with pytest.raises(ValueError, match="mixed"):
        state.advance(0, 50, 3)
    state.start(1)  # a new epoch: every reader from its beginning, any number of them
    assert state.position(split.Consumer(0, 1, 1, 2)) == 0 and state.epoch == 1


def test_explicit_ranks_are_checked():
    assert split.distributed_rank(2, 3) == (2, 3)
    for rank, world_size in [(3, 3), (-1, 2), (0, 0)]:
        with pytest.raises(ValueError, match="rank"):
            split.distributed_rank(rank, world_size)


def test_the_rank_comes_from_the_environment_without_torch_distributed(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert split.distributed_rank() == (1, 4)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert split.distributed_rank() == (0, 1)

