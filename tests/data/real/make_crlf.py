"""Restore WARC CRLF framing in the LF-only Common Crawl WAT excerpt (see PROVENANCE.txt).

Input:  CC-MAIN-2019-22-wat-first5records.LF-from-markdown.wat (real WAT text whose CRLF line ends
        were lost when it was pasted into a markdown post).
Output: CC-MAIN-2019-22-wat-first5records.CRLF-restored.warc.wat.gz, each record its own gzip
        member (mtime 0, level 9), as in a real .warc.wat.gz.

Per record: header lines end in CRLF, then CRLF; the block is kept byte for byte, except the
warcinfo block (application/warc-fields) whose LF line ends become CRLF -- that is what makes its
body match its Content-Length (281); then the CRLF CRLF record terminator. The JSON blocks contain
no line breaks and already match their Content-Length; the script asserts all of this.

Run from anywhere: python tests/data/real/make_crlf.py
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "CC-MAIN-2019-22-wat-first5records.LF-from-markdown.wat"
TARGET = HERE / "CC-MAIN-2019-22-wat-first5records.CRLF-restored.warc.wat.gz"


def split_records(data: bytes) -> list[bytes]:
    starts = [m.start() for m in re.finditer(rb"(?m)^WARC/1\.0\n", data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)], strict=True)]


def restore(record_lf: bytes) -> bytes:
    header, _, rest = record_lf.partition(b"\n\n")
    lines = header.split(b"\n")
    fields = dict(line.split(b": ", 1) for line in lines[1:])
    length = int(fields[b"Content-Length"])
    body = rest.rstrip(b"\n")
    if fields[b"Content-Type"] == b"application/warc-fields":
        body = body.replace(b"\n", b"\r\n") + b"\r\n\r\n"  # fields, then the empty line
    assert len(body) == length, (fields[b"WARC-Type"], len(body), length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body + b"\r\n\r\n"


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def main() -> None:
    records = split_records(SOURCE.read_bytes())
    assert len(records) == 5, len(records)
    TARGET.write_bytes(b"".join(gzip_member(restore(r)) for r in records))
    print(f"wrote {TARGET.name}: {len(records)} records, {TARGET.stat().st_size} bytes")


if __name__ == "__main__":
    main()
