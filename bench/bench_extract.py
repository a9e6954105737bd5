"""Extraction throughput: ours against cc2dataset, MetaCLIP's reader and the floor, WAT and WARC.

  python bench/make_bench_wat.py --size-mb 300     # bench/data/bench-300MB-seed0.warc.wat.gz
  python bench/make_bench_warc.py --size-mb 300    # bench/data/bench-300MB-seed0.warc.gz
  pip install --no-deps -r bench/requirements-bench.txt   # cc2dataset, isal (benchmark only)
  python bench/bench_extract.py [--wat FILE] [--warc FILE] [--repeat 3] [--only wat|warc]
                                [--no-compiled]

Every reader runs in this one process on the same file, single-threaded, in interleaved rounds
(best of --repeat); the figure is compressed MB (10^6 B) per CPU second of this process (= per
core), wall time too.

* ours        extraction.wat.extract_wat_file / extraction.warc.extract_warc_file (PAIRS out)
* compiled    the same, as `METACLIP_COMPILE=1 pip install .` builds it (setup.py: mypyc), in a
              child process that imports the wheel tools/compiled.py builds (its own CPU
              seconds, the same best-of-rounds); needs requirements-compile.lock and a C
              compiler, else left out (--no-compiled leaves it out)
* cc2dataset  WAT only: cc2dataset.main.process_wat(path, "image"), the function its Spark job
              maps over WAT files (fastwarc, simdjson.load per record, alt texts of IMG@/src,
              urljoin, md5 uid), installed from bench/requirements-bench.txt
* reference   MetaCLIP's own readers, re-typed from MetaCLIP's metaclip/cc_matching.py
              (WATCurator: gzip line loop, json.loads per record, urljoin, sha224, dedup;
              WARCCurator: warcio + selectolax per page; lexbor, as selectolax 1.0 dropped Modest),
              LID off, and the WARC reader's subprocess-per-500-pages timeout left out (it only
              adds cost)
* floor       decompress with the fastest library measured here, feeding fastwarc, and parse
              every record, nothing else: orjson.loads of every metadata record (WAT),
              LexborHTMLParser of every response body (WARC)
* decompress  the whole file through zlib (gzip), zlib-ng (gzip_ng) and ISA-L (isal.igzip)
* LID         metaclip.extraction.lid.keep_languages(pairs, ["en"]) on the pairs ours extracted
              (fastText); LID compiled: the same in the compiled child, on the same pairs (its
              C kernel, metaclip/extraction/_lid.pyx)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import save_result  # noqa: E402
from metaclip.extraction.lid import LanguageIdentifier, keep_languages  # noqa: E402
from metaclip.extraction.warc import extract_warc_file  # noqa: E402
from metaclip.extraction.wat import extract_wat_file  # noqa: E402

BENCH_DATA = REPO / "bench" / "data"
KOI = ["alt", "title", "data-image-title"]


# --------------------------------------------------------------------------------------------
# MetaCLIP-style references (cc_matching.py, lid=False)
# --------------------------------------------------------------------------------------------


def _uuid(url: str) -> str:
    return hashlib.sha224(bytes(url, encoding="utf-8")).hexdigest()[:24]


def _add(url: str | None, texts: list[list[str]], seen: dict[str, set[str]], out: list) -> None:
    if url is None:
        return
    rec: dict[str, Any] = {"uuid": _uuid(url), "url": url, "texts": []}
    for text in texts:
        if text[1] not in seen[rec["uuid"]]:
            seen[rec["uuid"]].add(text[1])
            rec["texts"].append(text)
    if rec["texts"]:
        out.append(rec)


def reference_wat(path: Path) -> int:
    data: list[dict[str, Any]] = []
    seen: dict[str, set[str]] = defaultdict(set)
    target_uri, looking = "", False
    with gzip.open(path) as fr:
        for raw in fr:
            try:
                line = raw.decode().strip()
            except UnicodeDecodeError:
                continue
            if line.startswith("WARC-Target-URI"):
                target_uri, looking = line[len("WARC-Target-URI: ") :], True
            if looking and line.startswith("{"):
                looking = False
                _reference_wat_json(line, target_uri, seen, data)
    return sum(len(r["texts"]) for r in data)


def _reference_wat_json(line: str, target_uri: str, seen: dict, data: list) -> None:
    try:
        payload = json.loads(line)["Envelope"]["Payload-Metadata"]
    except (ValueError, KeyError):
        return
    links = payload.get("HTTP-Response-Metadata", {}).get("HTML-Metadata", {}).get("Links")
    for link in links or []:
        if not link or not (link.get("path") or "").startswith("IMG@/src") or "url" not in link:
            continue
        try:
            url = urljoin(target_uri, link["url"])
        except ValueError:
            continue
        texts = []
        for key in KOI:
            text = (link.get(key) or "").replace("\n", " ").replace("\r", " ").strip()
            if text:
                texts.append([key, text])
        _add(url, texts, seen, data)


def reference_warc(path: Path) -> int:
    # MetaCLIP used selectolax.parser.HTMLParser (Modest); selectolax 1.0 removed Modest, so
    # its lexbor parser (the same API) stands in.
    from selectolax.lexbor import LexborHTMLParser as HTMLParser
    from warcio.archiveiterator import ArchiveIterator

    data: list[dict[str, Any]] = []
    seen: dict[str, set[str]] = defaultdict(set)
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response":
                continue
            html = record.raw_stream.read().strip()
            target_uri = record.rec_headers.get_header("WARC-Target-URI")
            for img in HTMLParser(html).tags("img"):
                url, texts = None, []
                for key, value in img.attributes.items():
                    if key not in [*KOI, "src"] or value is None:
                        continue
                    text = value.strip().replace("\n", "").replace("\r", "")
                    if not text:
                        continue
                    if key == "src":
                        try:
                            url = urljoin(target_uri, text)
                        except ValueError:
                            url = None
                    else:
                        texts.append([key, text])
                _add(url, texts, seen, data)
    return sum(len(r["texts"]) for r in data)


def cc2dataset_wat(path: Path) -> int:
    """cc2dataset's extraction of one WAT file, as its Spark job runs it per file."""
    from cc2dataset.main import process_wat

    return sum(1 for _ in process_wat(str(path), "image"))


def _cc2dataset_available() -> bool:
    try:
        import cc2dataset.main  # noqa: F401
        from loguru import logger
    except ImportError:
        return False
    logger.remove()  # its per-file "Took ... to parse" lines
    return True


# --------------------------------------------------------------------------------------------
# Decompression and floors
# --------------------------------------------------------------------------------------------


def _openers() -> dict[str, Callable[[Path], Any]]:
    """Streaming gzip readers of each library that is installed: name -> open(path)."""
    openers: dict[str, Callable[[Path], Any]] = {"zlib": lambda p: gzip.open(p, "rb")}  # noqa: SIM115
    try:
        from zlib_ng import gzip_ng

        openers["zlib-ng"] = lambda p: gzip_ng.open(p, "rb")
    except ImportError:
        pass
    try:
        from isal import igzip

        openers["isal"] = lambda p: igzip.open(p, "rb")
    except ImportError:
        pass
    return openers


def decompress_only(opener: Callable[[Path], Any], path: Path) -> int:
    n = 0
    with opener(path) as fh:
        while chunk := fh.read(1 << 20):
            n += len(chunk)
    return n


def floor_wat(opener: Callable[[Path], Any], path: Path) -> int:
    import orjson
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    with opener(path) as fh:
        for record in ArchiveIterator(fh, record_types=WarcRecordType.metadata, parse_http=False):
            orjson.loads(record.reader.read())
            n += 1
    return n


def floor_warc(opener: Callable[[Path], Any], path: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from selectolax.lexbor import LexborHTMLParser

    n = 0
    with opener(path) as fh:
        for record in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
            LexborHTMLParser(record.reader.read())
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# Ours, compiled (setup.py's METACLIP_COMPILE=1 build), in a child process
# --------------------------------------------------------------------------------------------

# The child: imports the compiled tree, then extracts each file named on a stdin line (or runs
# LID on the pairs it extracted last) and answers with its own CPU seconds for that work.
CHILD = """
import json, sys, time
import pyarrow as pa
pa.array(["x"])  # pyarrow's one-time set-up, as the parent has done it before timing
from metaclip.extraction import compiled
from metaclip.extraction.lid import LanguageIdentifier, keep_languages
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
print(json.dumps({"compiled": compiled()}), flush=True)
lid = LanguageIdentifier()
lid.identify(pa.array(["load the model outside the timing"]))
table = None
for line in sys.stdin:
    kind, path = json.loads(line)
    started = time.process_time()
    if kind == "lid":
        out = keep_languages(table, ["en"], lid)[1]
    else:
        extract = extract_wat_file if kind == "wat" else extract_warc_file
        table, stats = extract(path)
        out = stats.pairs
    print(json.dumps({"cpu_s": time.process_time() - started, "out": out}), flush=True)
"""


@dataclass
class Measured:
    """A reader's result that carries its own CPU seconds (one run in another process)."""

    out: Any
    cpu_s: float


class CompiledOurs:
    """Our extraction from the compiled wheel, run by a child process that stays up."""

    def __init__(self, site: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(site)}
        self.child = subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=site, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if not json.loads(self.child.stdout.readline())["compiled"]:
            raise RuntimeError(f"{site} does not hold the compiled extraction")

    def __call__(self, kind: str, path: Path) -> Measured:
        self.child.stdin.write(json.dumps([kind, str(path.resolve())]) + "\n")
        self.child.stdin.flush()
        answer = json.loads(self.child.stdout.readline())
        return Measured(answer["out"], answer["cpu_s"])

    def lid(self) -> Measured:
        """LID on the pairs the child extracted last: the non-English rows dropped."""
        return self("lid", Path("."))

    def close(self) -> None:
        self.child.stdin.close()
        self.child.wait()


def start_compiled(site: Path) -> CompiledOurs | None:
    """Build the compiled wheel into site and start its child; None where it cannot build."""
    from tools.compiled import build_compiled

    try:
        return CompiledOurs(build_compiled(site))
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        print(f"compiled build left out: {str(detail)[-2000:]}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def timed_rounds(
    readers: dict[str, Callable[[], Any]], mb: float, repeat: int
) -> dict[str, dict[str, Any]]:
    """Best CPU time of each reader over `repeat` interleaved rounds (a noisy shared machine
    drifts: interleaving gives every reader the same hours)."""
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for name, fn in readers.items():
            wall, cpu = time.perf_counter(), time.process_time()
            out = fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if isinstance(out, Measured):  # run elsewhere: its own CPU seconds
                out, cpu = out.out, out.cpu_s
            if name not in best or cpu < best[name]["cpu_s"]:
                best[name] = {
                    "cpu_s": round(cpu, 3),
                    "wall_s": round(wall, 3),
                    "mb_per_cpu_s": round(mb / cpu, 2),
                    "out": out,
                }
    return best


def _ratio(result: dict[str, Any], other: str, ours: str = "ours") -> float | None:
    """How many times faster `ours` is than `other` (CPU seconds), if both ran."""
    if other not in result or ours not in result:
        return None
    return round(result[other]["cpu_s"] / result[ours]["cpu_s"], 2)


def bench_format(
    kind: str, path: Path, repeat: int, lid: LanguageIdentifier, compiled: CompiledOurs | None
) -> dict[str, Any]:
    mb = path.stat().st_size / 1e6
    extract = extract_wat_file if kind == "wat" else extract_warc_file
    openers = _openers()
    decompress = timed_rounds(
        {name: (lambda o=o: decompress_only(o, path)) for name, o in openers.items()}, mb, repeat
    )
    fastest = min(decompress, key=lambda name: decompress[name]["cpu_s"])
    floor = floor_wat if kind == "wat" else floor_warc
    tables: list[Any] = []

    def ours() -> int:
        table, stats = extract(str(path))
        tables[:] = [table]
        return stats.pairs

    readers: dict[str, Callable[[], Any]] = {"ours": ours}
    if compiled is not None:
        readers["compiled"] = lambda: compiled(kind, path)
    if kind == "wat" and _cc2dataset_available():
        readers["cc2dataset"] = lambda: cc2dataset_wat(path)
    readers["reference"] = lambda: (reference_wat if kind == "wat" else reference_warc)(path)
    readers["floor"] = lambda: floor(openers[fastest], path)
    result: dict[str, Any] = {"file": str(path), "compressed_mb": round(mb, 1)}
    result.update(timed_rounds(readers, mb, repeat))
    if "compiled" in result and result["compiled"]["out"] != result["ours"]["out"]:
        raise RuntimeError(f"compiled extraction gave {result['compiled']['out']} pairs, "
                           f"ours {result['ours']['out']}")  # fmt: skip
    result["floor"]["decompression"] = fastest
    result["decompress"] = decompress
    lid.identify(tables[0]["text"].slice(0, 10))  # load the model outside the timing
    lids: dict[str, Callable[[], Any]] = {"lid": lambda: keep_languages(tables[0], ["en"], lid)[1]}
    if compiled is not None:
        lids["lid_compiled"] = compiled.lid  # the compiled child's last pairs: the same pairs
    result.update(timed_rounds(lids, mb, repeat))
    if "lid_compiled" in result and result["lid_compiled"]["out"] != result["lid"]["out"]:
        raise RuntimeError("compiled LID dropped another number of rows than fastText")
    result["ratios"] = _ratios(result, "ours")
    if "compiled" in result:
        result["ratios_compiled"] = _ratios(result, "compiled", "lid_compiled")
        result["ratios_compiled"]["compiled_speedup"] = _ratio(result, "ours", "compiled")
    return result


def _ratios(result: dict[str, Any], ours: str, lid: str = "lid") -> dict[str, float | None]:
    return {
        "ours_vs_cc2dataset": _ratio(result, "cc2dataset", ours),
        "ours_vs_reference": _ratio(result, "reference", ours),
        "ours_vs_floor_speed": _ratio(result, "floor", ours),
        "lid_share_of_extraction": round(result[lid]["cpu_s"] / result[ours]["cpu_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wat", type=Path, default=BENCH_DATA / "bench-300MB-seed0.warc.wat.gz")
    parser.add_argument("--warc", type=Path, default=BENCH_DATA / "bench-300MB-seed0.warc.gz")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["wat", "warc"])
    parser.add_argument("--no-compiled", action="store_true", help="leave the compiled build out")
    args = parser.parse_args()
    lid = LanguageIdentifier()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        compiled = None if args.no_compiled else start_compiled(Path(tmp) / "compiled")
        for kind, path in (("wat", args.wat), ("warc", args.warc)):
            if args.only in (None, kind):
                results[kind] = bench_format(kind, path, args.repeat, lid, compiled)
                print(json.dumps({kind: results[kind]}, indent=1), flush=True)
        if compiled is not None:
            compiled.close()
    print(save_result("extraction" if args.only is None else f"extraction-{args.only}", results))


if __name__ == "__main__":
    main()
