"""Rerunning a finished curation: its time against the first run's, and worker memory.

Writes N benchmark WAT files (derived from real pages, bench/make_bench_wat.py), a 500k-entry
metadata (bench/common.metadata_500k), runs `metaclip curate` on them, then the same command
again (the completion record: nothing to do), then once more without the completion record (as
after a crash at the very end: every task runs and finds its cached result). All runs use one
Prefect home, as a resumed or repeated production run would.

    python bench/bench_resume.py [--files 200] [--size-mb 40] [--workers 2] [--batch-size 4]
                                 [--server]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import metadata_500k, save_result  # noqa: E402
from bench.make_bench_wat import make_bench_wat  # noqa: E402

DATA = Path(__file__).parent / "data" / "resume"


def prepare(files: int, size_mb: float) -> tuple[list[Path], Path]:
    wat_dir = DATA / "wat"
    paths = [wat_dir / f"bench-{size_mb:g}MB-seed{seed}.warc.wat.gz" for seed in range(files)]
    for seed, path in enumerate(paths):
        if not path.exists():
            make_bench_wat(wat_dir, size_mb, seed)
    metadata = DATA / "metadata-500k.json"
    if not metadata.exists():
        metadata.write_text(json.dumps(metadata_500k()))
    return paths, metadata


def curate(wats: list[Path], metadata: Path, output: Path, args: argparse.Namespace,
           env: dict) -> float:
    cmd = [sys.executable, "-m", "metaclip_prefect.flows.cli", "curate", *map(str, wats),
           "--metadata", str(metadata), "--output", str(output),
           "--batch-size", str(args.batch_size), "--buckets", "16", "--workers", str(args.workers)]
    start = time.perf_counter()
    log = output.parent / "runs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if code:
        sys.exit(f"curate failed ({code}); see {log}:\n" + log.read_text()[-3000:])
    return time.perf_counter() - start


def start_server(env: dict, port: int = 4299) -> subprocess.Popen:
    """`prefect server start` on loopback; sets PREFECT_API_URL in env once it answers."""
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    log = open(Path(env["PREFECT_HOME"]).parent / "server.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
         str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            env["PREFECT_API_URL"] = url
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    sys.exit("prefect server did not start; see server.log")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--server", action="store_true",
                        help="run against a standing `prefect server` (as in production)")
    args = parser.parse_args()
    wats, metadata = prepare(args.files, args.size_mb)
    run_dir = DATA / f"run-{int(time.time())}"
    env = {**os.environ, "PREFECT_HOME": str(run_dir / "prefect"),
           "METACLIP_CACHE_DIR": str(run_dir / "automata"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    server = start_server(env) if args.server else None
    try:
        output = run_dir / "out"
        first = curate(wats, metadata, output, args, env)
        summary = json.loads((output / "summary.json").read_text())
        again = curate(wats, metadata, output, args, env)
        (output / "complete.json").unlink()
        cached = curate(wats, metadata, output, args, env)
    finally:
        if server:
            server.terminate()
            server.wait(30)
    result = {
        "prefect": "standing server" if args.server else "ephemeral (temporary server per run)",
        "input_mb": sum(p.stat().st_size for p in wats) / 1e6,
        "files": args.files,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "first_run_seconds": first,
        "rerun_seconds": again,
        "rerun_share": again / first,
        "rerun_cached_tasks_seconds": cached,
        "rerun_cached_tasks_share": cached / first,
        "pairs_read": summary["pairs_read"],
        "pairs_curated": summary["pairs_curated"],
        "stages_wall": summary["seconds"]["stages_wall"],
        "peak_worker_rss_mb": summary["peak_worker_rss_mb"],
    }
    print(json.dumps(result, indent=2))
    print(f"saved {save_result('resume-server' if args.server else 'resume', result)}")


if __name__ == "__main__":
    main()
