"""Hostile input (issue 14): peak memory and CPU time of each case of the hostile corpus at full
scale, each extracted in a process of its own, as a curation worker would.

    python bench/bench_hostile.py [--out bench/data/hostile] [--regenerate] [--only CASE ...]
                                  [--timeout 300] [--mem-limit-mb 3072]

The corpus (tests/hostile/corpus.py: the issue's sizes, a 4 GB record gzip bomb, a 300 MB JSON
record, a 100 MB alt text, 1 GB HTTP Content-Encoding bombs, ...) is written once into
bench/data/hostile/ (git-ignored); its generation takes a few minutes. Each case then runs in
`python -m tests.hostile.corpus --extract` (the extractor the curation uses for its format),
measured from here by os.wait4: peak RSS (ru_maxrss, the whole process: Python and the imported
extractors included; `baseline` is that of a zero-byte file) and CPU seconds (user + system).
The issue's target: under 1 GB peak worker memory for every case. A case that runs past
--timeout is killed; the address-space limit (RLIMIT_AS) keeps a runaway case from taking the
machine down (it then dies with MemoryError, reported as such). Each case's expectation (skip
reasons, good pairs kept) is checked too, as the test suite does at small scale.

Writes bench/results/hostile.json (with --only: updates the cases it ran there).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import save_result  # noqa: E402
from tests.hostile import corpus  # noqa: E402

OUT = REPO / "bench" / "data" / "hostile"
TARGET_MB = 1024
RESULT_FILE = REPO / "bench" / "results" / "hostile.json"


def ensure_corpus(out: Path, regenerate: bool, only: list[str] | None) -> dict[str, corpus.Case]:
    """The full-scale corpus in out, written unless it is there (same cases, every file)."""
    manifest = out / "manifest.json"
    if not regenerate and manifest.exists():
        scale = json.loads(manifest.read_text())["scale"]
        cases = corpus.load_manifest(out)
        wanted = set(only or corpus.case_names())
        if (
            scale == "full"
            and wanted <= set(cases)
            and all((out / cases[n].file).exists() for n in wanted)
        ):
            return {n: cases[n] for n in corpus.case_names() if n in wanted}
    print(f"writing the full-scale corpus into {out} ...", flush=True)
    started = time.perf_counter()
    cases = corpus.build_corpus(out, "full", only, log=lambda line: print("  " + line, flush=True))
    print(f"written in {time.perf_counter() - started:.0f} s", flush=True)
    return cases


def run_one(path: Path, fmt: str, timeout: float, mem_limit_mb: int) -> dict[str, Any]:
    """Extract one file in a child process: its exit, wall and CPU time, peak RSS, result."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "tests.hostile.corpus",
            "--extract",
            str(path),
            "--format",
            fmt,
            "--result",
            str(result),
            "--mem-limit-mb",
            str(mem_limit_mb),
        ]
        started = time.perf_counter()
        errors = open(Path(tmp) / "stderr", "wb")  # noqa: SIM115 - closed below
        child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        timed_out = False
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.send_signal(signal.SIGKILL)
                pid, status, usage = os.wait4(child.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        errors.close()
        stderr = (Path(tmp) / "stderr").read_text("utf-8", "replace")
        out = json.loads(result.read_text()) if result.exists() else {}
    run: dict[str, Any] = {
        "exit": child.returncode,
        "timed_out": timed_out,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if "stats" in out:
        run["extract_wall_s"] = round(out["wall_s"], 2)
        run["stats"] = out["stats"]
        run["pairs"] = len(out["pairs"])
    elif out.get("error") or stderr:
        run["error"] = out.get("error") or stderr.strip().splitlines()[-1][:300]
    run["_result"] = out
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--regenerate", action="store_true", help="write the corpus again")
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case")
    parser.add_argument("--mem-limit-mb", type=int, default=3072, help="RLIMIT_AS per case")
    args = parser.parse_args()
    cases = ensure_corpus(args.out, args.regenerate, args.only)
    empty = args.out / "file_zero_bytes_wat.warc.wat.gz"
    if not empty.exists():
        empty.write_bytes(b"")
    baseline = run_one(empty, "wat", args.timeout, args.mem_limit_mb)
    print(
        f"\nbaseline (a zero-byte file): peak RSS {baseline['peak_rss_mb']} MB, "
        f"{baseline['cpu_s']} CPU s\n"
    )
    header = (
        f"{'case':42s} {'fmt':4s} {'file MB':>8s} {'peak MB':>8s} {'CPU s':>7s} "
        f"{'wall s':>7s} {'pairs':>6s}  result"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, Any] = {}
    for name, case in cases.items():
        path = args.out / case.file
        run = run_one(path, case.fmt, args.timeout, args.mem_limit_mb)
        out = run.pop("_result")
        if run["timed_out"]:
            verdict = f"KILLED after {args.timeout:g} s"
        elif run["exit"] != 0:
            verdict = f"EXIT {run['exit']}: {run.get('error', '')}"[:120]
        else:
            problems = corpus.check_result(case, out)
            run["problems"] = problems
            verdict = "ok" if not problems else "EXPECTATION: " + "; ".join(problems)[:200]
        run["file_mb"] = round(path.stat().st_size / 1e6, 2)
        run["under_target"] = run["peak_rss_mb"] < TARGET_MB and not run["timed_out"]
        run["verdict"] = verdict
        rows[name] = run
        flag = "" if run["under_target"] else "  <-- over 1 GB / killed"
        print(
            f"{name:42s} {case.fmt:4s} {run['file_mb']:8.2f} {run['peak_rss_mb']:8.1f} "
            f"{run['cpu_s']:7.2f} {run['wall_s']:7.2f} {run.get('pairs', '-'):>6}  "
            f"{verdict}{flag}",
            flush=True,
        )
    previous = RESULT_FILE
    if args.only and previous.exists():  # a partial rerun: update the cases it ran
        earlier = json.loads(previous.read_text())["cases"]
        rows = {
            n: rows.get(n, earlier.get(n)) for n in corpus.case_names() if n in rows or n in earlier
        }
    worst = max(rows.items(), key=lambda kv: kv[1]["peak_rss_mb"])
    slowest = max(rows.items(), key=lambda kv: kv[1]["cpu_s"])
    summary = {
        "cases": len(rows),
        "under_1gb": sum(r["under_target"] for r in rows.values()),
        "max_peak_rss_mb": worst[1]["peak_rss_mb"],
        "max_peak_case": worst[0],
        "max_cpu_s": slowest[1]["cpu_s"],
        "max_cpu_case": slowest[0],
        "expectation_failures": sorted(n for n, r in rows.items() if r["verdict"] != "ok"),
    }
    print(
        f"\n{summary['under_1gb']}/{summary['cases']} cases under 1 GB peak RSS; "
        f"max {summary['max_peak_rss_mb']} MB ({summary['max_peak_case']}); "
        f"max CPU {summary['max_cpu_s']} s ({summary['max_cpu_case']})"
    )
    result = {
        "target_peak_rss_mb": TARGET_MB,
        "timeout_s": args.timeout,
        "mem_limit_mb": args.mem_limit_mb,
        "python": sys.version.split()[0],
        "baseline": {k: v for k, v in baseline.items() if k != "_result"},
        "summary": summary,
        "cases": rows,
    }
    print(save_result("hostile", result))


if __name__ == "__main__":
    main()
