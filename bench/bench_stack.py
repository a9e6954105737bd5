"""Scale on a standing service: thousands of task runs, PostgreSQL against SQLite, and faults.

Starts the stack of docker/compose.yaml as real local processes (bench/stack.py): PostgreSQL 15
(or SQLite), `prefect server start`, `dask scheduler` and N `dask worker` processes over TCP, a
Prefect process worker, `prefect deploy` of deployments/prefect.yaml; then runs the curation as
a deployment run (`curate/on-demand`, its dask_address the scheduler's), exactly as the compose
stack would.

The crawl is synthetic and made for many task runs: N small WAT files derived from the bench
pages (bench/make_bench_wat.py, 0.02 MB and about 50 pairs each by default), batch size 1, and
4,096 buckets (the most a run takes, and the default of a whole crawl): 1,600 files give 10,067
task runs (1,600 extract_and_match, 4,096 dedup_and_count, 4,096 sample, 273 reductions, the
index and the counts writer). Files this small keep the matched part files few (a batch writes
one per bucket it has rows for: about 20 per bucket here), as a crawl's batches of 16 large files
do (380 rows per part, docs/scale.md). The metadata is the 500k-entry one of the other
benchmarks.

    python bench/bench_stack.py crawl --db postgres [--files 1600] [--buckets 4096] [--workers 2]
    python bench/bench_stack.py crawl --db sqlite   (the same crawl on SQLite)
    python bench/bench_stack.py faults [--files 100] [--buckets 256]
    python bench/bench_stack.py plot   (docs/images/stack-memory.png from the two crawl results)

`crawl` records the wall time, every task run's times from the API (throughput per tenth of
each stage, to see whether it falls as task runs accumulate), the flow process's, the server's
and the database's memory and the database size every few seconds. `faults` runs the crawl
once uninterrupted, then once per fault: SIGKILL of one dask worker, of the dask scheduler, of
the Prefect worker (with its flow-run process, as when its container dies), and of the Prefect
server, each mid-run; the killed process is restarted (compose's restart policy), the same
deployment run is started again, and its output is compared with the uninterrupted one's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import make_bench_wat as wat  # noqa: E402
from bench.common import metadata_500k, save_result  # noqa: E402
from bench.stack import FINAL, ROOT, Service, cpu_seconds, tree_rss_mb  # noqa: E402
from tools.watgen import WatWriter  # noqa: E402

DATA = Path(__file__).parent / "data" / "stack"
RUN_TIMEOUT_S = 4 * 3600


def small_crawl(files: int, size_mb: float) -> Path:
    """N small WAT files, cached under bench/data/stack: each its own random draw of the bench
    pages with perturbed links (bench/make_bench_wat.py), so files do not repeat each other."""
    folder = DATA / f"crawl-{files}x{size_mb:g}MB"
    folder.mkdir(parents=True, exist_ok=True)
    pages, pool = wat.load_pages(wat.PAGES_TAR), wat.real_texts()
    for seed in range(files):
        path = folder / f"small-{seed:05d}.warc.wat.gz"
        if path.exists():
            continue
        rng = random.Random(seed)
        with WatWriter(path.with_suffix(".tmp"), seed=f"stack-{seed}",
                       exact_container=False) as writer:
            while writer.bytes_written < size_mb * 1e6:
                uri, data, head, links = pages[rng.randrange(len(pages))]
                uri = wat.page_uri(uri, seed * 1_000_000 + writer.pages, rng)
                links = wat.perturb_links(links, pool, rng)
                writer.add_page(uri, data, html_metadata=(head, links))
        path.with_suffix(".tmp").rename(path)
    return folder


def metadata() -> Path:
    path = DATA / "metadata-500k.json"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metadata_500k()))
    return path


class Sampler:
    """Every `every_s`: the flow process's, the server's, the database's, the Dask scheduler's
    and the largest Dask worker's resident memory, and the database's size."""

    def __init__(self, service: Service, every_s: float = 5.0) -> None:
        self.service, self.every_s = service, every_s
        self.series: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.start = time.monotonic()

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        s = self.service
        while not self.stop.wait(self.every_s):
            workers = [tree_rss_mb(s.pid(r)) for r in s.procs if r.startswith("dask-worker")]
            flow = s.flow_process_pid()
            self.series.append({
                "t": round(time.monotonic() - self.start, 1),
                "flow_mb": round(tree_rss_mb(flow), 1),
                "server_mb": round(tree_rss_mb(s.pid("server")), 1),
                "postgres_mb": round(tree_rss_mb(s.pid("postgres")), 1),
                "scheduler_mb": round(tree_rss_mb(s.pid("scheduler")), 1),
                "flow_cpu_s": round(cpu_seconds(flow), 1),
                "server_cpu_s": round(cpu_seconds(s.pid("server")), 1),
                "dask_worker_max_mb": round(max(workers, default=0.0), 1),
                "db_mb": round(s.db_bytes() / 1e6, 1),
            })  # fmt: skip


def params(folder: Path, meta: Path, output: Path, buckets: int) -> dict[str, Any]:
    return {"inputs": [str(folder)], "metadata": str(meta), "output": str(output),
            "batch_size": 1, "n_buckets": buckets}  # fmt: skip


def stage_of(task_run: dict[str, Any]) -> str:
    return task_run["name"].rsplit("-", 1)[0]


def _seconds(ts: str | None) -> float:
    return datetime.fromisoformat(ts).timestamp() if ts else float("nan")


def task_run_report(task_runs: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Per stage: task runs, wall, the tasks' own run time, the overhead per task run (worker
    time not spent inside a task, per task run), and throughput per tenth of the stage."""
    stages: dict[str, list[dict[str, Any]]] = {}
    for tr in task_runs:
        stages.setdefault(stage_of(tr), []).append(tr)
    report = {}
    for name, runs in stages.items():
        starts = [_seconds(r["start_time"]) for r in runs]
        ends = sorted(_seconds(r["end_time"]) for r in runs)
        wall = max(ends) - min(starts)
        run_time = sum(r["total_run_time"] for r in runs)
        entry: dict[str, Any] = {
            "task_runs": len(runs), "wall_s": round(wall, 2), "task_run_time_s": round(run_time, 2),
            "overhead_per_task_run_s": round((wall * workers - run_time) / len(runs), 4),
            "states": dict(Counter(r["state_type"] for r in runs)),
        }  # fmt: skip
        if len(runs) >= 100:  # task runs finished per second in each tenth of the stage
            tenth, t0, rates = len(ends) // 10, min(starts), []
            for k in range(10):
                lo = t0 if k == 0 else ends[k * tenth - 1]
                hi = ends[(k + 1) * tenth - 1]
                rates.append(round(tenth / max(hi - lo, 1e-6), 2))
            entry["task_runs_per_s_by_tenth"] = rates
        report[name] = entry
    return report


def fingerprint(output: Path) -> dict[str, Any]:
    """What must be identical between runs: the curated rows (in any order) and the counts."""
    parts = sorted(output.glob("curated/*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else pa.table({})
    rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
    counts = pq.read_table(output / "entry_counts.parquet").to_pylist()
    return {"curated_rows": len(rows),
            "curated_sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
            "counts_sha256": hashlib.sha256(json.dumps(counts).encode()).hexdigest()}  # fmt: skip


def crawl(args: argparse.Namespace) -> dict[str, Any]:
    folder, meta = small_crawl(args.files, args.size_mb), metadata()
    home = DATA / f"run-{args.db}-{int(time.time())}"
    service = Service(home, args.db, args.workers)
    try:
        service.up(meta, home / "monthly")
        output = home / "out"
        started = time.monotonic()
        with Sampler(service, args.sample_s) as sampler:
            run_id = service.start_run(params(folder, meta, output, args.buckets))
            run = service.wait_final(run_id, RUN_TIMEOUT_S)
        wall = time.monotonic() - started
        task_runs = service.task_runs(run_id)
        db_mb = service.db_bytes() / 1e6
    finally:
        service.stop_all()
    summary = json.loads((output / "summary.json").read_text()) if (output / "summary.json"
                                                                    ).exists() else {}
    series = sampler.series
    return {
        "db": args.db, "files": args.files, "file_mb": args.size_mb,
        "input_mb": round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 1),
        "batch_size": 1, "buckets": args.buckets, "dask_workers": args.workers,
        "state": run["state_type"], "message": run["state"].get("message"),
        "wall_s": round(wall, 1),
        "flow_run_time_s": run.get("total_run_time"),
        "task_runs": len(task_runs),
        "wall_per_task_run_s": round(wall / max(1, len(task_runs)), 4),
        "stages": task_run_report(task_runs, args.workers),
        "stage_seconds": summary.get("seconds"), "task_results": summary.get("task_results"),
        "pairs_read": summary.get("pairs_read"), "pairs_curated": summary.get("pairs_curated"),
        "peak_flow_mb": max((s["flow_mb"] for s in series), default=None),
        "peak_server_mb": max((s["server_mb"] for s in series), default=None),
        "peak_postgres_mb": max((s["postgres_mb"] for s in series), default=None),
        "peak_dask_worker_mb": max((s["dask_worker_max_mb"] for s in series), default=None),
        "peak_scheduler_mb": max((s.get("scheduler_mb", 0) for s in series), default=None),
        "db_mb_after": round(db_mb, 1),
        "fingerprint": fingerprint(output) if run["state_type"] == "COMPLETED" else None,
        "series": series,
    }  # fmt: skip


# -- faults -------------------------------------------------------------------------------
def _kill_dask_worker(s: Service) -> None:
    """SIGKILL the worker process itself (its nanny starts a new one)."""
    nanny = psutil.Process(s.pid("dask-worker-0"))
    children = nanny.children(recursive=True)
    victim = max(children, key=lambda p: p.memory_info().rss) if children else nanny
    os.kill(victim.pid, signal.SIGKILL)


def _kill_scheduler(s: Service) -> None:
    s.kill("scheduler")
    s.start_scheduler()
    time.sleep(10)  # the workers' nannies reconnect or exit; compose restarts those that exit
    for i in range(s.n_workers):
        if s.pid(f"dask-worker-{i}") is None:
            s.start_dask_worker(i)
    try:
        s.wait_dask_workers(timeout=60)
    except Exception:  # noqa: BLE001 - workers neither back nor gone: restart them all
        for i in range(s.n_workers):
            s.kill(f"dask-worker-{i}")
            s.start_dask_worker(i)
        s.wait_dask_workers()


def _kill_prefect_worker(s: Service) -> None:
    flow = s.flow_process_pid()
    s.kill("prefect-worker")  # its process group: the worker and the flow run's process
    if flow is not None and psutil.pid_exists(flow):
        os.kill(flow, signal.SIGKILL)
    s.start_prefect_worker()


def _kill_server(s: Service) -> None:
    s.kill("server")
    time.sleep(5)
    s.start_server()


FAULTS = {"dask-worker": _kill_dask_worker, "dask-scheduler": _kill_scheduler,
          "prefect-worker": _kill_prefect_worker, "prefect-server": _kill_server}  # fmt: skip


def one_fault(s: Service, fault: str, p: dict[str, Any], kill_at: int) -> dict[str, Any]:
    """Start the run, kill at `kill_at` completed task runs, restart, run the same again."""
    first = s.start_run(p)
    while s.count_completed(first) < kill_at:
        if s.flow_run(first)["state_type"] in FINAL:
            break
        time.sleep(1)
    done_before, flow_pid = s.count_completed(first), s.flow_process_pid()
    FAULTS[fault](s)
    first_state = _after_fault(s, first, flow_pid)
    first_completed = s.count_completed(first)
    started = time.monotonic()
    second = s.start_run(p)
    rerun = s.wait_final(second, RUN_TIMEOUT_S)
    out = Path(p["output"])
    summary = json.loads((out / "summary.json").read_text())
    return {"fault": fault, "task_runs_completed_before_kill": done_before,
            "first_run_state": first_state, "first_run_task_runs_completed": first_completed,
            "rerun_state": rerun["state_type"], "rerun_s": round(time.monotonic() - started, 1),
            "rerun_task_runs": len(s.task_runs(second)),
            "rerun_task_runs_completed": s.count_completed(second),
            "summary_task_results": summary.get("task_results"),
            "fingerprint": fingerprint(out)}  # fmt: skip


def _after_fault(s: Service, run_id: str, flow_pid: int | None, timeout: float = 900) -> str:
    """The first run's end: a final state, "orphaned" (its process is gone, the API still says
    RUNNING: nothing marks a run whose process died), or stuck (killed after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = s.flow_run(run_id)
        if state["state_type"] in FINAL:
            return f"{state['state_type']}: {(state['state'].get('message') or '')[:300]}"
        if flow_pid is None or not psutil.pid_exists(flow_pid):
            return f"orphaned ({state['state_type']} in the API, its process gone)"
        time.sleep(2)
    os.kill(flow_pid, signal.SIGKILL)
    return "stuck: killed after 15 minutes"


def faults(args: argparse.Namespace) -> dict[str, Any]:
    folder, meta = small_crawl(args.files, args.size_mb), metadata()
    home = DATA / f"faults-{int(time.time())}"
    service = Service(home, "postgres", args.workers)
    results = []
    try:
        service.up(meta, home / "monthly")
        ref_out = home / "out-reference"
        started = time.monotonic()
        ref_id = service.start_run(params(folder, meta, ref_out, args.buckets))
        ref = service.wait_final(ref_id, RUN_TIMEOUT_S)
        ref_wall = time.monotonic() - started
        total = len(service.task_runs(ref_id))
        reference = fingerprint(ref_out)
        for fault in args.faults:
            p = params(folder, meta, home / f"out-{fault}", args.buckets)
            result = one_fault(service, fault, p, int(total * args.kill_at))
            result["identical"] = result["fingerprint"] == reference
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        service.stop_all()
    return {"files": args.files, "buckets": args.buckets, "dask_workers": args.workers,
            "reference_state": ref["state_type"], "reference_wall_s": round(ref_wall, 1),
            "reference_task_runs": total, "reference": reference,
            "kill_at_share_of_task_runs": args.kill_at, "faults": results}  # fmt: skip


def plot(names: list[str], out: Path) -> None:
    """Memory and database size over time of the crawl runs (bench/results/<name>.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.common import RESULTS

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name in names:
        if not (RESULTS / f"{name}.json").exists():
            continue
        result = json.loads((RESULTS / f"{name}.json").read_text())
        series, db = result["series"], result["db"]
        series = [p for p in series if p["t"] > 30]  # once the flow run's process exists
        t = [p["t"] / 60 for p in series]
        for key, label in (("flow_mb", "flow process"), ("server_mb", "Prefect server"),
                           ("postgres_mb", "PostgreSQL")):  # fmt: skip
            if any(p[key] for p in series):
                axes[0].plot(t, [p[key] for p in series], label=f"{label} ({db})")
        axes[1].plot(t, [p["db_mb"] for p in series], label=f"database ({db})")
    axes[0].set(xlabel="minutes", ylabel="resident memory, MB", title="Memory")
    axes[1].set(xlabel="minutes", ylabel="MB", title="Database size")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["crawl", "faults", "plot"])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--files", type=int)
    parser.add_argument("--size-mb", type=float, default=0.02)
    parser.add_argument("--buckets", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--kill-at", type=float, default=0.4,
                        help="faults: kill after this share of the task runs completed")
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    parser.add_argument("--name", help="bench/results/<name>.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on SIGTERM too
    if args.mode == "plot":  # the crawl results saved before, into docs/images/
        plot(["stack-postgres", "stack-sqlite"], ROOT / "docs" / "images" / "stack-memory.png")
        return
    if args.mode == "crawl":
        args.files, args.buckets = args.files or 1600, args.buckets or 4096
        result = crawl(args)
        name = args.name or f"stack-{args.db}"
    else:
        args.files, args.buckets = args.files or 100, args.buckets or 256
        result = faults(args)
        name = args.name or "stack-faults"
    print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=1))
    print(f"saved {save_result(name, result)}")


if __name__ == "__main__":
    main()
