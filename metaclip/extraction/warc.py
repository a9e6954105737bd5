"""Extract (image URL, text) pairs from WARC files: HTML of response records.

Every `<img>` of a page (selectolax's lexbor parser, the HTML5 algorithm in C) goes through
`PairBuffer.add_images`, as the WAT path does: same URL resolution, uuid, text cleaning and
within-file dedup, same PAIRS schema. Records come from metaclip.extraction.records (size limits,
resynchronisation after damage); a page's parse is bounded by metaclip.extraction.html.

The HTTP message is split here (not by a WARC library's HTTP parser), because old crawls
(ClueWeb09, WARC/0.18) end HTTP header lines with a bare LF, which FastWARC misreads.
"""

from __future__ import annotations

import re
import zlib
from typing import IO, Any

import pyarrow as pa

from metaclip.extraction.html import add_html_page, decode_html, is_html
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits
from metaclip.extraction.pairs import ExtractStats, PairBuffer
from metaclip.extraction.records import extract_file, iter_records

_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")


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
        digits = body[pos:eol].split(b";")[0].strip()
        if not _HEX.fullmatch(digits):  # int() would take "-5", "+5" or "1_0": never moves back
            return body if not out else b"".join(out)
        size = int(digits, 16)
        if size == 0:
            break
        start = eol + 1
        out.append(body[start : start + size])
        pos = start + size
        pos += 2 if body[pos : pos + 2] == b"\r\n" else 1
    return b"".join(out) if out else body


def decode_content(body: bytes, encoding: str, stats: ExtractStats, max_bytes: int) -> bytes:
    """gzip/deflate bodies, decompressed to at most max_bytes + 1 (a bomb is cut there, and the
    caller's size check drops it). Crawlers often store the payload already decoded but keep the
    header (ClueWeb09 does), so only a body that looks encoded is decoded."""
    if encoding not in ("gzip", "x-gzip", "deflate") or not body:
        return body
    if encoding != "deflate" and not body.startswith(b"\x1f\x8b"):
        return body
    # gzip; deflate: the zlib format, as the RFC says, else raw deflate, as some servers send it
    for wbits in (47,) if encoding != "deflate" else (15, -15):
        try:
            return zlib.decompressobj(wbits).decompress(body, max_bytes + 1)
        except zlib.error:
            continue
    stats.skip("content_encoding_error")
    return body


def clean_target_uri(uri: str | None) -> str | None:
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
    encoding = message.headers.get("content-encoding", "").lower()
    body = decode_content(body, encoding, stats, max_bytes)
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
    stream: IO[bytes], source: str, stats: ExtractStats, limits: ExtractLimits = DEFAULT_LIMITS
) -> PairBuffer:
    """Pairs of every HTML response in a WARC stream, within the limits; damage costs the
    damaged record (extraction.records), and a page cut short gives the pairs it still holds."""
    buffer = PairBuffer(source, stats, limits)
    for record in iter_records(stream, stats, limits, "response"):
        page_url = clean_target_uri(record.target_uri)
        if page_url is None:
            stats.skip("page_without_url")
            continue
        page = page_of_record(record.body, not record.complete, stats, limits.max_record_bytes)
        if page is not None:
            html = decode_html(page[1], page[0], stats)
            add_html_page(html, page_url, record.offset, buffer, stats)
    return buffer


def extract_warc_file(
    uri: str, limits: ExtractLimits = DEFAULT_LIMITS, **storage_options: Any
) -> tuple[pa.Table, ExtractStats]:
    """Extract one WARC file: (PAIRS table, stats). A missing file is a counted skip."""
    return extract_file(uri, extract_warc_stream, limits, **storage_options)
