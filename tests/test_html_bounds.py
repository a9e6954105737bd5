"""A page's parse is bounded whatever its markup (extraction.html: needs_scan, nesting_cut and
its model of lexbor's tree builder): tag soups of 1 MB, seeded fuzz against lexbor itself, and
the real pages of tests/data, which are never cut.

Times are CPU seconds of this process (lexbor runs in it), with bounds far above what the bound
parse takes and far below what the parse took before (tens of seconds to hours per page)."""

from __future__ import annotations

import gzip
import random
import re
import time
import zlib
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from metaclip.extraction.html import add_html_page, decode_html, needs_scan, nesting_cut
from metaclip.extraction.html.bound import MAX_DEPTH, SCAN_TAGS_ABOVE, WORK_BUDGET, _scan
from metaclip.extraction.html.page import _PARSE_OPTIONS
from metaclip.extraction.html.tokens import _quirks
from metaclip.extraction.pairs import ExtractStats

DATA = Path(__file__).parent / "data"
URL = "https://example.com/page.html"


class Images:
    """Stands in for the PairBuffer: keeps what add_html_page hands it."""

    def __init__(self) -> None:
        self.images: list[tuple[object, dict]] = []

    def add_images(self, page_url, base_href, images, offset) -> None:
        self.images.extend(images)

    def alts(self) -> list[str]:
        return [attrs.get("alt") for _, attrs in self.images]


def parse(page: str) -> tuple[float, ExtractStats, Images]:
    stats, buffer = ExtractStats(), Images()
    start = time.process_time()
    add_html_page(page, URL, 0, buffer, stats)  # type: ignore[arg-type]
    return time.process_time() - start, stats, buffer


def rep(unit: str, size: int = 1_000_000, head: str = "") -> str:
    return head + unit * ((size - len(head)) // len(unit))


def numbered(unit: str, size: int = 1_000_000) -> str:
    return "".join(unit.format(i=i) for i in range(size // len(unit.format(i=99999))))


# --------------------------------------------------------------------------------------------
# The page of issue 14 and the other soups
# --------------------------------------------------------------------------------------------


def test_stray_end_tags_do_not_hide_the_depth_issue_14():
    """<div></span> x 100k: the </span>s close nothing (lexbor ignores them), so the divs nest
    100k deep and lexbor took 29 s; the depth is seen and the page cut, the image before kept."""
    page = '<img src="a.jpg" alt="before">' + "<div></span>" * 100_000
    page += '<img src="b.jpg" alt="after">'
    seconds, stats, images = parse(page)
    assert seconds < 5
    assert stats.skipped == {"page_cut_too_deep": 1} and stats.pages == 1
    assert images.alts() == ["before"]
    cut = nesting_cut(page)
    assert cut is not None and page[cut] == "<" and page[cut:].startswith("<div>")


def _clones(unit: str) -> str:
    head = "<div>" + "".join(f"<b id={i}>" for i in range(40)) + "</div>"
    return head + rep(unit, 1_000_000 - len(head))


# (name, page of about 1 MB, CPU seconds allowed, cut?) -- the fixed parse takes 0.01-1.3 s
# here; each was quadratic or worse before (over 30 s at 1 MB) unless marked linear.
SOUPS = [
    ("b_i_misnest", lambda: rep("<b><i></b></i>"), 8, True),  # adoption agency; cut: tags
    ("a_in_a", lambda: rep('<a href="x">x'), 8, False),  # linear
    ("b_div_misnest", lambda: rep("<b><div></b>"), 3, True),
    ("b_open", lambda: rep("<b>"), 2, True),
    ("font_open", lambda: rep("<font>"), 2, True),
    ("p_b_clones", lambda: numbered("<p><b id={i}>x"), 8, True),
    ("div_clones", lambda: _clones("<div>x</div>"), 10, True),
    ("fmt_attrs_clones", lambda: "<div><b " + " ".join(f"a{i}" for i in range(200)) + "></div>"
     + rep("<div>x</div>", 998_000), 10, True),
    ("table_div", lambda: rep("<div>", head="<table>"), 2, True),
    ("table_text_div", lambda: rep("x<div>", head="<table>"), 2, True),
    ("table_nested", lambda: rep("<table>"), 8, False),  # linear: a table closes the last
    ("select_div", lambda: rep("<div>", head="<select>"), 2, True),
    ("select_nested", lambda: rep("<select>"), 6, False),  # linear
    ("template_nested", lambda: rep("<template>"), 2, True),
    ("svg_g_end", lambda: rep("<g>", 500_000, "<svg>") + rep("</x>", 500_000), 2, True),
    ("math_mi", lambda: rep("<math><mi>"), 2, True),
    ("li_chain", lambda: rep("<li>"), 10, True),  # linear; cut: MAX_SCAN_TAGS
    ("p_chain", lambda: rep("<p>"), 10, True),  # linear; cut: MAX_SCAN_TAGS
    ("div2k_li", lambda: "<div>" * 2000 + rep("<li>", 990_000), 10, True),
    ("attrs_one_tag", lambda: "<div " + " ".join(f"a{i}" for i in range(125_000)) + ">", 3, True),
    ("html_attrs", lambda: numbered("<html z{i}>"), 6, True),
    ("selectedcontent", lambda: rep("<option selected><b>x</b><i>y</i>",
                                    head="<select><selectedcontent></selectedcontent>"), 8, False),
    ("comment_open", lambda: rep("<div>", head="<!--"), 2, False),  # linear
    ("script_raw", lambda: rep("<div>", head="<script>"), 2, False),  # linear
    ("textarea_raw", lambda: rep("<div>", head="<textarea>"), 2, False),  # linear
    ("plaintext", lambda: rep("<div>", head="<plaintext>"), 2, False),  # linear
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "bound", "cut"), SOUPS, ids=[s[0] for s in SOUPS])
@pytest.mark.slow
def test_tag_soup_of_1_mb_parses_within_its_bound(name, make, bound, cut):
    page = '<img src="first.jpg" alt="first">' + make()
    seconds, stats, images = parse(page)
    assert seconds < bound, f"{name}: {seconds:.2f} s"
    assert (stats.skipped.get("page_cut_too_deep", 0) == 1) is cut
    assert "first" in images.alts()


@pytest.mark.slow
def test_a_cut_keeps_the_parse_within_the_budget():
    """Where the work budget cuts, lexbor's parse of what is kept stays linear-ish: the cut
    falls before the page's end, and the prefix parses in well under a second."""
    page = "<div>" * 2000 + rep("<li>", 990_000)
    cut, tree = _scan(page, MAX_DEPTH, WORK_BUDGET, 10**9)
    assert cut is not None and tree.work > WORK_BUDGET
    assert tree.max_depth <= MAX_DEPTH
    start = time.process_time()
    LexborHTMLParser(page[:cut])
    assert time.process_time() - start < 3


# --------------------------------------------------------------------------------------------
# Fuzz: random soups against lexbor
# --------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_TAGS = _words(  # (raw text elements only closed, in _RAW: one left open hides what follows)
    "div span p a b i u s em strong font nobr code big small tt strike table tr td th tbody "
    "thead caption colgroup col select option optgroup svg math g mi mo mtext foreignObject desc "
    "annotation-xml li ul ol dl dd dt h1 h2 h3 form button applet marquee object ruby rt rp rb "
    "rtc x-y center pre listing address noscript head body html br input hr sub var mglyph area "
    "wbr selectedcontent"
)
_RAW = [  # closed raw text and comments, with tags inside that are not tags
    "<script>if (a<b) x = '</div><div>';</script>",
    "<script><!--<script></script></div>--></script>",
    "<style>p > a { } </p></style>",
    "<textarea><div></td></textarea>",
    "<title><b></title>",
    "<xmp></table></xmp>",
    "<noembed><div></noembed>",
    "<!-- <div></div> -->",
    "<!----></div>",
    "<![CDATA[ </div> ]]>",
]
_VALUES = ["1", "x", '">"', "'a b'", "hidden", "text/html", "x/", ""]


def _attrs(r: random.Random) -> str:
    out = []
    for _ in range(r.choice((0, 0, 0, 1, 1, 2, 3))):
        name = r.choice(("id", "class", "type", "color", "face", "encoding", f"x{r.randrange(9)}"))
        value = r.choice(_VALUES)
        out.append(f" {name}={value}" if value else f" {name}")
    return "".join(out)


def soup(r: random.Random, size: int, images: bool = True) -> str:
    """A random tag soup of about `size` characters; its <img>s have alt="fz<n>"."""
    tags = r.sample(_TAGS, r.randrange(4, len(_TAGS)))
    starts = r.uniform(0.35, 0.8)  # more starts than ends: deep; fewer: shallow
    parts = [r.choice(("", "<!DOCTYPE html>", '<!doctype html public "-//W3C//DTD HTML 4.0//EN">'))]
    total, n = 0, 0
    while total < size:
        x = r.random()
        if x < starts:
            piece = f"<{r.choice(tags)}{_attrs(r)}{'/' if r.random() < 0.05 else ''}>"
        elif x < 0.85:
            piece = f"</{r.choice(tags)}>"
        elif x < 0.92:
            piece = r.choice(("x", " ", "\n", "text ", "\0"))
        elif x < 0.97 or not images:
            piece = r.choice(_RAW)
        else:
            n += 1
            piece = f'<img src="i.jpg" alt="fz{n}">'
        parts.append(piece)
        total += len(piece)
    return "".join(parts)


_IMG = re.compile(r'<img src="i\.jpg" alt="(fz\d+)">')


@pytest.mark.slow
def test_fuzz_every_image_before_the_cut_is_found():
    r = random.Random(14)
    worst = 0.0
    for i in range(80):
        page = soup(r, int(10 ** r.uniform(3.5, 5.3)))  # 3 KB to 200 KB
        if i % 4 == 0:  # deeper: soup between runs of nesting, so that some are cut
            page = "".join(soup(r, 3000) + "<span><div>" * r.randrange(100, 400) for _ in range(12))
        cut = nesting_cut(page) if needs_scan(page) else None
        seconds, stats, images = parse(page)
        worst = max(worst, seconds)
        kept = page if cut is None else page[:cut]
        assert stats.skipped.get("page_cut_too_deep", 0) == (cut is not None)
        assert sorted(images.alts()) == sorted(_IMG.findall(kept))
    assert worst < 3


def _dom_depth(page: str) -> int:
    """The depth of lexbor's tree (void elements aside): a lower bound of its stack's depth,
    but for elements that leave the stack while staying parents (see _Tree.detached)."""
    tree = LexborHTMLParser(page, **_PARSE_OPTIONS)
    voids = {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img",
             "input", "keygen", "link", "meta", "param", "source", "track", "wbr"}  # fmt: skip
    best, stack = 0, [(tree.root, 1)]
    while stack:
        node, depth = stack.pop()
        if node.is_element_node and node.tag not in voids:
            best = max(best, depth)
        child = node.child
        while child is not None:
            stack.append((child, depth + 1))
            child = child.next
    return best


@pytest.mark.slow
def test_fuzz_the_model_never_underestimates_lexbors_depth():
    """Small soups, all the tags of the model (framesets and templates too): the model's
    deepest stack is at least as deep as lexbor's tree."""
    r = random.Random(2024)
    extra = ["template", "frameset", "frame", "plaintext", "iframe", "noframes", "image", "title"]
    for i in range(600):
        page = soup(r, r.choice((60, 300, 1500, 6000)), images=False)
        if i % 3 == 0:  # sprinkle in the rarer tags
            page += "".join(f"<{r.choice(extra)}>{soup(r, 80, False)}" for _ in range(3))
        cut, tree = _scan(page, 10**9, 10**18, 10**9)
        assert cut is None
        assert max(tree.max_depth + tree.detached, 3) >= _dom_depth(page), page[:500]


# --------------------------------------------------------------------------------------------
# Real pages: never cut, and what the cheap checks let through
# --------------------------------------------------------------------------------------------


def _warc_pages(path: Path) -> list[str]:
    """The HTML of the response records of a WARC file (gzip members; LF or CRLF headers)."""
    data, rest = [], path.read_bytes()
    while rest:
        d = zlib.decompressobj(31)
        try:
            data.append(d.decompress(rest))
        except zlib.error:
            break
        rest = d.unused_data
        if not d.eof:
            break
    pages = []
    for record in re.split(rb"(?m)^WARC/[\d.]+\r?$", b"".join(data)):
        if not re.search(rb"(?im)^WARC-Type:\s*response", record):
            continue
        http = re.split(rb"\r?\n\r?\n", record, maxsplit=2)
        if len(http) == 3 and b"html" in http[1].lower():
            ctype = re.search(rb"(?im)^content-type:([^\r\n]*)", http[1])
            ctype_text = ctype.group(1).decode("latin-1") if ctype else None
            pages.append(decode_html(http[2], ctype_text, ExtractStats()))
    return pages


def _real_pages() -> list[str]:
    pages = [
        gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        for folder in (DATA / "warc" / "pages", DATA / "wat" / "pages")
        for path in sorted(folder.glob("*.html.gz"))
    ]
    for path in [
        *sorted((DATA / "warc").glob("*.warc.gz")),
        *sorted((DATA / "real").glob("*.warc.gz")),
    ]:
        if not path.name.endswith(".wat.gz"):
            pages.extend(_warc_pages(path))
    return pages


def test_real_pages_are_never_cut():
    pages = _real_pages()
    assert len(pages) >= 40
    for page in pages:  # the model runs on each, whether or not needs_scan would run it
        cut, tree = _scan(page, MAX_DEPTH, WORK_BUDGET, 10**9)
        assert cut is None
        assert tree.max_depth < MAX_DEPTH // 8
        assert tree.work < WORK_BUDGET // 100
        assert nesting_cut(page) is None


def test_cheap_checks_run_the_model_only_where_it_is_needed():
    assert not any(needs_scan(page) for page in _real_pages() if page.count("<") <= 8000)
    assert needs_scan("<div>" * (SCAN_TAGS_ABOVE + 1))
    assert needs_scan("<div " + "a " * 50_000 + ">")  # few tags for the length: attributes
    formatting = "".join(f"<b id={i}>" for i in range(1000)) + "<div>x</div>" * 1500
    assert needs_scan(formatting)  # distinct formatting tags, each cloned at every text
    assert not needs_scan("<b>x</b><div>x</div>" * 1000)


@pytest.mark.parametrize(
    ("doctype", "closes"),
    [
        ("", False),
        ("<!DOCTYPE html>", True),
        ('<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 3.2//EN">', False),
    ],
)
def test_quirks_mode_decides_whether_a_table_closes_a_p(doctype, closes):
    """The one thing quirks mode changes in the stack; the model asks lexbor."""
    page = doctype + "<p><table><td>x"
    assert _quirks(page) is not closes
    tree = LexborHTMLParser(page)
    assert (tree.css_first("p > table") is None) is closes
    _, model = _scan(page, 10**9, 10**18, 10**9)
    assert model.max_depth == (6 if closes else 7)  # html body [p] table tbody tr td
