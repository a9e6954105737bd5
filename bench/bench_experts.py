"""MoDE data experts: embedding and assignment throughput per core, k-means time, memory.

    python bench/bench_experts.py [--embed 1000] [--assign 200000] [--kmeans-sample 100000]
                               [--out bench/results/mode.json]

Single-threaded stages (torch and faiss pinned to one thread; the flow runs one single-threaded
Dask worker per core) so figures are per core. Captions are the real ones in
tests/data/captions (COCO + CC3M), cycled where more rows are needed.

* embed       metaclip.experts.embedding.embed_texts with the packaged all-MiniLM-L6-v2 (batch 256)
* assign      Centres.assign (faiss IndexFlatL2, 1,024 fine centres) on float16 embeddings
* assign+io   metaclip.experts.assign.assign_shard: read shard and embeddings, assign, draw the 2%
              out-of-cluster pairs, write 4 expert Parquet parts
* kmeans      fit_centres: 1,024 fine centres (25 iterations), then 4 coarse, on a sample
Memory is the peak resident set of this process after each stage (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metaclip.config import ExpertsConfig, Stores  # noqa: E402
from metaclip.experts.assign import assign_shard  # noqa: E402
from metaclip.experts.embedding import embed_texts, load_encoder, save_array  # noqa: E402
from metaclip.experts.kmeans import Centres, fit_centres  # noqa: E402
from tests.test_experts_pipeline import caption_lines, write_curated  # noqa: E402

PAIRS_2_5B = 2.5e9
DIM = 384


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def captions(n: int) -> list[str]:
    lines = caption_lines()
    return [lines[i % len(lines)] for i in range(n)]


def cpu_timed(fn):
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - start_cpu, time.perf_counter() - start_wall


def bench_embed(texts: list[str]) -> tuple[np.ndarray, dict]:
    encoder = load_encoder()
    embed_texts(texts[:64], encoder)  # warm-up
    x, cpu, wall = cpu_timed(lambda: embed_texts(texts, encoder))
    return x, {"rows": len(texts), "cpu_s": cpu, "wall_s": wall,
               "per_core_per_s": len(texts) / cpu, "peak_rss_mb": peak_rss_mb()}


def tile(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n unit vectors near the real embeddings (small noise keeps them distinct)."""
    rng = np.random.default_rng(seed)
    y = x[np.arange(n) % len(x)] + rng.normal(0, 0.02, (n, x.shape[1])).astype(np.float32)
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def bench_kmeans(sample: np.ndarray) -> tuple[Centres, dict]:
    centres, cpu, wall = cpu_timed(lambda: fit_centres(sample, 1024, 4, "faiss", niter=25, meta={
        "encoder": "all-MiniLM-L6-v2", "normalize": True}))  # balanced: bench_mode_reference.py
    return centres, {"sample_rows": len(sample), "cpu_s": cpu, "wall_s": wall,
                     "peak_rss_mb": peak_rss_mb()}


def bench_assign(centres: Centres, x: np.ndarray) -> dict:
    x16 = x.astype(np.float16)
    _, cpu, wall = cpu_timed(lambda: centres.assign(x16.astype(np.float32)))
    return {"rows": len(x), "cpu_s": cpu, "wall_s": wall, "per_core_per_s": len(x) / cpu,
            "peak_rss_mb": peak_rss_mb()}


def bench_assign_io(centres: Centres, x: np.ndarray, texts: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        shard = write_curated(Path(tmp) / "part-0000.parquet", texts)
        emb, cen = f"{tmp}/emb.npy", f"{tmp}/centres.npz"
        save_array(emb, x.astype(np.float16))
        centres.save(cen)
        settings = ExpertsConfig(tmp, f"{tmp}/out", outside_share=0.02)
        _, cpu, wall = cpu_timed(lambda: assign_shard(settings, Stores(), shard, emb, cen, "0000"))
    return {"rows": len(x), "cpu_s": cpu, "wall_s": wall, "per_core_per_s": len(x) / cpu}


def estimate(embed_rate: float, assign_rate: float, gpu_embed_rate: float) -> dict:
    """What 2.5B pairs cost; the GPU figure is an estimate (no GPU was measured)."""
    return {
        "pairs": PAIRS_2_5B,
        "cpu_core_hours_embed": PAIRS_2_5B / embed_rate / 3600,
        "cpu_core_hours_assign_with_io": PAIRS_2_5B / assign_rate / 3600,
        "gpu_hours_embed_estimate": PAIRS_2_5B / gpu_embed_rate / 3600,
        "gpu_embed_rate_assumed_per_s": gpu_embed_rate,
        "embeddings_storage_tb_float16": PAIRS_2_5B * DIM * 2 / 1e12,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed", type=int, default=1000)
    parser.add_argument("--assign", type=int, default=200_000)
    parser.add_argument("--kmeans-sample", type=int, default=100_000)
    parser.add_argument("--gpu-embed-rate", type=float, default=30_000.0,
                        help="assumed captions/s of all-MiniLM-L6-v2 on one H100 (not measured)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "mode.json"))
    args = parser.parse_args()

    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    texts = captions(args.embed)
    x, embed = bench_embed(texts)
    print("embed", json.dumps(embed))
    centres, km = bench_kmeans(tile(x, args.kmeans_sample))
    print("kmeans", json.dumps(km))
    big = tile(x, args.assign, seed=1)
    assign = bench_assign(centres, big)
    print("assign", json.dumps(assign))
    assign_io = bench_assign_io(centres, big[:50_000], captions(50_000))
    print("assign+io", json.dumps(assign_io))
    result = {
        "embed": embed, "kmeans": km, "assign": assign, "assign_io": assign_io,
        "estimate_2_5b": estimate(embed["per_core_per_s"], assign_io["per_core_per_s"],
                                  args.gpu_embed_rate),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    print("estimate", json.dumps(result["estimate_2_5b"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
