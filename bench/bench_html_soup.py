"""Tag soup: lexbor alone against add_html_page (the bounded parse), per pattern and size.

  python bench/bench_html_soup.py [--sizes 1,8] [--timeout 20] [--only div_span ...]

Each pattern is a page of that many MB (10^6 characters) made of one construct repeated, the
soups extraction/html/bound.py bounds (its docstring says why each is super-linear, or is not).

* lexbor      LexborHTMLParser(page) alone, the parse as it was before the bound (default
              options: with DOM mutation events), in a child process limited to --timeout
              seconds and 4 GiB; ">T" when it did not finish (the quadratic ones at 8 MB run
              for hours), "over 4 GiB" when it ran out of memory (clones), skipped at 8 MB
              when 1 MB did not finish
* ours        add_html_page(page) in this process: needs_scan, nesting_cut where it runs, then
              lexbor (without mutation events) on what is kept
* guard       the seconds of ours spent in needs_scan + nesting_cut
* kept        the share of the page before the cut (1 when not cut)
* real pages  the same two over every real page at hand (../shared/data/html-pages, else the
              pages in tests/data), to show what the guard costs where it is not needed
* below       soups just under the limits under which the model does not run (SCAN_TAGS_ABOVE,
              FORMATTING_CHECK_ABOVE): what a page that skips the guard can still cost

Figures are CPU seconds of one core on the machine it ran on; read the ratios, not the
absolute times. Results: bench/results/html_soup.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import DATA, save_result  # noqa: E402
from metaclip.extraction.html import bound  # noqa: E402
from metaclip.extraction.html.page import _PARSE_OPTIONS, add_html_page  # noqa: E402
from metaclip.extraction.pairs import ExtractStats, PairBuffer  # noqa: E402

MB = 1_000_000
PAGES_TAR = DATA / "html-pages" / "trafilatura-tests-cache-110pages.tar.gz"
TEST_PAGES = [REPO / "tests" / "data" / "warc" / "pages", REPO / "tests" / "data" / "wat" / "pages"]


def rep(unit: str, size: int, head: str = "") -> str:
    return head + unit * max(1, (size - len(head)) // len(unit))


def numbered(unit: str, size: int, head: str = "", tail: str = "") -> str:
    """unit.format(i=0), unit.format(i=1)... up to size (distinct tags), then tail repeated."""
    out, total, i = [head], len(head), 0
    while total < (size if not tail else size // 2):
        piece = unit.format(i=i)
        out.append(piece)
        total += len(piece)
        i += 1
    if tail:
        out.append(tail * ((size - total) // len(tail)))
    return "".join(out)


def attrs(k: int) -> str:
    return " ".join(f"a{i}" for i in range(k))


# name -> (what it is, page of a given size)
PATTERNS: dict[str, tuple[str, Callable[[int], str]]] = {
    "div_span": ("<div></span>: issue 14 (stray end tag)", lambda s: rep("<div></span>", s)),
    "div_nested": ("<div> nested", lambda s: rep("<div>", s)),
    "span_div_endspan": ("<span><div></span>", lambda s: rep("<span><div></span>", s)),
    "b_i_misnest": ("<b><i></b></i> (adoption agency)", lambda s: rep("<b><i></b></i>", s)),
    "b_div_misnest": ("<b><div></b> (adoption agency)", lambda s: rep("<b><div></b>", s)),
    "a_in_a": ("<a> in <a>", lambda s: rep('<a href="x">x', s)),
    "a_div_a": ("<a><div> (adoption agency)", lambda s: rep("<a><div>", s)),
    "b_open": ("<b> x n (Noah's Ark: 3 entries)", lambda s: rep("<b>", s)),
    "font_open": ("<font> x n", lambda s: rep("<font>", s)),
    "b_distinct": ("<b id=i> x n (distinct entries)", lambda s: numbered("<b id={i}>", s)),
    "p_b_clones": ("<p><b id=i>x (reconstruct)", lambda s: numbered("<p><b id={i}>x", s)),
    "div_b_clones": (
        "<div><b id=i></div> (reconstruct)",
        lambda s: numbered("<div><b id={i}></div>", s),
    ),
    "fmt40_clones": (
        "40 <b>s left open, then <div>x</div>",
        lambda s: (
            "<div>"
            + "".join(f"<b id={i}>" for i in range(40))
            + "</div>"
            + rep("<div>x</div>", s - 600)
        ),
    ),
    "fmt_attrs_clones": (
        "<b> with 200 attributes, then <div>x</div>",
        lambda s: "<div><b " + attrs(200) + "></div>" + rep("<div>x</div>", s - 1400),
    ),
    "noah_attrs": (
        "<b a0..a49 x=i> (Noah's Ark compares)",
        lambda s: numbered("<b " + attrs(50) + " x={i}>", s),
    ),
    "table_div": (
        "<table> then <div> x n (foster parenting)",
        lambda s: rep("<div>", s, "<table>"),
    ),
    "table_text_div": ("<table> then x<div> x n", lambda s: rep("x<div>", s, "<table>")),
    "table_td": ("<table><tr><td> nested", lambda s: rep("<table><tr><td>", s)),
    "table_nested": ("<table> x n (closes the last)", lambda s: rep("<table>", s)),
    "select_div": ("<select> then <div> x n", lambda s: rep("<div>", s, "<select>")),
    "select_nested": ("<select> x n", lambda s: rep("<select>", s)),
    "select_option": ("<select><option> x n", lambda s: rep("<select><option>", s)),
    "selectedcontent": (
        "<option selected> x n after <selectedcontent>",
        lambda s: rep(
            "<option selected><b>x</b><i>y</i>", s, "<select><selectedcontent></selectedcontent>"
        ),
    ),
    "template_nested": ("<template> nested", lambda s: rep("<template>", s)),
    "svg_g": ("<svg> then <g> x n", lambda s: rep("<g>", s, "<svg>")),
    "svg_g_end": (
        "<svg><g> x n then </x> x n",
        lambda s: rep("<g>", s // 2, "<svg>") + rep("</x>", s // 2),
    ),
    "svg_breakout": ("<svg><g><div> x n", lambda s: rep("<svg><g><div>", s)),
    "math_mi": ("<math><mi> nested", lambda s: rep("<math><mi>", s)),
    "li_chain": ("<li> x n (each closes the last)", lambda s: rep("<li>", s)),
    "ul_li": ("<ul><li> nested", lambda s: rep("<ul><li>", s)),
    "p_chain": ("<p> x n", lambda s: rep("<p>", s)),
    "div2k_li": ("2000 <div>s, then <li> x n", lambda s: "<div>" * 2000 + rep("<li>", s - 10000)),
    "attrs_one_tag": ("one tag, distinct attributes", lambda s: "<div " + attrs(s // 8) + ">"),
    "attrs_per_tag": ("tags of 256 attributes", lambda s: rep("<div " + attrs(256) + "></div>", s)),
    "html_attrs": ("<html a=i> x n (merged)", lambda s: numbered("<html z{i}>", s)),
    "comment_open": ("<!-- then tags", lambda s: rep("<div>", s, "<!--")),
    "script_raw": ("<script> then tags", lambda s: rep("<div>", s, "<script>")),
    "textarea_raw": ("<textarea> then tags", lambda s: rep("<div>", s, "<textarea>")),
    "plaintext": ("<plaintext> then tags", lambda s: rep("<div>", s, "<plaintext>")),
    "img_alt": ("<img alt> x n (linear control)", lambda s: rep('<img src="a.jpg" alt="x">', s)),
}

BELOW: dict[str, Callable[[], str]] = {  # just under the limits that decide if the model runs
    "select_div_under_scan": lambda: "<select>" + "<div>" * (bound.SCAN_TAGS_ABOVE - 2),
    "table_div_under_scan": lambda: "<table>" + "<div>" * (bound.SCAN_TAGS_ABOVE - 2),
    "ul_li_under_scan": lambda: "<ul><li>" * (bound.SCAN_TAGS_ABOVE // 2 - 1),
    "div_b_clones_under_check": lambda: "".join(
        f"<div><b id={i}></div>" for i in range(bound.FORMATTING_CHECK_ABOVE // 3)
    ),
    "p_b_clones_under_check": lambda: "".join(
        f"<p><b id={i}>x" for i in range(bound.FORMATTING_CHECK_ABOVE // 2 - 1)
    ),
}


def lexbor_child(name: str, size: int) -> None:
    """In the child: parse the pattern with lexbor alone, print the CPU seconds."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from selectolax.lexbor import LexborHTMLParser

    page = PATTERNS[name][1](size)
    start = time.process_time()
    LexborHTMLParser(page)
    print(json.dumps(round(time.process_time() - start, 3)))


def lexbor_alone(name: str, size: int, timeout: float) -> float | str:
    cmd = [sys.executable, __file__, "--child", name, str(size)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f">{timeout:g}"
    if done.returncode != 0:  # lexbor fails when it cannot allocate
        memory = "MemoryError" in done.stderr or "Can't parse HTML" in done.stderr
        return "over 4 GiB" if memory else f"failed ({done.returncode})"
    return json.loads(done.stdout)


def ours(page: str) -> dict[str, Any]:
    stats = ExtractStats()
    buffer = PairBuffer("bench", stats)
    start = time.process_time()
    cut = bound.nesting_cut(page) if bound.needs_scan(page) else None
    guard = time.process_time() - start
    start = time.process_time()
    add_html_page(page, "https://example.com/", 0, buffer, stats)
    total = time.process_time() - start
    return {
        "s": round(total, 3),
        "guard_s": round(guard, 3),
        "kept": 1.0 if cut is None else round(cut / len(page), 4),
    }


def ratio(a: Any, b: Any) -> str:
    if isinstance(b, float) and isinstance(a, float) and a > 0:
        return f"{b / a:.2g}"
    if isinstance(b, str) and b.startswith(">") and isinstance(a, float):
        return f">{float(b[1:]) / max(a, 1e-3):.3g}"
    return "-"


def bench_patterns(sizes: list[int], names: list[str], timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(
        f"{'pattern':18} {'MB':>3} {'lexbor s':>10} {'ours s':>7} {'guard s':>7} {'kept':>6}"
        f" {'lexbor/ours':>11}",
        flush=True,
    )
    for name in names:
        out[name] = {"what": PATTERNS[name][0]}
        alone_failed = False
        for size in sizes:
            if alone_failed:
                alone: float | str = "skipped"
            else:
                alone = lexbor_alone(name, size * MB, timeout)
                alone_failed = not isinstance(alone, float)
            page = PATTERNS[name][1](size * MB)
            mine = ours(page)
            del page
            mine["lexbor_s"] = alone
            mine["lexbor_over_ours"] = ratio(mine["s"], alone)
            out[name][f"{size}MB"] = mine
            print(
                f"{name:18} {size:3d} {str(alone):>10} {mine['s']:7.2f} {mine['guard_s']:7.2f} "
                f"{mine['kept']:6.3f} {mine['lexbor_over_ours']:>11}",
                flush=True,
            )
    return out


def real_pages() -> list[str]:
    texts = []
    if PAGES_TAR.exists():
        with tarfile.open(PAGES_TAR) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".html"):
                    texts.append(tar.extractfile(m).read().decode("utf-8", errors="replace"))
        return texts
    for folder in TEST_PAGES:
        for path in sorted(folder.glob("*.html.gz")):
            texts.append(gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace"))
    return texts


def bench_real(repeat: int) -> dict[str, Any]:
    from selectolax.lexbor import LexborHTMLParser

    pages = real_pages()

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(repeat):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times)

    def add_all() -> None:
        stats = ExtractStats()
        buffer = PairBuffer("bench", stats)
        for page in pages:
            add_html_page(page, "https://example.com/", 0, buffer, stats)

    lexbor_s = best(lambda: [LexborHTMLParser(p) for p in pages])
    ours_s = best(add_all)
    checks_s = best(lambda: [bound.needs_scan(p) for p in pages])
    scanned = [p for p in pages if bound.needs_scan(p)]
    cuts = sum(bound.nesting_cut(p) is not None for p in scanned)
    result = {
        "pages": len(pages),
        "mb": round(sum(map(len, pages)) / MB, 1),
        "lexbor_s": round(lexbor_s, 3),
        "add_html_page_s": round(ours_s, 3),
        "needs_scan_s": round(checks_s, 3),
        "scanned": len(scanned),
        "cut": cuts,
        "needs_scan_over_lexbor": round(checks_s / lexbor_s, 3),
    }
    print(
        f"real pages: {result['pages']} ({result['mb']} MB): lexbor {lexbor_s:.3f} s, "
        f"add_html_page {ours_s:.3f} s, needs_scan {checks_s:.3f} s "
        f"({result['needs_scan_over_lexbor']:.1%} of lexbor); the model ran on "
        f"{len(scanned)}, cut {cuts}",
        flush=True,
    )
    return result


def bench_below() -> dict[str, Any]:
    from selectolax.lexbor import LexborHTMLParser

    out = {}
    for name, make in BELOW.items():
        page = make()
        start = time.process_time()
        LexborHTMLParser(page, **_PARSE_OPTIONS)
        seconds = time.process_time() - start
        out[name] = {
            "tags": page.count("<"),
            "scanned": bound.needs_scan(page),
            "lexbor_s": round(seconds, 3),
        }
        print(
            f"below the limits: {name:24} {page.count('<'):6d} tags, model runs: "
            f"{out[name]['scanned']!s:5}, lexbor {seconds:.3f} s",
            flush=True,
        )
    return out


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        lexbor_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8", help="page sizes in MB, comma-separated")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds for lexbor alone")
    parser.add_argument("--only", nargs="*", choices=sorted(PATTERNS), help="these patterns")
    parser.add_argument("--repeat", type=int, default=3, help="runs over the real pages (best)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {
        "limits": {
            name: getattr(bound, name)
            for name in (
                "MAX_DEPTH",
                "WORK_BUDGET",
                "MAX_SCAN_TAGS",
                "SCAN_TAGS_ABOVE",
                "SCAN_BYTES_PER_TAG",
                "FORMATTING_CHECK_ABOVE",
            )
        },
        "timeout_s": args.timeout,
    }
    results["real_pages"] = bench_real(args.repeat)
    results["below_limits"] = bench_below()
    results["patterns"] = bench_patterns(sizes, args.only or list(PATTERNS), args.timeout)
    print(save_result("html_soup", results))


if __name__ == "__main__":
    main()
