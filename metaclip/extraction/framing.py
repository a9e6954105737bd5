"""Framing WARC records in decompressed bytes: header parsing, Content-Length checks, trailers.

Used by metaclip.extraction.records, which reads the file (gzip members, decompression within
caps, resynchronisation at the next good member): `_framed` cuts the records of one gzip member,
`_StreamFramer` those of one stream of records (an uncompressed file, or a whole file in one
gzip stream) as its bytes come. Every skip is counted by reason in `ExtractStats.skipped`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from metaclip.extraction.limits import ExtractLimits
from metaclip.extraction.pairs import ExtractStats

# The header line of each record type, as Common Crawl writes it (counting skipped records).
_TYPE_LINES = {t: f"WARC-Type: {t}".encode() for t in ("metadata", "response", "request")}
_FIELDS = re.compile(rb"\n(content-length|warc-type|warc-target-uri)[ \t]*:([^\r\n]*)", re.I)
_NAMES = [(k, b"\n" + n + b":") for k, n in (
    ("content-length", b"Content-Length"), ("warc-type", b"WARC-Type"),
    ("warc-target-uri", b"WARC-Target-URI"),
)]  # fmt: skip


class Record(NamedTuple):
    """One WARC record: where its member (or, uncompressed, the record) starts in the file."""

    offset: int
    warc_type: str
    target_uri: str | None
    body: bytes
    complete: bool  # False: the file ended inside the body


def parse_header(data: bytes, start: int, max_bytes: int) -> tuple[dict[str, str], int] | None:
    """(the fields this reader uses, lower-cased: content-length, warc-type, warc-target-uri;
    offset of the block) of the record at `start`, or None when there is no `WARC/` header block
    ending within max_bytes (CRLF or bare-LF lines)."""
    if not data.startswith(b"WARC/", start):
        return None
    limit = min(len(data), start + max_bytes)
    end, sep = data.find(b"\r\n\r\n", start, limit), 4
    bare = data.find(b"\n\n", start, end if end >= 0 else limit)
    if bare >= 0:
        end, sep = bare, 2
    if end < 0:
        return None
    headers: dict[str, str] = {}
    for key, name in _NAMES:  # as Common Crawl spells them: three finds, no line split
        at = data.find(name, start, end)
        if at < 0:
            break
        stop = data.find(b"\n", at + len(name), end)
        value = data[at + len(name) : stop if stop >= 0 else end]
        headers[key] = value.strip().decode("utf-8", "replace")
    else:
        return headers, end + sep
    headers.clear()
    for name, value in _FIELDS.findall(data, start, end):  # any other spelling
        headers.setdefault(name.lower().decode("ascii"), value.strip().decode("utf-8", "replace"))
    return headers, end + sep


def content_length(headers: dict[str, str]) -> int | None:
    """The declared block length, or None when it is missing, negative or not a number."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() and value.isascii() else None


class _Member(NamedTuple):
    offset: int
    data: bytes
    # "ok": the gzip trailer was read and checked; "truncated": the file ended inside it;
    # "damaged": its deflate data broke off (what came before is framed, the rest dropped).
    status: str


class _Damaged(Exception):
    """A stream of records broke off (counted where it was found)."""


class _Source(NamedTuple):
    """Decompressed bytes of one stream of records, as they come, and where the stream starts
    (a gzip member's offset; 0 for an uncompressed file)."""

    offset: int
    pieces: Iterator[bytes]
    uncompressed: bool = False  # then a record's offset is its own offset in the file


class _StreamFramer:
    """Records of one stream, framed as its bytes come: the buffer holds at most one record
    (and a header), a record over the cap is passed over unread, and after damage (a bad header,
    a length that disagrees with what follows) the next `WARC/` header line is looked for."""

    def __init__(
        self, source: _Source, buffered: bytes, stats: ExtractStats, limits: ExtractLimits
    ) -> None:
        self.source = source
        self.stats = stats
        self.limits = limits
        self.buf = buffered
        self.pos = 0
        self.ended = False  # the source has no more bytes
        self.damaged = False  # ... because its decompression broke off (already counted)
        self.offset = source.offset

    def _more(self) -> bool:
        """Append the next piece (dropping what was read); False at the end of the source."""
        if self.ended:
            return False
        try:
            piece = next(self.source.pieces, None)
        except _Damaged:
            piece = None
            self.damaged = True
        if piece is None:
            self.ended = True
            return False
        if self.source.uncompressed:  # offsets are file offsets: count what is dropped
            self.offset += self.pos
        self.buf = self.buf[self.pos :] + piece
        self.pos = 0
        return True

    def _need(self, n: int) -> bool:
        """Whether n bytes from pos are (or could be made) in the buffer."""
        while len(self.buf) - self.pos < n:
            if not self._more():
                return False
        return True

    def _skip(self, n: int) -> bool:
        """Pass over n bytes without holding them; False if the source ends first."""
        while len(self.buf) - self.pos < n:
            n -= len(self.buf) - self.pos
            self.pos = len(self.buf)
            if not self._more():
                return False
        self.pos += n
        return True

    def _resync(self, start: int) -> None:
        """Go to the next line that starts with `WARC/` after start (or to the end)."""
        self.pos = start
        while True:
            found = self.buf.find(b"\nWARC/", self.pos)
            if found >= 0:
                self.pos = found + 1
                return
            self.pos = max(self.pos, len(self.buf) - 6)
            if not self._more():
                self.pos = len(self.buf)
                return

    def records(self, wanted: str, marker: bytes | None) -> Iterator[Record]:
        limits, stats = self.limits, self.stats
        while self._need(1):
            self._need(limits.max_header_bytes)
            parsed = parse_header(self.buf, self.pos, limits.max_header_bytes)
            length = content_length(parsed[0]) if parsed is not None else None
            if parsed is None or length is None:
                if self.ended and self.buf.startswith(b"WARC/", self.pos):
                    if not self.damaged:  # (damage is counted where it was found)
                        stats.skip("truncated_record")  # the stream ends inside a header
                    return
                stats.skip("record_header_invalid")
                self._resync(self.pos + 1)
                continue
            headers, start = parsed
            at = self.offset + self.pos if self.source.uncompressed else self.offset
            if length > limits.max_record_bytes:
                stats.skip("record_too_large")
                self.pos = start
                if not self._skip(length):
                    return
                self.pos += max(_trailer(self.buf, self.pos), 0) if self._need(4) else 0
                continue
            whole = self._need(start - self.pos + length + 4)
            end = start + length
            if end > len(self.buf):
                if not self.damaged:
                    stats.skip("truncated_record")
                    if headers.get("warc-type") == wanted:
                        stats.records += 1
                        yield Record(at, wanted, headers.get("warc-target-uri") or None,
                                     self.buf[start:], False)  # fmt: skip
                return
            trailer = _trailer(self.buf, end) if whole or end < len(self.buf) else 0
            if trailer < 0:
                stats.skip("record_length_mismatch")
                self._resync(start)
                continue
            if headers.get("warc-type") == wanted:
                stats.records += 1
                body = self.buf[start:end]
                if marker is None or marker in body:
                    yield Record(at, wanted, headers.get("warc-target-uri") or None, body, True)
            self.pos = end + trailer

def _framed(
    member: _Member, stats: ExtractStats, limits: ExtractLimits, wanted: str, marker: bytes | None
) -> Iterator[Record]:
    """The records of one member, framed by their Content-Length (usually exactly one)."""
    data, pos = member.data, 0
    if marker is not None and marker not in data:  # nothing to yield: count, do not parse
        if not data.startswith(b"WARC/"):
            stats.skip("record_header_invalid")
        elif data.find(_TYPE_LINES[wanted], 0, limits.max_header_bytes) > 0:
            stats.records += 1
        return
    while pos < len(data):
        parsed = parse_header(data, pos, limits.max_header_bytes)
        if parsed is None:
            stats.skip("record_header_invalid")
            return
        headers, start = parsed
        length = content_length(headers)
        if length is None:
            stats.skip("record_header_invalid")
            return
        end = start + length
        if length > limits.max_record_bytes:
            stats.skip("record_too_large")
            return
        if end > len(data) and member.status != "truncated":
            if member.status == "ok":
                stats.skip("record_length_mismatch")  # longer than its member
            return  # (a damaged member's last record is already counted as gzip_damaged)
        trailer = _trailer(data, end)
        if end <= len(data) and trailer < 0:
            stats.skip("record_length_mismatch")  # shorter than its block: garbage follows
            return
        if headers.get("warc-type") == wanted:
            stats.records += 1
            body = data[start:end]
            if marker is None or marker in body:
                uri = headers.get("warc-target-uri") or None
                yield Record(member.offset, wanted, uri, body, end <= len(data))
        if end >= len(data):
            return
        pos = end + trailer


def _trailer(data: bytes, end: int) -> int:
    """Length of the blank line that ends a record block at `end` (0 at the end of the data),
    or -1 when the bytes there are not one."""
    if end >= len(data):
        return 0
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\n"):
        if data.startswith(sep, end):
            return len(sep)
    return -1
