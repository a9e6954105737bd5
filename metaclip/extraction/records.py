"""WARC records of a WARC or WAT file, read within limits and resynchronised after damage.

Common Crawl writes one gzip member per record (as the WARC 1.1 standard recommends), so the
file is read member by member: each member is decompressed with a cap on its output
(`ExtractLimits.max_record_bytes` plus the header allowance), and the records inside it are
framed by their `Content-Length`, which must agree with the member's bytes. Damage costs the
record it hits and at most the bytes up to the next good member, never the rest of the file:

- corrupt deflate data, a bad CRC, garbage between members: the reader looks for the next
  gzip member that decompresses to a `WARC/` header and goes on from there;
- a `Content-Length` that is negative, not a number, or disagrees with the member (too big, too
  small): that record is dropped;
- a record over the size cap: never held in memory; its member is decompressed and dropped up to
  `max_inflate_bytes` to find its end, past that the next member is looked for in the compressed
  bytes (a decompression bomb costs time linear in its compressed size);
- the file ends inside a record: the record is returned marked incomplete (WARC pages keep the
  images they still hold; WAT JSON cut short is dropped).

Files that are not one member per record (an uncompressed WARC, a whole file in one gzip
stream, as some older crawls are) are framed as one stream, as their bytes are decompressed: a
record over the cap is passed over unread, and after damage inside the stream (a header that is
not one, a length that disagrees with what follows) the next line starting `WARC/` is looked
for; corrupt deflate data keeps every record before it and goes on at the next gzip member. A
gzip member is taken for such a stream when it decompresses past the cap while its first record
fits and is followed by another `WARC/` header. Every skip is counted by reason in
`ExtractStats.skipped`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from metaclip.extraction.limits import ExtractLimits
from metaclip.extraction.pairs import ExtractStats

try:  # zlib-ng: the same API and format as zlib, about 1.5x faster to decompress
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - zlib-ng is a declared dependency
    import zlib  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_SIZE = 4 * 2**20  # compressed bytes read at a time
FIRST_WINDOW = 4096  # compressed bytes first given to a member's decompressor (most fit)
PROBE_BYTES = 1024  # compressed bytes decompressed to tell a real member from a chance magic
MAX_PROBE_BYTES = 64 * 1024  # ... when its gzip header is longer than that
SKIP_STEP = 2**20  # decompressed bytes per step while an oversized member is dropped
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


def iter_records(
    stream: IO[bytes],
    stats: ExtractStats,
    limits: ExtractLimits,
    warc_type: str,
    marker: bytes | None = None,
) -> Iterator[Record]:
    """The records of one type (`metadata`, `response`, ...), each counted in stats.records.

    `marker`: skip, uncounted as damage, the records whose block lacks these bytes (the WAT
    reader's cheap test for records that cannot hold a page). A transient I/O error (a reset
    connection) propagates, so that the task retries the batch.
    """
    head = stream.read(len(GZIP_MAGIC))
    if not head:
        stats.skip("empty_file")
        return
    if head == GZIP_MAGIC:
        yield from _MemberReader(stream, head, stats, limits).records(warc_type, marker)
    elif head.startswith(b"WAR"):  # an uncompressed file: one stream
        source = _Source(0, _read_all(stream, head), uncompressed=True)
        yield from _StreamFramer(source, b"", stats, limits).records(warc_type, marker)
    else:
        stats.skip("not_warc")


def _read_all(stream: IO[bytes], head: bytes) -> Iterator[bytes]:
    yield head
    while chunk := stream.read(READ_SIZE):
        yield chunk


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


class _MemberReader:
    """Gzip members of a file, one at a time, each decompressed within a cap."""

    def __init__(
        self, stream: IO[bytes], head: bytes, stats: ExtractStats, limits: ExtractLimits
    ) -> None:
        self.stream = stream
        self.stats = stats
        self.limits = limits
        self.cap = limits.max_record_bytes + limits.max_header_bytes
        self.data = head
        self.base = 0  # file offset of data[0]
        self.pos = 0  # next unread byte in data
        self.eof = False
        # Bytes from this offset stay in the buffer: the start of the member being decompressed,
        # where a resync after its damage begins (bounded: a member over the cap clears it).
        self.keep_from: int | None = None

    # -- buffer ----------------------------------------------------------------------------------
    def _have(self, n: int) -> bool:
        """Make data hold n bytes from pos if the file has them; whether it holds any."""
        if self.pos + n > len(self.data) and not self.eof:
            drop = self.pos
            if self.keep_from is not None:
                drop = min(drop, max(0, self.keep_from - self.base))
            self.base += drop
            more = self.stream.read(max(READ_SIZE, n))
            self.data = self.data[drop:] + more
            self.pos -= drop
            self.eof = not more
            if not self.eof and len(self.data) < n:
                return self._have(n)
        return self.pos < len(self.data)

    # -- records ---------------------------------------------------------------------------------
    def records(self, warc_type: str, marker: bytes | None) -> Iterator[Record]:
        while self._have(len(GZIP_MAGIC)):
            if not self.data.startswith(GZIP_MAGIC, self.pos):
                self.stats.skip("garbage_between_members")
                self._resync(self.base + self.pos + 1)
                continue
            member = self._member()
            if member is None:
                continue  # damaged or oversized: counted, and pos is at the next member
            if isinstance(member, _Source):  # a whole file (or its rest) in one gzip stream
                framer = _StreamFramer(member, b"", self.stats, self.limits)
                yield from framer.records(warc_type, marker)
                continue
            yield from _framed(member, self.stats, self.limits, warc_type, marker)

    def _member(self) -> _Member | _Source | None:
        """Decompress the member at pos (at most `cap` bytes of it)."""
        start = self.keep_from = self.base + self.pos
        inflater = zlib.decompressobj(31)
        parts: list[bytes] = []
        size, window = 0, FIRST_WINDOW
        while True:
            if self.pos + window > len(self.data) and not self._have(window):
                self.stats.skip("truncated_record")  # the file ends inside this member
                return _Member(start, b"".join(parts), "truncated") if parts else None
            chunk = memoryview(self.data)[self.pos : self.pos + window]
            try:
                out = inflater.decompress(chunk, self.cap + 1 - size)
            except zlib.error as exc:
                self.stats.skip("gzip_damaged")
                # A member of several records (a one-stream file under the cap) keeps those
                # before damage in its deflate data (decompressed again up to the error); one
                # whose trailer disagrees with its data (CRC, length) cannot be trusted at all.
                trailer_error = "check" in str(exc)  # "incorrect data/length check"
                salvaged = (
                    b"" if trailer_error else _salvage(self.data, start - self.base, self.cap)
                )
                self._resync(start + 1)
                return _Member(start, salvaged, "damaged") if salvaged else None
            parts.append(out)
            size += len(out)
            if inflater.eof:
                self.pos += len(chunk) - len(inflater.unused_data)
                self.keep_from = None
                return _Member(start, parts[0] if len(parts) == 1 else b"".join(parts), "ok")
            self.pos += len(chunk) - len(inflater.unconsumed_tail)
            if size > self.cap:
                return self._oversized(start, b"".join(parts), inflater, size)
            if not inflater.unconsumed_tail:
                window = min(window * 2, READ_SIZE)

    def _oversized(self, start: int, head: bytes, inflater, size: int) -> _Source | None:
        """A member over the cap: a whole file in one gzip stream (read as a stream from here),
        or one record too large to hold (dropped: to its member's end, or to the next member)."""
        self.keep_from = None
        parsed = parse_header(head, 0, self.limits.max_header_bytes)
        length = content_length(parsed[0]) if parsed is not None else None
        if parsed is not None and length is not None:
            end = parsed[1] + length
            trailer = _trailer(head, end)
            if end < len(head) and head.startswith(b"WARC/", end + max(trailer, 0)):
                # its first record fits: more records follow, framed as they are inflated
                return _Source(start, self._inflate_rest(head, inflater))
        if length is None:
            self.stats.skip("record_header_invalid")
        elif length <= self.limits.max_record_bytes:
            self.stats.skip("record_length_mismatch")  # its length fits, yet its member goes on
        else:
            self.stats.skip("record_too_large")
        while not inflater.eof:
            if size > self.limits.max_inflate_bytes or not self._have(SKIP_STEP):
                self._resync(self.base + self.pos)
                return None
            chunk = memoryview(self.data)[self.pos : self.pos + SKIP_STEP]
            try:
                size += len(inflater.decompress(chunk, SKIP_STEP))
            except zlib.error:
                self._resync(self.base + self.pos)
                return None
            tail = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            self.pos += len(chunk) - len(tail)
        return None

    def _inflate_rest(self, head: bytes, inflater: Any) -> Iterator[bytes]:
        """The decompressed bytes of a member that is one stream of records, piece by piece;
        at damage (counted) the reader goes on at the next member."""
        yield head
        while not inflater.eof:
            if not self._have(SKIP_STEP):
                return  # the file ends inside the member: the framer counts the cut record
            chunk = memoryview(self.data)[self.pos : self.pos + SKIP_STEP]
            before = inflater.copy()  # to recover this step's output up to damage
            try:
                out = inflater.decompress(chunk, SKIP_STEP)
            except zlib.error:
                self.stats.skip("gzip_damaged")
                salvaged = _drain(before, chunk, SKIP_STEP)
                self._resync(self.base + self.pos)
                if salvaged:
                    yield salvaged
                raise _Damaged from None
            tail = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            self.pos += len(chunk) - len(tail)
            yield out

    def _resync(self, offset: int) -> None:
        """Go to the first gzip member at or after this file offset that starts a WARC record
        (or to the end of the file). The damage that led here is counted by the caller."""
        self.keep_from = None
        self.pos = max(offset - self.base, 0)
        while self._have(PROBE_BYTES):
            found = self.data.find(GZIP_MAGIC, self.pos)
            if found < 0:
                self.pos = max(self.pos, len(self.data) - len(GZIP_MAGIC) + 1)
                if self.eof:
                    self.pos = len(self.data)
                continue
            self.pos = found
            if not self._have(MAX_PROBE_BYTES) or _starts_record(self.data, self.pos):
                return
            self.pos += 1


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


def _salvage(data: bytes, pos: int, cap: int) -> bytes:
    """What a damaged gzip member at pos decompresses to before its damage (at most cap)."""
    return _drain(zlib.decompressobj(31), memoryview(data)[max(pos, 0) :], cap)


def _drain(inflater: Any, data: bytes | memoryview, cap: int, step: int = 512) -> bytes:
    """What the inflater makes of data up to an error (at most cap bytes): in steps, and the
    step that fails once more byte by byte, so that the output just before the damage is kept."""
    parts: list[bytes] = []
    size = 0
    for at in range(0, len(data), step):
        before = inflater.copy()
        try:
            out = inflater.decompress(data[at : at + step], cap - size)
        except zlib.error:
            for i in range(at, min(at + step, len(data))):
                try:
                    parts.append(before.decompress(data[i : i + 1], cap - size))
                except zlib.error:
                    break
            break
        parts.append(out)
        size += len(out)
        if inflater.eof or size >= cap:
            break
    return b"".join(parts)


def _starts_record(data: bytes, pos: int) -> bool:
    """Whether the gzip member that seems to start at pos decompresses to a WARC header (the
    probe grows for a member whose gzip header holds a long name, comment or extra field)."""
    size = PROBE_BYTES
    while True:
        try:
            head = zlib.decompressobj(31).decompress(data[pos : pos + size], 8)
        except zlib.error:
            return False
        if len(head) >= 5 or size >= MAX_PROBE_BYTES or pos + size >= len(data):
            return head.startswith(b"WARC/")
        size *= 8


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
