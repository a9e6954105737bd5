"""Scale: 1M and 10M matched pairs through bucketing, dedup + count, reduction and sampling.

Synthetic rows shaped like real matched alt texts: texts drawn from the real captions in
../shared (or tests/data/captions), 30% of rows repeat an earlier (image, text) and 10% give an
earlier image another text, 1 to 6 entry ids per row with Zipf-like popularity over 500k entries.
Each size runs in fresh subprocesses (generation, then the stages), timing every stage and
sampling the resident memory of the stage process.

    python bench/bench_scale.py [--sizes 1000000 10000000] [--buckets 64] [--batches 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save_result  # noqa: E402
from metaclip.config import Stores  # noqa: E402
from metaclip.curation.dedup import build_bucket_index, process_bucket  # noqa: E402
from metaclip.curation.partition import split_by_bucket  # noqa: E402
from metaclip.curation.reduce import reduce_counts, reduction_plan, write_entry_counts  # noqa: E402
from metaclip.curation.sample import sample_bucket  # noqa: E402
from metaclip.curation.settings import RunSettings  # noqa: E402
from metaclip.io import storage
from metaclip.io.paths import OutputLayout  # noqa: E402
from metaclip.io.results import write_json  # noqa: E402
from metaclip.io.schemas import MATCHED  # noqa: E402

N_ENTRIES = 500_000
CAPTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "captions"


def captions() -> pa.Array:
    lines = [ln for p in sorted(CAPTIONS.glob("*.txt")) for ln in p.read_text().splitlines()]
    return pa.array(lines)


def synthetic(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    texts_pool = captions()
    n_fresh = int(n * 0.6)
    image = np.arange(n_fresh)
    text = rng.integers(0, len(texts_pool), n_fresh)
    dup_rows = rng.integers(0, n_fresh, n - n_fresh)  # repeats of earlier rows
    other_text = rng.random(n - n_fresh) < 0.25  # ... a quarter of them with another text
    image = np.concatenate([image, image[dup_rows]])
    text = np.concatenate([text, np.where(other_text, rng.integers(0, len(texts_pool),
                                                                   n - n_fresh), text[dup_rows])])
    order = rng.permutation(n)
    image, text = image[order], text[order]
    uuids = pa.array([f"{(i * 0x9E3779B97F4A7C15) & (2**96 - 1):024x}" for i in image.tolist()])
    suffix = pc.cast(pa.array(text % 1000), pa.string())
    texts = pc.binary_join_element_wise(pc.take(texts_pool, pa.array(text % len(texts_pool))),
                                        suffix, " #")
    lengths = rng.integers(1, 7, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = (rng.zipf(1.3, offsets[-1]) - 1) % N_ENTRIES
    entry_ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.int32)))
    return pa.table({
        "uuid": uuids,
        "url": pc.binary_join_element_wise("https://img.example/", uuids, ""),
        "text": texts,
        "text_key": pa.array(["alt"] * n),
        "page_url": pa.array(["https://page.example/"] * n),
        "source": pa.array(["synthetic.warc.wat.gz"] * n),
        "record_offset": pa.array(np.arange(n, dtype=np.int64)),
        "lang": pa.array(["en"] * n),
        "lang_score": pa.array(np.full(n, 0.9, dtype=np.float32)),
        "entry_ids": entry_ids,
    }, schema=MATCHED)


class MemorySampler:
    """Peak resident memory of this process while a stage runs (sampled every 20 ms)."""

    def __enter__(self) -> MemorySampler:
        self.peak, self.done = 0, False
        self.proc = psutil.Process()
        self.baseline = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.start = time.perf_counter()
        return self

    def _run(self) -> None:
        while not self.done:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.done = True
        self.thread.join()
        self.peak_mb = self.peak / 2**20
        self.growth_mb = (self.peak - self.baseline) / 2**20  # what the stage itself added


def generate(rows: int, out: Path, batches: int, n_buckets: int) -> dict:
    """Write the rows as `batches` committed batches, bucketed: the shuffle-write stage."""
    table = synthetic(rows)
    layout = OutputLayout(str(out))
    results = []
    with MemorySampler() as mem:
        step = -(-rows // batches)
        for b in range(batches):
            batch = table.slice(b * step, step)
            manifest = {"batch_id": f"b{b:05d}", "files": [], "n_buckets": n_buckets,
                        "buckets": [], "rows": [], "sha256": []}
            for bucket, part in split_by_bucket(batch, n_buckets).items():
                sha = storage.write_parquet_atomic(layout.matched_part(bucket, f"b{b:05d}"), part)
                manifest["buckets"].append(bucket)
                manifest["rows"].append(part.num_rows)
                manifest["sha256"].append(sha)
            write_json(layout.manifest(f"b{b:05d}"), manifest)
            results.append(layout.manifest(f"b{b:05d}"))
    (out / "metadata.json").write_text(json.dumps([f"e{i}" for i in range(N_ENTRIES)]))
    return {"stage": "bucket_write", "seconds": mem.seconds, "peak_rss_mb": mem.peak_mb,
            "stage_growth_mb": mem.growth_mb, "manifests": results}


def run_stages(out: Path, n_buckets: int, manifests: list[str]) -> list[dict]:
    layout = OutputLayout(str(out))
    meta = str(out / "metadata.json")
    settings = RunSettings(
        inputs=(), metadata=meta, output=str(out), metadata_uri=meta, metadata_sha256="",
        n_buckets=n_buckets, store_tag="bench", t=20_000 / 400,
    )  # fmt: skip
    stores = Stores()
    stages = []
    with MemorySampler() as mem:
        index = build_bucket_index(settings, stores, manifests, layout.bucket_index("x" * 16))
        buckets = [process_bucket(settings, stores, b, index["uri"]) for b in range(n_buckets)]
    stages.append({"stage": "index_dedup_count", "seconds": mem.seconds,
                   "peak_rss_mb": mem.peak_mb, "stage_growth_mb": mem.growth_mb,
                   "pairs_in": sum(b["pairs_in"] for b in buckets),
                   "pairs_unique": sum(b["pairs_unique"] for b in buckets),
                   "images": sum(b["images"] for b in buckets)})
    with MemorySampler() as mem:
        leaves = [b["counts_uri"] for b in buckets]
        total = ""
        for level in reduction_plan(leaves, layout, 16):
            total = [reduce_counts(settings, stores, g, o)["uri"] for g, o in level][-1]
        counts = write_entry_counts(settings, stores, total, layout.entry_counts)["uri"]
    stages.append({"stage": "reduce_counts", "seconds": mem.seconds, "peak_rss_mb": mem.peak_mb,
                   "stage_growth_mb": mem.growth_mb})
    with MemorySampler() as mem:
        sampled = [sample_bucket(settings, stores, b["bucket"], counts, b["dedup_uris"])
                   for b in buckets]
    stages.append({"stage": "sample", "seconds": mem.seconds, "peak_rss_mb": mem.peak_mb,
                   "stage_growth_mb": mem.growth_mb,
                   "kept": sum(s["rows_kept"] for s in sampled)})
    return stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--buckets", type=int, default=64)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--stage", choices=["generate", "run"])
    parser.add_argument("--rows", type=int)
    parser.add_argument("--dir")
    parser.add_argument("--manifests")
    parser.add_argument("--name", default="scale", help="bench/results/<name>.json")
    args = parser.parse_args()
    if args.stage == "generate":
        print(json.dumps(generate(args.rows, Path(args.dir), args.batches, args.buckets)))
        return
    if args.stage == "run":
        print(json.dumps(run_stages(Path(args.dir), args.buckets,
                                    json.loads(Path(args.manifests).read_text()))))
        return
    report = {}
    for rows in args.sizes:
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            common = ["--buckets", str(args.buckets), "--batches", str(args.batches),
                      "--dir", tmp]
            gen = json.loads(subprocess.run(
                [sys.executable, __file__, "--stage", "generate", "--rows", str(rows), *common],
                check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            manifests = Path(tmp) / "manifests.json"
            manifests.write_text(json.dumps(gen.pop("manifests")))
            stages = json.loads(subprocess.run(
                [sys.executable, __file__, "--stage", "run", "--manifests", str(manifests),
                 *common], check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        report[str(rows)] = [gen, *stages]
        print(json.dumps({rows: report[str(rows)]}, indent=1), flush=True)
    if len(args.sizes) == 2:
        small, large = (report[str(s)] for s in args.sizes)
        report["growth"] = {
            s["stage"]: round(b["seconds"] / s["seconds"], 2) for s, b in zip(small, large,
                                                                             strict=True)
        }
        report["rows_ratio"] = args.sizes[1] / args.sizes[0]
    print(json.dumps(report.get("growth"), indent=1))
    report["buckets"] = args.buckets
    print(f"saved {save_result(args.name, report)}")


if __name__ == "__main__":
    main()
