"""A generated corpus of hostile WAT / WARC input, each case with what extraction must do with it.

    python -m tests.hostile.corpus OUT_DIR [--scale full|small]        # write the corpus
    python -m tests.hostile.corpus --extract FILE --format wat|warc \\
        --result OUT.json [--mem-limit-mb N]                          # one case, one process

Every case is one file in which GOOD records (whose pairs are known) come before and after the
hostile part, so a check can tell that the damage cost what it hit and not the rest of the file.
Each case carries its expectation (`Case`): the skip reasons that must be counted (exactly, where
the construction fixes the count), the good pairs that must be present (all of them; for a file
read as one stream by FastWARC only those before the damage), and hostile pairs that must not.
`OUT_DIR/manifest.json` holds the cases as JSON. See PROVENANCE.txt for the material.

Everything is deterministic: random bytes come from random.Random seeded by the case name, gzip
members have mtime 0. `--scale small` shrinks the few cases whose point is sheer size (the
decompression bombs, the 300 MB JSON body, the 100 MB alt text, the tag soup) so that the test
suite can run every case in seconds; `full` is the issue's sizes (bench/bench_hostile.py).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gzip
import html
import html.parser
import json
import random
import re
import resource
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PAGES = REPO / "tests" / "data" / "wat" / "pages"  # real saved pages (see its PROVENANCE.txt)
HANDWRITTEN = "handwritten-edge-cases.html.gz"  # not a real page: left out of the material
SCALES = ("small", "full")
MIB = 2**20

Pair = tuple[str, str]  # (absolute image URL, text), as PAIRS' (url, text)


# ------------------------------------------------------------------------------------------------
# Cases and their expectations
# ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One hostile file and what extraction must do with it."""

    name: str
    fmt: str  # the extractor: "wat" or "warc"
    file: str  # file name in the corpus folder
    what: str  # what is hostile in it
    skips: dict[str, int | None] = field(default_factory=dict)  # reason -> exact count, None: >= 1
    any_skips: list[str] = field(default_factory=list)  # at least one of these is counted
    good: list[Pair] = field(default_factory=list)  # must all be in the file's pairs
    absent: list[Pair] = field(default_factory=list)  # must not be (the hostile ones)
    stream: bool = False  # read as one stream (FastWARC): only pairs before the damage required
    after_damage: list[Pair] = field(default_factory=list)  # stream files: the good pairs after
    max_seconds: float = 20.0  # wall-clock bound of its extraction at small scale (slow core)
    note: str = ""  # what the reader is expected / was seen to do

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Case:
        d = dict(d)
        for key in ("good", "absent", "after_damage"):
            d[key] = [tuple(p) for p in d[key]]
        return cls(**d)


# ------------------------------------------------------------------------------------------------
# Real material: (page URI, absolute image URL, alt text) from the real pages of the WAT fixture
# ------------------------------------------------------------------------------------------------


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            first: dict[str, str | None] = {}
            for name, value in attrs:
                first.setdefault(name, value)
            self.images.append(first)


_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?:/[!-~]*)?")
_PLAIN_TEXT = re.compile(r"[^\x00-\x1f\x7f-\x9f]{2,160}")


def real_material() -> list[tuple[str, str, str]]:
    """Every <img> of the real pages whose resolved URL is plain printable ASCII (no backslash,
    ';', '#', '?'-free quirks are not needed: only the shapes every reader agrees on) and whose
    alt text is one clean line: (page URI, image URL, alt), in page order, each pair once."""
    index = json.loads((PAGES / "index.json").read_text(encoding="utf-8"))
    out: list[tuple[str, str, str]] = []
    seen: set[Pair] = set()
    for entry in index:
        if entry["file"] == HANDWRITTEN:
            continue
        raw = gzip.decompress((PAGES / entry["file"]).read_bytes())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        parser = _Images()
        parser.feed(text)
        for attrs in parser.images:
            src, alt = (attrs.get("src") or "").strip(), attrs.get("alt") or ""
            if not src or alt != alt.strip() or not _PLAIN_TEXT.fullmatch(alt) or "\ufffd" in alt:
                continue
            url = urljoin(entry["target_uri"], src)
            if not _PLAIN_URL.fullmatch(url) or "\\" in url or ";" in url or len(url) > 300:
                continue
            if (url, alt) not in seen:
                seen.add((url, alt))
                out.append((entry["target_uri"], url, alt))
    return out


class Material:
    """Good pairs handed out in order, so the good records of one file never repeat a pair."""

    def __init__(self, items: list[tuple[str, str, str]], start: int) -> None:
        self.items = items
        self.pos = start % len(items)
        self.used: set[int] = set()

    def take(self, n: int, ascii_only: bool = False) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for _ in range(len(self.items)):
            if len(out) == n:
                break
            i, self.pos = self.pos, (self.pos + 1) % len(self.items)
            if i not in self.used and (not ascii_only or self.items[i][2].isascii()):
                self.used.add(i)
                out.append(self.items[i])
        if len(out) < n:
            raise RuntimeError("the real material ran out of images for one file")
        return out

    def non_ascii(self, n: int, codec: str = "cp1252") -> list[tuple[str, str, str]]:
        """n unused items whose alt holds a non-ASCII character that `codec` can write."""
        out = []
        for i, item in enumerate(self.items):
            alt = item[2]
            if i not in self.used and not alt.isascii() and _encodable(alt, codec):
                self.used.add(i)
                out.append(item)
            if len(out) == n:
                return out
        raise RuntimeError(f"the real material has fewer than {n} non-ASCII {codec} alt texts")


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------------------------------------------
# Writing records
# ------------------------------------------------------------------------------------------------

WARC_DATE = "2024-05-18T00:00:00Z"


def gz(data: bytes, level: int = 6) -> bytes:
    """One gzip member, mtime 0 and no file name (reproducible bytes)."""
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def record_id(seed: str) -> str:
    h = zlib.crc32(seed.encode()) & 0xFFFFFFFF
    return f"<urn:uuid:{h:08x}-0000-4000-8000-{len(seed):012x}>"


def warc_head(fields: Iterable[tuple[str, str]], version: str = "WARC/1.0") -> bytes:
    lines = [version] + [f"{k}: {v}" for k, v in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def warc_record(
    warc_type: str,
    block: bytes,
    uri: str | None = None,
    content_type: str = "application/json",
    length: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A whole WARC record: header, block, CRLF CRLF. `length` overrides the Content-Length
    ("" leaves it out)."""
    fields = [("WARC-Type", warc_type), ("WARC-Date", WARC_DATE)]
    if uri is not None:
        fields.append(("WARC-Target-URI", uri))
    fields.append(("WARC-Record-ID", record_id(f"{warc_type}|{uri}|{len(block)}")))
    fields.append(("Content-Type", content_type))
    fields.extend(extra)
    if length != "":
        fields.append(("Content-Length", str(len(block)) if length is None else length))
    return warc_head(fields) + block + b"\r\n\r\n"


def warcinfo(filename: str) -> bytes:
    block = (
        b"software: tests/hostile/corpus.py (metaclip)\r\n"
        b"format: WARC File Format 1.0\r\n"
        b"description: GENERATED hostile-input test file, not a crawl\r\n"
    )
    return warc_record(
        "warcinfo",
        block,
        content_type="application/warc-fields",
        extra=[("WARC-Filename", filename)],
    )


def image_link(url: Any, alt: Any = None, title: Any = None) -> dict[str, Any]:
    link: dict[str, Any] = {"path": "IMG@/src", "url": url}
    if alt is not None:
        link["alt"] = alt
    if title is not None:
        link["title"] = title
    return link


def wat_doc(page_uri: str, links: list[Any], head: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of a WAT metadata record of a response, ia-web-commons' envelope (the keys the
    extractor reads, and a few around them as real WATs have)."""
    html_meta = {"Head": head if head is not None else {"Title": "hostile corpus page"}}
    html_meta["Links"] = [{"path": "A@/href", "url": "/", "text": "home"}, *links]
    return {
        "Container": {"Filename": "hostile.warc.gz", "Compressed": True},
        "Envelope": {
            "Format": "WARC",
            "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": page_uri},
            "Payload-Metadata": {
                "Actual-Content-Type": "application/http; msgtype=response",
                "HTTP-Response-Metadata": {
                    "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
                    "Headers": {"Content-Type": "text/html; charset=UTF-8"},
                    "HTML-Metadata": html_meta,
                },
            },
        },
    }


def wat_record(page_uri: str, body: bytes) -> bytes:
    return warc_record("metadata", body, page_uri)


def html_page(images: Iterable[tuple[str, str]], title: str = "hostile corpus page") -> str:
    """A small HTML page with these (src, alt) images (escaped: the parser gives them back)."""
    imgs = "\n".join(
        f'<p><img src="{html.escape(src)}" alt="{html.escape(alt)}"></p>' for src, alt in images
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body>\n<h1>{html.escape(title)}</h1>\n{imgs}\n</body></html>\n"
    )


def http_response(body: bytes, headers: Iterable[tuple[str, str]] | None = None) -> bytes:
    headers = list(headers or [("Content-Type", "text/html; charset=utf-8")])
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body


def response_record(uri: str | None, block: bytes, **kw: Any) -> bytes:
    return warc_record("response", block, uri, "application/http; msgtype=response", **kw)


class Builder:
    """Writes one case file: good records (their pairs noted) around hostile bytes."""

    def __init__(self, path: Path, fmt: str, material: Material) -> None:
        self.path = path
        self.fmt = fmt
        self.material = material
        self.fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.good: list[Pair] = []
        self.after_mark: int | None = None  # index in good where "after the damage" starts
        self.members: list[bytes] = []  # what raw() and good() wrote, in order (for reordering)

    def raw(self, data: bytes) -> None:
        self.fh.write(data)
        self.members.append(data)

    def member(self, record: bytes) -> None:
        self.raw(gz(record))

    def mark_damage(self) -> None:
        """The good records from here on come after the damage."""
        self.after_mark = len(self.good)

    def good_record(self, n: int = 3, compress: bool = True) -> bytes:
        """One good record holding n real images with their alt texts (its pairs are noted)."""
        items = self.material.take(n)
        page = items[0][0]
        if self.fmt == "wat":
            links = [image_link(url, alt) for _, url, alt in items]
            record = wat_record(page, orjson.dumps(wat_doc(page, links)))
        else:
            body = html_page([(url, alt) for _, url, alt in items]).encode("utf-8")
            record = response_record(page, http_response(body))
        self.good.extend((url, alt) for _, url, alt in items)
        if compress:
            self.member(record)
        return record

    def goods(self, n: int) -> None:
        for _ in range(n):
            self.good_record()

    def stream_member(self, head: bytes, chunks: Iterable[bytes], level: int = 6) -> None:
        """One gzip member of head + chunks, compressed as it goes (for very large members)."""
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.fh.write(c.compress(head))
        for chunk in chunks:
            self.fh.write(c.compress(chunk))
        self.fh.write(c.flush())

    def close(self) -> tuple[list[Pair], list[Pair]]:
        self.fh.close()
        mark = len(self.good) if self.after_mark is None else self.after_mark
        return self.good[:mark], self.good[mark:]


# ------------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------------

BuildFn = Callable[["Ctx"], None]
REGISTRY: list[tuple[str, str, BuildFn]] = []


def case(name: str, fmt: str) -> Callable[[BuildFn], BuildFn]:
    def register(fn: BuildFn) -> BuildFn:
        REGISTRY.append((name, fmt, fn))
        return fn

    return register


SIZES: dict[str, dict[str, int]] = {
    # the point of these cases is their size; small: what the test suite can afford
    "json_body": {"small": 20_000_000, "full": 300_000_000},
    "alt_huge": {"small": 10_000_000, "full": 100_000_000},
    "record_bomb": {"small": 300_000_000, "full": 4_000_000_000},  # > max_inflate (256 MiB) both
    "http_bomb": {"small": 100_000_000, "full": 1_000_000_000},
    "div_span": {"small": 20_000, "full": 100_000},
}


class Ctx:
    """What a case builder gets: its file, its random numbers, and where it records expectations."""

    def __init__(self, out: Path, name: str, fmt: str, scale: str, material: Material) -> None:
        self.name = name
        self.fmt = fmt
        self.scale = scale
        self.rng = random.Random(f"hostile|{name}")
        suffix = {"wat": ".warc.wat.gz", "warc": ".warc.gz"}[fmt]
        self.case = Case(name=name, fmt=fmt, file=name + suffix, what="")
        self.out = out
        self.material = material
        self.b: Builder | None = None

    def size(self, key: str) -> int:
        return SIZES[key][self.scale]

    def builder(self, suffix: str | None = None) -> Builder:
        if suffix is not None:
            self.case.file = self.name + suffix
        self.b = Builder(self.out / self.case.file, self.fmt, self.material)
        self.b.raw(gz(warcinfo(self.case.file)))
        return self.b

    def expect(self, what: str, **kw: Any) -> None:
        self.case.what = what
        for key, value in kw.items():
            setattr(self.case, key, value)

    def finish(self) -> Case:
        if self.b is not None:
            before, after = self.b.close()
            if self.case.stream:
                self.case.good = self.case.good + before
                self.case.after_damage = after
            else:
                self.case.good = self.case.good + before + after
        return self.case


def _random_bytes(rng: random.Random, n: int) -> bytes:
    """Random bytes holding no gzip magic (so garbage is garbage, not a chance member)."""
    data = bytearray(rng.randbytes(n))
    for i in range(len(data) - 1):
        if data[i] == 0x1F and data[i + 1] == 0x8B:
            data[i + 1] = 0x8A
    return bytes(data)


def _filler(total: int, unit: bytes) -> Iterator[bytes]:
    chunk = unit * max(1, MIB // len(unit))
    left = total
    while left > 0:
        yield chunk[:left]
        left -= len(chunk)


def _split_links(page: str) -> tuple[bytes, bytes]:
    """The JSON of a response record around a hole in its Links list (after one ordinary link):
    prefix + (JSON values, comma-separated) + suffix is a whole record."""
    prefix, suffix = orjson.dumps(wat_doc(page, ["HOLE"])).split(b'"HOLE"')
    return prefix, suffix


def _hostile_wat(ctx: Ctx, links: list[Any], head: dict[str, Any] | None = None) -> bytes:
    page = "https://hostile.example.org/" + ctx.name
    return orjson.dumps(wat_doc(page, links, head))


def _sandwich(
    ctx: Ctx, hostile: Callable[[Builder], None], before: int = 2, after: int = 2
) -> None:
    b = ctx.builder()
    b.goods(before)
    b.mark_damage()
    hostile(b)
    b.goods(after)


# -- WAT: size -------------------------------------------------------------------------------------


@case("wat_json_body_300mb", "wat")
def _(ctx: Ctx) -> None:
    size = ctx.size("json_body")
    b = ctx.builder()
    b.goods(2)
    b.mark_damage()
    page = "https://hostile.example.org/huge-json"
    # a valid JSON record: the envelope, then a Links list of `size` bytes of image links
    one = orjson.dumps(image_link("/same.jpg", "the same image again")) + b","
    prefix, suffix = _split_links(page)
    n = size // len(one)
    body_len = len(prefix) + n * len(one) + len(b"{}") + len(suffix)
    head = warc_head(
        [
            ("WARC-Type", "metadata"),
            ("WARC-Target-URI", page),
            ("Content-Type", "application/json"),
            ("Content-Length", str(body_len)),
        ]
    )
    chunks = [prefix, *_filler(n * len(one), one), b"{}" + suffix, b"\r\n\r\n"]
    b.stream_member(head, chunks, level=9)
    b.goods(2)
    ctx.expect(
        f"finding 1: a WAT record whose JSON body is {size / 1e6:.0f} MB (valid JSON, image "
        "links), "
        "compressed to one small gzip member",
        skips={"record_too_large": 1},
        note="over max_record_bytes: decompressed and dropped (up to max_inflate_bytes), "
        "never held",
    )


def _huge_alt(ctx: Ctx, size: int) -> None:
    b = ctx.builder()
    b.goods(2)
    b.mark_damage()
    page = "https://hostile.example.org/huge-alt"
    items = ctx.material.take(2)
    marker = "HUGE_ALT_PLACEHOLDER"
    links = [
        image_link(items[0][1], items[0][2]),
        image_link("/huge.jpg", marker),
        image_link(items[1][1], items[1][2]),
    ]
    prefix, suffix = orjson.dumps(wat_doc(page, links)).split(marker.encode())
    body_len = len(prefix) + size + len(suffix)
    head = warc_head(
        [
            ("WARC-Type", "metadata"),
            ("WARC-Target-URI", page),
            ("Content-Type", "application/json"),
            ("Content-Length", str(body_len)),
        ]
    )
    words = b"a very long alternative text " * 64
    b.stream_member(head, [prefix, *_filler(size, words), suffix, b"\r\n\r\n"])
    b.goods(2)
    ctx.expect(
        f"one image's alt text is {size / 1e6:.0f} MB (the record is then over max_record_bytes)",
        skips={"record_too_large": 1},
        absent=[(items[0][1], items[0][2])],
        note="the whole record is dropped (it is over the record cap), its siblings with it",
    )


@case("wat_alt_100mb", "wat")
def _(ctx: Ctx) -> None:
    _huge_alt(ctx, ctx.size("alt_huge"))


@case("wat_alt_10mb", "wat")
def _(ctx: Ctx) -> None:
    _huge_alt(ctx, 10_000_000)


@case("wat_alt_6mb_under_record_cap", "wat")
def _(ctx: Ctx) -> None:
    size = 6_000_000
    b = ctx.builder()
    b.goods(2)
    items = ctx.material.take(2)
    words = "a very long alternative text "
    alt = (words * (size // len(words) + 1))[:size]
    links = [
        image_link(items[0][1], items[0][2]),
        image_link("/long-alt.jpg", alt),
        image_link(items[1][1], items[1][2]),
    ]
    b.member(wat_record("https://hostile.example.org/long-alt", _hostile_wat(ctx, links)))
    b.goods(2)
    page = "https://hostile.example.org/long-alt"
    ctx.expect(
        "a 6 MB alt text in a record under the 8 MiB record cap: cut to max_text_chars",
        skips={"text_truncated": 1},
        good=[
            (items[0][1], items[0][2]),
            (items[1][1], items[1][2]),
            (urljoin(page, "/long-alt.jpg"), alt[:4096].strip()),
        ],
    )


@case("wat_100k_image_links", "wat")
def _(ctx: Ctx) -> None:
    n = 100_000
    b = ctx.builder()
    b.goods(2)
    page = "https://hostile.example.org/gallery/"
    links = [image_link(f"/i/{i}.jpg", f"image {i}") for i in range(n)]
    b.member(wat_record(page, orjson.dumps(wat_doc(page, links))))
    b.goods(2)
    ctx.expect(
        f"one page with {n:,} image links (each with an alt text)",
        skips={"images_over_page_limit": n - 10_000},
        good=[(f"https://hostile.example.org/i/{i}.jpg", f"image {i}") for i in (0, 1, 9_999)],
        absent=[(f"https://hostile.example.org/i/{i}.jpg", f"image {i}") for i in (10_000, n - 1)],
    )


# -- WAT: gzip framing -----------------------------------------------------------------------------


@case("wat_garbage_between_members", "wat")
def _(ctx: Ctx) -> None:
    _sandwich(ctx, lambda b: b.raw(_random_bytes(ctx.rng, 5000)))
    ctx.expect(
        "5,000 random bytes (no gzip magic) between two members",
        skips={"garbage_between_members": 1},
    )


@case("wat_garbage_with_fake_gzip_magic", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        junk = _random_bytes(ctx.rng, 300)
        fake = b"\x1f\x8b\x08\x00" + _random_bytes(ctx.rng, 300)  # a magic, then no deflate
        b.raw(junk + fake + junk + b"\x1f\x8b\x08" + junk)

    _sandwich(ctx, hostile)
    ctx.expect(
        "garbage between members holding gzip magic bytes that start no member",
        skips={"garbage_between_members": 1},
    )


@case("wat_gzip_member_not_warc", "wat")
def _(ctx: Ctx) -> None:
    _sandwich(ctx, lambda b: b.member(b'not a WARC record: {"HTML-Metadata": {"Links": []}}\n'))
    ctx.expect(
        "a valid gzip member that holds no WARC record (but the bytes HTML-Metadata)",
        skips={"record_header_invalid": 1},
    )


@case("wat_gzip_member_not_warc_no_marker", "wat")
def _(ctx: Ctx) -> None:
    _sandwich(ctx, lambda b: b.member(b"<html>not a WARC record, just some gzipped text</html>\n"))
    ctx.expect(
        "a valid gzip member that holds no WARC record, nor the bytes HTML-Metadata",
        skips={"record_header_invalid": 1},
        note="damage, so it should be counted like any other (every skip is counted)",
    )


@case("wat_empty_gzip_member", "wat")
def _(ctx: Ctx) -> None:
    _sandwich(ctx, lambda b: b.raw(gz(b"") * 3))
    ctx.expect("three empty gzip members between records (valid gzip, no record)")


def _damaged_good_member(
    ctx: Ctx, damage: Callable[[bytearray], None], what: str, **expect: Any
) -> None:
    b = ctx.builder()
    b.goods(2)
    b.mark_damage()
    before = len(b.good)
    record = b.good_record(compress=False)
    lost = b.good[before:]
    del b.good[before:]
    member = bytearray(gz(record))
    damage(member)
    b.raw(bytes(member))
    b.goods(2)
    ctx.expect(what, absent=lost, **expect)


@case("wat_corrupt_deflate", "wat")
def _(ctx: Ctx) -> None:
    def damage(m: bytearray) -> None:
        for i in range(len(m) // 3, len(m) // 3 + 40):
            m[i] = ctx.rng.randrange(256)

    _damaged_good_member(
        ctx,
        damage,
        "40 random bytes in the middle of a member's deflate data",
        skips={"gzip_damaged": 1},
    )


@case("wat_bad_crc", "wat")
def _(ctx: Ctx) -> None:
    def damage(m: bytearray) -> None:
        m[-8:-4] = struct.pack("<I", (struct.unpack("<I", m[-8:-4])[0] ^ 0xDEADBEEF))

    _damaged_good_member(ctx, damage, "a member whose CRC-32 is wrong", skips={"gzip_damaged": 1})


@case("wat_bad_isize", "wat")
def _(ctx: Ctx) -> None:
    def damage(m: bytearray) -> None:
        m[-4:] = struct.pack("<I", struct.unpack("<I", m[-4:])[0] + 7)

    _damaged_good_member(
        ctx, damage, "a member whose ISIZE (length mod 2^32) is wrong", skips={"gzip_damaged": 1}
    )


@case("wat_member_cut_in_the_middle", "wat")
def _(ctx: Ctx) -> None:
    def damage(m: bytearray) -> None:
        del m[len(m) // 2 :]

    _damaged_good_member(
        ctx,
        damage,
        "a member cut short, followed by good members",
        any_skips=["gzip_damaged", "truncated_record"],
    )


@case("wat_member_cut_at_the_end", "wat")
def _(ctx: Ctx) -> None:
    b = ctx.builder()
    b.goods(3)
    record = b.good_record(compress=False)
    lost = b.good[-3:]
    del b.good[-3:]
    member = gz(record)
    b.raw(member[: len(member) // 2])
    ctx.expect(
        "the file ends half-way through its last member", skips={"truncated_record": 1}, absent=lost
    )


@case("wat_duplicated_members", "wat")
def _(ctx: Ctx) -> None:
    b = ctx.builder()
    b.goods(2)
    record = b.good_record(compress=False)
    for _ in range(3):
        b.member(record)
    b.goods(2)
    ctx.expect("one record's member written three times", skips={"duplicate_pair_in_file": 6})


@case("wat_reordered_members", "wat")
def _(ctx: Ctx) -> None:
    b = Builder(ctx.out / ctx.case.file, "wat", ctx.material)
    members = [gz(warcinfo(ctx.case.file))]
    for _ in range(6):
        members.append(gz(b.good_record(compress=False)))
    ctx.rng.shuffle(members)
    for m in members:
        b.raw(m)
    ctx.b = b
    ctx.expect("the members of a file in a shuffled order (the warcinfo record not first)")


@case("wat_gzip_header_fields", "wat")
def _(ctx: Ctx) -> None:
    def with_fields(member: bytes) -> bytes:
        # FLG: FHCRC | FEXTRA | FNAME | FCOMMENT; the deflate data and trailer are kept
        extra = b"XY" + struct.pack("<H", 6) + b"abcdef"
        head = bytearray(member[:10])
        head[3] = 0x02 | 0x04 | 0x08 | 0x10
        head += struct.pack("<H", len(extra)) + extra + b"record.warc\x00" + b"a comment\x00"
        head += struct.pack("<H", zlib.crc32(bytes(head)) & 0xFFFF)
        return bytes(head) + member[10:]

    b = ctx.builder()
    b.goods(2)
    for _ in range(2):
        b.raw(with_fields(gz(b.good_record(compress=False))))
    b.goods(1)
    ctx.expect("members with the optional gzip header fields set (FEXTRA, FNAME, FCOMMENT, FHCRC)")


@case("wat_resync_to_member_with_long_name", "wat")
def _(ctx: Ctx) -> None:
    def long_name(member: bytes) -> bytes:
        head = bytearray(member[:10])
        head[3] = 0x08
        return bytes(head) + b"n" * 2000 + b"\x00" + member[10:]

    b = ctx.builder()
    b.goods(2)
    b.mark_damage()
    b.raw(_random_bytes(ctx.rng, 1000))
    b.raw(long_name(gz(b.good_record(compress=False))))
    b.goods(2)
    ctx.expect(
        "garbage, then a valid member whose gzip header holds a 2,000-byte file name",
        skips={"garbage_between_members": 1},
    )


# -- WAT: WARC framing -----------------------------------------------------------------------------


@case("wat_header_without_end", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        lines = b"WARC/1.0\r\nWARC-Type: metadata\r\nContent-Type: application/json\r\n"
        b.member(lines + b"X-Filler: " + b"x" * 100 + b"\r\n" + b'{"HTML-Metadata": {}}')

    _sandwich(ctx, hostile)
    ctx.expect(
        "a WARC header block that never ends (no blank line)", skips={"record_header_invalid": 1}
    )


@case("wat_header_over_64k", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/big-header"
        items = ctx.material.take(1)
        body = orjson.dumps(wat_doc(page, [image_link(items[0][1], items[0][2])]))
        record = warc_record("metadata", body, page, extra=[("X-Big", "x" * 100_000)])
        b.member(record)

    _sandwich(ctx, hostile)
    ctx.expect(
        "a WARC header block of 100 KB (a 100,000-char field)", skips={"record_header_invalid": 1}
    )


@case("wat_header_not_warc_version", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/http-not-warc"
        body = orjson.dumps(wat_doc(page, [image_link("/x.jpg", "x")]))
        b.member(warc_record("metadata", body, page).replace(b"WARC/1.0", b"HTTP/1.1", 1))

    _sandwich(ctx, hostile)
    ctx.expect(
        "a member whose record starts with HTTP/1.1 instead of WARC/",
        skips={"record_header_invalid": 1},
    )


# -- WAT: JSON -------------------------------------------------------------------------------------


@case("wat_json_nesting_1e5_unclosed", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/nesting"
        prefix, _ = _split_links(page)
        b.member(wat_record(page, prefix + b"[" * 100_000))

    _sandwich(ctx, hostile)
    ctx.expect("10^5 unclosed `[` in a record's Links", skips={"broken_json": 1})


@case("wat_json_nesting_1e6_with_image", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/nesting"
        prefix, suffix = _split_links(page)
        deep = orjson.dumps(image_link("/deep.jpg", "deep inside"))
        n = 1_000_000
        b.member(wat_record(page, prefix + b"[" * n + deep + b"]" * n + suffix))

    _sandwich(ctx, hostile)
    ctx.expect(
        "10^6 nested `[` (closed, valid JSON) around an image link",
        note="the fast path cuts the image link out and parses it alone, the full parse "
        "would refuse the depth: either is fine, the point is no crash and no stall",
    )


@case("wat_fast_path_overlapping_cuts", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/cuts"
        prefix, _ = _split_links(page)
        # 400,000 image-link markers, each closed by a `}` but none opened by a `{"`: a cut from
        # the nearest `{"` before each would span the record up to it (quadratic copies)
        body = prefix + b'"path":"IMG@/src}' * 400_000 + b"]}}}}}"
        b.member(wat_record(page, body))

    _sandwich(ctx, hostile)
    ctx.expect(
        'a 6.8 MB record (not JSON) of 400,000 `"path":"IMG@/src}` with no `{"` between them',
        skips={"broken_json": 1},
        max_seconds=10,
    )


@case("wat_json_cut_short", "wat")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/cut"
        body = orjson.dumps(wat_doc(page, [image_link("/cut.jpg", "cut short")]))
        b.member(wat_record(page, body[: len(body) - 30]))

    _sandwich(ctx, hostile)
    ctx.expect(
        "a record whose JSON is cut short (framing intact)",
        skips={"broken_json": 1},
        absent=[("https://hostile.example.org/cut.jpg", "cut short")],
    )


@case("wat_json_wrong_types", "wat")
def _(ctx: Ctx) -> None:
    items = ctx.material.take(1)

    def hostile(b: Builder) -> None:
        page = "https://hostile.example.org/types"
        links = [
            "a string link",
            42,
            None,
            [],
            {"path": None, "url": "/a.jpg", "alt": "no path"},
            {"path": "IMG@/src", "url": 123, "alt": "numeric url"},
            {"path": "IMG@/src", "url": "/b.jpg", "alt": ["a", "list"]},
            {"path": "IMG@/src", "url": "/c.jpg", "alt": 3.5, "title": {"x": 1}},
            image_link(items[0][1], items[0][2]),
        ]
        b.member(wat_record(page, _hostile_wat(ctx, links, head={"Base": 17, "Title": []})))
        b.member(wat_record(page, orjson.dumps({"Envelope": []})))
        b.member(wat_record(page, b'["HTML-Metadata", 1, 2]'))
        b.member(
            wat_record(
                page,
                orjson.dumps(
                    {
                        "Envelope": {
                            "Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": 7}}
                        }
                    }
                ),
            )
        )

    _sandwich(ctx, hostile)
    ctx.expect(
        "valid JSON of the wrong shapes: links that are not objects, non-string urls, "
        "alt/title/Base that are not strings, an Envelope that is a list, HTML-Metadata 7",
        skips={"img_without_src": 1, "img_without_text": 2},
        good=[(items[0][1], items[0][2])],
    )


@case("wat_json_lone_surrogate", "wat")
def _(ctx: Ctx) -> None:
    items = ctx.material.take(3)
    page = "https://hostile.example.org/surrogate"

    def hostile(b: Builder) -> None:
        links = [
            image_link(items[0][1], items[0][2]),
            image_link("/lone.jpg", "Foto SURROGATE Strand"),
            image_link(items[1][1], items[1][2]),
            image_link("/pair.jpg", "smile PAIR"),
            image_link("/escaped.jpg", "C:BACKSLASH-not-an-escape"),
            image_link(items[2][1], items[2][2]),
        ]
        body = orjson.dumps(wat_doc(page, links))
        body = body.replace(b"SURROGATE", rb"\ud800").replace(b"PAIR", rb"\ud83d\ude00")
        body = body.replace(b"BACKSLASH", rb"\\ud800")
        b.member(wat_record(page, body))

    _sandwich(ctx, hostile)
    ctx.expect(
        "finding 6: an alt text holding the escape \\ud800 (a lone surrogate), next to good "
        "sibling images of the same record, a surrogate pair and an escaped backslash",
        skips={"lone_surrogate_replaced": 1},
        good=[
            *((url, alt) for _, url, alt in items),
            ("https://hostile.example.org/lone.jpg", "Foto \ufffd Strand"),
            ("https://hostile.example.org/pair.jpg", "smile \U0001f600"),
            ("https://hostile.example.org/escaped.jpg", "C:\\ud800-not-an-escape"),
        ],
    )


@case("wat_json_invalid_utf8", "wat")
def _(ctx: Ctx) -> None:
    items = ctx.material.take(2)
    page = "https://hostile.example.org/latin1"

    def hostile(b: Builder) -> None:
        links = [
            image_link(items[0][1], items[0][2]),
            image_link("/latin1.jpg", "GrLATIN1e"),
            image_link(items[1][1], items[1][2]),
        ]
        body = orjson.dumps(wat_doc(page, links)).replace(b"LATIN1", "öß".encode("latin-1"))
        b.member(wat_record(page, body))

    _sandwich(ctx, hostile)
    ctx.expect(
        "raw latin-1 bytes (not UTF-8) in one alt text of a record",
        skips={"non_utf8_bytes_replaced": 1},
        good=[
            *((url, alt) for _, url, alt in items),
            ("https://hostile.example.org/latin1.jpg", b"Gr\xf6\xdfe".decode("utf-8", "replace")),
        ],
    )


@case("wat_base_href_hostile", "wat")
def _(ctx: Ctx) -> None:
    page = "https://hostile.example.org/dir/page.html"

    def hostile(b: Builder) -> None:
        links = [image_link("rel.jpg", "relative to a broken base")]
        b.member(wat_record(page, orjson.dumps(wat_doc(page, links, head={"Base": "http://[::1"}))))
        links = [image_link("rel2.jpg", "relative to a javascript base")]
        b.member(
            wat_record(page, orjson.dumps(wat_doc(page, links, head={"Base": "javascript:x"})))
        )
        links = [image_link("rel3.jpg", "relative to a huge base")]
        b.member(
            wat_record(page, orjson.dumps(wat_doc(page, links, head={"Base": "/" + "b/" * 50_000})))
        )

    _sandwich(ctx, hostile)
    ctx.expect(
        "<base href> values that are a broken IPv6 URL, a javascript: URL, a 100 KB path",
        skips={"img_url_too_long": 1},
        good=[
            ("https://hostile.example.org/dir/rel.jpg", "relative to a broken base"),
            ("https://hostile.example.org/dir/rel2.jpg", "relative to a javascript base"),
        ],
    )


# -- image URLs (in WAT records, next to good siblings) --------------------------------------------


def _url_case(
    ctx: Ctx,
    srcs: list[tuple[Any, str]],
    what: str,
    skip: str | None,
    kept: list[Pair] = (),
    absent_srcs: bool = True,
) -> None:
    items = ctx.material.take(2)
    page = "https://hostile.example.org/urls/page.html"

    def hostile(b: Builder) -> None:
        links = [image_link(items[0][1], items[0][2])]
        links += [image_link(src, alt) for src, alt in srcs]
        links.append(image_link(items[1][1], items[1][2]))
        b.member(wat_record(page, orjson.dumps(wat_doc(page, links))))

    _sandwich(ctx, hostile)
    absent = []
    if absent_srcs:
        for src, alt in srcs:
            with contextlib.suppress(ValueError):
                absent.append((urljoin(page, src.strip()), alt))
            absent.append((src, alt))
    ctx.expect(
        what,
        skips={skip: len(srcs)} if skip else {},
        good=[*((url, alt) for _, url, alt in items), *kept],
        absent=absent,
    )


@case("url_credentials", "wat")
def _(ctx: Ctx) -> None:
    _url_case(
        ctx,
        [
            ("http://user:pass@img.example.com/a.jpg", "credentials in the URL"),
            ("//admin:secret@cdn.example.com/b.jpg", "protocol-relative credentials"),
            ("https://token@img.example.com/c.jpg", "a user name only"),
        ],
        "image URLs with user:pass@ (credentials)",
        "img_url_credentials",
    )


@case("url_literal_tab_and_newline", "wat")
def _(ctx: Ctx) -> None:
    _url_case(
        ctx,
        [
            ("https://img.example.com/ta\tb.jpg", "a tab in the URL"),
            ("/new\nline.jpg", "a newline in the URL"),
        ],
        "image URLs with a literal TAB / LF (URL parsing removes them, as browsers do)",
        None,
        kept=[
            ("https://img.example.com/tab.jpg", "a tab in the URL"),
            ("https://hostile.example.org/newline.jpg", "a newline in the URL"),
        ],
        absent_srcs=False,
    )


@case("url_backslashes", "wat")
def _(ctx: Ctx) -> None:
    srcs = [
        ("https://img.example.com/dir\\a.jpg", "backslash in the path"),
        ("\\\\img.example.com\\b.jpg", "backslashes instead of slashes"),
    ]
    page = "https://hostile.example.org/urls/page.html"
    _url_case(
        ctx,
        srcs,
        "image URLs with backslashes (kept as written, as MetaCLIP does)",
        None,
        kept=[(urljoin(page, s), a) for s, a in srcs],
        absent_srcs=False,
    )


@case("url_control_chars", "wat")
def _(ctx: Ctx) -> None:
    _url_case(
        ctx,
        [
            ("https://img.example.com/a\x01b.jpg", "SOH in the URL"),
            ("https://img.example.com/a\x7fb.jpg", "DEL in the URL"),
            ("/nul\x00.jpg", "NUL in the URL"),
            ("https://img.example.com/\x1b[31mred.jpg", "an ANSI escape in the URL"),
        ],
        "image URLs holding control characters",
        "img_url_control_chars",
    )


@case("url_10k_chars", "wat")
def _(ctx: Ctx) -> None:
    _url_case(
        ctx,
        [
            ("https://img.example.com/" + "a" * 10_000 + ".jpg", "a 10k-char URL"),
            ("/" + "b/" * 5_000 + "x.jpg", "a 10k-char relative URL"),
            ("https://img.example.com/x.jpg?" + "q=1&" * 2_500, "a 10k-char query"),
        ],
        "10,000-character image URLs",
        "img_url_too_long",
    )


@case("url_data_and_javascript", "wat")
def _(ctx: Ctx) -> None:
    payload = "A" * 1_000_000
    _url_case(
        ctx,
        [
            ("data:image/png;base64,iVBORw0KGgo=", "a data URI"),
            ("data:image/png;base64," + payload, "a 1 MB data URI"),
            ("  DATA:image/gif;base64,R0lGOD==", "an upper-case padded data URI"),
            ("javascript:alert(1)", "a javascript URL"),
        ],
        "data: URIs (one of 1 MB) and a javascript: URL",
        "img_url_not_http",
    )


@case("url_broken_ipv6", "wat")
def _(ctx: Ctx) -> None:
    _url_case(
        ctx,
        [
            ("http://[::1", "an IPv6 literal never closed"),
            ("http://[::1/a.jpg", "an IPv6 literal never closed, then a path"),
            ("https://[fe80::1%eth0/a.jpg", "a zone id, unclosed"),
        ],
        "image URLs with broken IPv6 literals (urlsplit raises ValueError)",
        "img_url_not_http",
    )


@case("url_unicode_hosts", "wat")
def _(ctx: Ctx) -> None:
    kept = [
        ("http://bücher.example/ä.jpg", "an IDN host"),
        ("https://例え.テスト/画像.jpg", "a Japanese host and path"),
        ("https://xn--bcher-kva.example/a.jpg", "a punycode host"),
    ]
    bad = [
        ("https://evil\uff03.example.com/a.jpg", "a host that NFKC turns into #"),
        ("https://img\uff0fexample.com/b.jpg", "a host that NFKC turns into /"),
    ]
    items = ctx.material.take(2)
    page = "https://hostile.example.org/urls/page.html"

    def hostile(b: Builder) -> None:
        links = [image_link(items[0][1], items[0][2])]
        links += [image_link(s, a) for s, a in kept + bad]
        links.append(image_link(items[1][1], items[1][2]))
        b.member(wat_record(page, orjson.dumps(wat_doc(page, links))))

    _sandwich(ctx, hostile)
    ctx.expect(
        "unicode hosts (kept as written) and hosts with characters that NFKC "
        "normalisation turns into URL delimiters (urlsplit refuses them)",
        skips={"img_url_not_http": len(bad)},
        good=[*((u, a) for _, u, a in items), *kept],
        absent=bad,
    )


# -- whole files -----------------------------------------------------------------------------------


@case("file_zero_bytes_wat", "wat")
def _(ctx: Ctx) -> None:
    (ctx.out / ctx.case.file).write_bytes(b"")
    ctx.expect("finding 5: a WAT file of zero bytes", skips={"empty_file": 1})


@case("file_zero_bytes_warc", "warc")
def _(ctx: Ctx) -> None:
    (ctx.out / ctx.case.file).write_bytes(b"")
    ctx.expect("a WARC file of zero bytes", skips={"empty_file": 1})


@case("file_random_bytes", "wat")
def _(ctx: Ctx) -> None:
    (ctx.out / ctx.case.file).write_bytes(_random_bytes(ctx.rng, 1_000_000))
    ctx.expect("1 MB of random bytes", skips={"not_warc": 1})


@case("file_text_not_gzip", "warc")
def _(ctx: Ctx) -> None:
    text = html_page([(u, a) for _, u, a in ctx.material.take(3)]).encode() * 10
    (ctx.out / ctx.case.file).write_bytes(text)
    ctx.expect("an HTML text file (not gzip, not WARC) named .warc.gz", skips={"not_warc": 1})


@case("file_gzip_of_text", "warc")
def _(ctx: Ctx) -> None:
    text = ("just some text, gzipped, not a WARC file\n" * 1000).encode()
    (ctx.out / ctx.case.file).write_bytes(gz(text))
    ctx.expect("a gzip file of plain text", skips={"record_header_invalid": 1})


# -- WARC: Content-Length lies ---------------------------------------------------------------------


def _content_length_case(ctx: Ctx, length: Callable[[int], str], what: str, skip: str) -> None:
    def hostile(b: Builder) -> None:
        items = ctx.material.take(2)
        body = html_page([(u, a) for _, u, a in items]).encode()
        block = http_response(body)
        b.member(response_record(items[0][0], block, length=length(len(block))))
        ctx.case.absent = [(u, a) for _, u, a in items]

    _sandwich(ctx, hostile)
    ctx.expect(what, skips={skip: 1}, absent=ctx.case.absent)


@case("warc_content_length_too_big", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(
        ctx,
        lambda n: str(n + 100),
        "Content-Length 100 bytes over the block",
        "record_length_mismatch",
    )


@case("warc_content_length_too_small", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(
        ctx,
        lambda n: str(n - 100),
        "Content-Length 100 bytes under the block",
        "record_length_mismatch",
    )


@case("warc_content_length_1e12", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(ctx, lambda n: str(10**12), "Content-Length 10^12", "record_too_large")


@case("warc_content_length_negative", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(
        ctx, lambda n: str(-n), "a negative Content-Length", "record_header_invalid"
    )


@case("warc_content_length_not_a_number", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(ctx, lambda n: "12ab", "Content-Length: 12ab", "record_header_invalid")


@case("warc_content_length_missing", "warc")
def _(ctx: Ctx) -> None:
    _content_length_case(ctx, lambda n: "", "no Content-Length field", "record_header_invalid")


# -- WARC: bombs -----------------------------------------------------------------------------------


@case("warc_record_gzip_bomb", "warc")
def _(ctx: Ctx) -> None:
    size = ctx.size("record_bomb")
    b = ctx.builder()
    b.goods(2)
    b.mark_damage()
    head = warc_head(
        [
            ("WARC-Type", "response"),
            ("WARC-Target-URI", "https://hostile.example.org/bomb"),
            ("Content-Type", "application/http; msgtype=response"),
            ("Content-Length", str(size)),
        ]
    )
    http = http_response(b"")
    b.stream_member(head, [http, *_filler(size - len(http), b"\0" * 4096)], level=9)
    b.goods(2)
    ctx.expect(
        f"a gzip bomb as a record: one member of {size / 1e9:g} GB of zeros (over "
        "max_inflate_bytes: the next member is found in the compressed bytes)",
        skips={"record_too_large": 1},
    )


def _encoded_page_case(
    ctx: Ctx,
    encode: Callable[[bytes], bytes],
    encoding: str,
    what: str,
    skips: dict[str, int | None],
    page_kept: bool,
    **kw: Any,
) -> None:
    items = ctx.material.take(2)

    def hostile(b: Builder) -> None:
        body = encode(html_page([(u, a) for _, u, a in items]).encode())
        block = http_response(
            body, [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", encoding)]
        )
        b.member(response_record(items[0][0], block))

    _sandwich(ctx, hostile)
    pairs = [(u, a) for _, u, a in items]
    ctx.expect(
        what, skips=skips, good=pairs if page_kept else [], absent=[] if page_kept else pairs, **kw
    )


def _bomb_stream(size: int, wbits: int, prefix: bytes = b"") -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [c.compress(prefix)]
    parts += [c.compress(chunk) for chunk in _filler(size, b"\0" * 4096)]
    parts.append(c.flush())
    return b"".join(parts)


@case("warc_http_gzip_bomb", "warc")
def _(ctx: Ctx) -> None:
    size = ctx.size("http_bomb")
    _encoded_page_case(
        ctx,
        lambda page: _bomb_stream(size, 31, page),
        "gzip",
        f"an HTTP body with Content-Encoding: gzip that inflates to {size / 1e9:g} GB",
        {"record_too_large": 1},
        page_kept=False,
    )


@case("warc_http_deflate_bomb", "warc")
def _(ctx: Ctx) -> None:
    size = ctx.size("http_bomb")
    _encoded_page_case(
        ctx,
        lambda page: _bomb_stream(size, -15, page),
        "deflate",
        f"an HTTP body with Content-Encoding: deflate (raw) that inflates to {size / 1e9:g} GB",
        {"record_too_large": 1},
        page_kept=False,
    )


@case("warc_http_nested_gzip", "warc")
def _(ctx: Ctx) -> None:
    size = ctx.size("http_bomb")
    _encoded_page_case(
        ctx,
        lambda page: gz(_bomb_stream(size, 31, page), 9),
        "gzip",
        f"a gzip body inside a gzip body (the inner one a {size / 1e9:g} GB bomb)",
        {},
        page_kept=False,
        note="decoded once, as browsers do: the inner gzip is not HTML",
        any_skips=["charset_replaced", "charset_detected"],
    )


@case("warc_http_gzip_corrupt", "warc")
def _(ctx: Ctx) -> None:
    def encode(page: bytes) -> bytes:
        data = bytearray(gz(page))
        data[20:60] = bytes(40)
        return bytes(data)

    _encoded_page_case(
        ctx,
        encode,
        "gzip",
        "Content-Encoding: gzip with corrupt deflate data",
        {"content_encoding_error": 1},
        page_kept=False,
    )


@case("warc_http_deflate_zlib_wrapped", "warc")
def _(ctx: Ctx) -> None:
    _encoded_page_case(
        ctx,
        lambda page: zlib.compress(page, 6),
        "deflate",
        "Content-Encoding: deflate as RFC 9110 defines it (zlib format, RFC 1950), a good page",
        {},
        page_kept=True,
    )


# -- WARC: one stream, uncompressed ----------------------------------------------------------------


def _stream_file(
    ctx: Ctx,
    records_before: int,
    damage: Callable[[bytes, int], bytes],
    compress: bool,
    pad_mb: int = 0,
    gap: int = 0,
) -> None:
    """Good records, then (the damage point) two good records: one gzip stream, or uncompressed.
    `damage(data, cut)` gets the file's bytes and the offset of the damage point in them (in a
    gzip stream: where a full flush puts the first record after it)."""
    ctx.b = b = Builder(ctx.out / ctx.case.file, ctx.fmt, ctx.material)
    parts = [warcinfo(ctx.case.file)]
    for i in range(pad_mb):  # records without pages, to make the stream long
        parts.append(
            warc_record("resource", b"padding " * (MIB // 8), f"urn:pad:{i}", "text/plain")
        )
    parts += [b.good_record(compress=False) for _ in range(records_before)]
    if gap:  # a record of random bytes between the good records and the damage point
        parts.append(warc_record("resource", ctx.rng.randbytes(gap), "urn:gap", "text/plain"))
    b.mark_damage()
    rest = b"".join(b.good_record(compress=False) for _ in range(2))
    head = b"".join(parts)
    if compress:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
        data, cut = first + c.compress(rest) + c.flush(), len(first)
    else:
        data, cut = head + rest, len(head)
    b.fh.write(damage(data, cut))


@case("stream_gzip_small_corrupt", "warc")
def _(ctx: Ctx) -> None:
    def damage(data: bytes, cut: int) -> bytes:
        return data[: cut + 40] + bytes(64) + data[cut + 104 :]

    _stream_file(ctx, 3, damage, compress=True)
    ctx.expect(
        "a whole WARC in one gzip member (under the record cap), corrupt deflate data "
        "after its third good record",
        any_skips=["gzip_damaged", "unreadable_rest_of_file"],
        stream=True,
    )


@case("stream_gzip_large_corrupt", "warc")
def _(ctx: Ctx) -> None:
    def damage(data: bytes, cut: int) -> bytes:
        return data[: cut + 40] + bytes(64) + data[cut + 104 :]

    _stream_file(ctx, 3, damage, compress=True, pad_mb=10)
    ctx.expect(
        "a whole WARC in one gzip member (10 MB of records: read by FastWARC), corrupt "
        "deflate data right after its third good record",
        note="seen: FastWARC decompresses about 1 MiB ahead of the record it yields, so "
        "the records within ~1 MiB before the damage are lost with the rest of the file",
        any_skips=["unreadable_rest_of_file", "truncated_record", "gzip_damaged"],
        stream=True,
    )


@case("stream_gzip_large_corrupt_far", "warc")
def _(ctx: Ctx) -> None:
    def damage(data: bytes, cut: int) -> bytes:
        return data[: cut + 40] + bytes(64) + data[cut + 104 :]

    _stream_file(ctx, 3, damage, compress=True, pad_mb=10, gap=2 * MIB)
    ctx.expect(
        "a whole WARC in one gzip member (read by FastWARC), corrupt deflate data 2 MiB "
        "(of random bytes) after its third good record",
        any_skips=["unreadable_rest_of_file", "truncated_record", "gzip_damaged"],
        stream=True,
    )


@case("stream_gzip_large_truncated", "warc")
def _(ctx: Ctx) -> None:
    _stream_file(
        ctx, 3, lambda data, cut: data[: cut + (len(data) - cut) // 2], compress=True, pad_mb=10
    )
    ctx.expect(
        "a whole WARC in one gzip member (read by FastWARC), the file cut short after "
        "its third good record",
        any_skips=["unreadable_rest_of_file", "truncated_record"],
        stream=True,
    )


@case("stream_gzip_members_of_many_records", "warc")
def _(ctx: Ctx) -> None:
    b = ctx.builder()
    group = lambda: b"".join(b.good_record(compress=False) for _ in range(3))  # noqa: E731
    b.raw(gz(group()))
    b.mark_damage()
    start = len(b.good)
    damaged = bytearray(gz(group()))
    del b.good[start:]
    damaged[len(damaged) // 2 : len(damaged) // 2 + 30] = bytes(30)
    b.raw(bytes(damaged))
    b.raw(gz(group()))
    ctx.expect(
        "members that hold three records each; one member corrupt", skips={"gzip_damaged": 1}
    )


@case("stream_uncompressed_clean", "warc")
def _(ctx: Ctx) -> None:
    ctx.case.file = ctx.name + ".warc"
    _stream_file(ctx, 3, lambda data, cut: data, compress=False)
    ctx.expect("an uncompressed WARC, undamaged (FastWARC)")


@case("stream_uncompressed_length_too_big", "warc")
def _(ctx: Ctx) -> None:
    ctx.case.file = ctx.name + ".warc"

    def damage(data: bytes, cut: int) -> bytes:
        items = ctx.material.take(1)
        block = http_response(html_page([(items[0][1], items[0][2])]).encode())
        record = response_record(items[0][0], block, length=str(len(block) + 5000))
        return data[:cut] + record + data[cut:]

    _stream_file(ctx, 3, damage, compress=False)
    ctx.expect(
        "an uncompressed WARC in which one Content-Length is 5,000 bytes too big",
        stream=True,
        note="seen: the record swallows the records after it (their images "
        "are extracted as the lying record's, under its page URL) to the end of the file, "
        "then counts truncated_record",
    )


@case("stream_uncompressed_garbage", "warc")
def _(ctx: Ctx) -> None:
    ctx.case.file = ctx.name + ".warc"

    def damage(data: bytes, cut: int) -> bytes:
        return data[:cut] + _random_bytes(ctx.rng, 3000) + data[cut:]

    _stream_file(ctx, 3, damage, compress=False)
    ctx.expect(
        "an uncompressed WARC with 3,000 random bytes between two records",
        stream=True,
        note="seen: FastWARC (quirks mode) skips the garbage and the first record after "
        "it, then goes on; the lost record is not counted (FastWARC tells nothing)",
    )


@case("stream_uncompressed_truncated", "warc")
def _(ctx: Ctx) -> None:
    ctx.case.file = ctx.name + ".warc"
    _stream_file(
        ctx, 3, lambda data, cut: data[: data.index(b"\r\n\r\n", cut) + 200], compress=False
    )
    ctx.expect(
        "an uncompressed WARC that ends 200 bytes into a record's block",
        skips={"truncated_record": 1},
        stream=True,
    )


@case("stream_uncompressed_cut_in_header", "warc")
def _(ctx: Ctx) -> None:
    ctx.case.file = ctx.name + ".warc"
    _stream_file(ctx, 3, lambda data, cut: data[: cut + 120], compress=False)
    ctx.expect(
        "an uncompressed WARC that ends inside a record's WARC header",
        stream=True,
        note="seen: FastWARC yields the cut record with no Content-Length and an empty "
        "block, counted as not_http_response",
    )


# -- WARC: HTTP ------------------------------------------------------------------------------------


@case("warc_http_no_header_end", "warc")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        block = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-A: b\r\n"
            b'<img src="http://h.example/never.jpg" alt="in the headers">'
        )
        b.member(response_record("https://hostile.example.org/no-end", block))

    _sandwich(ctx, hostile)
    ctx.expect(
        "an HTTP response whose header block never ends",
        absent=[("http://h.example/never.jpg", "in the headers")],
    )


def _chunked_case(ctx: Ctx, chunked: Callable[[bytes], bytes], what: str, **kw: Any) -> None:
    items = ctx.material.take(2)

    def hostile(b: Builder) -> None:
        body = chunked(html_page([(u, a) for _, u, a in items]).encode())
        block = http_response(
            body, [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")]
        )
        b.member(response_record(items[0][0], block))

    _sandwich(ctx, hostile)
    ctx.expect(what, **kw)


@case("warc_chunked_sizes_too_big", "warc")
def _(ctx: Ctx) -> None:
    def chunked(page: bytes) -> bytes:
        half = len(page) // 2
        return (
            b"%x\r\n" % (half + 1000)
            + page[:half]
            + b"\r\nffffffffffffffff\r\n"
            + page[half:]
            + b"\r\n0\r\n\r\n"
        )

    _chunked_case(
        ctx, chunked, "chunked body whose chunk sizes are bigger than the data (one is 2^64-1)"
    )


@case("warc_chunked_negative_size", "warc")
def _(ctx: Ctx) -> None:
    def chunked(page: bytes) -> bytes:
        return b"-5\r\n" + page + b"\r\n0\r\n\r\n"

    _chunked_case(ctx, chunked, "chunked body whose first chunk size is -5")


@case("warc_chunked_junk_sizes", "warc")
def _(ctx: Ctx) -> None:
    def chunked(page: bytes) -> bytes:
        n = len(page)
        return (
            b"1_0\r\n"
            + page[:16]
            + b"\r\n+%x ; ext=1\r\n" % (n - 16)
            + page[16:]
            + b"\r\n0\r\n\r\n"
        )

    _chunked_case(
        ctx, chunked, "chunk sizes written '1_0' and '+NN' (int() takes both; HTTP does not)"
    )


@case("warc_other_record_types", "warc")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        uri = "https://hostile.example.org/other"
        trap = html_page([("http://h.example/trap.jpg", "not a response")]).encode()
        b.member(
            warc_record(
                "request",
                b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n",
                uri,
                "application/http; msgtype=request",
            )
        )
        b.member(
            warc_record(
                "revisit",
                http_response(b""),
                uri,
                "application/http; msgtype=response",
                extra=[
                    (
                        "WARC-Profile",
                        "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest",
                    )
                ],
            )
        )
        b.member(warc_record("metadata", b"fetchTimeMs: 12\r\n", uri, "application/warc-fields"))
        b.member(warc_record("resource", trap, uri, "text/html"))
        b.member(warc_record("conversion", trap, uri, "text/html"))

    _sandwich(ctx, hostile)
    ctx.expect(
        "request, revisit, metadata, resource and conversion records between responses",
        absent=[("http://h.example/trap.jpg", "not a response")],
    )


@case("warc_response_not_http_no_uri_not_html", "warc")
def _(ctx: Ctx) -> None:
    def hostile(b: Builder) -> None:
        page = html_page([("http://h.example/x.jpg", "x")]).encode()
        b.member(response_record("https://hostile.example.org/a", page))  # no status line
        b.member(response_record(None, http_response(page)))
        b.member(
            response_record(
                "https://hostile.example.org/b.png",
                http_response(b"\x89PNG\r\n\x1a\n" + bytes(100), [("Content-Type", "image/png")]),
            )
        )

    _sandwich(ctx, hostile)
    ctx.expect(
        "a response without an HTTP status line, one without WARC-Target-URI, an image",
        skips={"not_http_response": 1, "page_without_url": 1, "not_html": 1},
        absent=[("http://h.example/x.jpg", "x")],
    )


@case("warc_url_mix_in_html", "warc")
def _(ctx: Ctx) -> None:
    items = ctx.material.take(2)
    page = "https://hostile.example.org/urls/page.html"
    srcs = [
        ("http://user:pass@img.example.com/a.jpg", "credentials"),
        ("https://img.example.com/x&#9;y.jpg", "a tab (as a character reference)"),
        ("https://img.example.com/c&#1;d.jpg", "a control character reference"),
        ("https://img.example.com/" + "a" * 10_000 + ".jpg", "a 10k-char URL"),
        ("data:image/png;base64,iVBORw0KGgo=", "a data URI"),
        ("http://[::1", "a broken IPv6 literal"),
        ("http://bücher.example/ä.jpg", "an IDN host"),
    ]

    def hostile(b: Builder) -> None:
        imgs = "".join(f'<img src="{s}" alt="{a}">\n' for s, a in srcs)
        body = html_page([(items[0][1], items[0][2])]).replace(
            "</body>",
            imgs + f'<img src="{html.escape(items[1][1])}" alt="{html.escape(items[1][2])}">'
            "</body>",
        )
        b.member(response_record(page, http_response(body.encode())))

    _sandwich(ctx, hostile)
    ctx.expect(
        "an HTML page whose <img src>s are hostile URLs, between two good images",
        skips={"img_url_credentials": 1, "img_url_too_long": 1, "img_url_not_http": 2},
        any_skips=["img_url_control_chars"],
        good=[
            *((u, a) for _, u, a in items),
            ("https://img.example.com/xy.jpg", "a tab (as a character reference)"),
            ("http://bücher.example/ä.jpg", "an IDN host"),
        ],
        absent=[("http://user:pass@img.example.com/a.jpg", "credentials")],
    )


@case("warc_html_100k_images", "warc")
def _(ctx: Ctx) -> None:
    n = 100_000
    page = "https://hostile.example.org/gallery/"

    def hostile(b: Builder) -> None:
        imgs = "".join(f'<img src="/i/{i}.jpg" alt="image {i}">' for i in range(n))
        b.member(response_record(page, http_response(f"<html><body>{imgs}</body></html>".encode())))

    _sandwich(ctx, hostile)
    ctx.expect(
        f"an HTML page with {n:,} <img> tags",
        skips={"images_over_page_limit": n - 10_000},
        good=[(f"https://hostile.example.org/i/{i}.jpg", f"image {i}") for i in (0, 9_999)],
        absent=[(f"https://hostile.example.org/i/{n - 1}.jpg", f"image {n - 1}")],
    )


# -- WARC: charsets --------------------------------------------------------------------------------


def _charset_case(
    ctx: Ctx,
    encode: Callable[[str], bytes],
    content_type: str,
    what: str,
    non_ascii_kept: bool,
    codec: str = "cp1252",
    meta: str = "utf-8",
    pad: str = "",
    **kw: Any,
) -> None:
    """A page between good ones: two ASCII alt texts (always kept) around two non-ASCII ones
    (kept as written only where the charset is told right: non_ascii_kept)."""
    ascii_items = ctx.material.take(2, ascii_only=True)
    special = ctx.material.non_ascii(2, codec)
    page = "https://hostile.example.org/charset/" + ctx.name

    def hostile(b: Builder) -> None:
        images = [
            (ascii_items[0][1], ascii_items[0][2]),
            *((u, a) for _, u, a in special),
            (ascii_items[1][1], ascii_items[1][2]),
        ]
        text = html_page(images, title=special[0][2]).replace(
            '<meta charset="utf-8">', pad + (f'<meta charset="{meta}">' if meta else "")
        )
        b.member(
            response_record(page, http_response(encode(text), [("Content-Type", content_type)]))
        )

    _sandwich(ctx, hostile)
    good = [(u, a) for _, u, a in ascii_items]
    if non_ascii_kept:
        good += [(u, a) for _, u, a in special]
    ctx.expect(what, good=good, **kw)


@case("charset_utf8_declared_cp1252_bytes", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("cp1252"),
        "text/html; charset=utf-8",
        "declared UTF-8 (header and <meta>), the bytes are cp1252",
        False,
        any_skips=["charset_detected", "charset_replaced"],
    )


@case("charset_shift_jis_declared_utf8_bytes", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("utf-8"),
        "text/html; charset=shift_jis",
        "declared Shift_JIS, the bytes are UTF-8 (with non-ASCII alt texts)",
        False,
    )


@case("charset_utf16_bom_with_utf8_meta", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
        "text/html",
        "UTF-16LE with a byte-order mark and <meta charset=utf-8>",
        True,
    )


@case("charset_utf7_label", "warc")
def _(ctx: Ctx) -> None:
    items = [i for i in ctx.material.take(6, ascii_only=True) if "+" not in i[1] + i[2]][:2]
    page = "https://hostile.example.org/charset/utf7"
    written = ("https://hostile.example.org/a.jpg", "C+AGEAYgBj-")  # UTF-7 would read "Cabc"
    injected = ("https://hostile.example.org/evil.jpg", "injected")
    # UTF-7 for <img src="/evil.jpg" alt="injected">: a tag only a UTF-7 reading sees
    trap = "+ADw-img src=+ACI-/evil.jpg+ACI- alt=+ACI-injected+ACI-+AD4-"

    def hostile(b: Builder) -> None:
        body = html_page([(items[0][1], items[0][2]), ("/a.jpg", written[1])])
        body = body.replace('charset="utf-8"', 'charset="utf-7"')
        body = body.replace("</body>", f"<p>{trap}</p>\n{_img(items[1][1], items[1][2])}</body>")
        headers = [("Content-Type", "text/html; charset=utf-7")]
        b.member(response_record(page, http_response(body.encode(), headers)))

    _sandwich(ctx, hostile)
    ctx.expect(
        "an ASCII page labelled utf-7 (header and <meta>) whose text holds UTF-7 sequences, one "
        "of them a whole <img> tag: browsers do not decode UTF-7 (WHATWG Encoding has no label "
        "for it: the page is read as the fallback), so the text stays as written, no tag appears",
        good=[*((u, a) for _, u, a in items), written],
        absent=[injected, (written[0], "Cabc")],
    )


def _img(src: str, alt: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


@case("charset_punycode_label", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("ascii", "xmlcharrefreplace"),
        "text/html; charset=punycode",
        "an ASCII page (non-ASCII text as character references) labelled punycode in its HTTP "
        "header (a Python codec, no web charset)",
        True,
    )


@case("charset_undefined_label_in_meta", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("utf-8"),
        "text/html",
        "a UTF-8 page with <meta charset=undefined> (Python's codec that refuses everything)",
        True,
        meta="undefined",
    )


@case("charset_ebcdic_label", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("utf-8"),
        "text/html; charset=cp037",
        "a UTF-8 page labelled cp037 (EBCDIC: a Python codec, no WHATWG label; browsers read the "
        "page as the fallback)",
        True,
    )


@case("charset_unknown_label", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("utf-8"),
        "text/html; charset=x-no-such-charset",
        "an unknown charset label (header and <meta>) on a UTF-8 page",
        True,
        meta="klingon-1",
    )


@case("charset_meta_after_8kb", "warc")
def _(ctx: Ctx) -> None:
    pad = "<!-- " + "padding " * 1500 + "-->\n"
    _charset_case(
        ctx,
        lambda t: t.encode("cp1252"),
        "text/html",
        "a cp1252 page whose <meta charset> comes after 12 KB (past the prescan)",
        False,
        meta="windows-1252",
        pad=pad,
        any_skips=["charset_detected", "charset_replaced"],
    )


@case("charset_x_user_defined", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: t.encode("cp1252"),
        "text/html; charset=x-user-defined",
        "the x-user-defined label (no Python codec) on cp1252 bytes",
        False,
        meta="x-user-defined",
    )


@case("charset_bom_contradicts_header", "warc")
def _(ctx: Ctx) -> None:
    _charset_case(
        ctx,
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        "text/html; charset=iso-8859-1",
        "a UTF-8 byte-order mark, the header says ISO-8859-1 (the BOM wins)",
        True,
    )


# -- WARC: tag soup --------------------------------------------------------------------------------


def _soup_case(ctx: Ctx, soup: str, what: str, keep_after: bool, **kw: Any) -> None:
    """A page between good ones: a good image, the soup, a good image (kept if keep_after)."""
    items = ctx.material.take(2)
    page = "https://hostile.example.org/soup/" + ctx.name

    def hostile(b: Builder) -> None:
        before = f'<img src="{html.escape(items[0][1])}" alt="{html.escape(items[0][2])}">'
        after = f'<img src="{html.escape(items[1][1])}" alt="{html.escape(items[1][2])}">'
        body = f"<html><body>{before}{soup}{after}</body></html>".encode()
        b.member(response_record(page, http_response(body)))

    _sandwich(ctx, hostile)
    good = [(u, a) for _, u, a in items[: 2 if keep_after else 1]]
    ctx.expect(what, good=good, **kw)


@case("html_div_span_soup", "warc")
def _(ctx: Ctx) -> None:
    n = ctx.size("div_span")
    _soup_case(
        ctx,
        "<div></span>" * n,
        f"`<div></span>` x {n:,} (mismatched end tags: the divs nest {n:,} deep)",
        False,
        skips={"page_cut_too_deep": 1},
        max_seconds=10,
        note="the page nests deeper than MAX_DEPTH, as 10^5 nested <div>s do: it must be "
        "cut there (lexbor is quadratic in the depth: 80,000 of them take 35 s, 100,000 99 s)",
    )


@case("html_nested_divs_1e5", "warc")
def _(ctx: Ctx) -> None:
    _soup_case(
        ctx,
        "<div>" * 100_000,
        "10^5 nested <div>s",
        False,
        skips={"page_cut_too_deep": 1},
        max_seconds=10,
    )


@case("html_unclosed_comment", "warc")
def _(ctx: Ctx) -> None:
    _soup_case(
        ctx, "<!-- never closed " + "<p>x</p>" * 1000, "a comment that is never closed", False
    )


@case("html_plaintext", "warc")
def _(ctx: Ctx) -> None:
    _soup_case(
        ctx, "<plaintext>" + "<div>" * 1000, "<plaintext> (the rest of the page is text)", False
    )


@case("html_huge_attribute_and_nul", "warc")
def _(ctx: Ctx) -> None:
    _soup_case(
        ctx,
        '<p title="' + "a" * 2_000_000 + '">x</p>' + "\x00" * 1000 + "<img\x00src=x>",
        "a 2 MB attribute value, NUL characters",
        True,
    )


# ------------------------------------------------------------------------------------------------
# The corpus
# ------------------------------------------------------------------------------------------------


def case_names() -> list[str]:
    return [name for name, _, _ in REGISTRY]


def build_corpus(
    out: Path | str,
    scale: str = "small",
    only: Iterable[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Case]:
    """Write every case (or those named in `only`) into out; returns them, and writes
    out/manifest.json (with `only`: added to the cases of the same scale listed there)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = real_material()
    wanted = set(only) if only is not None else None
    cases: dict[str, Case] = {}
    for index, (name, fmt, build) in enumerate(REGISTRY):
        if wanted is not None and name not in wanted:
            continue
        started = time.perf_counter()
        ctx = Ctx(out, name, fmt, scale, Material(items, index * 7))
        build(ctx)
        cases[name] = ctx.finish()
        if log:
            size = (out / cases[name].file).stat().st_size
            log(f"{name:45s} {size:>12,} B  {time.perf_counter() - started:5.1f} s")
    listed = cases
    manifest_path = out / "manifest.json"
    if (
        wanted is not None
        and manifest_path.exists()
        and json.loads(manifest_path.read_text(encoding="utf-8"))["scale"] == scale
    ):
        listed = {**load_manifest(out), **cases}  # add to what is there
    order = {name: i for i, name in enumerate(case_names())}
    listed = dict(sorted(listed.items(), key=lambda kv: order.get(kv[0], len(order))))
    manifest = {"scale": scale, "cases": [c.to_json() for c in listed.values()]}
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return cases


def load_manifest(out: Path | str) -> dict[str, Case]:
    data = json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))
    return {c["name"]: Case.from_json(c) for c in data["cases"]}


# ------------------------------------------------------------------------------------------------
# Running one case (in the process that does it: the test's and the bench's subprocesses)
# ------------------------------------------------------------------------------------------------


def check_result(case: Case, out: dict[str, Any]) -> list[str]:
    """What in an extraction result (extract_case's) breaks the case's expectation; [] if none."""
    skipped = out["stats"]["skipped"]
    pairs = {tuple(p) for p in out["pairs"]}
    problems = []
    for reason, count in case.skips.items():
        if count is None and not skipped.get(reason):
            problems.append(f"{reason} not counted")
        elif count is not None and skipped.get(reason, 0) != count:
            problems.append(f"{reason} counted {skipped.get(reason, 0)}, expected {count}")
    if case.any_skips and not any(skipped.get(r) for r in case.any_skips):
        problems.append(f"none of {case.any_skips} counted")
    missing = [p for p in case.good if p not in pairs]
    if missing:
        problems.append(
            f"{len(missing)} of {len(case.good)} good pairs missing, e.g. "
            f"{[(u[:80], t[:60]) for u, t in missing[:3]]}"
        )
    present = [p for p in case.absent if p in pairs]
    if present:
        problems.append(f"hostile pairs kept: {[(u[:80], t[:60]) for u, t in present[:3]]}")
    return problems


def set_memory_limit(mb: int | None) -> None:
    if mb:
        limit = mb * MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def extract_case(path: str, fmt: str) -> dict[str, Any]:
    """Extract one file as the curation does; stats, pairs and this process's costs."""
    from metaclip.curation.batch import EXTRACTORS

    wall, cpu = time.perf_counter(), time.process_time()
    table, stats = EXTRACTORS[fmt](path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    pairs = sorted(set(zip(table["url"].to_pylist(), table["text"].to_pylist(), strict=True)))
    return {
        "stats": stats.to_dict(),
        "pairs": pairs,
        "rows": table.num_rows,
        "wall_s": wall,
        "cpu_s": cpu,
        "vm_hwm_mb": _vm_hwm_mb(),
    }


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_case_to_file(path: str, fmt: str, result: str, mem_limit_mb: int | None) -> None:
    """extract_case within a memory limit; the result (or the error) as JSON in `result`."""
    set_memory_limit(mem_limit_mb)
    try:
        out = extract_case(path, fmt)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then re-raised
        Path(result).write_text(
            json.dumps({"error": repr(exc)[:2000], "traceback": traceback.format_exc()[-5000:]})
        )
        raise
    Path(result).write_text(json.dumps(out, ensure_ascii=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="where to write the corpus")
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the case names")
    parser.add_argument("--extract", help="extract this one file (see --format, --result)")
    parser.add_argument("--format", choices=["wat", "warc"])
    parser.add_argument("--result", help="where --extract writes its JSON result")
    parser.add_argument("--mem-limit-mb", type=int, help="RLIMIT_AS for --extract")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(case_names()))
        return
    if args.extract:
        if not (args.format and args.result):
            parser.error("--extract needs --format and --result")
        run_case_to_file(args.extract, args.format, args.result, args.mem_limit_mb)
        return
    if args.out_dir is None:
        parser.error("OUT_DIR is required")
    cases = build_corpus(args.out_dir, args.scale, args.only, log=print)
    print(f"{len(cases)} cases in {args.out_dir} ({args.scale} scale)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
