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

Records are framed in the decompressed bytes by metaclip.extraction.framing; this module reads
the file (gzip members, decompression within the caps, resynchronisation).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import pyarrow as pa

from metaclip.extraction.framing import (
    Record,
    _Damaged,
    _framed,
    _Member,
    _Source,
    _StreamFramer,
    _trailer,
    content_length,
    parse_header,
)
from metaclip.extraction.limits import ExtractLimits
from metaclip.extraction.pairs import ExtractStats, PairBuffer
from metaclip.io import storage

try:  # zlib-ng: the same API and format as zlib, about 1.5x faster to decompress
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - zlib-ng is a declared dependency
    import zlib  # type: ignore[no-redef]

# zlib-ng's stub declares `error` as an instance; it is the exception class (mypyc, which
# compiles this module, checks the declared type).
ZLIB_ERROR = cast("type[Exception]", zlib.error)

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_SIZE = 4 * 2**20  # compressed bytes read at a time
FIRST_WINDOW = 4096  # compressed bytes first given to a member's decompressor (most fit)
PROBE_BYTES = 1024  # compressed bytes decompressed to tell a real member from a chance magic
MAX_PROBE_BYTES = 64 * 1024  # ... when its gzip header is longer than that
SKIP_STEP = 2**20  # decompressed bytes per step while an oversized member is dropped


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
            except ZLIB_ERROR as exc:
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
            except ZLIB_ERROR:
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
            except ZLIB_ERROR:
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
        except ZLIB_ERROR:
            for i in range(at, min(at + step, len(data))):
                try:
                    parts.append(before.decompress(data[i : i + 1], cap - size))
                except ZLIB_ERROR:
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
        except ZLIB_ERROR:
            return False
        if len(head) >= 5 or size >= MAX_PROBE_BYTES or pos + size >= len(data):
            return head.startswith(b"WARC/")
        size *= 8


def extract_file(
    uri: str,
    extract_stream: Callable[[IO[bytes], str, ExtractStats, ExtractLimits], PairBuffer],
    limits: ExtractLimits,
    /,
    **storage_options: Any,
) -> tuple[pa.Table, ExtractStats]:
    """Open one WAT or WARC file through metaclip.io.storage and extract its pairs with
    `extract_stream`: (PAIRS table, stats). A missing file is a counted skip."""
    stats = ExtractStats(files=1)
    try:
        stream = storage.open_input(uri, **storage_options)
    except FileNotFoundError:
        stats.skip("missing_file")
        return PairBuffer(uri, stats, limits).to_table(), stats
    with stream, cyclic_gc_paused():
        buffer = extract_stream(stream, uri, stats, limits)
        return buffer.to_table(), stats


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic GC off while a file is extracted (6% of its time on a 300 MB WAT).

    Extraction allocates millions of short-lived containers (each image link's dict), and every
    700 of them start a collection that walks the young ones; none of them forms a cycle, so
    reference counting frees them all the same. Process-wide, so with several extracting
    threads the first to finish turns it back on: it ends on whenever it was on before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
