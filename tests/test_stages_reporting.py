"""Reporting on a run made by the plain stage functions (tests/stages.py): the summary against
the stages' results and a naive recount, the data card's exact expected size against the naive
keep probabilities, and the card's files (JSON, Markdown, PNG plots)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from metaclip.extraction.limits import DEFAULT_LIMITS
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
from metaclip.reporting import datacard, summary
from metaclip.reporting.render import write_datacard
from metaclip.reporting.run_inputs import candidate_source, load_run
from tests.naive import naive_counts
from tests.stages import SEED, T, curate_plain, make_inputs, make_metadata, naive_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("stages-reporting")
    files = make_inputs(root / "inputs")
    entries = make_metadata(root / "metadata.json", files)
    run = curate_plain(files, str(root / "metadata.json"), root / "out", n_buckets=4)
    return SimpleNamespace(root=root, files=files, metadata=root / "metadata.json",
                           entries=entries, naive=naive_run(files, entries), run=run)  # fmt: skip


def test_summary_agrees_with_the_stages_and_a_naive_recount(world):
    naive, run = world.naive, world.run
    s = run.summary
    counts = np.array(naive.counts)
    images = {u for u, _ in naive.unique}
    skipped: Counter[str] = Counter()
    for f in world.files:
        extractor = extract_wat_file if ".wat" in Path(f).name else extract_warc_file
        skipped.update(extractor(f)[1].skipped)
    assert (s["files"], s["batches"], s["buckets"]) == (len(world.files), 2, 4)
    assert s["pairs_read"] == naive.pairs_read
    assert s["pairs_matched"] == len(naive.matched)
    assert s["pairs_matched"] + s["pairs_unmatched"] == s["pairs_read"]
    assert s["pairs_unique"] == len(naive.unique)
    assert s["duplicates_across_files"] == len(naive.matched) - len(naive.unique) > 0
    assert s["excluded_seen_before"] == 0
    assert s["images_matched"] == len(images)
    assert s["pairs_curated"] == len(naive.kept)
    assert s["matches_total"] == counts.sum()
    assert s["skipped"] == dict(sorted(skipped.items())) and s["skipped"]["missing_file"] == 1
    assert s["metadata"] == {
        "uri": str(world.metadata),
        "sha256": hashlib.sha256(world.metadata.read_bytes()).hexdigest(),
        "entries": len(world.entries),
        "entries_matched": int((counts > 0).sum()),
    }
    assert s["p"] == pytest.approx(counts[counts < T].sum() / counts.sum())
    assert s["entries_over_t"] == int((counts > T).sum()) > 0
    assert (s["t"], s["seed"], s["one_text_per_image"]) == (T, SEED, True)
    assert s["limits"] == DEFAULT_LIMITS.to_dict()
    assert summary.limits_line(s["limits"]) == "all default"
    assert json.loads(Path(run.summary["outputs"]["summary"]).read_text()) == s


def test_data_card_expected_size_is_the_naive_expectation(world):
    naive, run = world.naive, world.run
    data = load_run(run.output)
    assert data.entries == world.entries and data.counts.tolist() == naive.counts
    kept_counts = naive_counts([ids for _, _, ids in naive.kept], len(world.entries))
    assert data.curated_counts.tolist() == kept_counts
    card = datacard.build_datacard(data, candidates=candidate_source(run.output))
    assert card["expected_size"]["at_t"] == pytest.approx(naive.expected, rel=1e-9)
    # The run's own draw is one sample of that expectation: within 4 standard deviations.
    assert abs(len(naive.kept) - naive.expected) <= 4 * naive.variance**0.5 + 1
    images = len({u for u, _ in naive.unique})
    assert card["candidates"]["units"] == pytest.approx(images)
    assert card["candidates"]["texts"] == len(naive.unique)
    assert card["pairs"] == {"read": naive.pairs_read, "matched": len(naive.matched),
                             "unique": len(naive.unique), "curated": len(naive.kept)}  # fmt: skip
    ts, sizes = card["expected_size"]["t"], card["expected_size"]["pairs"]
    assert all(a <= b + 1e-9 for a, b in zip(sizes, sizes[1:], strict=False))  # grows with t
    assert ts[-1] > max(naive.counts) and sizes[-1] == pytest.approx(images)  # all kept
    # The t for a target size: the naive expectation at that t is the target.
    need = (sizes[0] + sizes[-1]) / 2
    card = datacard.build_datacard(
        data, candidates=candidate_source(run.output), targets=[0.9 * need], success_rate=0.9
    )
    target = card["targets"][0]
    assert target["target_curated"] == pytest.approx(need)
    assert naive_run(world.files, world.entries, t=target["t"]).expected == pytest.approx(
        need, rel=0.01
    )
    top = card["top_before"][0]
    assert top["count"] == max(naive.counts) and top["after"] == kept_counts[top["entry_id"]]


def test_data_card_files(world, tmp_path):
    run = world.run
    data = load_run(run.output)
    card = datacard.build_datacard(data, candidates=candidate_source(run.output))
    files = write_datacard(data, card, str(tmp_path / "card"))
    written = {Path(u).name: Path(u).read_bytes() for u in files.values()}
    assert {"datacard.json", "datacard.md", "count_distribution.png",
            "expected_size.png"} <= set(written)  # fmt: skip
    assert all(blob.startswith(PNG_MAGIC) for name, blob in written.items()
               if name.endswith(".png"))  # fmt: skip
    on_disk = json.loads(written["datacard.json"])
    assert on_disk["pairs"]["curated"] == len(world.naive.kept)
    assert on_disk["expected_size"]["at_t"] == pytest.approx(world.naive.expected)
    assert f"{len(world.naive.kept):,}" in written["datacard.md"].decode()
