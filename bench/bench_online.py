"""Online balancing (metaclip.online): decisions per second per core, the Parquet loader's rows
per second, and the overhead of the webdataset stage on a loop over small images.

Data (all real text, replicated): the 10,017 real captions of tests/data/captions matched with
metaclip.matching.Matcher against metaclip/demo_data/metadata.json (86,654 entries) give each
row's entry ids; the 885 distinct image URLs of the demo WAT files give the URLs (each made
unique with a `bench=<row>` query, uuid and pair_key computed from it). Rows cycle through the
9,983 captions that match at least one entry (a pool holds only matched pairs). Counts: each
entry's count among the captions times COUNT_SCALE, as if they were a sample of a pool of 100M
pairs; at t = 20,000, 41% of the matched entries (94% of the matches) are capped and an epoch
keeps about half the rows.

1. Decisions, one core: OnlineBalance.keep_mask over --rows rows in batches of 128k (pair keys
   given: the Parquet loader's path), against keep_mask hashing uuid + text (keys=None) and the
   offline curation's balance.sample_mask on the same rows (the baseline), and keep_one per
   sample (the webdataset path) on 200k of them (its decisions checked against keep_mask's).
2. BalancedPool (torch IterableDataset, one process) over a pool folder of --pool-rows rows
   written as the pool stage writes it (8 parts, row groups of 128k, zstd, pool.json,
   entry_counts.parquet), against pyarrow iter_batches + to_pylist of the same files.
3. webdataset: --samples 64x64 JPEG crops of sklearn's china.jpg and flower.jpg with
   img2dataset-like json and txt, in shards of 1,000. Loops: wds.DataPipeline(SimpleShardList,
   tarfile_to_samples, decode("pil"), to_tuple("jpg", "json")) as the baseline; the same with
   `balanced(balance, 0)` after tarfile_to_samples, and with BalancedShards as the source, at a
   t that keeps every sample (the difference is the decision alone); `balanced` at t = 20,000
   (fewer images decoded, for information); a pass-through stage (control: the noise floor).
   The stage decides 256 samples at a time (SampleDecider.keep_block: one keep_mask call), so
   its control is `buffered` (the same 256-sample blocks, nothing decided): the overhead is
   given against both. Then the decision's own cost per sample: the stage over raw samples in
   memory (and the per-sample path, SampleDecider.keep, which a block with a damaged sample
   takes), and the time spent inside keep_block within the loop.

Everything runs in one process on one core (OMP/MKL/OpenBLAS threads 1, pyarrow's CPU pool 1).
Timings are CPU seconds of the process (time.process_time, robust on a shared machine; wall
seconds are in the JSON too), variants interleaved (order rotated each round), best of --repeat.

    python bench/bench_online.py [--quick] [--rows N] [--pool-rows N] [--samples N]
                                 [--repeat N] [--profile]

Writes bench/results/online.json (--quick: online-quick.json).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import glob  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import save_result  # noqa: E402
from metaclip.curation import balance  # noqa: E402
from metaclip.curation.counts import entry_counts_table  # noqa: E402
from metaclip.extraction.urls import image_uuid  # noqa: E402
from metaclip.extraction.wat import extract_wat_file  # noqa: E402
from metaclip.io import storage  # noqa: E402
from metaclip.io.paths import POOL_COUNTS, POOL_MANIFEST  # noqa: E402
from metaclip.io.results import write_json  # noqa: E402
from metaclip.io.schemas import POOL  # noqa: E402
from metaclip.matching import Matcher  # noqa: E402
from metaclip.metadata import load_metadata  # noqa: E402
from metaclip.online.decide import OnlineBalance, pair_keys  # noqa: E402
from metaclip.online.pool import pool_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METADATA = ROOT / "metaclip" / "demo_data" / "metadata.json"
CAPTIONS = sorted((ROOT / "tests" / "data" / "captions").glob("*.txt"))
WATS = sorted((ROOT / "metaclip" / "demo_data").glob("*.warc.wat.gz"))
COUNT_SCALE = 10_000  # the captions' counts as if they were a sample of a 100M-pair pool
T = 20_000
SEED = 0
BATCH = 128 * 1024
POOL_PARTS = 8
SHARD_SAMPLES = 1_000
IMAGE_SIDE = 64
BLOCK = 256  # metaclip.online.webdataset_stage.BLOCK
Sample = dict[str, Any]

# -- data ---------------------------------------------------------------------------------------


class Data:
    """Real captions with their entry ids, real URLs, and the scaled counts."""

    def __init__(self) -> None:
        self.metadata = load_metadata(str(METADATA))
        matcher = Matcher.build(self.metadata.entries)
        captions = [line.strip() for path in CAPTIONS for line in path.read_text().splitlines()]
        captions = [c for c in captions if c]
        ids = matcher.match_arrow(pa.array(captions, pa.string()))
        matched = np.flatnonzero(np.diff(ids.offsets.to_numpy()) > 0)
        self.all_captions = len(captions)
        self.captions = [captions[i] for i in matched]
        self.entry_ids = ids.take(pa.array(matched))
        base = np.bincount(ids.values.to_numpy(), minlength=len(self.metadata.entries))
        self.counts = base.astype(np.uint64) * np.uint64(COUNT_SCALE)
        urls: set[str] = set()
        for wat in WATS:
            urls.update(extract_wat_file(str(wat))[0]["url"].to_pylist())
        self.urls = sorted(urls)

    def rows(self, n: int) -> pa.Table:
        """n pool rows (POOL schema): captions cycled, each URL unique."""
        which = np.arange(n) % len(self.captions)
        urls = []
        for i in range(n):
            url = self.urls[i % len(self.urls)]
            urls.append(f"{url}{'&' if '?' in url else '?'}bench={i}")
        uuids = [image_uuid(u) for u in urls]
        captions = [self.captions[i] for i in which]
        return pa.table(
            {
                "url": pa.array(urls, pa.string()),
                "caption": pa.array(captions, pa.string()),
                "uuid": pa.array(uuids, pa.string()),
                "entry_ids": self.entry_ids.take(pa.array(which)),
                "text_key": pa.array(["alt"] * n, pa.string()),
                "pair_key": pa.array(pair_keys(uuids, captions), pa.uint64()),
            },
            schema=POOL,
        )

    def describe(self, t: float) -> dict[str, Any]:
        probs = balance.entry_probabilities(self.counts, t)
        seen = self.counts > 0
        capped = self.counts > t
        kept = balance.keep_probabilities(self.entry_ids, probs)
        lengths = np.diff(self.entry_ids.offsets.to_numpy())
        return {
            "metadata_entries": len(self.metadata.entries),
            "captions": self.all_captions,
            "captions_matched": len(self.captions),
            "entry_ids_per_caption": float(lengths.mean()),
            "distinct_urls": len(self.urls),
            "count_scale": COUNT_SCALE,
            "t": t,
            "entries_matched": int(seen.sum()),
            "entries_capped": int(capped.sum()),
            "share_of_matches_on_capped_entries": float(
                self.counts[capped].sum() / self.counts.sum()
            ),
            "expected_kept_share": float(kept.mean()),
        }


# -- timing -------------------------------------------------------------------------------------


def interleaved(variants: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, Any]]:
    """Each variant `repeat` times, interleaved (the order rotated every round)."""
    names = list(variants)
    runs: dict[str, dict[str, Any]] = {n: {"cpu_s": [], "wall_s": []} for n in names}
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            out = variants[name]()
            runs[name]["cpu_s"].append(time.process_time() - cpu)
            runs[name]["wall_s"].append(time.perf_counter() - wall)
            runs[name]["output"] = out
    for run in runs.values():
        run["best_cpu_s"] = min(run["cpu_s"])
        run["median_cpu_s"] = statistics.median(run["cpu_s"])
        run["best_wall_s"] = min(run["wall_s"])
        run["median_wall_s"] = statistics.median(run["wall_s"])
    return runs


# -- 1. decisions -------------------------------------------------------------------------------


def decisions(data: Data, table: pa.Table, repeat: int, one_rows: int) -> dict[str, Any]:
    online = OnlineBalance.from_counts(data.counts, T, SEED)
    batches = [table.slice(s, BATCH) for s in range(0, table.num_rows, BATCH)]
    uuids = [b["uuid"].to_pylist() for b in batches]
    texts = [b["caption"].to_pylist() for b in batches]
    n = table.num_rows

    def with_keys() -> int:
        return sum(
            int(online.keep_mask(0, b["entry_ids"], keys=b["pair_key"]).sum()) for b in batches
        )

    def hashing() -> int:
        return sum(
            int(online.keep_mask(0, b["entry_ids"], uuids=u, texts=x).sum())
            for b, u, x in zip(batches, uuids, texts, strict=True)
        )

    def offline() -> int:
        return sum(
            int(balance.sample_mask(b["entry_ids"], u, x, online.probs, SEED).sum())
            for b, u, x in zip(batches, uuids, texts, strict=True)
        )

    ones = table.slice(0, one_rows)
    one_ids, one_keys = ones["entry_ids"].to_pylist(), ones["pair_key"].to_pylist()

    def one_by_one() -> int:
        keep = online.keep_one
        return sum(keep(0, e, k) for e, k in zip(one_ids, one_keys, strict=True))

    first = batches[0]
    assert np.array_equal(
        online.keep_mask(0, first["entry_ids"], keys=first["pair_key"]),
        online.keep_mask(0, first["entry_ids"], uuids=uuids[0], texts=texts[0]),
    ), "the stored pair keys are not the pairs' keys"
    expected = online.keep_mask(0, ones["entry_ids"], keys=ones["pair_key"])
    got = [online.keep_one(0, e, k) for e, k in zip(one_ids, one_keys, strict=True)]
    assert got == expected.tolist(), "keep_one disagrees with keep_mask"

    runs = interleaved(
        {"keep_mask_keys": with_keys, "keep_mask_hashing": hashing,
         "offline_sample_mask": offline, "keep_one": one_by_one},
        repeat,
    )  # fmt: skip
    rows = {"keep_mask_keys": n, "keep_mask_hashing": n, "offline_sample_mask": n,
            "keep_one": one_rows}  # fmt: skip
    for name, run in runs.items():
        run["rows"] = rows[name]
        run["decisions_per_s"] = rows[name] / run["best_cpu_s"]
        run["decisions_per_s_wall"] = rows[name] / run["best_wall_s"]
        run["kept_share"] = run.pop("output") / rows[name]
    base = runs["offline_sample_mask"]["decisions_per_s"]
    return {
        "rows": n,
        "batch_rows": BATCH,
        "runs": runs,
        "speedup_vs_offline": {k: v["decisions_per_s"] / base for k, v in runs.items()},
    }


# -- 2. BalancedPool ----------------------------------------------------------------------------


def write_pool(data: Data, table: pa.Table, root: Path) -> None:
    """A pool folder as the pool stage writes it: parts, the counts (a byte copy), pool.json."""
    root.mkdir(parents=True, exist_ok=True)
    counts = entry_counts_table(
        data.counts, data.metadata.entries, data.metadata.sha256, data.metadata.uri
    )
    counts_uri = str(root / POOL_COUNTS)
    storage.write_parquet_atomic(counts_uri, counts)
    parts, per_part = [], -(-table.num_rows // POOL_PARTS)
    for k in range(POOL_PARTS):
        part = table.slice(k * per_part, per_part)
        uri = str(root / f"part-{k:05d}.parquet")
        parts.append({"uri": uri, "rows": part.num_rows,
                      "sha256": storage.write_parquet_atomic(uri, part)})  # fmt: skip
    blob = storage.read_bytes(counts_uri)
    manifest = pool_manifest("english", float(T), SEED, True, blob, parts)
    write_json(str(root / POOL_MANIFEST), manifest)


def pool_loader(root: Path, table_rows: int, repeat: int, everything: float) -> dict[str, Any]:
    from metaclip.online.torch_pool import BalancedPool

    start = time.perf_counter()
    BalancedPool(str(root), rank=0, world_size=1)
    construct = time.perf_counter() - start
    paths = sorted(glob.glob(str(root / "part-*.parquet")))

    def baseline() -> int:
        n = 0
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
                for _row in batch.to_pylist():
                    n += 1
        return n

    def loader(t: float, shuffle: bool) -> Callable[[], int]:
        def run() -> int:
            dataset = BalancedPool(str(root), t=t, seed=SEED, epoch=0, shuffle=shuffle,
                                   rank=0, world_size=1)  # fmt: skip
            n = 0
            for _row in dataset:
                n += 1
            return n

        return run

    runs = interleaved(
        {"pyarrow_iter_batches_to_pylist": baseline,
         "balanced_pool_all_kept": loader(everything, True),
         "balanced_pool_all_kept_no_shuffle": loader(everything, False),
         "balanced_pool_t20000": loader(T, True)},
        repeat,
    )  # fmt: skip
    for run in runs.values():
        run["rows_yielded"] = run.pop("output")
        run["pool_rows_per_s"] = table_rows / run["best_cpu_s"]
        run["yielded_rows_per_s"] = run["rows_yielded"] / run["best_cpu_s"]
    base = runs["pyarrow_iter_batches_to_pylist"]["best_cpu_s"]
    return {
        "pool_rows": table_rows,
        "parts": POOL_PARTS,
        "construct_s": construct,
        "runs": runs,
        "time_vs_baseline": {k: v["best_cpu_s"] / base for k, v in runs.items()},
    }


# -- 3. webdataset ------------------------------------------------------------------------------


def small_images(n: int, seed: int = 0) -> Iterator[tuple[bytes, int, int]]:
    """n JPEGs of IMAGE_SIDE px: random square-ish crops of sklearn's two sample photos."""
    import sklearn
    from PIL import Image

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    photos = [Image.open(folder / name).convert("RGB") for name in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(seed)
    for i in range(n):
        photo = photos[i % 2]
        side = int(rng.integers(48, min(photo.size)))
        aspect = float(rng.uniform(0.75, 1.33))
        w, h = min(photo.size[0], int(side * aspect)), side
        x, y = int(rng.integers(0, photo.size[0] - w + 1)), int(rng.integers(0, photo.size[1] - h))
        crop = photo.crop((x, y, x + w, y + h)).resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
        out = io.BytesIO()
        crop.save(out, format="JPEG", quality=90)
        yield out.getvalue(), w, h


def write_shards(table: pa.Table, folder: Path) -> tuple[list[str], dict[str, Any]]:
    """img2dataset-like shards: jpg, txt, json (url, caption, key, status, ..., and the pool's
    uuid, entry_ids, text_key, pair_key as save_additional_columns writes them)."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    rows = table.to_pylist()
    sizes = []
    pattern = str(folder / "%05d.tar")
    with wds.ShardWriter(pattern, maxcount=SHARD_SAMPLES, verbose=0) as sink:
        for i, (row, (jpg, w, h)) in enumerate(zip(rows, small_images(len(rows)), strict=True)):
            key = f"{i // SHARD_SAMPLES:05d}{i % SHARD_SAMPLES:04d}"
            meta = {
                "url": row["url"], "caption": row["caption"], "key": key, "status": "success",
                "error_message": None, "width": IMAGE_SIDE, "height": IMAGE_SIDE,
                "original_width": w, "original_height": h, "exif": "{}",
                "sha256": hashlib.sha256(jpg).hexdigest(), "uuid": row["uuid"],
                "entry_ids": row["entry_ids"], "text_key": row["text_key"],
                "pair_key": row["pair_key"],
            }  # fmt: skip
            sizes.append(len(jpg))
            sink.write({"__key__": key, "jpg": jpg, "txt": row["caption"].encode(),
                        "json": json.dumps(meta).encode()})  # fmt: skip
    urls = sorted(glob.glob(str(folder / "*.tar")))
    info = {"samples": len(rows), "shards": len(urls), "jpeg_bytes_mean": float(np.mean(sizes)),
            "tar_bytes": sum(os.path.getsize(u) for u in urls)}  # fmt: skip
    return urls, info


def passthrough(samples: Iterable[Sample]) -> Iterator[Sample]:
    """Control: a stage that does nothing (the cost of one more generator)."""
    return (s for s in samples if True)


def buffered(samples: Iterable[Sample], size: int = BLOCK) -> Iterator[Sample]:
    """Control for the blocked stage: samples read `size` at a time, nothing decided."""
    block: list[Sample] = []
    for sample in samples:
        block.append(sample)
        if len(block) == size:
            yield from block
            block = []
    yield from block


def webdataset_loops(
    urls: list[str], samples: int, everything: OnlineBalance, realistic: OnlineBalance, repeat: int
) -> dict[str, Any]:
    import webdataset as wds

    from metaclip.online.webdataset_stage import BalancedShards, SampleDecider, balanced, blocks

    def loop(first: Callable[[], list[Any]]) -> Callable[[], int]:
        def run() -> int:  # a new pipeline each time (BalancedShards keeps its position)
            pipeline = wds.DataPipeline(*first(), wds.decode("pil"), wds.to_tuple("jpg", "json"))
            n = 0
            for _image, _meta in pipeline:
                n += 1
            return n

        return run

    def source(*stages: Any) -> Callable[[], list[Any]]:
        return lambda: [wds.SimpleShardList(urls), wds.tarfile_to_samples(), *stages]

    def shards(b: OnlineBalance) -> list[Any]:
        return [BalancedShards(urls, b, epoch=0, rank=0, world_size=1)]

    variants = {
        "baseline": loop(source()),
        "control_passthrough_stage": loop(source(passthrough)),
        "balanced_stage": loop(lambda: source(balanced(everything, 0))()),
        "balanced_shards": loop(lambda: shards(everything)),
        "balanced_stage_t20000": loop(lambda: source(balanced(realistic, 0))()),
        "control_buffer_256": loop(source(buffered)),
    }
    loop(source())()  # the page cache
    runs = interleaved(variants, repeat)
    base = runs["baseline"]
    for name, run in runs.items():
        run["samples_out"] = run.pop("output")
        run["best_us_per_sample"] = run["best_cpu_s"] / samples * 1e6
        run["median_us_per_sample"] = run["median_cpu_s"] / samples * 1e6
        run["best_wall_us_per_sample"] = run["best_wall_s"] / samples * 1e6
        run["overhead_best_pct"] = 100 * (run["best_cpu_s"] / base["best_cpu_s"] - 1)
        run["overhead_median_pct"] = 100 * (run["median_cpu_s"] / base["median_cpu_s"] - 1)
        run["overhead_best_wall_pct"] = 100 * (run["best_wall_s"] / base["best_wall_s"] - 1)
        paired = [v / b - 1 for v, b in zip(run["cpu_s"], base["cpu_s"], strict=True)]
        run["overhead_paired_median_pct"] = 100 * statistics.median(paired)  # round by round
        if not name.endswith("t20000"):
            assert run["samples_out"] == samples, (name, run["samples_out"])
    buffer = runs["control_buffer_256"]
    for name in ("balanced_stage", "balanced_shards"):
        run = runs[name]
        run["overhead_vs_control_buffer_best_pct"] = 100 * (
            run["best_cpu_s"] / buffer["best_cpu_s"] - 1
        )
        paired = [r / b - 1 for r, b in zip(run["cpu_s"], buffer["cpu_s"], strict=True)]
        run["overhead_vs_control_buffer_paired_median_pct"] = 100 * statistics.median(paired)

    # The decision's own cost: the stage alone over the raw samples in memory (warm caches),
    # and the time spent inside SampleDecider.keep within the full loop (caches cold from
    # the tar reading and the JPEG decoding between two samples).
    raw = list(wds.tarfile_to_samples()(iter([{"url": u} for u in urls])))
    decider = SampleDecider(realistic, Counter())
    one_by_one = [s["__key__"] for s in raw if decider.keep(s, 0)]
    assert [s["__key__"] for s in balanced(realistic, 0)(iter(raw))] == one_by_one

    def plain() -> int:
        return sum(1 for _ in iter(raw))

    def decided() -> int:
        return sum(1 for _ in balanced(everything, 0)(iter(raw)))

    def per_sample() -> int:
        decider = SampleDecider(everything, Counter())
        return sum(1 for s in raw if decider.keep(s, 0))

    alone = interleaved(
        {"iterate": plain, "balanced_stage": decided, "per_sample_keep": per_sample},
        max(repeat, 7),
    )
    inside_ns = {"ns": 0, "n": 0}

    def timed_stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        decider, clock = SampleDecider(everything, Counter()), time.perf_counter_ns
        for block in blocks(samples):
            start = clock()
            keep = decider.keep_block(block, 0)
            inside_ns["ns"] += clock() - start
            inside_ns["n"] += len(block)
            yield from (s for s, k in zip(block, keep, strict=True) if k)

    in_loop = []
    for _ in range(3):
        inside_ns.update(ns=0, n=0)
        loop(source(timed_stage))()
        in_loop.append(inside_ns["ns"] / inside_ns["n"] / 1e3)
    iterate = alone["iterate"]["best_cpu_s"]
    stage_us = (alone["balanced_stage"]["best_cpu_s"] - iterate) / len(raw) * 1e6
    per_sample_us = (alone["per_sample_keep"]["best_cpu_s"] - iterate) / len(raw) * 1e6
    base_us = base["best_us_per_sample"]
    return {
        "runs": runs,
        "decision_cost": {
            "samples": len(raw),
            "stage_alone_us_per_sample": stage_us,
            "stage_alone_share_of_baseline_sample_pct": 100 * stage_us / base_us,
            "inside_keep_block_in_loop_us_per_sample_best_of_3": min(in_loop),
            "inside_keep_block_in_loop_share_of_baseline_sample_pct": 100 * min(in_loop) / base_us,
            "per_sample_keep_alone_us_per_sample": per_sample_us,
            "blocked_decisions_equal_per_sample_at_t20000": True,
            "runs_alone": alone,
        },
    }


def profiled(run: Callable[[], Any]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def profile_stage(urls: list[str], everything: OnlineBalance) -> str:
    """The webdataset stage alone over raw samples in memory, 5 passes."""
    import webdataset as wds

    from metaclip.online.webdataset_stage import balanced

    raw = list(wds.tarfile_to_samples()(iter([{"url": u} for u in urls])))

    def run() -> None:
        for _ in range(5):
            for _sample in balanced(everything, 0)(iter(raw)):
                pass

    return profiled(run)


def profile_pool(root: Path, everything: float) -> str:
    """One epoch of BalancedPool keeping every row."""
    from metaclip.online.torch_pool import BalancedPool

    def run() -> None:
        for _row in BalancedPool(str(root), t=everything, seed=SEED, rank=0, world_size=1):
            pass

    return profiled(run)


# -- main ---------------------------------------------------------------------------------------


def table_lines(result: dict[str, Any]) -> list[str]:
    d, p, w = result["decisions"], result["pool_loader"], result["webdataset"]
    lines = ["", f"1. decisions per second, one core, {d['rows']:,} rows (best CPU time)"]
    for name, run in d["runs"].items():
        lines.append(f"  {name:<22} {run['decisions_per_s']:>12,.0f}/s  "
                     f"{d['speedup_vs_offline'][name]:6.2f}x offline  "
                     f"kept {run['kept_share']:.3f}")  # fmt: skip
    lines += ["", f"2. Parquet pool of {p['pool_rows']:,} rows, one process (best CPU time)"]
    for name, run in p["runs"].items():
        lines.append(f"  {name:<34} {run['pool_rows_per_s']:>9,.0f} pool rows/s  "
                     f"{run['rows_yielded']:>9,} yielded  "
                     f"{p['time_vs_baseline'][name]:5.2f}x baseline time")  # fmt: skip
    lines += ["", f"3. webdataset, {result['shards']['samples']:,} samples, CPU us per sample; "
              "overhead vs baseline: best, median, paired median"]  # fmt: skip
    for name, run in w["runs"].items():
        lines.append(f"  {name:<26} best {run['best_us_per_sample']:6.1f}  median "
                     f"{run['median_us_per_sample']:6.1f}  "
                     f"{run['overhead_best_pct']:+6.2f}% {run['overhead_median_pct']:+6.2f}% "
                     f"{run['overhead_paired_median_pct']:+6.2f}%  "
                     f"({run['samples_out']:,} out)")  # fmt: skip
    for name in ("balanced_stage", "balanced_shards"):
        run = w["runs"][name]
        lines.append(f"  {name} vs control_buffer_256: best "
                     f"{run['overhead_vs_control_buffer_best_pct']:+.2f}%, paired median "
                     f"{run['overhead_vs_control_buffer_paired_median_pct']:+.2f}%")  # fmt: skip
    c = w["decision_cost"]
    lines.append(f"  decision alone (warm): {c['stage_alone_us_per_sample']:.2f} us/sample = "
                 f"{c['stage_alone_share_of_baseline_sample_pct']:.2f}% of a baseline sample; "
                 f"inside keep_block in the loop: "
                 f"{c['inside_keep_block_in_loop_us_per_sample_best_of_3']:.2f} us = "
                 f"{c['inside_keep_block_in_loop_share_of_baseline_sample_pct']:.2f}%; "
                 f"per-sample path alone "
                 f"{c['per_sample_keep_alone_us_per_sample']:.2f} us")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--rows", type=int, default=None, help="decisions: 2,000,000 (quick 200k)")
    parser.add_argument("--pool-rows", type=int, default=None, help="1,000,000 (quick 100k)")
    parser.add_argument("--samples", type=int, default=None, help="5,000 (quick 1,000)")
    parser.add_argument("--repeat", type=int, default=None, help="5 (quick 3; the loops: 9, 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile both loaders")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 2_000_000)
    pool_rows = min(rows, args.pool_rows or (100_000 if args.quick else 1_000_000))
    samples = min(rows, args.samples or (1_000 if args.quick else 5_000))
    repeat = args.repeat or (3 if args.quick else 5)
    loop_repeat = args.repeat or (3 if args.quick else 9)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    data = Data()
    table = data.rows(rows)
    seconds["data"] = time.perf_counter() - started
    everything_t = float(data.counts.max()) + 1  # every p_e = 1: every matched pair kept
    result: dict[str, Any] = {
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "numpy": np.__version__, "pyarrow": pa.__version__,
                    "webdataset": _version("webdataset"), "torch": _version("torch"),
                    "pillow": _version("pillow")},
        "data": data.describe(T),
        "seconds": seconds,
    }  # fmt: skip
    print(json.dumps(result["data"], indent=2), flush=True)

    def lap(name: str, since: float) -> None:
        seconds[name] = time.perf_counter() - since
        print(f"{name} done ({seconds[name]:.0f} s)", flush=True)

    since = time.perf_counter()
    result["decisions"] = decisions(data, table, repeat, min(rows, 200_000))
    lap("decisions", since)
    with tempfile.TemporaryDirectory(prefix="metaclip-bench-online-") as tmp:
        since, pool = time.perf_counter(), Path(tmp) / "pool"
        write_pool(data, table.slice(0, pool_rows), pool)
        result["pool_loader"] = pool_loader(pool, pool_rows, max(2, repeat - 2), everything_t)
        lap("pool_loader", since)
        since = time.perf_counter()
        urls, result["shards"] = write_shards(table.slice(0, samples), Path(tmp) / "shards")
        everything = OnlineBalance.from_counts(data.counts, everything_t, SEED)
        realistic = OnlineBalance.from_counts(data.counts, T, SEED)
        result["webdataset"] = webdataset_loops(urls, samples, everything, realistic, loop_repeat)
        lap("webdataset", since)
        if args.profile:
            result["profiles"] = {"balanced_pool_all_kept": profile_pool(pool, everything_t),
                                  "webdataset_stage": profile_stage(urls, everything)}  # fmt: skip
            for name, text in result["profiles"].items():
                print(f"--- cProfile: {name}\n{text}")
    seconds["total"] = time.perf_counter() - started
    print("\n".join(table_lines(result)))
    name = "online-quick" if args.quick else "online"
    print(f"saved {save_result(name, result)}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
