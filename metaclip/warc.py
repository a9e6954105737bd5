"""Extract (image URL, text) pairs from WARC files: HTML of response records.

Every `<img>` of a page (selectolax's lexbor parser, the HTML5 algorithm in C) goes through
`PairBuffer.add_images`, as the WAT path does: same URL resolution, uuid, text cleaning and
within-file dedup, same PAIRS schema. No page can stall a file: records over a size limit are
skipped, and a page nested deeper than lexbor handles in linear time is cut (see MAX_DEPTH).

The HTTP message is split here rather than by fastwarc's parse_http, because old crawls
(ClueWeb09, WARC/0.18) end HTTP header lines with a bare LF, which fastwarc misreads.
"""

from __future__ import annotations

import codecs
import re
import zlib
from typing import IO, Any

import pyarrow as pa
from charset_normalizer import from_bytes
from fastwarc.warc import ArchiveIterator, WarcRecordType
from selectolax.lexbor import LexborHTMLParser

from metaclip import storage
from metaclip.pairs import ExtractStats, PairBuffer

MAX_RECORD_BYTES = 8 * 2**20  # Common Crawl truncates payloads at 1 MiB; this is generous
DETECT_BYTES = 64 * 1024  # charset detection looks at this much of a page (bounded cost)
PRESCAN_BYTES = 8192  # where a <meta charset> is looked for (HTML says 1024; real pages stray)
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Lexbor checks the stack of open elements at each block start tag, so deep nesting is
# quadratic (200,000 nested <div>s: minutes). Pages with many tags are cut where their nesting
# passes MAX_DEPTH (Chromium stops nesting at 512), which bounds the parse at about a second.
SCAN_TAGS_ABOVE = 20_000
MAX_DEPTH = 2048
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]{0,15})")
# Tags that never deepen the stack: void elements and those an equal sibling closes.
# fmt: off
_FLAT = frozenset((
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "image", "p", "li", "dt", "dd", "option", "optgroup",
    "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt", "rp",
    "html", "head", "body",
))
# fmt: on

_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I)
_LABELS = {"x-sjis": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc_jp", "x-gbk": "gbk"}
# WHATWG Encoding: labels browsers decode with a superset codec.
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859_1": "cp1252",
    "iso8859_9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "tis_620": "cp874",
    "iso8859_11": "cp874",
}


class HttpMessage:
    """Lower-cased headers and body of a raw HTTP response (LF or CRLF line ends)."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers = headers
        self.body = body


def split_http(block: bytes) -> HttpMessage | None:
    """Split an HTTP response into headers and body; None if it is not one."""
    if not block.startswith(b"HTTP/"):
        return None
    ends = [(i, n) for i, n in ((block.find(b"\r\n\r\n"), 4), (block.find(b"\n\n"), 2)) if i >= 0]
    if not ends:
        return HttpMessage(_parse_headers(block), b"")
    end, sep = min(ends)
    return HttpMessage(_parse_headers(block[:end]), block[end + sep :])


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def dechunk(body: bytes) -> bytes:
    """Undo chunked transfer coding (wget's WARCs keep it); the body as is if it is not chunked."""
    out, pos = [], 0
    while True:
        eol = body.find(b"\n", pos)
        if eol < 0:
            break
        try:
            size = int(body[pos:eol].split(b";")[0].strip(), 16)
        except ValueError:
            return body if not out else b"".join(out)
        if size == 0:
            break
        start = eol + 1
        out.append(body[start : start + size])
        pos = start + size
        pos += 2 if body[pos : pos + 2] == b"\r\n" else 1
    return b"".join(out) if out else body


def decode_content(body: bytes, encoding: str, stats: ExtractStats) -> bytes:
    """gzip/deflate bodies, capped at MAX_RECORD_BYTES. Crawlers often store the payload already
    decoded but keep the header (ClueWeb09 does), so only a body that looks encoded is decoded."""
    if encoding not in ("gzip", "x-gzip", "deflate") or not body:
        return body
    if encoding != "deflate" and not body.startswith(b"\x1f\x8b"):
        return body
    wbits = 47 if encoding != "deflate" else -15
    try:
        return zlib.decompressobj(wbits).decompress(body, MAX_RECORD_BYTES)
    except zlib.error:
        stats.skip("content_encoding_error")
        return body


def _codec(label: str | None) -> str | None:
    """Python codec for a charset label (browser superset where there is one), or None."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    return _SUPERSETS.get(name, name)


def declared_charsets(content_type: str | None, body: bytes) -> list[str]:
    """Candidate codecs in browser order: byte-order mark, HTTP header, <meta> charset."""
    out: list[str] = []
    if body.startswith(codecs.BOM_UTF8):
        out.append("utf_8_sig")
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        out.append("utf_16")
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(body, 0, PRESCAN_BYTES)
    candidates = [_codec(header and header.group(1))]
    meta_codec = _codec(meta and meta.group(1).decode("ascii"))
    # <meta> is read as ASCII bytes, so it cannot truly name UTF-16 (WHATWG: read it as UTF-8)
    candidates.append("utf_8" if meta_codec and meta_codec.startswith("utf_16") else meta_codec)
    out.extend(c for c in candidates if c and c not in out)
    return out


def decode_html(body: bytes, content_type: str | None, stats: ExtractStats) -> str:
    """The page as text: the first declared charset that decodes it, else detection, else UTF-8
    with replacement (counted)."""
    for codec in declared_charsets(content_type, body):
        try:
            return body.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return body.decode("utf-8")  # the most common undeclared charset, and the cheapest test
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:DETECT_BYTES]).best()
    if best is not None:
        try:
            text = body.decode(best.encoding)
            stats.skip("charset_detected")  # counted, the page is kept
            return text
        except (UnicodeDecodeError, LookupError):
            pass
    stats.skip("charset_replaced")  # counted, the page is kept with U+FFFD
    return body.decode("utf-8", errors="replace")


def is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES
    head = body[:1024].lstrip().lower()  # no Content-Type: sniff, as browsers do
    return head.startswith((b"<!doctype html", b"<head", b"<body")) or b"<html" in head


def nesting_cut(html: str) -> int | None:
    """Where the (over-)estimated nesting depth of a page first passes MAX_DEPTH, or None."""
    depth = 0
    for match in _TAG.finditer(html):
        if match.group(2).lower() in _FLAT:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
    return None


def add_html_page(
    html: str, page_url: str, offset: int, buffer: PairBuffer, stats: ExtractStats
) -> None:
    """Add the image pairs of one HTML page (of its first MAX_DEPTH nesting levels)."""
    if html.count("<") > SCAN_TAGS_ABOVE and (cut := nesting_cut(html)) is not None:
        stats.skip("page_cut_too_deep")  # counted; the pairs before the cut are kept
        html = html[:cut]
    tree = LexborHTMLParser(html)
    stats.pages += 1
    base = tree.css_first("base[href]")  # the first <base href> counts, as in browsers
    base_href = base.attributes.get("href") if base is not None else None
    images = [(attrs.get("src"), attrs) for attrs in (img.attributes for img in tree.css("img"))]
    buffer.add_images(page_url, base_href, images, offset)


def target_uri(record: Any) -> str | None:
    uri = record.headers.get("WARC-Target-URI")
    if uri:
        uri = uri.strip()
        if uri.startswith("<") and uri.endswith(">"):  # wget writes <http://...>
            uri = uri[1:-1].strip()
    return uri or None


def page_of_record(
    block: bytes, truncated: bool, stats: ExtractStats, max_bytes: int
) -> tuple[str | None, bytes] | None:
    """(Content-Type, HTML bytes) of a response record, or None (counted) if it has none."""
    message = split_http(block)
    if message is None:
        stats.skip("not_http_response")
        return None
    body = message.body
    if "chunked" in message.headers.get("transfer-encoding", "").lower():
        body = dechunk(body)
    body = decode_content(body, message.headers.get("content-encoding", "").lower(), stats)
    if len(body) > max_bytes:
        stats.skip("record_too_large")
        return None
    content_type = message.headers.get("content-type")
    if not is_html(content_type, body):
        stats.skip("not_html")
        return None
    if truncated:  # what follows the last complete tag cannot hold an <img>; nor a cut character
        body = body[: body.rfind(b">") + 1]
    return content_type, body


def extract_warc_stream(
    stream: IO[bytes], source: str, stats: ExtractStats, max_record_bytes: int = MAX_RECORD_BYTES
) -> PairBuffer:
    """Pairs of every HTML response in a WARC stream. Damage ends the file with one counted
    error, after the pairs of everything before it (a cut page gives the pairs it still holds)."""
    buffer = PairBuffer(source, stats)
    records = ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=False)
    try:
        for record in records:
            stats.records += 1
            if record.content_length is not None and record.content_length > max_record_bytes:
                stats.skip("record_too_large")  # never read: fastwarc skips the rest
                continue
            block = record.reader.read()
            truncated = record.content_length is not None and len(block) < record.content_length
            _add_record(record, block, truncated, buffer, stats, max_record_bytes)
            if truncated:
                stats.skip("truncated_record")  # the gzip stream ended inside this record
                return buffer
    except OSError:
        stats.skip("unreadable_rest_of_file")  # corrupt gzip or WARC framing
    return buffer


def _add_record(
    record: Any,
    block: bytes,
    truncated: bool,
    buffer: PairBuffer,
    stats: ExtractStats,
    max_bytes: int,
) -> None:
    page_url = target_uri(record)
    if page_url is None:
        stats.skip("page_without_url")
        return
    page = page_of_record(block, truncated, stats, max_bytes)
    if page is not None:
        html = decode_html(page[1], page[0], stats)
        add_html_page(html, page_url, record.stream_pos, buffer, stats)


def extract_warc_file(
    uri: str, max_record_bytes: int = MAX_RECORD_BYTES, **storage_options: Any
) -> tuple[pa.Table, ExtractStats]:
    """Extract one WARC file: (PAIRS table, stats). A missing file is a counted skip."""
    stats = ExtractStats(files=1)
    try:
        stream = storage.open_input(uri, **storage_options)
    except FileNotFoundError:
        stats.skip("missing_file")
        return PairBuffer(uri, stats).to_table(), stats
    with stream:
        buffer = extract_warc_stream(stream, uri, stats, max_record_bytes)
    return buffer.to_table(), stats
