"""MoDE data experts on a curated set made by the plain stage functions (tests/stages.py), as
the experts flow's tasks call them, without Prefect and without a real encoder: a stand-in
encoder puts each caption in one of two far-apart blobs, so the experts are known in advance.
(The real encoder, all-MiniLM-L6-v2 on real captions: tests/test_experts_pipeline.py, slow.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip.config import ExpertsConfig, Stores
from metaclip.experts import embedding, routing
from metaclip.experts.assign import assign_shard, sample_shard
from metaclip.experts.inputs import count_rows, curated_shards, fit_from_samples, sample_rate
from metaclip.experts.kmeans import Centres
from metaclip.experts.paths import ModeLayout
from metaclip.experts.report import cluster_report
from tests.stages import curate_plain, make_inputs, make_metadata

pytest.importorskip("faiss")

DIM = 8
CLASSES = {"class zero": 0, "class one": 1}


def blob_of(text: str) -> int:
    return CLASSES.get(text, hashlib.blake2b(text.encode()).digest()[0] % 2)


class TwoBlobs:
    """Each text near one of two orthogonal unit vectors, by a hash of the text."""

    name = "two-blobs"

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        x = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            noise = np.frombuffer(hashlib.blake2b(text.encode(), digest_size=DIM).digest(),
                                  dtype=np.uint8)  # fmt: skip
            x[i] = 0.1 * (noise / 255.0 - 0.5)
            x[i, blob_of(text)] += 1.0
        return x


@pytest.fixture
def curated(tmp_path) -> str:
    files = make_inputs(tmp_path / "inputs")
    make_metadata(tmp_path / "metadata.json", files)
    return curate_plain(files, str(tmp_path / "metadata.json"), tmp_path / "out", 4).output


def test_experts_split_the_curated_set_by_cluster(curated, tmp_path, monkeypatch):
    monkeypatch.setattr(embedding, "load_encoder", lambda name, device=None: TwoBlobs())
    monkeypatch.setattr(routing, "load_encoder", lambda name, device=None: TwoBlobs())
    settings = ExpertsConfig(curated, str(tmp_path / "experts"), encoder="two-blobs", n_fine=4,
                             n_coarse=2, seed=0, outside_share=0.25, dtype="float32")  # fmt: skip
    stores, layout = Stores(), ModeLayout(str(tmp_path / "experts"))
    shards = curated_shards(curated)
    rows = count_rows(shards)
    assert len(shards) == 4 and all(rows)
    ids = [f"{i:04d}" for i in range(len(shards))]
    rate = sample_rate(sum(rows), settings.sample_size)
    samples = []
    for i, (shard, sid) in enumerate(zip(shards, ids, strict=True)):
        embedded = embedding.embed_shard(settings, stores, shard, layout.embeddings(sid))
        x = embedding.load_array(embedded["embeddings_uri"])
        assert x.shape == (rows[i], DIM) and x.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
        samples.append(sample_shard(settings, stores, embedded["embeddings_uri"],
                                    layout.sample(sid), rate, i)["sample_uri"])  # fmt: skip
    fit_from_samples(settings, stores, samples, layout.centres, meta={"encoder": "two-blobs"})
    centres = Centres.load(layout.centres)
    assert centres.n_experts == 2 and centres.meta["sample_rows"] == sum(rows)

    expert_of_blob: dict[int, int] = {}
    assigned = []
    for shard, sid in zip(shards, ids, strict=True):
        result = assign_shard(settings, stores, shard, layout.embeddings(sid), layout.centres, sid)
        assigned.append(result)
        captions = pq.read_table(shard)["caption"].to_pylist()
        inside: list[str] = []
        for k, part in enumerate(result["parts"]):
            table = pq.read_table(part)
            assert set(table["expert"].to_pylist()) <= {k}
            is_in = np.array(table["in_cluster"].to_pylist(), dtype=bool)
            assert is_in.sum() == result["in_cluster"][k]
            assert (~is_in).sum() == result["outside_added"][k]
            fine = np.array(table["fine_cluster"].to_pylist())
            assert (centres.fine_to_coarse[fine[is_in]] == k).all()
            for caption in np.array(table["caption"].to_pylist(), dtype=object)[is_in]:
                assert expert_of_blob.setdefault(blob_of(caption), k) == k  # one blob, one expert
                inside.append(caption)
        assert sorted(inside) == sorted(captions)  # every pair in exactly one expert
        assert sum(result["outside_added"]) > 0  # and a share of the others' pairs
    assert sorted(expert_of_blob.values()) == [0, 1]
    report = cluster_report(assigned, centres, 3)
    assert report["pairs"] == sum(rows) and report["empty_experts"] == []
    for k, expert in enumerate(report["experts"]):  # examples: captions of the expert's blob
        assert len(expert["examples"]) == 3
        assert all(expert_of_blob[blob_of(c)] == k for c in expert["examples"])

    routed = routing.route(["class zero"], centres, templates="none")  # the blobs are bare names
    assert int(np.argmax(routed["weights"])) == expert_of_blob[0]
    assert routed["encoder"] == "two-blobs" and sum(routed["weights"]) == pytest.approx(1.0)
