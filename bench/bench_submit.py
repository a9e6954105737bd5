"""The flow process's cost of submitting a task: prefect-dask's DaskTaskRunner against ours.

A flow submits its tasks one after another, so this cost bounds how many task runs a second
one run can feed its cluster (docs/scale.md). Both runners connect to one LocalCluster
(processes, one thread each) and a temporary Prefect server; each round submits N tasks that
return at once from a flow run of each runner, alternating, and records the flow process's
CPU seconds and wall seconds for the submissions, and the wall time until every task is done.

    python bench/bench_submit.py [--tasks 300] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from distributed import LocalCluster
from prefect import flow, task
from prefect_dask import DaskTaskRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save_result  # noqa: E402
from metaclip_prefect.flows.runners import DeferredDaskTaskRunner  # noqa: E402


@task(persist_result=False)
def echo(bucket: int, payload: dict[str, Any]) -> int:
    return bucket


def submissions(n: int) -> dict[str, float]:
    """Inside a flow run: one warm-up task, then n submissions, then every result."""
    payload = {"uri": "s3://bucket/part-00000.parquet", "entries": list(range(32))}
    echo.submit(-1, payload).result()
    cpu, wall = time.process_time(), time.perf_counter()
    futures = [echo.submit(i, payload) for i in range(n)]
    submit_cpu, submit_wall = time.process_time() - cpu, time.perf_counter() - wall
    results = [f.result() for f in futures]
    if results != list(range(n)):
        raise RuntimeError("tasks returned other values than they were given")
    return {"submit_cpu_s": submit_cpu, "submit_wall_s": submit_wall,
            "done_wall_s": time.perf_counter() - wall}  # fmt: skip


def run_round(kind: str, address: str, n: int) -> dict[str, float]:
    runner = DaskTaskRunner(address=address) if kind == "prefect-dask" else (
        DeferredDaskTaskRunner(address=address)
    )  # fmt: skip
    return flow(name=f"submit-{kind}", task_runner=runner, persist_result=False)(submissions)(n)


def summarize(rounds: list[dict[str, float]], n: int) -> dict[str, Any]:
    cpu_ms = statistics.median(r["submit_cpu_s"] for r in rounds) * 1000 / n
    wall_ms = statistics.median(r["submit_wall_s"] for r in rounds) * 1000 / n
    done = statistics.median(r["done_wall_s"] for r in rounds)
    return {
        "submit_cpu_ms_per_task": round(cpu_ms, 2),
        "submit_wall_ms_per_task": round(wall_ms, 2),
        "task_runs_per_s": round(n / done, 1),
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    by_kind: dict[str, list[dict[str, float]]] = {"prefect-dask": [], "ours": []}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:  # fmt: skip
        for _ in range(args.rounds):
            for kind, rounds in by_kind.items():
                rounds.append(run_round(kind, cluster.scheduler_address, args.tasks))
    result = {kind: summarize(rounds, args.tasks) for kind, rounds in by_kind.items()}
    base, ours = result["prefect-dask"], result["ours"]
    result["ratio"] = {
        "submit_cpu": round(base["submit_cpu_ms_per_task"] / ours["submit_cpu_ms_per_task"], 2),
        "task_runs_per_s": round(ours["task_runs_per_s"] / base["task_runs_per_s"], 2),
    }
    result["setup"] = {"tasks": args.tasks, "rounds": args.rounds, "workers": args.workers}
    print(save_result("submit", result))
    for kind in by_kind:
        print(kind, {k: v for k, v in result[kind].items() if k != "rounds"})
    print("ratio", result["ratio"])


if __name__ == "__main__":
    main()
