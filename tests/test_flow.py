"""The curation flow end to end: a real local Dask cluster, a real Prefect API (test server).

The curated rows must equal a naive implementation of MetaCLIP's Algorithm 1 written here
(naive substring matching, direct counts, the product formula), row for row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flows.curate import curate
from metaclip.balance import uniform_draws
from metaclip.counts import read_entry_counts
from metaclip.wat import extract_wat_file
from tests.naive import naive_counts, naive_keep_probability, naive_match

WAT = Path(__file__).parent / "data" / "wat"
FILES = sorted(str(p) for p in WAT.glob("fixture-*.warc.wat.gz"))
T = 3
SEED = 11

pytestmark = pytest.mark.usefixtures("prefect_server")


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
        batch_size=1, n_workers=2, dashboard_address=":0",
    )
    params.update(overrides)
    state = curate(**params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def curated_rows(output: Path) -> set[tuple[str, str, tuple[int, ...]]]:
    table = pq.read_table(output / "curated")
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                   map(tuple, table["entry_ids"].to_pylist()), strict=True))


def naive_curation(entries: list[str]):
    rows = [r for f in FILES for r in extract_wat_file(f)[0].to_pylist()]
    matched = [(r, naive_match(r["text"], entries)) for r in rows]
    matched = [(r, m) for r, m in matched if m]
    counts = naive_counts([m for _, m in matched], len(entries))
    draws = uniform_draws(SEED, [r["uuid"] for r, _ in matched], [r["text"] for r, _ in matched])
    kept = {
        (r["uuid"], r["text"], tuple(m))
        for (r, m), u in zip(matched, draws, strict=True)
        if u < naive_keep_probability(m, counts, T)
    }
    return kept, counts, len(rows), len(matched)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, metadata):
    output = tmp_path_factory.mktemp("run") / "out"
    return output, run(output, metadata)


def test_curated_rows_equal_naive_algorithm(first_run, metadata):
    output, summary = first_run
    entries = json.loads(metadata.read_text())
    kept, counts, n_pairs, n_matched = naive_curation(entries)
    assert curated_rows(output) == kept
    assert 0 < len(kept) < n_matched  # balancing dropped some head pairs, kept others
    got_counts, sha = read_entry_counts(str(output / "entry_counts.parquet"))
    assert got_counts.tolist() == counts
    assert summary["pairs_read"] == n_pairs and summary["pairs_matched"] == n_matched
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


def test_rerun_reuses_everything_and_keeps_the_same_pairs(first_run, metadata):
    output, summary = first_run
    parts = sorted((output / "_work" / "matched").glob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in parts}
    rows = curated_rows(output)
    again = run(output, metadata)
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # nothing was re-extracted
    assert curated_rows(output) == rows
    assert again["pairs_curated"] == summary["pairs_curated"]


def test_deleted_outputs_are_recomputed(first_run, metadata):
    output, _ = first_run
    rows = curated_rows(output)
    victim = sorted((output / "_work" / "matched").glob("*.parquet"))[0]
    victim.unlink()
    shutil.rmtree(output / "curated")
    run(output, metadata)
    assert victim.exists()
    assert curated_rows(output) == rows


def test_new_t_changes_only_balancing(first_run, metadata, tmp_path):
    output, summary = first_run
    high = run(output, metadata, t=10**9)
    assert high["pairs_curated"] == summary["pairs_matched"]  # nothing is capped
    run(output, metadata)  # restore t for other tests


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
