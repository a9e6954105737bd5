"""Extract (image URL, text) pairs from Common Crawl WAT files.

A WAT file is a sequence of gzip members, each a WARC `metadata` record whose body is JSON
written by ia-web-commons. Response records carry Envelope > Payload-Metadata >
HTTP-Response-Metadata > HTML-Metadata with `Head` (`Base` holds <base href>) and `Links`;
images are the links whose path starts with `IMG@/src`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any, Literal

import orjson
import pyarrow as pa

from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits
from metaclip.extraction.pairs import ExtractStats, PairBuffer
from metaclip.extraction.records import extract_file, iter_records

try:  # the compiled build's C page path (setup.py, METACLIP_COMPILE=1): the same rows
    from metaclip.extraction._watpage import add_wat_page
except ImportError:
    add_wat_page = None

IMG_PATH_PREFIX = "IMG@/src"
HTML_MARKER = b'"HTML-Metadata"'  # the key add_wat_record needs, as ia-web-commons writes it
# The byte shapes of the fast path (compact JSON, as ia-web-commons writes it): see
# image_links_from_bytes.
IMG_MARKER = IMG_PATH_PREFIX.encode()
BASE_MEMBER = b'"Base":"'
HEAD_MEMBER = b'"Head":{'


def iter_wat_json(
    stream: IO[bytes], stats: ExtractStats, limits: ExtractLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, str | None, bytes]]:
    """Yield (record offset, WARC-Target-URI, JSON body) of each metadata record that can hold a
    page, within the limits; damage costs the damaged record (metaclip.extraction.records)."""
    for record in iter_records(stream, stats, limits, "metadata", HTML_MARKER):
        if record.complete:  # JSON cut short by the end of the file is dropped (counted)
            yield record.offset, record.target_uri, record.body


# A JSON \\uXXXX escape of a UTF-16 surrogate that is not half of a pair, after an even run of
# backslashes (so the backslash of the escape is not itself escaped).
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(?:\\u(d[89ab][0-9a-f]{2})(?!\\ud[c-f][0-9a-f]{2})"
    rb"|(?<!\\ud[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2}))",
    re.IGNORECASE,
)


def parse_json(body: bytes, stats: ExtractStats) -> Any | None:
    """orjson, with lenient retries: bytes that are not UTF-8 are replaced, and lone surrogate
    escapes (which MetaCLIP's json.loads keeps, orjson refuses, and Parquet cannot store) become
    U+FFFD; each retry is counted and the record kept."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    fixed = body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        fixed = body.decode("utf-8", errors="replace").encode("utf-8")
        stats.skip("non_utf8_bytes_replaced")
    if b"\\u" in fixed:
        fixed, n = _LONE_SURROGATE.subn(rb"\1\\ufffd", fixed)
        if n:
            stats.skip("lone_surrogate_replaced")
    if fixed is not body:
        try:
            return orjson.loads(fixed)
        except orjson.JSONDecodeError:
            pass
    stats.skip("broken_json")
    return None


def _path(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def add_wat_record(
    doc: Any, target_uri: str | None, offset: int, buffer: PairBuffer, stats: ExtractStats
) -> None:
    """Add the image pairs of one parsed WAT record (non-response records have none)."""
    html = _path(doc, "Envelope", "Payload-Metadata", "HTTP-Response-Metadata", "HTML-Metadata")
    if not isinstance(html, dict):
        return
    page_url = target_uri or _path(doc, "Envelope", "WARC-Header-Metadata", "WARC-Target-URI")
    if not isinstance(page_url, str) or not page_url:
        stats.skip("page_without_url")
        return
    stats.pages += 1
    links = html.get("Links")
    if not isinstance(links, list):
        return
    base = _path(html, "Head", "Base")
    base_href = base if isinstance(base, str) else None
    buffer.add_images(page_url, base_href, _image_links(links), offset)


def _image_links(links: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(url, link) of the IMG@/src links. Most links are not images and this loop is hot, so
    malformed links (not an object, no string path) are told apart by the exception."""
    out = []
    for link in links:
        try:
            if link["path"].startswith(IMG_PATH_PREFIX):
                out.append((link.get("url"), link))
        except (KeyError, TypeError, AttributeError):
            continue
    return out


def image_links_from_bytes(body: bytes) -> tuple[str | None, list[tuple[Any, Any]]] | None:
    """(<base href>, (url, link) of each IMG@/src link) of a page without parsing the whole
    record, or None when the record must be parsed whole.

    Most of a WAT record is its other links; building Python objects for all of them is most
    of the cost of a full parse. In valid JSON the bytes `"path":"IMG@/src` can only be a
    member (quotes inside strings are escaped), so each image link object is cut out between
    the nearest `{"` before it and the nearest `}` after it, and the cuts are parsed together.
    A wrong cut (a brace inside a string, a nested value, whitespace) never parses as JSON;
    every `IMG@/src` must be such a member; a record cut short (not ending in `}}`) is left
    to the full parse, which counts it: anything unusual takes the full parse.
    """
    page = _page_prelude(body)
    if page is None:
        return None
    base, first = page
    if first == -1:
        return None, []
    links = _cut_image_links(body, first)
    return None if links is None else (base, links)


def _page_prelude(body: bytes) -> tuple[str | None, int] | None:
    """(<base href>, offset of the first IMG@/src or -1) of a whole record, or None when the
    record must be parsed whole (cut short, or a base only the full parse can read)."""
    if not body[-8:].rstrip().endswith(b"}}"):
        return None
    first = body.find(IMG_MARKER)
    if first == -1:
        return None, -1
    base = _base_href(body, first)
    return None if base is False else (base, first)


def _cut_image_links(body: bytes, pos: int) -> list[tuple[Any, Any]] | None:
    """The image link objects from the first IMG@/src on, cut and parsed as
    image_links_from_bytes says; None when a cut fails."""
    find, rfind = body.find, body.rfind
    cuts, end = [], 0
    while pos != -1:  # every IMG@/src in the record, so none is missed
        if body[pos - 8 : pos] != b'"path":"':
            return None
        # Cuts never overlap (link objects do not), which keeps the work linear in the body.
        start, end = rfind(b'{"', end, pos - 7), find(b"}", pos)
        if start == -1 or end == -1:
            return None
        cuts.append(body[start : end + 1])
        pos = find(IMG_MARKER, end)
    try:  # one parse for the page: a wrong cut fails it (or yields a non-object)
        links = orjson.loads(b"[" + b",".join(cuts) + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(links) != len(cuts) or not all(isinstance(link, dict) for link in links):
        return None
    return [(link.get("url"), link) for link in links]


def _base_href(body: bytes, first_image: int) -> str | None | Literal[False]:
    """HTML-Metadata > Head > Base as a string, None when the page has none, False when only
    the full parse can tell. Head and Links are siblings, so when Head opens before the first
    image link (as Common Crawl writes it, keys sorted) it also closes there: only the bytes
    from Head to the first image need a look."""
    head = body.find(HEAD_MEMBER, 0, first_image)
    end = first_image
    if head == -1:
        head, end = body.find(HEAD_MEMBER, first_image), len(body)
        if head == -1:
            return None
    start = body.find(BASE_MEMBER, head, end)
    if start == -1:
        return None
    if body.find(BASE_MEMBER, start + 1, end) != -1:
        return False  # two "Base" keys: leave it to the parser
    close = body.find(b'"', start + len(BASE_MEMBER))
    while close != -1 and _escaped(body, close):
        close = body.find(b'"', close + 1)
    try:
        base = orjson.loads(body[start + len(BASE_MEMBER) - 1 : close + 1])
    except orjson.JSONDecodeError:
        return False
    return base if isinstance(base, str) else False


def _escaped(body: bytes, quote: int) -> bool:
    """Whether the quote at this offset is escaped: an odd run of backslashes before it."""
    run = 0
    while body[quote - 1 - run] == 0x5C:
        run += 1
    return run % 2 == 1


def _add_fast(
    body: bytes, target_uri: str | None, offset: int, buffer: PairBuffer, stats: ExtractStats
) -> bool:
    """Add a page's pairs by image_links_from_bytes; False when the full parse is needed."""
    if not target_uri:
        return False
    page = _page_prelude(body)
    if page is None:
        return False
    base, first = page
    if first == -1:
        stats.pages += 1
        return True
    if add_wat_page is not None:  # the compiled build's C version of the rest
        return bool(add_wat_page(body, target_uri, offset, buffer, stats, base, first))
    links = _cut_image_links(body, first)
    if links is None:
        return False
    stats.pages += 1
    buffer.add_images(target_uri, base, links, offset)
    return True


def extract_wat_stream(
    stream: IO[bytes], source: str, stats: ExtractStats, limits: ExtractLimits = DEFAULT_LIMITS
) -> PairBuffer:
    buffer = PairBuffer(source, stats, limits)
    for offset, target_uri, body in iter_wat_json(stream, stats, limits):
        if _add_fast(body, target_uri, offset, buffer, stats):
            continue
        doc = parse_json(body, stats)
        if doc is not None:
            add_wat_record(doc, target_uri, offset, buffer, stats)
    return buffer


def extract_wat_file(
    uri: str, limits: ExtractLimits = DEFAULT_LIMITS, **storage_options: Any
) -> tuple[pa.Table, ExtractStats]:
    """Extract one WAT file: (PAIRS table, stats). A missing file is a counted skip."""
    return extract_file(uri, extract_wat_stream, limits, **storage_options)
