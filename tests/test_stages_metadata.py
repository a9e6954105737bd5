"""A metadata build as the build-metadata flow plans it, then used by a plain curation
(tests/stages.py): plan -> metadata.json + provenance.json -> inspection -> the curated set
equals the naive algorithm's with the built entries. Plain functions, no Prefect.
(The n-gram and PMI builders: tests/test_metadata_ngrams.py; merging: test_metadata_build.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaclip.errors import UserError
from metaclip.metadata import inspection
from metaclip.metadata.build import build_metadata_files
from metaclip.metadata.plan import BuildPlan, Thresholds, plan_build
from tests.stages import curate_plain, extract, make_inputs, naive_run, run_curated


def plan(output: Path, **given) -> BuildPlan:
    """The one call of the planning stage (its signature may follow the flow's settings)."""
    return plan_build(str(output), **given)


def build(plan: BuildPlan) -> dict:
    """The merge stage, for a plan with extra lists only (no source list to count first)."""
    return build_metadata_files([], plan.output, base=plan.base, extra=plan.extra)


def test_a_built_metadata_drives_a_curation(tmp_path):
    files = make_inputs(tmp_path / "inputs")
    words = sorted({w for f in files for r in extract(f) for w in r["text"].split()})
    extra = tmp_path / "words.txt"
    extra.write_text("\n".join(["...", *words[::3], "Scholar", "Icon"]) + "\n")
    built = build(plan(tmp_path / "metadata", extra=[str(extra)]))
    meta_uri = tmp_path / "metadata" / "metadata.json"
    entries = json.loads(meta_uri.read_text())
    assert entries[:100] == [str(i) for i in range(100)]  # the seeds first, as MetaCLIP's
    assert "..." not in entries and built["total"] == len(entries)
    assert [b["source"] for b in built["blocks"]] == ["seeds", "extra-1"]

    table = inspection.source_table(inspection.read_provenance(str(tmp_path / "metadata")))
    assert [row["first_id"] for row in table] == [0, 100]
    found = inspection.lookup(str(tmp_path / "metadata"), ["Scholar", "not an entry"])
    assert found[0].entry_id == entries.index("Scholar") and found[0].block == "extra-1"
    assert found[1].entry_id is None and found[1].block is None

    run = curate_plain(files, str(meta_uri), tmp_path / "out", n_buckets=4)
    naive = naive_run(files, entries)
    assert run_curated(run) == naive.kept and run.counts.tolist() == naive.counts
    assert run.summary["metadata"]["sha256"] == built["sha256"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "nothing to build"),
        ({"wiki_text": ["a.txt"], "unigram_counts": ["u.tsv"]}, "not both"),
        ({"bigram_counts": ["b.tsv"]}, "needs unigram counts"),
        ({"extra": ["{extra}"], "partitions": 0}, "partitions must be between"),
        ({"extra": ["{extra}"], "skip": ["everything"]}, "unknown source to skip"),
        ({"extra": ["{extra}"], "thresholds": Thresholds(min_bigram_pmi=float("nan"))},
         "must be a number"),
        ({"extra": ["{tmp}/missing.txt"]}, "input not found"),
    ],
)
def test_plan_refuses_mistakes_before_any_work(tmp_path, given, message):
    extra = tmp_path / "extra.txt"
    extra.write_text("cat\n")
    given = {k: [v.format(extra=extra, tmp=tmp_path) for v in vs] if isinstance(vs, list) else vs
             for k, vs in given.items()}  # fmt: skip
    with pytest.raises(UserError, match=message):
        plan(tmp_path / "metadata", **given)
