"""Scale: 1M to 100M matched pairs through bucketing, dedup + count, reduction and sampling.

How the synthetic rows are made (`synthetic_chunks`; the same rows for the same (rows, seed),
whatever --batches or the bucket count): rows are drawn in chunks of GEN_CHUNK rows, chunk c from
numpy's default_rng([seed, c]), and only a count of the images made so far is carried from chunk
to chunk. Row i is
  * with probability 0.6 (row 0 always) a fresh image: the next image id (0, 1, 2, ...), with its
    own text;
  * otherwise a repeat of an earlier image: an id uniform over all the images made before row i
    (in earlier chunks and batches too); with probability 0.25 it gets another text (uniform over
    the text pool), else the image's own text, so three quarters of the repeats are exact copies
    of an earlier (image, text) pair that dedup removes (30% of rows), and a quarter give an
    earlier image another text (10%).
The text pool is the 10,000 real captions in tests/data/captions (cc3m_val_5000.txt then
coco_val2017_5000.txt; PROVENANCE.txt is not a caption file); text k is caption k followed by
" #<k % 1000>". An image's own text is splitmix64(image id, seed) mod the pool size, a function
of the image id only, so a repeat in any batch reproduces the exact pair. An image's uuid is
(id * 0x9E3779B97F4A7C15) & (2**96 - 1) as 24 hex digits (computed in numpy, the same digits as
that Python formula), its url https://img.example/<uuid>. Each row has 1 to 6 entry ids
(uniform), each (Zipf(1.3) - 1) mod 500,000 (drawn per row, not per text: ids may repeat within a
row, as before). record_offset is the row's index; the other columns are constants.

The rows are written as --batches committed batches (consecutive slices of the stream, as the
pipeline's batch tasks write them): each batch split by uuid bucket into one part per bucket, then
its manifest. Only one chunk and one batch are held at a time, so generation memory does not grow
with the row count. The bucket count is rows // --rows-per-bucket (250k: 1M pairs -> 4 buckets,
100M -> 400) unless --buckets is given, so with the batch count fixed every size has parts of
about rows / (batches * buckets) pairs (2,500) and buckets of 250k: the cost per pair is compared
at the same shape.

Each size runs in fresh subprocesses: generation, then the stages in one process (the process a
Dask worker would be: every stage function runs there one bucket at a time), timing every stage
and sampling its resident memory every 20 ms. The report has, per size, each stage's seconds,
seconds per million pairs and peak RSS, the generator's time and memory, and disk used; for two
sizes, the ratio (large / small) of each stage's cost per pair and whether the total is within
20%. --repeat-smallest N runs the smallest size N times (fresh data each time) and uses each
stage's median time.

    python bench/bench_scale.py [--sizes 1000000 100000000] [--rows-per-bucket 250000]
        [--buckets B] [--batches 100] [--repeat-smallest 1] [--name scale]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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
from metaclip.io import storage  # noqa: E402
from metaclip.io.paths import OutputLayout  # noqa: E402
from metaclip.io.results import write_json  # noqa: E402
from metaclip.io.schemas import MATCHED  # noqa: E402

N_ENTRIES = 500_000
GEN_CHUNK = 1_000_000  # rows drawn at a time (part of what the rows are: keep it fixed)
CAPTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "captions"
STAGES = ("index_dedup_count", "reduce_counts", "sample")
LIMIT_MB = 2048  # the requirement: a worker's memory under 2 GB
_M64 = 2**64 - 1
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def captions() -> pa.Array:
    """The 10,000 real captions (COCO and CC3M validation), not PROVENANCE.txt's lines."""
    files = sorted(p for p in CAPTIONS.glob("*.txt") if p.name != "PROVENANCE.txt")
    return pa.array([ln for p in files for ln in p.read_text().splitlines()])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def own_text(image: np.ndarray, seed: int, n_texts: int) -> np.ndarray:
    """The text an image is first seen with: a function of its id (and the seed) only."""
    salt = np.uint64((seed * 0xD1B54A32D192ED03) & _M64)
    return (_splitmix64(image.astype(np.uint64) ^ salt) % np.uint64(n_texts)).astype(np.int64)


def uuids_of(image: np.ndarray) -> pa.Array:
    """f"{(i * 0x9E3779B97F4A7C15) & (2**96 - 1):024x}" for every image id i, in numpy."""
    if len(image) and (image.min() < 0 or image.max() >= 2**32):
        raise ValueError("image ids must be in [0, 2**32)")
    i = image.astype(np.uint64)
    low = i * np.uint64(0x7F4A7C15)  # i * K = b * 2**32 + a, K = 0x9E3779B9_7F4A7C15
    high = i * np.uint64(0x9E3779B9)
    lo = (high << np.uint64(32)) + low  # the product's low 64 bits (wrapping)
    hi = (high >> np.uint64(32)) + (lo < low).astype(np.uint64)  # its bits 64 to 95
    shifts = np.uint64(4) * np.arange(7, -1, -1, dtype=np.uint64)
    digits = np.concatenate([
        (hi[:, None] >> shifts) & np.uint64(15),
        (lo[:, None] >> np.uint64(32) >> shifts) & np.uint64(15),
        (lo[:, None] >> shifts) & np.uint64(15),
    ], axis=1)  # fmt: skip
    data = _HEX_DIGITS[digits.astype(np.intp)].tobytes()
    offsets = (np.arange(len(image) + 1, dtype=np.int64) * 24).astype(np.int32)
    return pa.StringArray.from_buffers(len(image), pa.py_buffer(offsets), pa.py_buffer(data))


def synthetic_chunks(n: int, seed: int = 0, chunk: int = GEN_CHUNK) -> Iterator[pa.Table]:
    """The n synthetic rows, GEN_CHUNK at a time (see the module docstring)."""
    texts_pool = captions()
    n_texts = len(texts_pool)
    images_so_far = 0  # the only state carried from chunk to chunk
    for c, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        rng = np.random.default_rng([seed, c])
        fresh = rng.random(m) < 0.6
        if start == 0:
            fresh[0] = True
        before = images_so_far + np.cumsum(fresh) - fresh  # images made before each row
        repeat_of = rng.integers(0, np.maximum(before, 1))  # uniform over the earlier images
        image = np.where(fresh, before, repeat_of)
        other = ~fresh & (rng.random(m) < 0.25)
        text = np.where(other, rng.integers(0, n_texts, m), own_text(image, seed, n_texts))
        lengths = rng.integers(1, 7, m)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = (rng.zipf(1.3, int(offsets[-1])) - 1) % N_ENTRIES
        images_so_far += int(fresh.sum())
        uuids = uuids_of(image)
        suffix = pc.cast(pa.array(text % 1000), pa.string())
        texts = pc.binary_join_element_wise(pc.take(texts_pool, pa.array(text)), suffix, " #")
        yield pa.table({
            "uuid": uuids,
            "url": pc.binary_join_element_wise("https://img.example/", uuids, ""),
            "text": texts,
            "text_key": pa.repeat(pa.scalar("alt"), m),
            "page_url": pa.repeat(pa.scalar("https://page.example/"), m),
            "source": pa.repeat(pa.scalar("synthetic.warc.wat.gz"), m),
            "record_offset": pa.array(np.arange(start, start + m, dtype=np.int64)),
            "lang": pa.repeat(pa.scalar("en"), m),
            "lang_score": pa.array(np.full(m, 0.9, dtype=np.float32)),
            "entry_ids": pa.ListArray.from_arrays(pa.array(offsets),
                                                  pa.array(values.astype(np.int32))),
        }, schema=MATCHED)  # fmt: skip


def synthetic_batches(n: int, batches: int, seed: int = 0) -> Iterator[pa.Table]:
    """The rows as `batches` consecutive slices of ceil(n / batches) rows (the last shorter)."""
    step = -(-n // batches)
    pending: list[pa.Table] = []
    held = 0
    for chunk in synthetic_chunks(n, seed):
        while chunk.num_rows:
            take = min(step - held, chunk.num_rows)
            pending.append(chunk.slice(0, take))
            held += take
            chunk = chunk.slice(take)
            if held == step:
                yield pa.concat_tables(pending)
                pending, held = [], 0
    if pending:
        yield pa.concat_tables(pending)


class MemorySampler:
    """Peak resident memory of this process while a stage runs (sampled every 20 ms), its wall
    time, its CPU time (user + system: less sensitive than wall time to other users' load on a
    shared machine) and the 1-minute load average at its start and end."""

    def __enter__(self) -> MemorySampler:
        self.peak, self.done = 0, False
        self.proc = psutil.Process()
        self.baseline = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.load = [os.getloadavg()[0]]
        self.cpu0 = self._cpu()
        self.start = time.perf_counter()
        return self

    def _cpu(self) -> float:
        times = self.proc.cpu_times()
        return times.user + times.system

    def _run(self) -> None:
        while not self.done:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = self._cpu() - self.cpu0
        self.load.append(os.getloadavg()[0])
        self.done = True
        self.thread.join()
        self.peak_mb = self.peak / 2**20
        self.growth_mb = (self.peak - self.baseline) / 2**20  # what the stage itself added


def _progress(what: str, done: int, total: int, started: float) -> None:
    """A line on stderr at every 10% of `total`, so a long run shows life."""
    if done == total or done % max(1, total // 10) == 0:
        print(f"{what}: {done}/{total} ({time.perf_counter() - started:.0f} s, "
              f"RSS {psutil.Process().memory_info().rss / 2**20:.0f} MB)",
              file=sys.stderr, flush=True)


def generate(rows: int, out: Path, batches: int, n_buckets: int) -> dict:
    """Write the rows as `batches` committed batches, bucketed: the shuffle-write stage. Rows
    are made batch by batch (synthetic_batches), so one batch is held at a time."""
    layout = OutputLayout(str(out))
    results, parts = [], 0
    with MemorySampler() as mem:
        for b, batch in enumerate(synthetic_batches(rows, batches)):
            manifest = {"batch_id": f"b{b:05d}", "files": [], "n_buckets": n_buckets,
                        "buckets": [], "rows": [], "sha256": []}
            for bucket, part in split_by_bucket(batch, n_buckets).items():
                sha = storage.write_parquet_atomic(layout.matched_part(bucket, f"b{b:05d}"), part)
                manifest["buckets"].append(bucket)
                manifest["rows"].append(part.num_rows)
                manifest["sha256"].append(sha)
            parts += len(manifest["buckets"])
            write_json(layout.manifest(f"b{b:05d}"), manifest)
            results.append(layout.manifest(f"b{b:05d}"))
            del batch
            _progress(f"generate {rows:,} rows", b + 1, batches, mem.start)
        (out / "metadata.json").write_text(json.dumps([f"e{i}" for i in range(N_ENTRIES)]))
    return {"stage": "bucket_write", "seconds": mem.seconds, "cpu_seconds": mem.cpu_seconds,
            "peak_rss_mb": mem.peak_mb, "stage_growth_mb": mem.growth_mb, "load_avg_1min": mem.load,
            "batches_written": len(results), "parts": parts,
            "manifests": results}


def _stage(name: str, mem: MemorySampler, **extra: object) -> dict:
    return {"stage": name, "seconds": mem.seconds, "cpu_seconds": mem.cpu_seconds,
            "peak_rss_mb": mem.peak_mb, "stage_growth_mb": mem.growth_mb, "load_avg_1min": mem.load,
            # the process's peak since it started (getrusage): a check on the 20 ms sampling
            "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **extra}


def _spread(seconds: list[float]) -> dict:
    return {"median": statistics.median(seconds), "max": max(seconds)} if seconds else {}


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
        index_seconds = time.perf_counter() - mem.start
        buckets = []
        for b in range(n_buckets):
            buckets.append(process_bucket(settings, stores, b, index["uri"]))
            _progress("index_dedup_count buckets", b + 1, n_buckets, mem.start)
    stages.append(_stage(
        "index_dedup_count", mem, index_seconds=index_seconds,
        bucket_seconds=_spread([b["seconds"] for b in buckets]),
        sub_buckets=sum(len(b["dedup_uris"]) for b in buckets),
        pairs_in=sum(b["pairs_in"] for b in buckets),
        pairs_unique=sum(b["pairs_unique"] for b in buckets),
        images=sum(b["images"] for b in buckets),
    ))  # fmt: skip
    with MemorySampler() as mem:
        leaves = [b["counts_uri"] for b in buckets]
        total = ""
        levels = reduction_plan(leaves, layout, 16)
        for level in levels:
            total = [reduce_counts(settings, stores, g, o)["uri"] for g, o in level][-1]
        counts = write_entry_counts(settings, stores, total, layout.entry_counts)["uri"]
    stages.append(_stage("reduce_counts", mem, levels=len(levels)))
    with MemorySampler() as mem:
        sampled = []
        for i, b in enumerate(buckets):
            sampled.append(sample_bucket(settings, stores, b["bucket"], counts, b["dedup_uris"]))
            _progress("sample buckets", i + 1, n_buckets, mem.start)
    stages.append(_stage("sample", mem, bucket_seconds=_spread([s["seconds"] for s in sampled]),
                         kept=sum(s["rows_kept"] for s in sampled)))
    return stages


def disk_mb(root: Path) -> dict:
    """MB written under the run's folder: matched parts, dedup parts, curated parts, all."""
    sizes = {"matched": 0, "dedup": 0, "curated": 0, "total": 0}
    files = 0
    for folder, _, names in os.walk(root):
        rel = Path(folder).relative_to(root).parts
        kind = ("matched" if rel[:2] == ("_work", "matched") else
                "dedup" if rel[:2] == ("_work", "dedup") else
                "curated" if rel[:1] == ("curated",) else None)  # fmt: skip
        for name in names:
            size = (Path(folder) / name).stat().st_size
            sizes["total"] += size
            files += 1
            if kind:
                sizes[kind] += size
    return {**{k: round(v / 2**20, 1) for k, v in sizes.items()}, "files": files}


def one_run(rows: int, n_buckets: int, batches: int) -> dict:
    """Generate `rows` in a fresh folder under bench/, run the stages, measure, delete."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        common = ["--buckets", str(n_buckets), "--batches", str(batches), "--dir", tmp]
        gen = json.loads(subprocess.run(
            [sys.executable, __file__, "--stage", "generate", "--rows", str(rows), *common],
            check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()[-1])
        manifests = Path(tmp) / "manifests.json"
        manifests.write_text(json.dumps(gen.pop("manifests")))
        load_before = os.getloadavg()[0]
        stages = json.loads(subprocess.run(
            [sys.executable, __file__, "--stage", "run", "--manifests", str(manifests),
             *common], check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()[-1])
        disk = disk_mb(Path(tmp))
        free_gb = storage_free_gb(Path(tmp))
    return {"generation": gen, "stages": stages, "disk_mb": disk,
            "free_disk_gb_at_end": free_gb, "load_avg_1min": [load_before, os.getloadavg()[0]]}


def storage_free_gb(path: Path) -> float:
    st = os.statvfs(path)
    return round(st.f_bavail * st.f_frsize / 2**30, 1)


def size_report(rows: int, n_buckets: int, batches: int, runs: list[dict]) -> dict:
    """One size's figures; with several runs, each stage's median seconds (all kept)."""
    stages = {}
    for name in STAGES:
        per_run = [next(s for s in r["stages"] if s["stage"] == name) for r in runs]
        seconds = [s["seconds"] for s in per_run]
        cpu = [s["cpu_seconds"] for s in per_run]
        median_run = per_run[seconds.index(statistics.median_low(seconds))]
        stages[name] = {**median_run, "seconds": statistics.median(seconds),
                        "cpu_seconds": statistics.median(cpu),
                        "peak_rss_mb": max(s["peak_rss_mb"] for s in per_run)}
        if len(runs) > 1:
            stages[name]["seconds_runs"] = seconds
            stages[name]["cpu_seconds_runs"] = cpu
        stages[name]["s_per_million_pairs"] = stages[name]["seconds"] / (rows / 1e6)
        stages[name]["cpu_s_per_million_pairs"] = stages[name]["cpu_seconds"] / (rows / 1e6)
    total = sum(s["seconds"] for s in stages.values())
    total_cpu = sum(s["cpu_seconds"] for s in stages.values())
    peak = max(max(s["peak_rss_mb"], s["process_max_rss_mb"]) for s in stages.values())
    gen = [r["generation"] for r in runs]
    return {
        "rows": rows,
        "n_buckets": n_buckets,
        "batches": batches,
        "rows_per_part": rows / (batches * n_buckets),
        "rows_per_bucket": rows / n_buckets,
        "runs": len(runs),
        "stages": stages,
        "stages_seconds": total,
        "s_per_million_pairs": {**{k: v["s_per_million_pairs"] for k, v in stages.items()},
                                "total": total / (rows / 1e6)},
        "cpu_s_per_million_pairs": {
            **{k: v["cpu_s_per_million_pairs"] for k, v in stages.items()},
            "total": total_cpu / (rows / 1e6)},
        "peak_rss_mb": peak,  # of the stage process (a worker): the largest of every stage's
        "under_2gb": peak < LIMIT_MB,
        "generation": {**gen[0], "seconds": statistics.median(g["seconds"] for g in gen),
                       "cpu_seconds": statistics.median(g["cpu_seconds"] for g in gen),
                       "peak_rss_mb": max(g["peak_rss_mb"] for g in gen),
                       "note": "the generator's process, not a worker's"},
        "disk_mb": runs[0]["disk_mb"],
        "free_disk_gb_at_end": runs[0]["free_disk_gb_at_end"],
        "load_avg_1min": [r["load_avg_1min"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 100_000_000])
    parser.add_argument("--rows-per-bucket", type=int, default=250_000,
                        help="buckets = max(1, rows // this) unless --buckets is given")
    parser.add_argument("--buckets", type=int, help="a fixed bucket count for every size")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeat-smallest", type=int, default=1,
                        help="run the smallest size this many times; use the median")
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
    report: dict = {"sizes": {}}
    for rows in args.sizes:
        n_buckets = args.buckets or max(1, rows // args.rows_per_bucket)
        repeats = args.repeat_smallest if rows == min(args.sizes) else 1
        runs = [one_run(rows, n_buckets, args.batches) for _ in range(repeats)]
        report["sizes"][str(rows)] = size_report(rows, n_buckets, args.batches, runs)
        print(json.dumps({rows: report["sizes"][str(rows)]}, indent=1), flush=True)
    if len(args.sizes) == 2:
        small, large = (report["sizes"][str(s)] for s in args.sizes)
        ratio = {k: large["s_per_million_pairs"][k] / small["s_per_million_pairs"][k]
                 for k in small["s_per_million_pairs"]}
        report["per_pair_ratio"] = {k: round(v, 3) for k, v in ratio.items()}
        report["within_20_percent"] = ratio["total"] <= 1.2  # wall time, the requirement
        cpu = {k: large["cpu_s_per_million_pairs"][k] / small["cpu_s_per_million_pairs"][k]
               for k in small["cpu_s_per_million_pairs"]}
        report["per_pair_ratio_cpu"] = {k: round(v, 3) for k, v in cpu.items()}
        report["within_20_percent_cpu"] = cpu["total"] <= 1.2
        report["under_2gb"] = small["under_2gb"] and large["under_2gb"]
        report["growth"] = {k: round(large["stages"][k]["seconds"] / small["stages"][k]["seconds"],
                                     2) for k in STAGES}
        report["rows_ratio"] = args.sizes[1] / args.sizes[0]
        print(json.dumps({k: report[k] for k in ("per_pair_ratio", "within_20_percent",
                                                 "per_pair_ratio_cpu", "within_20_percent_cpu",
                                                 "under_2gb", "growth")}, indent=1))
    report["rows_per_bucket"] = None if args.buckets else args.rows_per_bucket
    report["buckets"] = args.buckets
    report["batches"] = args.batches
    report["command"] = " ".join(["python", "bench/bench_scale.py", *sys.argv[1:]])
    print(f"saved {save_result(args.name, report)}")


if __name__ == "__main__":
    main()
