"""Tests of tools.watgen and of the committed real / derived test data.

Links in the WAT fixture are checked against an independent html.parser pass over the same real
pages (tests/data/wat/pages); the WAT shape is checked against real Common Crawl WAT records
(tests/data/real).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from tools import watgen
from tools.watgen import WatWriter, html_to_wat_links

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
WAT = DATA / "wat"
PAGES = WAT / "pages"
DEMO = Path(watgen.__file__).parents[1] / "metaclip" / "demo_data"
REPO = Path(__file__).parents[1]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURE = _load(WAT / "make_fixture.py")
INDEX = json.loads((PAGES / "index.json").read_text(encoding="utf-8"))
URI_TO_FILE = {entry["target_uri"]: entry["file"] for entry in INDEX}


# --------------------------------------------------------------------------------------------
# Independent readers (no watgen code)
# --------------------------------------------------------------------------------------------


class ImgCollector(HTMLParser):
    """(src, alt, title) of each <img> with a src value; first attribute occurrence wins."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, str | None, str | None]] = []
        self.bases: list[str] = []
        self.titles: list[str] = []
        self._title: list[str] | None = None
        self._svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        first: dict[str, str | None] = {}
        for key, value in attrs:
            first.setdefault(key, value)
        if tag == "img" and first.get("src") is not None:
            self.images.append((str(first["src"]), first.get("alt"), first.get("title")))
        elif tag == "base" and first.get("href") is not None:
            self.bases.append(str(first["href"]))
        elif tag == "title" and not self._svg:
            self._title = []
        self._svg += tag == "svg"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            self.titles.append(" ".join("".join(self._title).split()))
            self._title = None
        self._svg -= tag == "svg" and self._svg > 0

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)


def page_text(file: str) -> str:
    data = gzip.decompress((PAGES / file).read_bytes())
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # the two ISO-8859-1 pages
        return data.decode("cp1252")


def collect(file: str) -> ImgCollector:
    collector = ImgCollector()
    collector.feed(page_text(file))
    collector.close()
    return collector


def gzip_line_loop(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """MetaCLIP's WAT reader: a WARC-Target-URI line, then the next line starting with '{'."""
    out, target, looking = [], "", False
    with gzip.open(path) as lines:
        for raw in lines:
            line = raw.decode().strip()
            if line.startswith("WARC-Target-URI"):
                target, looking = line[len("WARC-Target-URI: ") :], True
            if looking and line.startswith("{"):
                looking = False
                out.append((target, json.loads(line)))
    return out


def html_metadata(doc: dict[str, Any]) -> dict[str, Any] | None:
    payload = doc["Envelope"]["Payload-Metadata"]
    meta: dict[str, Any] | None = payload.get("HTTP-Response-Metadata", {}).get("HTML-Metadata")
    return meta


def img_links(meta: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [
        (link["url"], link.get("alt"), link.get("title"))
        for link in meta["Links"]
        if link["path"] == "IMG@/src"
    ]


def fastwarc_records(path: Path | io.BytesIO, **kwargs: Any) -> list[tuple[Any, bytes]]:
    stream = path if isinstance(path, io.BytesIO) else open(path, "rb")  # noqa: SIM115
    with stream:
        return [
            (record.headers, record.reader.read())
            for record in ArchiveIterator(stream, parse_http=False, **kwargs)
        ]


def fixture_responses() -> dict[str, dict[str, Any]]:
    """target URI -> response JSON document, read from the committed fixture WATs."""
    docs = {}
    for name, _, _ in FIXTURE.WATS:
        for target, doc in gzip_line_loop(WAT / name):
            if html_metadata(doc) is not None:
                docs[target] = doc
    return docs


RESPONSES = fixture_responses()


# --------------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "layout", "part"), FIXTURE.WATS)
def test_fastwarc_strict_reads_every_record(name: str, layout: str, part: slice) -> None:
    pages = INDEX[part]
    records = fastwarc_records(WAT / name)
    assert len(records) == 2 + 3 * len(pages)  # warcinfo, metadata(warcinfo), 3 per capture
    assert records[0][0]["WARC-Type"] == "warcinfo"
    for headers, block in records:
        assert int(headers["Content-Length"]) == len(block)
        if headers["Content-Type"] == "application/json":
            json.loads(block)
    targets = [h["WARC-Target-URI"] for h, b in records if b'"HTML-Metadata"' in b]
    assert targets == [entry["target_uri"] for entry in pages]
    if layout == "2024":  # digest header lines are written (and right) only in that layout
        assert len(fastwarc_records(WAT / name, verify_digests=True)) == len(records)


def member_records(data: bytes) -> list[bytes]:
    """Split a WAT into gzip members, checking each holds exactly one CRLF-framed record."""
    blocks = []
    while data:
        inflater = zlib.decompressobj(31)
        record = inflater.decompress(data)
        data = inflater.unused_data
        header, _, rest = record.partition(b"\r\n\r\n")
        assert header.startswith(b"WARC/1.0\r\n") and b"\n" not in header.replace(b"\r\n", b"")
        match = re.search(rb"\r\nContent-Length: (\d+)", header)
        assert match is not None
        length = int(match.group(1))
        assert len(rest) == length + 4 and rest.endswith(b"\r\n\r\n")
        if b"Content-Type: application/json" in header:
            assert b"\n" not in rest[:length]  # JSON on one line, as line readers need
            assert rest[:length].endswith(b"}")
        blocks.append(rest[:length])
    return blocks


def test_every_record_is_one_gzip_member_with_crlf_framing() -> None:
    assert len(member_records((WAT / "fixture-0000.warc.wat.gz").read_bytes())) == 2 + 3 * 8
    buffer = io.BytesIO()  # and freshly written output, in both layouts
    layouts: tuple[watgen.Layout, ...] = ("2019", "2024")
    for layout in layouts:
        with WatWriter(buffer, layout=layout) as writer:
            for entry in INDEX[-3:]:
                writer.add_page(
                    entry["target_uri"], gzip.decompress((PAGES / entry["file"]).read_bytes())
                )
    assert len(member_records(buffer.getvalue())) == 2 * (2 + 3 * 3)


def test_gzip_line_loop_sees_what_fastwarc_sees() -> None:
    path = WAT / "fixture-0001.warc.wat.gz"
    by_lines = [(t, d) for t, d in gzip_line_loop(path) if html_metadata(d) is not None]
    by_fastwarc = [
        (h["WARC-Target-URI"], json.loads(b))
        for h, b in fastwarc_records(path, record_types=WarcRecordType.metadata)
        if b'"HTML-Metadata"' in b
    ]
    assert len(by_lines) == 7
    assert by_lines == by_fastwarc


# --------------------------------------------------------------------------------------------
# Links against an independent parse of the same real pages
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["file"])
def test_img_links_equal_independent_parse(entry: dict[str, str]) -> None:
    meta = html_metadata(RESPONSES[entry["target_uri"]])
    assert meta is not None
    expected = collect(entry["file"]).images
    assert img_links(meta) == expected
    assert img_links({"Links": html_to_wat_links(page_text(entry["file"]))[1]}) == expected
    if entry["file"] != "gregoryszorc.com.python3.html.gz":  # the one page without images
        assert expected


def test_fixture_covers_the_url_kinds() -> None:
    urls = [u for doc in RESPONSES.values() for u, _, _ in img_links(html_metadata(doc) or {})]
    assert any(u.startswith("//") for u in urls)
    assert any(u.startswith("data:") for u in urls)
    assert any(u.lower().startswith("javascript:") for u in urls)
    assert any(not u.startswith(("http", "//", "data:", "javascript:")) for u in urls)
    assert len([d for d in RESPONSES.values() if "Base" in (html_metadata(d) or {})["Head"]]) >= 7


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["file"])
def test_base_and_title(entry: dict[str, str]) -> None:
    head = (html_metadata(RESPONSES[entry["target_uri"]]) or {})["Head"]
    page = collect(entry["file"])
    assert head.get("Base") == (page.bases[-1] if page.bases else None)  # the last one wins
    title = next((t for t in page.titles if t), None)
    assert head.get("Title") == (title[:128] if title else None)


def test_handwritten_page_edge_cases() -> None:
    head, links = html_to_wat_links(page_text("handwritten-edge-cases.html.gz"))
    urls = [link.get("url") for link in links if link["path"] == "IMG@/src"]
    assert head["Title"] == "Edge cases & oddities"
    assert "javascript:void(0)" in urls and "//cdn.example.net/protocol-relative.webp" in urls
    assert "/first.jpg" in urls and "/second.jpg" not in urls  # first attribute wins
    assert "/in-script.jpg" not in urls and "/in-comment.jpg" not in urls
    assert "/lazy-only.jpg" not in urls and None not in urls  # no src value, no link
    anchors = {link["url"]: str(link.get("text")) for link in links if link["path"] == "A@/href"}
    assert anchors["/photos/1"] == "Photo one"
    assert len(anchors["/long"]) == 128 and anchors["/long"].endswith("should never")
    assert {"path": "DIV@/data-href", "url": "/data-href-target"} in links
    assert {"path": "STYLE/#text", "href": "/css/hero.png"} in links
    assert {"path": "IMG@/longdesc", "url": "/descriptions/longdesc.html"} in links
    long_alt = next(link["alt"] for link in links if link.get("url") == "/long-alt.jpg")
    assert len(long_alt) > 128  # alt texts are not clipped


def test_head_lists_and_anchor_rules() -> None:
    html = (
        '<html lang="de"><head><meta property="og:title" content="T"><meta charset="utf-8">'
        '<link rel="canonical" href="/c"><link rel="preload"><script src="/a.js"></script>'
        '<base href="/one/"><base href="/two/"></head><body>'
        '<a href="/x"><b>bold</b>\n\n  and <div>block</div>text</a><a href="/e"/>'
        '<a href="/outer">outer <a href="/inner">inner</a></a></body></html>'
    )
    head, links = html_to_wat_links(html)
    assert head["Metas"] == [
        {"name": "HTML@/lang", "content": "de"},
        {"content": "T", "property": "og:title"},
    ]
    assert head["Link"] == [{"path": "LINK@/href", "url": "/c", "rel": "canonical"}]
    assert head["Scripts"] == [{"path": "SCRIPT@/src", "url": "/a.js"}]
    assert head["Base"] == "/two/"
    texts = {link["url"]: link.get("text") for link in links}
    assert texts["/x"] == "bold and block text"
    assert texts["/e"] is None  # <a/> is reported at once, without text
    assert texts["/inner"] == "inner" and texts["/outer"] == "outer inner"


# --------------------------------------------------------------------------------------------
# Envelope and Container against real WATs and the pages
# --------------------------------------------------------------------------------------------


def real_docs(path: Path | io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(b) for h, b in fastwarc_records(path) if h["WARC-Type"] == "metadata"]


def key_tree(value: Any) -> Any:
    """Nested key sets, ignoring values, Headers, WARC header fields and HTML-Metadata."""
    if not isinstance(value, dict):
        return None
    skip = {"Headers", "WARC-Header-Metadata", "HTML-Metadata", "WARC-Info-Metadata"}
    return {k: (None if k in skip else key_tree(v)) for k, v in value.items()}


def test_2019_layout_has_the_shape_of_a_real_2019_wat() -> None:
    real = real_docs(REAL / "CC-MAIN-2019-22-wat-first5records.CRLF-restored.warc.wat.gz")
    buffer = io.BytesIO()
    with WatWriter(buffer, layout="2019") as writer:
        writer.add_page("https://example.org/a", "<title>t</title><img src=x.jpg alt=a>")
    ours = real_docs(io.BytesIO(buffer.getvalue()))
    # real order: metadata(warcinfo), request, response, metadata -- as written here
    for mine, theirs in zip(ours, real, strict=True):
        assert key_tree(mine) == key_tree(theirs)


def test_2024_layout_has_the_shape_of_a_real_2024_wat() -> None:
    (real_request,) = real_docs(REAL / "CC-MAIN-2024-22-whirlwind.warc.wat.gz")
    records = fastwarc_records(WAT / "fixture-0000.warc.wat.gz")
    request = next(json.loads(b) for h, b in records if b'"HTTP-Request-Metadata"' in b)
    assert key_tree(request) == key_tree(real_request)
    assert list(request["Envelope"]) == list(real_request["Envelope"])  # same key order
    real_fields = [h for h, _ in fastwarc_records(REAL / "CC-MAIN-2024-22-whirlwind.warc.wat.gz")]
    ours = [h for h, _ in records[:3]]
    for mine, theirs in zip(ours[::2], real_fields, strict=True):  # warcinfo, then a metadata
        assert [k for k, _ in mine] == [k for k, _ in theirs]


def test_container_and_digests_describe_the_page() -> None:
    records = [json.loads(b) for h, b in fastwarc_records(WAT / "fixture-0002.warc.wat.gz")[1:]]
    offset = 0
    for doc in records:  # consecutive records of one virtual WARC
        container, envelope = doc["Container"], doc["Envelope"]
        assert int(container["Offset"]) == offset
        offset += int(container["Gzip-Metadata"]["Deflate-Length"])
        inflated = int(container["Gzip-Metadata"]["Inflated-Length"])
        length = int(envelope["Actual-Content-Length"])  # 2019 layout keeps it in the Envelope
        assert inflated == int(envelope["WARC-Header-Length"]) + length + 4
    entry = INDEX[15]
    http = RESPONSES[entry["target_uri"]]["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    page = gzip.decompress((PAGES / entry["file"]).read_bytes())
    assert int(http["Entity-Length"]) == len(page)
    assert http["Entity-Digest"] == watgen.sha1_b32(page)


def test_non_utf8_page_keeps_its_bytes_and_decodes_by_charset() -> None:
    uri = next(e["target_uri"] for e in INDEX if e["file"].startswith("landwirt.com"))
    http = RESPONSES[uri]["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    assert http["Headers"]["Content-Type"] == "text/html; charset=ISO-8859-1"
    alts = " ".join(a or "" for _, a, _ in img_links(http["HTML-Metadata"]))
    assert "\ufffd" not in alts


# --------------------------------------------------------------------------------------------
# Determinism, damaged files
# --------------------------------------------------------------------------------------------


def test_fixture_is_reproducible(tmp_path: Path) -> None:
    for path in FIXTURE.build(tmp_path):
        committed = WAT / path.relative_to(tmp_path)
        assert path.read_bytes() == committed.read_bytes(), committed.name


def test_seed_changes_ids_only() -> None:
    outputs = []
    for seed in ("a", "a", "b"):
        buffer = io.BytesIO()
        with WatWriter(buffer, seed=seed) as writer:
            writer.add_page("https://example.org/", "<img src=/x.png alt=x>")
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]
    strip = re.compile(rb"urn:uuid:[0-9a-f-]+|sha1:[A-Z2-7]+|\"Inflated-CRC\":\"-?\d+\"")
    plain = [strip.sub(b"", gzip.decompress(o)) for o in outputs]
    assert len(plain[0]) == len(plain[2])


def test_damaged_broken_json() -> None:
    records = fastwarc_records(WAT / "damaged" / "damaged-broken-json.warc.wat.gz")
    assert len(records) == 2 + 3 * 3  # framing is intact
    failures = 0
    for headers, block in records:
        assert int(headers["Content-Length"]) == len(block)
        if headers["Content-Type"] == "application/json":
            try:
                json.loads(block)
            except ValueError:
                failures += 1
    assert failures == 1


def test_damaged_non_utf8() -> None:
    records = fastwarc_records(WAT / "damaged" / "damaged-non-utf8.warc.wat.gz")
    bad = []
    for _, block in records:
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(block)
    assert len(records) == 11 and len(bad) == 1
    assert watgen.NON_UTF8_TEXT.encode("cp1252") in bad[0]
    json.loads(bad[0].decode("cp1252"))  # only the encoding is wrong


def test_damaged_truncated() -> None:
    data = (WAT / "damaged" / "damaged-truncated.warc.wat.gz").read_bytes()
    with pytest.raises(EOFError):
        gzip.decompress(data)
    # fastwarc 2.0.1 raises nothing: it yields the cut record with a short block, then stops
    records = [
        (record.content_length, len(record.reader.read()))
        for record in ArchiveIterator(io.BytesIO(data), parse_http=False)
    ]
    assert len(records) == 7  # warcinfo, metadata(warcinfo), page 1 (3), page 2 request, cut
    assert all(length == read for length, read in records[:-1])
    assert records[-1][1] < records[-1][0]


# --------------------------------------------------------------------------------------------
# Committed real data, demo data, benchmark helpers
# --------------------------------------------------------------------------------------------

# "sha256  name" lines (sha256sum format) for the copied files and the CRLF-restored one
REAL_SHA256 = {
    name: digest
    for digest, name in (
        line.split("  ") for line in (REAL / "SHA256SUMS").read_text().splitlines()
    )
}


@pytest.mark.parametrize("name", sorted(REAL_SHA256))
def test_real_files_match_their_checksums(name: str) -> None:
    assert hashlib.sha256((REAL / name).read_bytes()).hexdigest() == REAL_SHA256[name]


def test_crlf_restoration() -> None:
    lf = REAL / "CC-MAIN-2019-22-wat-first5records.LF-from-markdown.wat"
    with pytest.raises(OSError):
        fastwarc_records(lf)  # strict parsing fails on LF-only framing
    restored = fastwarc_records(
        REAL / "CC-MAIN-2019-22-wat-first5records.CRLF-restored.warc.wat.gz"
    )
    assert len(restored) == 5
    lf_json = [line for line in lf.read_bytes().split(b"\n") if line.startswith(b"{")]
    assert [b for _, b in restored[1:]] == lf_json  # JSON blocks are unchanged
    make_crlf = _load(REAL / "make_crlf.py")
    rebuilt = b"".join(
        make_crlf.gzip_member(make_crlf.restore(r))
        for r in make_crlf.split_records(lf.read_bytes())
    )
    assert rebuilt == make_crlf.TARGET.read_bytes()


def test_demo_data() -> None:
    wats = sorted(DEMO.glob("demo-*.warc.wat.gz"))
    assert len(wats) == 4 and sum(p.stat().st_size for p in wats) < 3_000_000
    pages: dict[str, int] = {}
    for path in wats:
        for target, doc in gzip_line_loop(path):
            if html_metadata(doc) is not None:
                page = target.split("?")[0]
                pages[page] = pages.get(page, 0) + 1
    assert len(pages) == 110  # every real page, under 1-4 URIs each
    assert set(pages.values()) == {1, 2, 3, 4}


def test_demo_metadata() -> None:
    entries = json.loads((DEMO / "metadata.json").read_text(encoding="utf-8"))
    assert len(entries) == 86_654 and entries == sorted(set(entries))
    assert {str(i) for i in range(100)} <= set(entries)
    assert {"dog", "hotdog", "ice cream", "new york"} <= set(entries)
    assert not any("_" in e for e in entries)


def test_caption_subsets() -> None:
    for name in ("coco_val2017_5000.txt", "cc3m_val_5000.txt"):
        lines = (DATA / "captions" / name).read_text(encoding="utf-8").split("\n")
        assert lines[-1] == "" and len(lines) == 5001
        assert all(line and line == " ".join(line.split()) for line in lines[:-1])


def test_bench_helpers(tmp_path: Path) -> None:
    bench = _load(REPO / "bench" / "make_bench_wat.py")
    texts = bench.synthetic_alt_texts(500, seed=1)
    assert texts == bench.synthetic_alt_texts(500, seed=1) and len(set(texts)) > 300
    path = bench.make_bench_wat(tmp_path, 0.3, seed=1, pages_tar=tmp_path / "absent.tar.gz")
    records = fastwarc_records(path, verify_digests=True)
    responses = [json.loads(b) for h, b in records if b'"HTML-Metadata"' in b]
    assert len(responses) > 22  # every fixture page once, then perturbed copies
    assert path.stat().st_size >= 300_000
