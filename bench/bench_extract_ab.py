"""Extraction speed of this tree against another commit's, on the same files, interleaved.

The machine is shared and its speed drifts by 2x over an hour, so absolute MB/s from different
hours do not compare; this runs the two trees' extractors one after the other in fresh
processes (best of N CPU seconds each) and reports the ratio. The other commit is checked out
into a temporary git worktree; both use this virtual environment's packages.

    python bench/bench_extract_ab.py --base da76c9b --repeat 3
    python bench/bench_extract_ab.py --base da76c9b --only wat
    python bench/bench_extract_ab.py --compiled     # this tree: pure Python against its
                                                    # METACLIP_COMPILE=1 build (tools/compiled.py)

Writes bench/results/extract_ab.json (extract_ab_compiled.json with --compiled).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
FILES = {
    "wat": DATA / "bench-300MB-seed0.warc.wat.gz",
    "warc": DATA / "bench-300MB-seed0.warc.gz",
}
# Run in the tree under test: CPU seconds of one extraction, and what it produced.
PROBE = """
import json, sys, time
kind, path = sys.argv[1], sys.argv[2]
if kind == "wat":
    from metaclip.extraction.wat import extract_wat_file as extract
else:
    from metaclip.extraction.warc import extract_warc_file as extract
started = time.process_time()
table, stats = extract(path)
from metaclip.extraction import compiled
print(json.dumps({"cpu_s": time.process_time() - started, "pairs": table.num_rows,
                  "records": stats.records, "skipped": dict(stats.skipped),
                  "compiled": compiled()}))
"""


def run_once(tree: Path, kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path)],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--base", help="the commit to compare with")
    what.add_argument("--compiled", action="store_true",
                      help="compare this tree with its compiled build")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(FILES))
    args = parser.parse_args()
    kinds = [args.only] if args.only else sorted(FILES)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base, this = Path(tmp) / "base", REPO
        if args.compiled:
            sys.path.insert(0, str(REPO))
            from tools.compiled import build_compiled

            base, this = REPO, build_compiled(Path(tmp) / "compiled")
        else:
            subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base],
                           cwd=REPO, check=True, capture_output=True)  # fmt: skip
        try:
            for kind in kinds:
                runs: dict[str, list[dict]] = {"base": [], "this": []}
                for _ in range(args.repeat):
                    runs["base"].append(run_once(base, kind, FILES[kind]))
                    runs["this"].append(run_once(this, kind, FILES[kind]))
                best = {name: min(r["cpu_s"] for r in rs) for name, rs in runs.items()}
                if args.compiled:  # the same extraction, as the build says it is
                    assert {r["compiled"] for r in runs["this"]} == {True}
                    keys = ("pairs", "records", "skipped")
                    outputs = {json.dumps({k: r[k] for k in keys}, sort_keys=True)
                               for rs in runs.values() for r in rs}  # fmt: skip
                    assert len(outputs) == 1, outputs
                results[kind] = {
                    "base_commit": args.base or "this tree, pure Python",
                    "this": "this tree, compiled" if args.compiled else "this tree",
                    "best_cpu_s": best,
                    "ratio_this_over_base": round(best["this"] / best["base"], 3),
                    "pairs": {name: rs[0]["pairs"] for name, rs in runs.items()},
                    "runs": runs,
                }
                print(f"{kind}: base {best['base']:.2f} s, this {best['this']:.2f} s, "
                      f"ratio {best['this'] / best['base']:.3f}, pairs "
                      f"{results[kind]['pairs']}")  # fmt: skip
        finally:
            if not args.compiled:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                               check=False, capture_output=True)  # fmt: skip
    name = "extract_ab_compiled.json" if args.compiled else "extract_ab.json"
    out = REPO / "bench" / "results" / name
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
