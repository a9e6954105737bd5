"""The curation stages as plain functions on the real fixtures (tests/stages.py): batches ->
bucket index -> dedup and count per bucket -> tree-reduced counts -> balanced sampling, checked
against a naive implementation of MetaCLIP's algorithm on the same rows and the same draws.
No Prefect, no Dask: seconds, not minutes (the flow itself: tests/test_flow.py, marked slow).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip.config import Stores
from metaclip.curation import balance, partition
from metaclip.curation.batch import batches_digest
from metaclip.curation.counts import SparseCounts
from metaclip.curation.plan import auto_buckets, check_store, make_batches, preflight, store_buckets
from metaclip.curation.sample import rebalanced_summary
from metaclip.errors import UserError
from metaclip.io.paths import OutputLayout
from metaclip.io.results import read_json
from metaclip.metadata import load_metadata
from tests.naive import naive_match
from tests.stages import (
    T,
    curate_plain,
    curated_rows,
    make_inputs,
    make_metadata,
    make_settings,
    naive_run,
    run_batch,
    run_bucket,
    run_curated,
    run_index,
    run_sample,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("stages")
    files = make_inputs(root / "inputs")
    entries = make_metadata(root / "metadata.json", files)
    return SimpleNamespace(root=root, files=files, metadata=str(root / "metadata.json"),
                           entries=entries, naive=naive_run(files, entries))  # fmt: skip


@pytest.fixture(scope="module")
def run4(world):
    return curate_plain(world.files, world.metadata, world.root / "out-4", n_buckets=4)


@pytest.fixture(scope="module")
def run2(world):
    """2 buckets, each deduplicated and sampled as sub-buckets (at most 8 pairs at a time)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METACLIP_MAX_BUCKET_ROWS", "8")
        return curate_plain(world.files, world.metadata, world.root / "out-2", n_buckets=2)


def dedup_rows(run) -> list[dict]:
    return [r for b in run.buckets for u in b["dedup_uris"] for r in pq.read_table(u).to_pylist()]


def test_plan_keeps_a_missing_input_and_fixes_the_batches(world):
    _, files = preflight(world.files, world.metadata, "auto")
    assert files == world.files  # sorted, the missing one kept (counted as skipped later)
    batches = make_batches(files, 4)
    assert [b for _, b in batches] == [files[:4], files[4:]]
    assert len({bid for bid, _ in batches}) == 2 and make_batches(files, 4) == batches
    assert [auto_buckets(n) for n in (1, 80, 81, 10**6)] == [4, 4, 8, 4096]


def test_batches_commit_their_matched_pairs_by_bucket(run4, world):
    layout = OutputLayout(run4.output)
    for b in run4.batches:
        manifest = read_json(b["manifest_uri"])
        assert sum(manifest["rows"]) == b["pairs_matched"]
        assert b["pairs_matched"] + b["pairs_unmatched"] == b["extract"]["pairs"]
        for bucket, rows, sha in zip(manifest["buckets"], manifest["rows"], manifest["sha256"],
                                     strict=True):  # fmt: skip
            uri = layout.matched_part(bucket, b["batch_id"])
            assert hashlib.sha256(Path(uri).read_bytes()).hexdigest() == sha
            table = pq.read_table(uri)
            assert table.num_rows == rows
            assert set(partition.bucket_of(table["uuid"], 4).tolist()) == {bucket}
            for text, ids in zip(table["text"].to_pylist(), table["entry_ids"].to_pylist(),
                                 strict=True):  # fmt: skip
                assert ids == naive_match(text, world.entries), text
    assert sum(b["pairs_matched"] for b in run4.batches) == len(world.naive.matched)
    assert run4.batches[1]["extract"]["skipped"]["missing_file"] == 1


def test_a_pair_present_in_two_files_is_kept_once(run4, world):
    naive = world.naive
    sources: dict[tuple[str, str], set[str]] = {}
    for uuid, text, source in naive.matched:
        sources.setdefault((uuid, text), set()).add(Path(source).name)
    shared = {k: v for k, v in sources.items() if len(v) > 1}
    # Both kinds are there: real pairs two WARC captures share, and a byte-identical WAT copy.
    assert any("01-dolma-sample-0000.warc.gz" in v for v in shared.values())
    assert any("05-copy-of-fixture-0001.warc.wat.gz" in v for v in shared.values())
    rows = dedup_rows(run4)
    keys = [(r["uuid"], r["text"]) for r in rows]
    assert len(keys) == len(set(keys)) and set(keys) == set(naive.unique)
    for r in rows:  # the kept copy is the first source by name, whatever the batch order
        if (r["uuid"], r["text"]) in shared:
            assert Path(r["source"]).name == min(shared[r["uuid"], r["text"]])
    assert sum(b["duplicates"] for b in run4.buckets) == len(naive.matched) - len(naive.unique)
    assert sum(b["pairs_in"] for b in run4.buckets) == len(naive.matched)
    assert sum(b["images"] for b in run4.buckets) == len({u for u, _ in naive.unique})
    for b in run4.buckets:  # each part sorted by (uuid, text): equal uuids adjacent for sampling
        for uri in b["dedup_uris"]:
            t = pq.read_table(uri)
            pairs = list(zip(t["uuid"].to_pylist(), t["text"].to_pylist(), strict=True))
            assert pairs == sorted(pairs)


def test_tree_reduced_counts_equal_a_naive_count(run4, world):
    assert len(run4.plan) == 2 and len(run4.plan[-1]) == 1  # 4 bucket counts, fan-in 2
    assert run4.counts.tolist() == world.naive.counts
    table = pq.read_table(run4.counts_uri)
    assert table["entry"].to_pylist() == world.entries
    meta = table.schema.metadata
    assert meta[b"metadata_sha256"].decode() == run4.settings.metadata_sha256
    per_bucket = SparseCounts.sum(SparseCounts.load(b["counts_uri"]) for b in run4.buckets)
    assert per_bucket.to_dense(len(world.entries)).tolist() == world.naive.counts
    assert (run4.counts > T).any() and (run4.counts[run4.counts > 0] <= T).any()


def test_curated_rows_equal_the_naive_algorithm(run4, world):
    naive = world.naive
    curated = run_curated(run4)
    assert curated == naive.kept
    images = {u for u, _ in naive.unique}
    assert 0 < len(curated) < len(images)  # balancing dropped some head pairs, kept others
    assert len({u for u, _, _ in curated}) == len(curated)  # one text per image
    assert sum(s["candidates"] for s in run4.sampled) == len(images)
    assert sum(s["rows_kept"] for s in run4.sampled) == len(curated)
    counts = np.array(naive.counts)
    tail = {(u, x) for u, x in naive.candidates if counts[naive.unique[u, x]].min() <= T}
    assert tail and tail <= {(u, x) for u, x, _ in curated}  # an entry under t keeps its pairs
    table = pq.read_table(run4.sampled[0]["curated_uris"][0])
    assert table.column_names[:2] == ["url", "caption"]  # img2dataset reads these as they are


def test_buckets_and_sub_buckets_do_not_change_the_result(run2, run4):
    assert any(len(b["dedup_uris"]) > 1 for b in run2.buckets)  # sub-buckets were used
    assert run_curated(run2) == run_curated(run4)
    assert run2.counts.tolist() == run4.counts.tolist()
    keys = ("pairs_read", "pairs_matched", "pairs_unique", "duplicates_across_files",
            "images_matched", "pairs_curated", "matches_total")  # fmt: skip
    assert {k: run2.summary[k] for k in keys} == {k: run4.summary[k] for k in keys}


@pytest.mark.parametrize("t", [1, 10])
def test_sampling_again_at_another_t_equals_a_fresh_run(run4, world, tmp_path, t):
    s = replace(run4.settings, t=t, output=str(tmp_path / "rebalanced"))
    sampled = [run_sample(s, run4.stores, b["bucket"], run4.counts_uri, b["dedup_uris"])
               for b in run4.buckets]  # fmt: skip
    naive = naive_run(world.files, world.entries, t=t)
    assert run_curated(SimpleNamespace(sampled=sampled)) == naive.kept
    summary = rebalanced_summary(run4.summary, sampled, run4.counts, t, s.seed, 0.0)
    assert summary["pairs_curated"] == len(naive.kept)
    assert summary["rebalanced"]["from_t"] == T and summary["t"] == t
    assert summary["p"] == balance.t_to_p(run4.counts, t)
    assert summary["entries_over_t"] == int((np.array(naive.counts) > t).sum())


def test_drawing_every_pair_keeps_every_pair_with_an_entry_under_t(run4, world, tmp_path):
    s = replace(run4.settings, one_text_per_image=False, output=str(tmp_path / "all-pairs"))
    sampled = [run_sample(s, run4.stores, b["bucket"], run4.counts_uri, b["dedup_uris"])
               for b in run4.buckets]  # fmt: skip
    curated = curated_rows([u for x in sampled for u in x["curated_uris"]])
    naive = naive_run(world.files, world.entries, one_per_image=False)
    assert curated == naive.kept
    counts = np.array(naive.counts)
    tail = {k for k, ids in naive.unique.items() if counts[ids].min() <= T}
    assert tail <= {(u, x) for u, x, _ in curated}
    assert sum(x["candidates"] for x in sampled) == len(naive.unique)


def test_a_damaged_matched_part_uncommits_its_batch(world, tmp_path):
    meta = load_metadata(world.metadata)
    s = make_settings(tmp_path / "out", meta.uri, meta.sha256, n_buckets=2)
    stores = Stores()
    b = run_batch(s, stores, "only", world.files[:2])
    layout = OutputLayout(s.output)
    index = run_index(s, stores, [b["manifest_uri"]], layout.bucket_index(batches_digest([b])))
    manifest = read_json(b["manifest_uri"])
    part = Path(layout.matched_part(manifest["buckets"][0], "only"))
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    with pytest.raises(partition.CorruptIntermediateError):
        run_bucket(s, stores, manifest["buckets"][0], index["uri"])
    assert not Path(b["manifest_uri"]).exists() and not part.exists()  # the batch is redone


def test_an_exclusion_store_drops_images_curated_by_earlier_runs(world, tmp_path):
    store = str(tmp_path / "store")
    check_store(store, 4)
    first = curate_plain(world.files, world.metadata, tmp_path / "a", 4, exclude_store=store,
                         store_tag="dump-a")  # fmt: skip
    assert run_curated(first) == world.naive.kept  # an empty store excludes nothing
    seen = {u for u, _, _ in run_curated(first)}
    second = curate_plain(world.files, world.metadata, tmp_path / "b", 4, exclude_store=store,
                          store_tag="dump-b")  # fmt: skip
    assert sum(b["excluded_seen"] for b in second.buckets) == sum(
        u in seen for u, _ in world.naive.unique
    )
    assert not seen & {r["uuid"] for r in dedup_rows(second)}
    assert not seen & {u for u, _, _ in run_curated(second)}
    again = curate_plain(world.files, world.metadata, tmp_path / "a2", 4, exclude_store=store,
                         store_tag="dump-a")  # a rerun under its own tag is not excluded by it
    assert sum(b["excluded_seen"] for b in again.buckets) == sum(
        u in {u for u, _, _ in run_curated(second)} for u, _ in world.naive.unique
    )
    assert store_buckets(store) == 4
    with pytest.raises(UserError, match="has 4 buckets"):
        check_store(store, 2)


def test_a_rerun_into_the_same_output_samples_with_its_own_counts(world, tmp_path):
    """A worker that sampled one run samples the next run into the same output (same t) with
    that run's counts, not the first's (a long-lived Dask cluster keeps its processes)."""
    curate_plain(world.files, world.metadata, tmp_path / "out", n_buckets=4)
    fewer = world.files[3:4]
    rerun = curate_plain(fewer, world.metadata, tmp_path / "out", n_buckets=4)
    assert rerun.counts.tolist() == naive_run(fewer, world.entries).counts
    assert run_curated(rerun) == naive_run(fewer, world.entries).kept


def test_bucket_of_uses_the_uuid_prefix():
    uuids = ["0000000a" + "0" * 16, "ffffffff" + "1" * 16]
    assert partition.bucket_of(pa.array(uuids), 7).tolist() == [10 % 7, 0xFFFFFFFF % 7]
    assert partition.bucket_of(pa.array(uuids), 7, digits_from=8).tolist() == [0, 0x11111111 % 7]
