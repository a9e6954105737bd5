"""The curation flow end to end: a real local Dask cluster, a real Prefect API (test server).

The curated rows must equal a naive implementation of MetaCLIP's Algorithm 1 written here
(naive substring matching, direct counts, the product formula), row for row.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip.curation.balance import uniform_draws
from metaclip.curation.counts import read_entry_counts
from metaclip.extraction.wat import extract_wat_file
from metaclip_prefect.flows.curate import curate
from tests.naive import naive_counts, naive_keep_probability, naive_match

WAT = Path(__file__).parent / "data" / "wat"
FILES = sorted(str(p) for p in WAT.glob("fixture-*.warc.wat.gz"))
T = 3
SEED = 11

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> Path:
    """Entries drawn from the fixture's own alt texts: words, word pairs, triples, 0..99."""
    texts = [t for f in FILES for t in extract_wat_file(f)[0]["text"].to_pylist()]
    words = sorted({w for t in texts for w in t.split()})
    pairs = sorted({" ".join(t.split()[i : i + 2]) for t in texts for i in range(len(t.split()))})
    triples = sorted({" ".join(t.split()[i : i + 3]) for t in texts[:200]
                      for i in range(len(t.split()) - 2)})
    entries = [str(i) for i in range(100)] + words[::2] + pairs[::7] + triples[::5]
    path = tmp_path_factory.mktemp("meta") / "metadata.json"
    path.write_text(json.dumps(entries))
    return path


def run(output: Path, metadata: Path, **overrides):
    params = dict(
        inputs=FILES, metadata=str(metadata), output=str(output), t=T, seed=SEED,
        batch_size=1, n_buckets=4, n_workers=2, dashboard_address=":0", languages=None,
    )
    params.update(overrides)
    state = curate(**params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def curated_rows(output: Path) -> set[tuple[str, str, tuple[int, ...]]]:
    table = pq.read_table(output / "curated")
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                   map(tuple, table["entry_ids"].to_pylist()), strict=True))


def naive_curation(entries: list[str], one_per_image: bool = True):
    """Algorithm 1 with MetaCLIP 2's global dedup: distinct (uuid, text) pairs are counted, then
    one text per image is chosen uniformly and kept with probability 1 - prod(1 - p_e)."""
    rows = [r for f in FILES for r in extract_wat_file(f)[0].to_pylist()]
    unique = {(r["uuid"], r["text"]) for r in rows}
    matched = {(u, t): naive_match(t, entries) for u, t in unique}
    matched = {k: m for k, m in matched.items() if m}
    counts = naive_counts(matched.values(), len(entries))
    by_image: dict[str, list[str]] = {}
    for u, t in matched:
        by_image.setdefault(u, []).append(t)
    chosen = []
    for u, texts in by_image.items():
        if not one_per_image:
            chosen.extend((u, t) for t in texts)
            continue
        draws = uniform_draws(SEED, [u] * len(texts), texts, purpose="choose")
        chosen.append((u, texts[int(np.argmin(draws))]))
    keep_draws = uniform_draws(SEED, [u for u, _ in chosen], [t for _, t in chosen])
    kept = {
        (u, t, tuple(matched[u, t]))
        for (u, t), draw in zip(chosen, keep_draws, strict=True)
        if draw < naive_keep_probability(matched[u, t], counts, T)
    }
    return kept, counts, len(rows), len(matched)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, metadata):
    output = tmp_path_factory.mktemp("run") / "out"
    return output, run(output, metadata)


def test_curated_rows_equal_naive_algorithm(first_run, metadata):
    output, summary = first_run
    entries = json.loads(metadata.read_text())
    kept, counts, n_pairs, n_unique_matched = naive_curation(entries)
    assert curated_rows(output) == kept
    assert 0 < len(kept) < n_unique_matched  # balancing dropped some head pairs, kept others
    got_counts, sha = read_entry_counts(str(output / "entry_counts.parquet"))
    assert got_counts.tolist() == counts
    assert summary["pairs_read"] == n_pairs and summary["pairs_unique"] == n_unique_matched
    assert len({u for u, _, _ in kept}) == len(kept)  # one text per image
    assert summary["pairs_curated"] == len(kept)
    assert summary["metadata"]["sha256"] == sha and summary["entries_over_t"] > 0
    on_disk = json.loads((output / "summary.json").read_text())
    assert on_disk["pairs_curated"] == len(kept)


def test_curated_parquet_is_img2dataset_ready(first_run):
    output, _ = first_run
    table = pq.read_table(output / "curated")
    assert {"url", "caption", "uuid", "entry_ids", "text_key"} <= set(table.column_names)
    assert all(u.startswith(("http://", "https://")) for u in table["url"].to_pylist())


def test_same_pairs_on_one_worker_other_batching(first_run, metadata, tmp_path):
    output, _ = first_run
    other = tmp_path / "one-worker"
    run(other, metadata, n_workers=1, batch_size=2)
    assert curated_rows(other) == curated_rows(output)


def test_duplicate_input_file_changes_nothing(first_run, metadata, tmp_path):
    """The same images in another file (another batch) are deduplicated by uuid."""
    output, summary = first_run
    copy = tmp_path / "copy-of-0000.warc.wat.gz"
    shutil.copy(FILES[0], copy)
    other = run(tmp_path / "dup", metadata, inputs=[*FILES, str(copy)], n_buckets=3)
    assert curated_rows(tmp_path / "dup") == curated_rows(output)
    assert other["duplicates_across_files"] > 0
    assert other["pairs_unique"] == summary["pairs_unique"]


def test_every_text_mode_equals_naive(metadata, tmp_path):
    run(tmp_path / "all", metadata, one_text_per_image=False)
    kept, _, _, _ = naive_curation(json.loads(metadata.read_text()), one_per_image=False)
    assert curated_rows(tmp_path / "all") == kept


def test_exclusion_store_leaves_out_earlier_dumps(first_run, metadata, tmp_path):
    store = tmp_path / "seen"
    earlier = run(tmp_path / "dump1", metadata, inputs=FILES[:1], exclude_store=str(store))
    later = run(tmp_path / "dump2", metadata, exclude_store=str(store))
    first_uuids = {u for u, _, _ in curated_rows(tmp_path / "dump1")}
    assert earlier["pairs_curated"] > 0 and later["excluded_seen_before"] > 0
    assert not first_uuids & {u for u, _, _ in curated_rows(tmp_path / "dump2")}
    again = run(tmp_path / "dump2", metadata, exclude_store=str(store))  # a rerun: same result
    assert again["pairs_curated"] == later["pairs_curated"]


def test_store_with_other_bucket_count_is_refused(metadata, tmp_path):
    store = tmp_path / "seen"
    run(tmp_path / "a", metadata, inputs=FILES[:1], exclude_store=str(store))
    state = curate(inputs=FILES, metadata=str(metadata), output=str(tmp_path / "b"),
                   n_buckets=5, exclude_store=str(store), return_state=True)
    assert state.is_failed() and "n_buckets=4" in state.message


def test_rerun_of_a_finished_run_has_nothing_to_do(first_run, metadata):
    output, summary = first_run
    files = [p for p in output.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    again = run(output, metadata)
    assert again == summary  # the stored summary, with the first run's times
    assert {p: p.stat().st_mtime_ns for p in files} == before  # not one file rewritten


def test_rerun_without_completion_record_reuses_every_task(first_run, metadata):
    """As after a crash at the very end: the cached tasks run again, and redo nothing."""
    output, summary = first_run
    parts = sorted((output / "_work").rglob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in parts}
    rows = curated_rows(output)
    (output / "complete.json").unlink()
    again = run(output, metadata)
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # nothing was re-extracted
    assert curated_rows(output) == rows
    assert again["pairs_curated"] == summary["pairs_curated"]
    assert (output / "complete.json").exists()


@pytest.mark.parametrize("change", ["rewrite", "garble_record"])
def test_a_changed_output_or_record_takes_the_task_path(first_run, metadata, change):
    output, summary = first_run
    rows = curated_rows(output)
    part = sorted((output / "curated").glob("*.parquet"))[0]
    if change == "rewrite":  # as if another tool wrote it: recomputed by its sample task
        os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 10**9))
    else:
        (output / "complete.json").write_text("{not json")
    stamp = part.stat().st_mtime_ns
    again = run(output, metadata)
    assert curated_rows(output) == rows
    assert again["pairs_curated"] == summary["pairs_curated"]
    assert json.loads((output / "complete.json").read_text())["summary"] == again
    if change == "rewrite":
        assert part.stat().st_mtime_ns != stamp  # written again: the record was not trusted


def test_deleted_outputs_are_recomputed(first_run, metadata):
    output, _ = first_run
    rows = curated_rows(output)
    shutil.rmtree(output / "curated")
    (output / "entry_counts.parquet").unlink()
    run(output, metadata)
    assert curated_rows(output) == rows


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_missing_or_corrupt_intermediate_is_recomputed(first_run, metadata, damage):
    """A bucket that must be recomputed finds its input part gone or damaged: the batch that
    wrote it is recomputed within the same run, and the result is unchanged."""
    output, _ = first_run
    rows = curated_rows(output)
    victim = sorted((output / "_work" / "matched").glob("bucket=00001/*.parquet"))[0]
    if damage == "delete":
        victim.unlink()
    else:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    (output / "_work" / "dedup" / "00001.parquet").unlink()  # force the bucket to be redone
    (output / "complete.json").unlink()  # as if the run had crashed before its end
    run(output, metadata)
    assert victim.exists()
    assert curated_rows(output) == rows


def test_new_t_changes_only_balancing(first_run, metadata, tmp_path):
    output, summary = first_run
    rows = curated_rows(output)
    parts = sorted((output / "_work" / "dedup").glob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in parts}
    high = run(output, metadata, t=10**9)
    assert high["pairs_curated"] == summary["images_matched"]  # nothing is capped
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # no dedup or count again
    run(output, metadata)  # back to t: its cached results point at overwritten parts
    assert curated_rows(output) == rows


def test_rebalance_flow_reads_matches_and_counts_only(first_run, metadata):
    from metaclip_prefect.flows.rebalance import rebalance

    output, summary = first_run
    rows = curated_rows(output)
    state = rebalance(output=str(output), t=10**9, n_workers=1, dashboard_address=":0",
                      return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["pairs_curated"] == summary["images_matched"]
    assert state.result()["rebalanced"]["from_t"] == T
    back = rebalance(output=str(output), t=T, n_workers=1, dashboard_address=":0")
    assert back["pairs_curated"] == summary["pairs_curated"]
    assert curated_rows(output) == rows
    assert (output / "datacard" / "datacard.json").exists()


def test_rebalance_without_a_run_is_one_line(tmp_path):
    from metaclip_prefect.flows.rebalance import rebalance

    state = rebalance(output=str(tmp_path), t=5, return_state=True)
    assert state.is_failed() and "no finished curation" in state.message


def test_missing_input_file_is_counted_and_the_run_goes_on(metadata, tmp_path):
    output = tmp_path / "out"
    summary = run(output, metadata, inputs=[FILES[0], str(tmp_path / "gone.warc.wat.gz")])
    assert summary["skipped"]["missing_file"] == 1
    alone = run(tmp_path / "alone", metadata, inputs=[FILES[0]])
    assert summary["pairs_curated"] == alone["pairs_curated"] > 0


def test_missing_metadata_stops_before_any_work(tmp_path):
    missing = tmp_path / "nope.json"
    state = curate(inputs=FILES, metadata=str(missing), output=str(tmp_path / "out"),
                   return_state=True)
    assert state.is_failed()
    assert str(missing) in state.message and "\n" not in state.message
    assert not (tmp_path / "out").exists()


def test_malformed_metadata_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    state = curate(inputs=FILES, metadata=str(bad), output=str(tmp_path / "out"),
                   return_state=True)
    assert state.is_failed() and str(bad) in state.message


def test_unknown_counts_give_probability_one():
    assert np.isclose(naive_keep_probability([0], [0], T), 1.0)


def test_crawl_id_expands_to_its_wat_files(first_run, metadata, tmp_path):
    """A crawl id reads crawl-data/<crawl>/wat.paths.gz (paths relative to the data root)."""
    import gzip as gz

    output, _ = first_run
    crawl = "CC-MAIN-2099-01"
    relative = []
    for path in FILES:
        rel = f"crawl-data/{crawl}/segments/1/wat/{Path(path).name}"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / rel)
        relative.append(rel)
    (tmp_path / "crawl-data" / crawl / "wat.paths.gz").write_bytes(
        gz.compress(("\n".join(relative) + "\n").encode())
    )
    result = run(tmp_path / "out", metadata, inputs=[], crawl=crawl,
                 crawl_data_root=str(tmp_path))
    assert result["files"] == len(FILES)
    assert curated_rows(tmp_path / "out") == curated_rows(output)


def test_english_only_keeps_english_texts(metadata, tmp_path):
    from metaclip.extraction.lid import LanguageIdentifier

    summary = run(tmp_path / "en", metadata, languages=["en"])
    captions = pq.read_table(tmp_path / "en" / "curated")["caption"]
    codes, _ = LanguageIdentifier().identify(captions)
    assert summary["skipped"]["other_language"] > 0 and len(captions) > 0
    assert set(codes.to_pylist()) == {"en"}


def test_wat_and_warc_inputs_together(metadata, tmp_path):
    """The format of each input is taken from its name; both feed the same stages."""
    from metaclip.extraction.warc import extract_warc_file

    warcs = sorted(str(p) for p in (WAT.parent / "warc").glob("dolma-*.warc.gz"))
    summary = run(tmp_path / "mixed", metadata, inputs=[*FILES, *warcs], n_buckets=2)
    expected = sum(extract_wat_file(f)[1].pairs for f in FILES)
    expected += sum(extract_warc_file(f)[1].pairs for f in warcs)
    assert warcs and summary["files"] == len(FILES) + len(warcs)
    assert summary["pairs_read"] == expected


def test_cluster_class_from_the_environment(metadata, tmp_path, monkeypatch):
    """How a Slurm or Kubernetes cluster is chosen, with the class every dask install has."""
    from prefect.settings import PREFECT_API_URL

    kwargs = {"n_workers": 1, "threads_per_worker": 1, "dashboard_address": ":0",
              "env": {"PREFECT_API_URL": PREFECT_API_URL.value()}}
    monkeypatch.setenv("METACLIP_DASK_CLUSTER", "distributed.LocalCluster")
    monkeypatch.setenv("METACLIP_DASK_CLUSTER_KWARGS", json.dumps(kwargs))
    monkeypatch.setenv("METACLIP_DASK_ADAPT", json.dumps({"minimum": 1, "maximum": 2}))
    summary = run(tmp_path / "out", metadata, inputs=FILES[:1])
    assert summary["pairs_curated"] > 0
    monkeypatch.setenv("METACLIP_DASK_CLUSTER_KWARGS", "[1, 2]")
    state = curate(inputs=FILES[:1], metadata=str(metadata), output=str(tmp_path / "bad"),
                   return_state=True)
    assert state.is_failed() and "must be a JSON object" in state.message


def test_oversized_buckets_are_done_as_sub_buckets(metadata, tmp_path, monkeypatch):
    """A bucket over METACLIP_MAX_BUCKET_ROWS is deduplicated and sampled in parts: the same
    curated rows and counts as the naive algorithm, and rebalancing reads the parts too."""
    monkeypatch.setenv("METACLIP_MAX_BUCKET_ROWS", "8")  # ~30 pairs a bucket here
    output = tmp_path / "out"
    summary = run(output, metadata)
    assert len(list((output / "_work" / "dedup").glob("*-s*.parquet"))) > 4
    assert len(list((output / "curated").glob("*-s*.parquet"))) > 4
    entries = json.loads(metadata.read_text())
    kept, counts, _, n_matched = naive_curation(entries)
    assert curated_rows(output) == kept
    assert summary["pairs_unique"] == n_matched
    stored, _ = read_entry_counts(str(output / "entry_counts.parquet"))
    assert np.array_equal(stored, counts)
    from metaclip_prefect.flows.rebalance import rebalance

    wide = rebalance(output=str(output), t=10**9, n_workers=1, dashboard_address=":0")
    assert wide["pairs_curated"] == summary["images_matched"]
