"""Rerunning a finished curation: its time against the first run's, and worker memory.

Writes N benchmark WAT files (derived from real pages, bench/make_bench_wat.py), a 500k-entry
metadata (bench/common.metadata_500k), runs `metaclip curate` on them, then the same command
again. Both runs use one Prefect home, so the second finds the first's task results, as a
resumed or repeated production run would.

    python bench/bench_resume.py [--files 12] [--size-mb 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import metadata_500k, save_result  # noqa: E402
from bench.make_bench_wat import make_bench_wat  # noqa: E402

DATA = Path(__file__).parent / "data" / "resume"


def prepare(files: int, size_mb: float) -> tuple[Path, Path]:
    wat_dir = DATA / "wat"
    for seed in range(files):
        if not (wat_dir / f"bench-{size_mb:g}MB-seed{seed}.warc.wat.gz").exists():
            make_bench_wat(wat_dir, size_mb, seed)
    metadata = DATA / "metadata-500k.json"
    if not metadata.exists():
        metadata.write_text(json.dumps(metadata_500k()))
    return wat_dir, metadata


def curate(wat_dir: Path, metadata: Path, output: Path, workers: int, env: dict) -> float:
    cmd = [sys.executable, "-m", "flows.cli", "curate", str(wat_dir), "--metadata",
           str(metadata), "--output", str(output), "--batch-size", "1", "--buckets", "16",
           "--workers", str(workers)]
    start = time.perf_counter()
    log = output.parent / "runs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if code:
        sys.exit(f"curate failed ({code}); see {log}:\n" + log.read_text()[-3000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    wat_dir, metadata = prepare(args.files, args.size_mb)
    run_dir = DATA / f"run-{int(time.time())}"
    env = {**os.environ, "PREFECT_HOME": str(run_dir / "prefect"),
           "METACLIP_CACHE_DIR": str(run_dir / "automata")}
    env.pop("PREFECT_API_URL", None)
    output = run_dir / "out"
    first = curate(wat_dir, metadata, output, args.workers, env)
    summary = json.loads((output / "summary.json").read_text())
    again = curate(wat_dir, metadata, output, args.workers, env)
    result = {
        "input_mb": sum(p.stat().st_size for p in wat_dir.glob("*.gz")) / 1e6,
        "files": args.files,
        "workers": args.workers,
        "first_run_seconds": first,
        "rerun_seconds": again,
        "rerun_share": again / first,
        "pairs_read": summary["pairs_read"],
        "pairs_curated": summary["pairs_curated"],
        "stages_wall": summary["seconds"]["stages_wall"],
        "peak_worker_rss_mb": summary["peak_worker_rss_mb"],
    }
    print(json.dumps(result, indent=2))
    print(f"saved {save_result('resume', result)}")


if __name__ == "__main__":
    main()
