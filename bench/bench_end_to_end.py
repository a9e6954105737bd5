"""End to end: MB of WAT per core-second through the whole curation, with a Prefect server.

Runs `metaclip curate` (extraction, LID, matching, counts, balancing, output, data card) on N
benchmark WAT files (derived from real pages, bench/make_bench_wat.py) against one standing
`prefect server`, on a local Dask cluster, and reports the compressed WAT megabytes per CPU
second of the whole curation: the CPU time of the `curate` process and of every process under it
(the Dask scheduler, nannies and workers), read from getrusage(RUSAGE_CHILDREN) once it has
exited. The server's own CPU time is reported apart.

With --base COMMIT the same runs are made with that commit's code too (checked out into a
temporary git worktree, same packages), interleaved with this tree's: before and after. With
--compiled, this tree's compiled build too (setup.py's METACLIP_COMPILE=1 wheel, the worker
image's, built by tools/compiled.py and imported first in every process of its runs).

    python bench/bench_end_to_end.py [--files 8] [--size-mb 40] [--workers 2] [--repeat 2]
                                     [--base COMMIT] [--compiled]

Each run writes a fresh output, so nothing is reused from an earlier run but the matcher's
automaton cache (warmed by one run of each tree before the timed ones).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_resume import prepare, start_server  # noqa: E402
from bench.common import save_result  # noqa: E402

DATA = Path(__file__).parent / "data" / "end_to_end"


def python_path(tree: Path) -> str:
    """PYTHONPATH that imports metaclip and metaclip_prefect (flows/, tasks/) from `tree` in every
    process of the run, Dask workers included: the editable install maps metaclip_prefect.flows
    to this checkout's flows/, so a shim package pointing at the tree's folders comes first."""
    shim = Path(tempfile.mkdtemp(prefix="shim-", dir=DATA))
    (shim / "metaclip_prefect").mkdir()
    paths = [str(tree / "metaclip_prefect"), str(tree)]
    (shim / "metaclip_prefect" / "__init__.py").write_text(f"__path__ = {paths!r}\n")
    return f"{shim}{os.pathsep}{tree}"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curate_once(
    tree: Path,
    wats: list[Path],
    metadata: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    server: psutil.Process,
) -> dict[str, float | int]:
    """One whole curation in a fresh output: wall and CPU seconds, pairs."""
    output = Path(tempfile.mkdtemp(prefix="e2e-", dir=DATA))
    cmd = [
        sys.executable,
        "-m",
        "metaclip_prefect.flows.cli",
        "curate",
        *map(str, wats),
        "--metadata",
        str(metadata),
        "--output",
        str(output / "out"),
        "--batch-size",
        str(args.batch_size),
        "--buckets",
        "16",
        "--workers",
        str(args.workers),
    ]
    run_env = {**env, "PYTHONPATH": python_path(tree)}
    cpu, server_cpu = children_cpu_s(), sum(server.cpu_times()[:2])
    wall = time.perf_counter()
    done = subprocess.run(cmd, env=run_env, cwd=tree, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    cpu, server_cpu = children_cpu_s() - cpu, sum(server.cpu_times()[:2]) - server_cpu
    if done.returncode:
        sys.exit(f"curate failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((output / "out" / "summary.json").read_text())
    shutil.rmtree(output)
    shutil.rmtree(run_env["PYTHONPATH"].split(os.pathsep)[0])  # the shim
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "server_cpu_s": round(server_cpu, 1),
        "pairs_read": summary["pairs_read"],
        "pairs_curated": summary["pairs_curated"],
        # summed over the task runs, as the curation records them: the part a crawl multiplies
        "extract_cpu_s": round(summary["seconds"]["extract_cpu"], 1),
        "match_cpu_s": round(summary["seconds"]["match_cpu"], 1),
        "extract_and_match_wall_s": round(
            summary["seconds"]["stages_wall"]["extract_and_match"], 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--base", help="also run this commit's code (before/after)")
    parser.add_argument("--compiled", action="store_true", help="also run the compiled build")
    args = parser.parse_args()
    wats, metadata = prepare(args.files, args.size_mb)
    input_mb = sum(p.stat().st_size for p in wats) / 1e6
    DATA.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="prefect-", dir=DATA))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        "METACLIP_CACHE_DIR": str(home / "automata"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    trees = {"this tree": REPO}
    if args.base:
        base = Path(tempfile.mkdtemp(prefix="base-", dir=DATA))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        trees = {f"base {args.base}": base, **trees}
    if args.compiled:
        from tools.compiled import build_compiled

        trees["compiled"] = build_compiled(home / "compiled")
    server_proc = start_server(env)
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        server = psutil.Process(server_proc.pid)
        for tree in trees.values():  # warm the automaton cache, untimed
            curate_once(tree, wats, metadata, args, env, server)
        for _ in range(args.repeat):
            for name, tree in trees.items():
                runs[name].append(curate_once(tree, wats, metadata, args, env, server))
                print(name, runs[name][-1], flush=True)
    finally:
        server_proc.terminate()
        server_proc.wait(30)
        if args.base:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(trees[f"base {args.base}"])],
                cwd=REPO,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)
    result: dict = {
        "files": args.files,
        "input_mb": round(input_mb, 1),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "trees": {},
    }
    for name, done in runs.items():
        best = min(done, key=lambda r: r["cpu_s"])
        result["trees"][name] = {
            **best,
            "mb_per_core_s": round(input_mb / best["cpu_s"], 2),
            "runs": done,
        }
    ours = result["trees"]["this tree"]["cpu_s"]
    if args.base:
        result["speedup_cpu"] = round(result["trees"][f"base {args.base}"]["cpu_s"] / ours, 2)
    if args.compiled:
        result["compiled_speedup_cpu"] = round(ours / result["trees"]["compiled"]["cpu_s"], 2)
    print(json.dumps(result, indent=2))
    name = "end_to_end-compiled" if args.compiled else "end_to_end"
    print(f"saved {save_result(name, result)}")


if __name__ == "__main__":
    main()
