"""WAT extraction: the derived fixture against an independent parse of the same real pages,
envelope parsing on real Common Crawl WAT excerpts, and damaged input."""

from __future__ import annotations

import gzip
import hashlib
import html.parser
import io
import json
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from metaclip.extraction.pairs import ExtractStats
from metaclip.extraction.wat import (
    HTML_MARKER,
    _image_links,
    extract_wat_file,
    image_links_from_bytes,
    iter_wat_json,
)
from metaclip.io.schemas import PAIRS
from tools.watgen import WatWriter, decode_html, truncate_gzip_member

DATA = Path(__file__).parent / "data"
WAT = DATA / "wat"
REAL = DATA / "real"


class ImgCollector(html.parser.HTMLParser):
    """Independent of the extractor: every <img src> with its alt/title, and the last <base>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag, attrs):
        first: dict[str, str | None] = {}
        for name, value in attrs:
            first.setdefault(name, value)  # HTML: a repeated attribute keeps its first value
        attrs = first
        if tag == "img" and attrs.get("src") is not None:
            self.images.append(attrs)
        elif tag == "base" and attrs.get("href") is not None:
            self.base = attrs["href"]  # the WAT keeps the last <base>, as ia-web-commons does

    handle_startendtag = handle_starttag


def expected_pairs(page_file: Path, page_url: str) -> set[tuple[str, str]]:
    raw = gzip.decompress(page_file.read_bytes())
    text, _ = decode_html(raw)
    parser = ImgCollector()
    parser.feed(text)
    base = page_url
    if parser.base and parser.base.strip():
        candidate = urljoin(page_url, parser.base.strip())
        if urlsplit(candidate).scheme in ("http", "https"):
            base = candidate
    out = set()
    for attrs in parser.images:
        try:
            url = urljoin(base, attrs["src"].strip())
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme not in ("http", "https") or not parts.netloc or not attrs["src"].strip():
            continue
        for key in ("alt", "title"):
            value = attrs.get(key)
            if value and value.replace("\n", " ").replace("\r", " ").strip():
                out.add((url, value.replace("\n", " ").replace("\r", " ").strip()))
    return out


def fixture_pages() -> list[tuple[str, str]]:
    index = json.loads((WAT / "pages" / "index.json").read_text())
    return [(p["file"], p["target_uri"]) for p in index]


@pytest.mark.parametrize("wat_name", sorted(p.name for p in WAT.glob("fixture-*.warc.wat.gz")))
def test_fixture_pairs_equal_independent_parse(wat_name):
    table, stats = extract_wat_file(str(WAT / wat_name))
    assert table.schema == PAIRS
    got = set(zip(table["url"].to_pylist(), table["text"].to_pylist(), strict=True))
    pages = set(table["page_url"].to_pylist())
    expected: set[tuple[str, str]] = set()
    for file, uri in fixture_pages():
        if uri in pages:
            expected |= expected_pairs(WAT / "pages" / file, uri)
    assert got == expected
    assert len(got) == table.num_rows  # no duplicate (image, text) within a file
    assert stats.pairs == table.num_rows and stats.skipped.get("broken_json", 0) == 0


def test_fixture_covers_every_page_and_the_edge_cases():
    tables = [extract_wat_file(str(p))[0] for p in sorted(WAT.glob("fixture-*.warc.wat.gz"))]
    table = pa.concat_tables(tables)
    pages_with_images = {
        uri for file, uri in fixture_pages() if expected_pairs(WAT / "pages" / file, uri)
    }
    assert set(table["page_url"].to_pylist()) == pages_with_images
    urls = table["url"].to_pylist()
    assert all(u.startswith(("http://", "https://")) for u in urls)
    assert not any("javascript:" in u or u.startswith("data:") for u in urls)
    for row in table.to_pylist():
        digest = hashlib.sha224(row["url"].replace("\t", "").replace(" ", "").encode()).hexdigest()
        assert row["uuid"] == digest[:24]
        assert row["text_key"] in ("alt", "title")
        assert row["text"] == row["text"].strip() and "\n" not in row["text"]
        assert row["source"].endswith(".warc.wat.gz") and row["record_offset"] >= 0


def test_record_offsets_point_at_the_records():
    path = WAT / "fixture-0001.warc.wat.gz"
    table, _ = extract_wat_file(str(path))
    data = path.read_bytes()
    for offset, page in set(zip(table["record_offset"].to_pylist(),
                                table["page_url"].to_pylist(), strict=True)):
        member = gzip.GzipFile(fileobj=io.BytesIO(data[offset:])).read(4096)
        assert member.startswith(b"WARC/1.0\r\n")
        assert f"WARC-Target-URI: {page}".encode() in member


def test_real_2019_excerpt_envelope():
    """Real CC-MAIN-2019-22 records (CRLF restored): 4 metadata records, 1 HTML page, no IMG."""
    path = REAL / "CC-MAIN-2019-22-wat-first5records.CRLF-restored.warc.wat.gz"
    table, stats = extract_wat_file(str(path))
    assert stats.records == 4 and stats.pages == 1 and stats.images == 0
    assert table.num_rows == 0 and not stats.skipped


def test_real_lf_excerpt_uncompressed_with_bare_lf_lines_is_read():
    """An uncompressed WAT whose lines end in a bare LF (copied from a blog post, so the
    Content-Lengths of records whose blocks had CRLF lines no longer agree) is read as one
    stream: those records are counted and skipped, the page record is read."""
    path = str(REAL / "CC-MAIN-2019-22-wat-first5records.LF-from-markdown.wat")
    _, stats = extract_wat_file(path)
    assert stats.pages == 1 and stats.skipped.keys() == {"record_length_mismatch"}


def test_real_2024_wat_has_no_response_record():
    table, stats = extract_wat_file(str(REAL / "CC-MAIN-2024-22-whirlwind.warc.wat.gz"))
    assert stats.records == 1 and stats.pages == 0 and table.num_rows == 0


def _good_rows(name: str) -> set[tuple[str, str]]:
    """Pairs of the undamaged pages the damaged variants were made from."""
    table, _ = extract_wat_file(str(WAT / "damaged" / name))
    return set(zip(table["url"].to_pylist(), table["text"].to_pylist(), strict=True))


def test_broken_json_is_counted_and_the_rest_kept():
    table, stats = extract_wat_file(str(WAT / "damaged" / "damaged-broken-json.warc.wat.gz"))
    assert stats.skipped["broken_json"] == 1
    assert stats.pages >= 2 and table.num_rows > 0


def test_non_utf8_bytes_are_repaired_and_counted():
    table, stats = extract_wat_file(str(WAT / "damaged" / "damaged-non-utf8.warc.wat.gz"))
    assert stats.skipped["non_utf8_bytes_replaced"] == 1
    assert "broken_json" not in stats.skipped
    assert any("\ufffd" in t for t in table["text"].to_pylist() + table["url"].to_pylist())


def test_truncated_file_keeps_every_pair_before_the_damage(tmp_path):
    """Two pages with alt texts; the file stops inside the second page's gzip member."""
    pages = [(uri, gzip.decompress((WAT / "pages" / f).read_bytes())) for f, uri in fixture_pages()]
    pages = [p for p in pages if p[0].startswith("https://edge-cases")] + pages[:1]
    buffer = io.BytesIO()
    with WatWriter(buffer, filename="t.warc.wat.gz", seed="t") as writer:
        for uri, page in pages:
            writer.add_page(uri, page)
    whole = tmp_path / "whole.warc.wat.gz"
    whole.write_bytes(buffer.getvalue())
    responses = [i for i, m in enumerate(writer.members) if m[2] == "metadata-response"]
    cut = tmp_path / "cut.warc.wat.gz"
    cut.write_bytes(truncate_gzip_member(buffer.getvalue(), writer.members, responses[1]))

    intact, _ = extract_wat_file(str(whole))
    truncated, stats = extract_wat_file(str(cut))
    first = intact.filter(pc.equal(intact["page_url"], pages[0][0]))
    assert first.num_rows > 10
    assert sorted(truncated["text"].to_pylist()) == sorted(first["text"].to_pylist())
    assert stats.skipped.get("truncated_record", 0) + stats.skipped.get(
        "unreadable_rest_of_file", 0
    ) == 1


def test_shipped_truncated_fixture_counts_one_error():
    _, stats = extract_wat_file(str(WAT / "damaged" / "damaged-truncated.warc.wat.gz"))
    assert stats.skipped["truncated_record"] == 1 and stats.pages == 1


def test_missing_file_is_a_counted_skip(tmp_path):
    table, stats = extract_wat_file(str(tmp_path / "gone.warc.wat.gz"))
    assert table.num_rows == 0 and stats.skipped == {"missing_file": 1} and stats.files == 1


def test_a_non_gzip_garbage_file_is_a_counted_skip(tmp_path):
    path = tmp_path / "garbage.warc.wat.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    table, stats = extract_wat_file(str(path))
    assert table.num_rows == 0 and sum(stats.skipped.values()) == 1


def _html_bodies(path: Path) -> list[bytes]:
    with open(path, "rb") as fh:
        return [b for _, _, b in iter_wat_json(fh, ExtractStats()) if HTML_MARKER in b]


def _full_parse(body: bytes) -> tuple[str | None, list]:
    html = orjson.loads(body)["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    html = html["HTML-Metadata"]
    base = html.get("Head", {}).get("Base")
    return base if isinstance(base, str) else None, _image_links(html.get("Links") or [])


def test_image_links_from_bytes_equal_the_full_parse_on_the_fixtures():
    bodies = [b for p in sorted(WAT.glob("fixture-*.warc.wat.gz")) for b in _html_bodies(p)]
    assert len(bodies) >= 20
    assert any(b'"Base":"' in body for body in bodies)
    for body in bodies:  # compact JSON as Common Crawl writes it: all take the fast path
        assert image_links_from_bytes(body) == _full_parse(body)


def _record(links: list[dict], head: dict | None = None, **dumps: int) -> bytes:
    html = {"Head": head or {"Title": "t"}, "Links": links}
    doc = {"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": html}}}}
    return orjson.dumps(doc, **dumps)


@pytest.mark.parametrize("head", [
    {"Title": "no base"},
    {"Base": "/b/", "Title": "t"},
    {"Base": "/b\\\"q\"/", "Title": "escaped quotes"},
    {"Base": None},
])
@pytest.mark.parametrize("head_last", [False, True])
def test_base_href_is_read_wherever_the_head_is(head, head_last):
    links = [{"path": "IMG@/src", "url": "a.png", "alt": "A"}]
    html = {"Links": links, "Head": head} if head_last else {"Head": head, "Links": links}
    body = orjson.dumps({"HTML-Metadata": html}) + b"}"
    base = head.get("Base")
    assert image_links_from_bytes(body) == (base if isinstance(base, str) else None,
                                            [("a.png", links[0])])


def test_two_base_keys_take_the_full_parse():
    links = [{"path": "IMG@/src", "url": "a.png", "alt": "A"}]
    body = orjson.dumps({"HTML-Metadata": {"Head": {"Base": "/a/", "X": {"Base": "/b/"}},
                                           "Links": links}}) + b"}"
    assert image_links_from_bytes(body) is None


@pytest.mark.parametrize("links, fast", [
    ([{"path": "A@/href", "url": "/x"}, {"path": "IMG@/src", "url": "a.png", "alt": "A"}], True),
    ([{"alt": "x{", "path": "IMG@/src", "url": "a.png"}], False),  # `{"` ends a string
    ([{"path": "IMG@/src", "url": "a.png", "alt": "}{\"path\":\"IMG@/src\"}"}], False),
    ([{"path": "IMG@/src", "url": "a.png", "alt": "x}"}], False),  # `}` inside a string
    ([{"path": "IMG@/src", "x": {"y": "z"}, "url": "a.png"}], False),  # a nested value
    ([{"x": {"y": "z"}, "path": "IMG@/src", "url": "a.png"}], False),
    ([{"path": "A@/href", "url": "/x", "text": "IMG@/src"}], False),  # the marker elsewhere
    ([{"title": "T", "path": "IMG@/src#x", "url": "b.png", "alt": "é \\\" ok"}], True),
])
def test_image_links_from_bytes_parses_alone_or_defers(links, fast):
    body = _record(links)
    got = image_links_from_bytes(body)
    assert (got is not None) == fast
    if got is not None:
        assert got == _full_parse(body)
    assert image_links_from_bytes(_record(links, option=orjson.OPT_INDENT_2)) in (None, (None, []))
    assert image_links_from_bytes(body[:-10]) is None  # cut short: the full parse counts it
