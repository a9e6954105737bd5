"""WARC extraction against an independent reading of the same real files (zlib + a WARC/HTTP split
written here + the standard library's html.parser), charsets, limits and damaged input."""

from __future__ import annotations

import gzip
import html.parser
import io
import json
import re
import time
import zlib
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from metaclip.extraction.html import add_html_page, decode_html
from metaclip.extraction.limits import ExtractLimits
from metaclip.extraction.pairs import ExtractStats, PairBuffer
from metaclip.extraction.warc import dechunk, extract_warc_file, split_http
from metaclip.extraction.wat import extract_wat_file
from metaclip.io.schemas import PAIRS

DATA = Path(__file__).parent / "data"
WARC = DATA / "warc"
REAL = DATA / "real"
TEXT_KEYS = ("alt", "title", "data-image-title")


# --------------------------------------------------------------------------------------------
# The independent check
# --------------------------------------------------------------------------------------------


def read_members(data: bytes) -> bytes:
    """Every gzip member, concatenated; a cut stream gives what it holds."""
    out, rest = [], data
    while rest:
        d = zlib.decompressobj(31)
        try:
            out.append(d.decompress(rest))
        except zlib.error:
            break
        rest = d.unused_data
        if not d.eof:
            break
    return b"".join(out)


def warc_responses(data: bytes) -> list[tuple[str, bytes]]:
    """(target URI, HTTP block) of every response record, from raw WARC bytes."""
    out, pos = [], 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return out
        lines = data[pos:end].decode().split("\r\n")[1:]
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        length = int(fields["content-length"])
        block = data[end + 4 : end + 4 + length]
        if fields["warc-type"] == "response":
            out.append((fields["warc-target-uri"].strip("<>"), block))
        pos = end + 4 + length
        while data[pos : pos + 2] == b"\r\n":
            pos += 2


def http_page(block: bytes) -> tuple[str, bytes]:
    """(Content-Type, body): header lines end in CRLF or, in old crawls, LF alone."""
    head, _, body = re.split(rb"(\r?\n\r?\n)", block, maxsplit=1)
    fields = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    if fields.get("transfer-encoding", "").lower() == "chunked":
        chunks, stream = [], io.BytesIO(body)
        while (size := int(stream.readline().split(b";")[0], 16)) > 0:
            chunks.append(stream.read(size))
            stream.readline()
        body = b"".join(chunks)
    return fields.get("content-type", ""), body


def page_text(content_type: str, body: bytes) -> str:
    """Header charset, else <meta> charset, else UTF-8."""
    for source in (content_type.encode(), body[:8192]):
        found = re.search(rb"charset=[\"']?([\w-]+)", source, re.I)
        if found:
            label = found.group(1).decode().lower()
            # WHATWG Encoding: browsers read these labels with the superset codec
            label = {"iso-8859-1": "cp1252", "gb2312": "gb18030"}.get(label, label)
            return body.decode(label, errors="replace")
    return body.decode("utf-8", errors="replace")


class ImgCollector(html.parser.HTMLParser):
    """Every <img> with a src, and the first <base href> (the one browsers use)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag, attrs):
        first: dict[str, str | None] = {}
        for name, value in attrs:
            first.setdefault(name, value)  # HTML: a repeated attribute keeps its first value
        if tag == "img" and first.get("src") is not None:
            self.images.append(first)
        elif tag == "base" and first.get("href") is not None and self.base is None:
            self.base = first["href"]

    handle_startendtag = handle_starttag


def expected_pairs(text: str, page_url: str) -> set[tuple[str, str]]:
    parser = ImgCollector()
    parser.feed(text.replace("\r\n", "\n").replace("\r", "\n"))  # HTML's input preprocessing
    base = page_url
    if parser.base and parser.base.strip():
        candidate = urljoin(page_url, parser.base.strip())
        base = candidate if urlsplit(candidate).scheme in ("http", "https") else page_url
    out = set()
    for attrs in parser.images:
        src = attrs["src"].strip()
        try:
            url = urljoin(base, src)
            parts = urlsplit(url)
        except ValueError:
            continue
        if not src or parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        for key in TEXT_KEYS:
            value = (attrs.get(key) or "").replace("\n", " ").replace("\r", " ").strip()
            if value:
                out.add((url, value))
    return out


def independent(data: bytes) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for uri, block in warc_responses(read_members(data)):
        content_type, body = http_page(block)
        out |= expected_pairs(page_text(content_type, body), uri)
    return out


def pairs_of(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table["url"].to_pylist(), table["text"].to_pylist(), strict=True))


def write_warc(pages: list[tuple[str, bytes]], content_type: str = "text/html") -> bytes:
    """A WARC/1.1 file of HTTP responses, one gzip member per record."""
    out = io.BytesIO()
    for uri, body in pages:
        http = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode() + body
        head = (
            "WARC/1.1\r\nWARC-Type: response\r\n"
            f"WARC-Target-URI: {uri}\r\nContent-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http)}\r\n\r\n"
        ).encode()
        out.write(gzip.compress(head + http + b"\r\n\r\n", mtime=0))
    return out.getvalue()


def saved_pages() -> list[tuple[str, bytes]]:
    index = json.loads((WARC / "pages" / "index.json").read_text())
    return [
        (p["target_uri"], gzip.decompress((WARC / "pages" / p["file"]).read_bytes())) for p in index
    ]


# --------------------------------------------------------------------------------------------
# Real files against the independent check
# --------------------------------------------------------------------------------------------

REAL_WARCS = [
    WARC / "dolma-sample-0000.warc.gz",
    WARC / "dolma-sample-0001.warc.gz",
    WARC / "clueweb09-ja-quirk.warc.gz",
    REAL / "CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz",
    REAL / "CC-MAIN-2024-22-whirlwind.warc.gz",
]


@pytest.mark.parametrize("path", REAL_WARCS, ids=lambda p: p.name)
def test_real_warc_pairs_equal_independent_parse(path):
    table, stats = extract_warc_file(str(path))
    assert table.schema == PAIRS
    assert pairs_of(table) == independent(path.read_bytes())
    assert len(pairs_of(table)) == table.num_rows  # no duplicate (image, text) within a file
    assert stats.pages == stats.records > 0 and not set(stats.skipped) - {
        "img_without_text",
        "img_without_src",
        "img_url_not_http",
        "duplicate_pair_in_file",
    }


def test_saved_pages_in_a_warc_equal_independent_parse(tmp_path):
    """Real pages (four with <base href>, two declaring their charset in <meta> only)."""
    path = tmp_path / "pages.warc.gz"
    path.write_bytes(write_warc(saved_pages()))
    table, stats = extract_warc_file(str(path))
    expected = independent(path.read_bytes())
    assert len(expected) > 100
    assert pairs_of(table) == expected
    assert stats.pages == len(saved_pages())


def test_dolma_target_uri_brackets_and_chunked_bodies(tmp_path):
    path = WARC / "dolma-sample-0001.warc.gz"
    table, _ = extract_warc_file(str(path))
    pages = set(table["page_url"].to_pylist())
    assert not any(u.startswith("<") or u.endswith(">") for u in pages)
    assert "https://creativecommons.org/" in pages
    chunked = [
        (uri, block)
        for uri, block in warc_responses(read_members(path.read_bytes()))
        if b"transfer-encoding: chunked" in block[:2048].lower()
    ]
    non_empty = 0
    for uri, block in chunked:  # each chunked response alone: its pairs, de-chunked
        one = tmp_path / "one.warc.gz"
        head = f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: <{uri}>\r\n"
        head += f"Content-Length: {len(block)}\r\n\r\n"
        one.write_bytes(gzip.compress(head.encode() + block + b"\r\n\r\n"))
        got, _ = extract_warc_file(str(one))
        expected = expected_pairs(page_text(*http_page(block)), uri)
        assert pairs_of(got) == expected
        non_empty += bool(expected)
    assert non_empty >= 2


def test_record_offsets_point_at_the_records():
    path = WARC / "dolma-sample-0000.warc.gz"
    data = path.read_bytes()
    table, _ = extract_warc_file(str(path))
    for offset, page in set(
        zip(table["record_offset"].to_pylist(), table["page_url"].to_pylist(), strict=True)
    ):
        member = gzip.GzipFile(fileobj=io.BytesIO(data[offset:])).read(2048)
        assert member.startswith(b"WARC/1.0\r\nWARC-Type: response\r\n")
        assert f"WARC-Target-URI: <{page}>".encode() in member


# --------------------------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------------------------


def test_clueweb_japanese_pages_decode_to_japanese():
    """EUC-JP pages whose LF-only HTTP headers also claim a gzip encoding the body lacks."""
    table, stats = extract_warc_file(str(WARC / "clueweb09-ja-quirk.warc.gz"))
    texts = table["text"].to_pylist()
    assert "当店一番人気、ヘッドポーター財布" in texts
    assert "新しくアップされたアイテム" in texts
    japanese = [t for t in texts if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", t)]
    assert len(japanese) >= 10 and not any("\ufffd" in t for t in texts)
    assert stats.pages == 29 and "charset_replaced" not in stats.skipped


@pytest.mark.parametrize("encoding", ["shift_jis", "euc_jp", "cp1252", "cp1251"])
def test_header_meta_and_detection(encoding):
    alt = {
        "shift_jis": "日本語の説明文です、写真",
        "euc_jp": "新しくアップされたアイテムの写真",
        "cp1252": "Größe und Straße",
        "cp1251": "Фотография собаки на пляже",
    }[encoding]
    page = f'<html><head><meta charset="{encoding}"></head><img src="a.jpg" alt="{alt}">'
    raw = page.encode(encoding)
    for content_type, meta in (("text/html; charset=" + encoding, False), ("text/html", True)):
        body = raw if meta else raw.replace(f'charset="{encoding}"'.encode(), b"")
        assert alt in decode_html(body, content_type, ExtractStats())
    # both missing: detection (counted); both wrong (declared UTF-8): detection too
    for declared in (None, "text/html; charset=utf-8"):
        stats = ExtractStats()
        body = raw.replace(f'charset="{encoding}"'.encode(), b"")
        if encoding.startswith("cp"):  # a short single-byte page is ambiguous; give it more text
            body = body.replace(b"<img", (alt + ". ").encode(encoding) * 30 + b"<img")
        text = decode_html(body, declared, stats)
        assert alt in text and stats.skipped == {"charset_detected": 1}


# --------------------------------------------------------------------------------------------
# URL resolution
# --------------------------------------------------------------------------------------------


def test_url_resolution_cases():
    page = """<html><head><base href="/static/"></head><body>
      <img src="rel.jpg" alt="relative to base">
      <img src="//cdn.example.org/p.jpg" alt="protocol-relative">
      <img src="../up.png" title="dot-dot">
      <img src="  https://other.example/abs.jpg  " alt="absolute, padded">
      <img src="data:image/png;base64,iVBORw0KGgo=" alt="data url">
      <img src="javascript:void(0)" alt="javascript url">
      <img src="" alt="empty src"> <img alt="no src">
      <img src="e.jpg?a=1&amp;b=2" alt="entity &amp; text" data-image-title="its title">
    </body></html>"""
    stats = ExtractStats()
    buffer = PairBuffer("mem", stats)
    add_html_page(page, "https://example.com/dir/page.html", 0, buffer, stats)
    got = pairs_of(buffer.to_table())
    assert got == {
        ("https://example.com/static/rel.jpg", "relative to base"),
        ("https://cdn.example.org/p.jpg", "protocol-relative"),
        ("https://example.com/up.png", "dot-dot"),
        ("https://other.example/abs.jpg", "absolute, padded"),
        ("https://example.com/static/e.jpg?a=1&b=2", "entity & text"),
        ("https://example.com/static/e.jpg?a=1&b=2", "its title"),
    }
    assert stats.skipped["img_url_not_http"] == 3 and stats.skipped["img_without_src"] == 1


def test_same_pairs_as_the_wat_path_for_the_same_page(tmp_path):
    """One page as WAT (the shipped fixture) and as WARC: the same rows, uuid included."""
    index = json.loads((DATA / "wat" / "pages" / "index.json").read_text())
    wat_table, _ = extract_wat_file(str(DATA / "wat" / "fixture-0000.warc.wat.gz"))
    entry = next(p for p in index if p["target_uri"] in set(wat_table["page_url"].to_pylist()))
    html = gzip.decompress((DATA / "wat" / "pages" / entry["file"]).read_bytes())
    path = tmp_path / "one.warc.gz"
    path.write_bytes(write_warc([(entry["target_uri"], html)], "text/html; charset=utf-8"))
    warc_table, _ = extract_warc_file(str(path))
    wat_rows = wat_table.filter(pc.equal(wat_table["page_url"], entry["target_uri"]))
    cols = ["uuid", "url", "text", "text_key", "page_url"]
    assert warc_table.num_rows > 0
    assert sorted(warc_table.select(cols).to_pylist(), key=str) == sorted(
        wat_rows.select(cols).to_pylist(), key=str
    )


# --------------------------------------------------------------------------------------------
# Limits and damage
# --------------------------------------------------------------------------------------------


def test_truncated_file_yields_the_pairs_before_the_damage_and_one_error():
    path = WARC / "clipped-truncated.warc.gz"
    table, stats = extract_warc_file(str(path))
    assert stats.skipped == {"truncated_record": 1}
    assert pairs_of(table) == independent(path.read_bytes()) and table.num_rows >= 6


def test_a_record_over_the_size_limit_is_skipped_and_counted(tmp_path):
    pages = saved_pages()
    path = tmp_path / "pages.warc.gz"
    path.write_bytes(write_warc(pages))
    limit = 100_000
    table, stats = extract_warc_file(str(path), ExtractLimits(max_record_bytes=limit))
    big = sum(len(html) + 50 > limit for _, html in pages)
    assert 0 < big < len(pages)
    assert stats.skipped["record_too_large"] == big and stats.pages == len(pages) - big
    assert table.num_rows > 0


def test_pathological_page_is_cut_not_stalled(tmp_path):
    """200,000 nested <div>s take lexbor minutes (quadratic); the page is cut at MAX_DEPTH."""
    deep = b'<img src="x.jpg" alt="before">' + b"<div>" * 200_000 + b'<img src="z.jpg" alt="deep">'
    huge_attr = b'<img src="w.jpg" alt="ok"><p title="' + b"a" * 2_000_000
    pages = [
        ("https://example.com/", deep),
        ("https://example.com/1", huge_attr),
        ("https://example.com/2", b'<img src="y.jpg" alt="next">'),
    ]
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(write_warc(pages))
    start = time.perf_counter()
    table, stats = extract_warc_file(str(path))
    assert time.perf_counter() - start < 10
    assert {
        ("https://example.com/x.jpg", "before"),
        ("https://example.com/w.jpg", "ok"),
        ("https://example.com/y.jpg", "next"),
    } == pairs_of(table)
    assert stats.skipped["page_cut_too_deep"] == 1 and stats.pages == 3


def test_non_html_and_missing_file_are_counted(tmp_path):
    path = tmp_path / "img.warc.gz"
    path.write_bytes(write_warc([("https://example.com/a.png", b"\x89PNG\r\n")], "image/png"))
    table, stats = extract_warc_file(str(path))
    assert table.num_rows == 0 and stats.skipped == {"not_html": 1}
    table, stats = extract_warc_file(str(tmp_path / "gone.warc.gz"))
    assert table.num_rows == 0 and stats.skipped == {"missing_file": 1}


def test_http_split_and_dechunk_units():
    message = split_http(b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>x</p>")
    assert message is not None and message.headers["content-type"] == "text/html"
    assert message.body == b"<p>x</p>"
    assert split_http(b"<html>no status line") is None
    assert dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"
    assert dechunk(b"<html>not chunked") == b"<html>not chunked"


def test_pair_buffer_rows_keep_their_page_and_order_across_pages():
    """Columns are kept apart and page_url/record_offset as one run per page: pages without
    pairs in between, a page seen twice and a (uuid, text) repeated across pages."""
    stats = ExtractStats()
    buffer = PairBuffer("mem", stats)
    pages = [
        ("https://a.example/1", 10, [("/x.jpg", {"alt": "X", "title": "T"})]),
        ("https://a.example/2", 20, [("data:,", {"alt": "no http"})]),  # no pair
        ("https://b.example/3", 30, [("/x.jpg", {"alt": "X"}), ("y.png", {"title": "Y"})]),
        ("https://a.example/1", 40, [("/x.jpg", {"alt": "X"}), ("/z.jpg", {"alt": " Z\n"})]),
    ]
    for page_url, offset, images in pages:
        buffer.add_images(page_url, None, images, offset)
    rows = buffer.to_table().select(["url", "text", "text_key", "page_url", "record_offset"])
    assert [tuple(r.values()) for r in rows.to_pylist()] == [
        ("https://a.example/x.jpg", "X", "alt", "https://a.example/1", 10),
        ("https://a.example/x.jpg", "T", "title", "https://a.example/1", 10),
        ("https://b.example/x.jpg", "X", "alt", "https://b.example/3", 30),
        ("https://b.example/y.png", "Y", "title", "https://b.example/3", 30),
        ("https://a.example/z.jpg", "Z", "alt", "https://a.example/1", 40),
    ]
    assert stats.pairs == 5 and stats.skipped["duplicate_pair_in_file"] == 1
    assert stats.skipped["img_url_not_http"] == 1
