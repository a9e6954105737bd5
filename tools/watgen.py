"""Write Common Crawl-format WAT files from HTML pages (test fixtures, demo data, benchmarks).

No real Common Crawl WAT with image links is available offline, so the WAT files used by the tests,
the demo and the benchmarks are written here from REAL saved web pages. Files written here say so:
their warcinfo records carry a "description: derived ..." field.

What is mimicked (checked against real WATs from CC-MAIN-2019-22 and CC-MAIN-2024-22):

* ``html_to_wat_links`` follows ia-web-commons' ``ExtractingParseObserver`` (the code that fills
  ``HTML-Metadata``): same paths (``IMG@/src``, ``A@/href`` ...), same attributes, anchor texts
  whitespace-normalised and clipped to 128 characters, URLs left as written in the page (not
  resolved). Parsing uses the standard library's ``html.parser`` (not the Java htmlparser), so
  entities are decoded as ``html.parser`` does and lengths count code points, not UTF-16 units.
* ``WatWriter`` frames every record as its own gzip member with CRLF line ends and an exact
  Content-Length. The JSON envelope describes a *virtual* source WARC in which each page is an HTTP
  response: offsets, gzip member sizes, CRCs and SHA-1 digests are computed from that virtual WARC.
  No request was ever made; the virtual request record says so in its User-Agent.

Output is deterministic: record ids are derived from a seed, dates from a fixed crawl start.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import io
import json
import os
import re
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import orjson

__all__ = [
    "Layout",
    "WatWriter",
    "decode_html",
    "guess_page_uri",
    "html_to_wat_links",
    "iter_tar_pages",
    "truncate_gzip_member",
    "write_damaged_variants",
]

Layout = Literal["2019", "2024"]
JsonDict = dict[str, Any]
Attrs = Sequence[tuple[str, str | None]]
Transform = Callable[[bytes], bytes] | None

# The generator's name as the committed fixtures and demo files carry it (it lived in metaclip/).
SOFTWARE = "metaclip.watgen/0.1 (Common Crawl WAT layout of ia-web-commons 1.1.9/1.1.10)"
DERIVED_NOTE = (
    "derived: real saved web pages written in Common Crawl WAT format by metaclip.watgen; "
    "not a crawl, no request was made"
)

# --------------------------------------------------------------------------------------------
# HTML -> (Head, Links), after ia-web-commons ExtractingParseObserver
# --------------------------------------------------------------------------------------------

MAX_TEXT_LEN = 128  # ia-web-commons clips anchor texts and titles to this length
# fmt: off
_BLOCK = frozenset([
    "address", "article", "aside", "blockquote", "body", "br", "button", "canvas", "caption",
    "col", "colgroup", "dd", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "li", "map",
    "noscript", "object", "ol", "output", "p", "pre", "progress", "section", "table", "tbody",
    "textarea", "tfoot", "th", "thead", "title", "tr", "ul", "video",
])
# inline elements whose content is not glued to surrounding words
_INLINE_SPACING = frozenset([
    "address", "cite", "details", "datalist", "iframe", "img", "input", "label", "legend",
    "optgroup", "q", "select", "summary", "tbody", "td", "time",
])
# fmt: on
_GLOBAL_HREF_ATTRS = ("background", "data-href", "data-uri")
_META_ATTRS = ("name", "rel", "content", "http-equiv", "property")
# tag -> attributes reported as bare {"path", "url"} links (addBasicHrefs in the Java code)
_BASIC_HREFS: dict[str, tuple[str, ...]] = {
    "applet": ("codebase", "cdata"),
    "embed": ("src",),
    "audio": ("src",),
    "track": ("src",),
    "source": ("src",),
    "video": ("src", "poster"),
    "frame": ("src",),
    "iframe": ("src",),
    "input": ("src", "formaction"),
    "button": ("formaction",),
    "menuitem": ("icon",),
    "object": ("codebase", "cdata", "data"),
    "q": ("cite",),
    "blockquote": ("cite",),
    "del": ("cite",),
    "ins": ("cite",),
}
_CSS_URL = re.compile(r"url\s*\(\s*([^)\s]{1,8000}?)\s*\)")
_CSS_URL_TRIM = re.compile(r"^(?:\\?[\"'])+|(?:\\?[\"'])+$")
_CSS_IMPORT = re.compile(
    r"@import\s+((?:'[^']+')|(?:\"[^\"]+\")|(?:\('[^']+'\))|(?:\(\"[^\"]+\"\))|(?:\([^)]+\))"
    r"|(?:[a-z0-9_.:/\\-]+))\s*;"
)
_ONCLICK = (
    re.compile(
        r"(?i)^(?:javascript:)?(?:(?:window|top|document|self|parent)\.)?location(?:\.href)?"
        r"\s*=\s*('|&#39;)([^'\"]{3,256})\1$"
    ),
    re.compile(
        r"(?i)^(?:javascript:)?(?:window|parent)\.open\((['\"]|&#39;)([^\"']{3,256}?)\1[,)]"
    ),
)
# Java maps C0 controls, DEL and NBSP to ' ' before collapsing white space.
_CONTROLS = re.compile("[\x00-\x1f\x7f\xa0]")
# Java Character.isWhitespace() after that mapping (it excludes the no-break spaces).
_JAVA_WS = (
    " \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u2028\u2029\u205f\u3000"
)
_WS_RUN = re.compile(f"([{_JAVA_WS}])[{_JAVA_WS}]+")
_JAVA_TRIM = "".join(map(chr, range(33)))  # String.trim() strips chars <= U+0020


def _attr(attrs: Attrs, name: str) -> str | None:
    """First occurrence wins, as in htmlparser's getAttributeEx; a bare attribute has no value."""
    for key, value in attrs:
        if key == name:
            return value
    return None


def _path(tag: str, attr: str) -> str:
    return f"{tag.upper()}@/{attr}"


def _url_item(tag: str, attrs: Attrs, url_attr: str, extra: Iterable[str]) -> JsonDict | None:
    """{"path", "url", <extra attributes present>}, or None if the tag lacks the URL attribute."""
    url = _attr(attrs, url_attr)
    if url is None:
        return None
    item: JsonDict = {"path": _path(tag, url_attr), "url": url}
    for name in extra:
        value = _attr(attrs, name)
        if value is not None:
            item[name] = value
    return item


class _LinkObserver(html.parser.HTMLParser):
    """Collects Head and Links the way ExtractingParseObserver does."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.head: JsonDict = {}
        self.links: list[JsonDict] = []
        self._anchors: list[JsonDict | None] = []  # open <a>: pending link (None if no href)
        self._anchor_texts: list[list[str]] = []
        self._title: str | None = None
        self._in_title = self._in_head = self._in_svg = False
        self._raw: str | None = None  # "script" / "style" while inside one
        self._last_ws = True  # is the last char of the page text so far white space?

    # -- tags ---------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, empty=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, empty=True)  # the Java observer sends no close for <x/>

    def _open(self, tag: str, attrs: Attrs, *, empty: bool) -> None:
        if tag in ("script", "style") and not empty:
            self._raw = tag
        if tag == "title":
            self._in_title = not empty
            return
        if tag == "head":
            self._in_head = True
        elif tag == "svg":
            self._in_svg = True
        elif tag == "body":
            self._in_head = False
        if tag in _BLOCK or tag in _INLINE_SPACING:
            self._last_ws = True
        for name in _GLOBAL_HREF_ATTRS:
            self._add_basic(tag, attrs, name)
        self._extract(tag, attrs, empty)

    def _extract(self, tag: str, attrs: Attrs, empty: bool) -> None:
        if tag == "img":
            _append(self.links, _url_item(tag, attrs, "src", ("alt", "title")))
            self._add_basic(tag, attrs, "longdesc")
        elif tag == "a":
            self._open_anchor(attrs, empty)
        elif tag in _BASIC_HREFS:
            for name in _BASIC_HREFS[tag]:
                self._add_basic(tag, attrs, name)
            if tag == "input":
                self._add_onclick(tag, attrs)
        elif tag == "div":
            self._add_onclick(tag, attrs)
        elif tag == "area":
            _append(self.links, _url_item(tag, attrs, "href", ("rel",)))
        elif tag == "form":
            _append(self.links, _url_item(tag, attrs, "action", ("target", "method")))
        elif tag == "link":
            self._add_head("Link", _url_item(tag, attrs, "href", ("rel", "type")))
        elif tag == "script":
            self._add_head("Scripts", _url_item(tag, attrs, "src", ("type",)))
        elif tag == "meta":
            self._add_head(
                "Metas", {n: v for n in _META_ATTRS if (v := _attr(attrs, n)) is not None}
            )
        elif tag == "html":
            for name in ("lang", "xml:lang"):
                value = _attr(attrs, name)
                if value is not None:
                    self._add_head("Metas", {"name": f"HTML@/{name}", "content": value})
        elif tag == "base":
            href = _attr(attrs, "href")
            if href is not None:
                self.head["Base"] = href  # a later <base> overwrites, as in the Java code

    def _add_head(self, key: str, item: JsonDict | None) -> None:
        if item:  # Head lists exist only once something goes into them
            self.head.setdefault(key, []).append(item)

    def _add_basic(self, tag: str, attrs: Attrs, name: str) -> None:
        value = _attr(attrs, name)
        if value is not None:
            self.links.append({"path": _path(tag, name), "url": value})

    def _add_onclick(self, tag: str, attrs: Attrs) -> None:
        onclick = _attr(attrs, "onclick")
        if onclick is None:
            return
        for pattern in _ONCLICK:
            match = pattern.search(onclick)
            if match:
                self.links.append({"path": _path(tag, "onclick"), "url": match.group(2)})

    def _open_anchor(self, attrs: Attrs, empty: bool) -> None:
        link = _url_item("a", attrs, "href", ("target", "alt", "title", "rel", "hreflang", "type"))
        if empty:
            _append(self.links, link)
            return
        self._anchors.append(link)
        self._anchor_texts.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None
        if self._in_title:  # any close tag ends the title, as in the Java code
            self._in_title = False
            wanted = self._in_head or "Title" not in self.head
            if self._title is not None and wanted and not self._in_svg:
                self.head["Title"] = self._title
            self._title = None
        if tag in _BLOCK or tag in _INLINE_SPACING:
            self._last_ws = True
            for parts in self._anchor_texts:
                if parts and not parts[-1].endswith((" ", "\n")):
                    parts.append(" ")
        if tag == "a" and self._anchors:
            self._close_anchor()
        elif tag == "head":
            self._in_head = False
        elif tag == "svg":
            self._in_svg = False

    def _close_anchor(self) -> None:
        link = self._anchors.pop()
        text = "".join(self._anchor_texts.pop()).strip(_JAVA_TRIM)[:MAX_TEXT_LEN]
        if link is None:
            return  # <a name=...> without href: nothing to report
        if text:
            link["text"] = text
        self.links.append(link)

    # -- text ---------------------------------------------------------------------------------
    def handle_data(self, data: str) -> None:
        if self._raw == "style":
            self._add_css_links(data)
            return
        if self._raw == "script" or not data:
            return
        if not (self._in_title or self._anchor_texts):
            self._last_ws = _is_java_ws(_CONTROLS.sub(" ", data[-1]))
            return
        text = self._normalise(data)[:MAX_TEXT_LEN]
        if self._in_title:
            self._title = text.strip(_JAVA_TRIM)
            return
        for parts in self._anchor_texts:
            if not _append_anchor_text(parts, text):
                break

    def _normalise(self, data: str) -> str:
        """Controls to ' ', white-space runs to their first char, no leading space after space."""
        text = _WS_RUN.sub(r"\1", _CONTROLS.sub(" ", data))
        if self._last_ws and text and _is_java_ws(text[0]):
            text = text[1:]
        self._last_ws = _is_java_ws(_CONTROLS.sub(" ", data[-1]))
        return text

    def _add_css_links(self, css: str) -> None:
        css = css[:100_000]  # the Java code only looks at the first 100 kB
        for pattern in (_CSS_URL, _CSS_IMPORT):
            for match in pattern.finditer(css):
                url = _CSS_URL_TRIM.sub("", match.group(1))
                if url:
                    self.links.append({"path": "STYLE/#text", "href": url})


def _append(into: list[JsonDict], item: JsonDict | None) -> None:
    if item is not None:
        into.append(item)


def _append_anchor_text(parts: list[str], text: str) -> bool:
    """Append to one open anchor's text; False once it is full (so are its enclosing ones)."""
    length = sum(map(len, parts))
    if length >= MAX_TEXT_LEN:
        return False
    clipped = text[: MAX_TEXT_LEN - length]
    if clipped.startswith(" ") and (not parts or parts[-1].endswith(" ")):
        clipped = clipped[1:]
    if clipped:
        parts.append(clipped)
    return True


def _is_java_ws(char: str) -> bool:
    return char in _JAVA_WS


def html_to_wat_links(html_text: str) -> tuple[JsonDict, list[JsonDict]]:
    """(Head, Links) of a page as a Common Crawl WAT's HTML-Metadata would hold them."""
    observer = _LinkObserver()
    observer.feed(html_text)
    observer.close()
    return observer.head, observer.links


# --------------------------------------------------------------------------------------------
# Page helpers: charset, target URIs, the saved-page tarball
# --------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_CANONICAL_TLDS = frozenset(
    ["de", "com", "org", "net", "at", "ch", "fr", "eu", "info", "co", "uk", "blog", "me", "io"]
)


def decode_html(data: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode page bytes; returns (text, charset label). HTTP charset, then <meta>, then UTF-8."""
    label = None
    if content_type and "charset=" in content_type.lower():
        label = content_type.lower().split("charset=", 1)[1].split(";")[0].strip(" \"'")
    if label is None:
        match = _META_CHARSET.search(data[:4096])
        label = match.group(1).decode("ascii").lower() if match else None
    if label in (None, "utf-8", "utf8"):
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            label = "windows-1252"
    # WHATWG: latin-1 labels mean windows-1252
    codec = "cp1252" if label in ("iso-8859-1", "latin1", "latin-1", "us-ascii") else label
    try:
        return data.decode(codec or "cp1252", errors="replace"), (label or "windows-1252").upper()
    except LookupError:
        return data.decode("cp1252", errors="replace"), "WINDOWS-1252"


def _canonical_url(head: JsonDict) -> str | None:
    for link in head.get("Link", []):
        if str(link.get("rel", "")).lower() == "canonical" and link.get("url"):
            return str(link["url"])
    for meta in head.get("Metas", []):
        if meta.get("property") == "og:url" and meta.get("content"):
            return str(meta["content"])
    return None


def guess_page_uri(name: str, head: JsonDict) -> str:
    """A plausible target URI for a saved page: its canonical / og:url, else one from its name.

    File names look like ``bmjv.de.konsum.html``: labels up to the last TLD-like label form the
    host, the rest the path.
    """
    stem = name.rsplit("/", 1)[-1].removesuffix(".html")
    labels = stem.split(".")
    cut = max(
        (i + 1 for i, lab in enumerate(labels) if i > 0 and lab in _CANONICAL_TLDS), default=1
    )
    root = f"https://{'.'.join(labels[:cut]).lower()}/"
    canonical = _canonical_url(head)
    if canonical and canonical.strip():
        uri = urljoin(root, canonical.strip())
        if urlsplit(uri).scheme in ("http", "https") and urlsplit(uri).netloc:
            return uri
    return root + quote("/".join(labels[cut:]), safe="/-_,")


def iter_tar_pages(tar_path: str | os.PathLike[str]) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every .html member of a tarball, sorted by name."""
    with tarfile.open(tar_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            if member.name.endswith(".html"):
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name.rsplit("/", 1)[-1], handle.read()


# --------------------------------------------------------------------------------------------
# WARC framing
# --------------------------------------------------------------------------------------------


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """One gzip member with mtime 0 and no file name, so output bytes are reproducible."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def warc_header(fields: Sequence[tuple[str, str]]) -> bytes:
    lines = ["WARC/1.0"] + [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def warc_record(fields: Sequence[tuple[str, str]], block: bytes) -> bytes:
    """A whole record: header (Content-Length must be among the fields), block, CRLF CRLF."""
    return warc_header(fields) + block + b"\r\n\r\n"


def _warc_fields_block(fields: Sequence[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode("utf-8")


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # lone surrogates: fall back to escaped ASCII, still valid JSON
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _warc_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signed32(value: int) -> int:
    """Java prints the gzip CRC as a signed int."""
    return value - (1 << 32) if value >= 1 << 31 else value


# --------------------------------------------------------------------------------------------
# The virtual source WARC
# --------------------------------------------------------------------------------------------


@dataclass
class _SourceRecord:
    """What a WAT says about one record of the source WARC."""

    fields: list[tuple[str, str]]  # its WARC header fields, in order
    header_length: int
    content_length: int
    block_digest: str
    offset: int
    deflate_length: int
    inflated_length: int
    inflated_crc: int

    def container(self, filename: str) -> JsonDict:
        return {
            "Filename": filename,
            "Compressed": True,
            "Offset": str(self.offset),
            "Gzip-Metadata": {
                "Deflate-Length": str(self.deflate_length),
                "Header-Length": "10",
                "Footer-Length": "8",
                "Inflated-CRC": str(_signed32(self.inflated_crc)),
                "Inflated-Length": str(self.inflated_length),
            },
        }

    @property
    def record_id(self) -> str:
        return dict(self.fields)["WARC-Record-ID"]


@dataclass
class _Capture:
    request: _SourceRecord
    response: _SourceRecord
    metadata: _SourceRecord
    request_http: JsonDict
    response_http: JsonDict
    metadata_fields: list[tuple[str, str]]


@dataclass
class _SourceWarc:
    """Offsets and member sizes of the WARC a WAT describes; built in memory, never written.

    exact=False (benchmarks): the entity's compressed size is cached per distinct entity instead
    of compressing every record, so Deflate-Length is then an estimate (everything else is exact).
    """

    filename: str
    exact: bool = True
    offset: int = 0
    _entity_deflate: dict[bytes, int] = field(default_factory=dict)

    def add(self, fields: list[tuple[str, str]], block: bytes, head: bytes = b"") -> _SourceRecord:
        """Account for one record whose block is head + block (head: e.g. HTTP headers)."""
        content_length = len(head) + len(block)
        fields = [*fields[:3], ("Content-Length", str(content_length)), *fields[3:]]
        digest = hashlib.sha1(head)
        digest.update(block)
        fields.append(("WARC-Block-Digest", "sha1:" + base64.b32encode(digest.digest()).decode()))
        header = warc_header(fields)
        crc = zlib.crc32(b"\r\n\r\n", zlib.crc32(block, zlib.crc32(head, zlib.crc32(header))))
        deflated = self._deflate_length(header + head, block)
        record = _SourceRecord(
            fields=fields,
            header_length=len(header),
            content_length=content_length,
            block_digest=fields[-1][1],
            offset=self.offset,
            deflate_length=deflated,
            inflated_length=len(header) + content_length + 4,
            inflated_crc=crc,
        )
        self.offset += deflated
        return record

    def _deflate_length(self, prefix: bytes, block: bytes) -> int:
        if self.exact or len(block) < 4096:
            return len(gzip_member(prefix + block + b"\r\n\r\n"))
        if block not in self._entity_deflate:
            self._entity_deflate[block] = len(zlib.compress(block, 6)) - 6
        return len(gzip_member(prefix)) + self._entity_deflate[block]


# --------------------------------------------------------------------------------------------
# WatWriter
# --------------------------------------------------------------------------------------------

_REQUEST_HEADERS = (
    ("User-Agent", "metaclip-watgen/0.1 (virtual request: no request was made)"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "br,gzip"),
)
CRAWL_START = datetime(2024, 5, 18, 0, 0, 0, tzinfo=UTC)


@dataclass
class WatWriter:
    """Write a WAT file: ``with WatWriter(path) as w: w.add_page(uri, html)``.

    ``target`` is a path or a binary file object (flushed, not closed). Each record is its own
    gzip member; ``members`` lists (offset, length, kind) of each, for tests and damaged files.
    ``layout`` picks the JSON envelope of ia-web-commons 1.1.9 ("2019", as in CC-MAIN-2019-22:
    Format "WARC", Block-Digest and Actual-Content-Length in the Envelope) or 1.1.10 ("2024", as
    in CC-MAIN-2024-22: Format "WARC/1.0", both inside Payload-Metadata, and WARC-*-Digest lines
    in the WAT record headers). Per capture the WAT holds, as Common Crawl's do, a record for the
    request, the response (with HTML-Metadata) and the crawler's metadata record.
    """

    target: str | os.PathLike[str] | IO[bytes]
    filename: str | None = None  # defaults to the target's base name
    layout: Layout = "2024"
    seed: str = "metaclip-watgen"
    crawl_start: datetime = CRAWL_START
    with_request_records: bool = True
    with_metadata_records: bool = True
    exact_container: bool = True
    compresslevel: int = 6
    members: list[tuple[int, int, str]] = field(default_factory=list, init=False)
    _out: IO[bytes] = field(init=False, repr=False)
    _owns: bool = field(default=False, init=False, repr=False)
    _written: int = field(default=0, init=False, repr=False)
    _ids: int = field(default=0, init=False, repr=False)
    _pages: int = field(default=0, init=False, repr=False)
    _source: _SourceWarc = field(init=False, repr=False)
    _warcinfo_id: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.target, str | os.PathLike):
            self._out = open(self.target, "wb")  # noqa: SIM115 - closed in close()
            self._owns = True
            self.filename = self.filename or Path(self.target).name
        else:
            self._out = self.target
            self.filename = self.filename or "watgen-00000.warc.wat.gz"
        source_name = self.filename.replace(".warc.wat.gz", ".warc.gz").replace(".wat", "")
        self._source = _SourceWarc(source_name, exact=self.exact_container)
        self._write_wat_warcinfo()
        self._write_source_warcinfo()

    def __enter__(self) -> WatWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns:
            self._out.close()
        else:
            self._out.flush()

    @property
    def pages(self) -> int:
        return self._pages

    @property
    def bytes_written(self) -> int:
        return self._written

    # -- ids, dates, framing -----------------------------------------------------------------
    def _record_id(self) -> str:
        """Deterministic version-4-shaped UUIDs, so committed fixtures are reproducible."""
        self._ids += 1
        digest = hashlib.sha256(f"{self.seed}|{self.filename}|{self._ids}".encode()).digest()
        return f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>"

    @property
    def wat_time(self) -> datetime:
        """WAT extraction time: some days after the crawl, as in Common Crawl."""
        return self.crawl_start + timedelta(days=13)

    def write_record(self, fields: Sequence[tuple[str, str]], block: bytes, kind: str) -> None:
        """Frame one record (Content-Length and digests are added here) as its own gzip member."""
        fields = list(fields)
        at = next(i for i, (k, _) in enumerate(fields) if k == "Content-Type") + 1
        fields.insert(at, ("Content-Length", str(len(block))))
        if self.layout == "2024":
            digest = sha1_b32(block)
            if kind != "warcinfo":
                fields.append(("WARC-Payload-Digest", digest))
            fields.append(("WARC-Block-Digest", digest))
        member = gzip_member(warc_record(fields, block), self.compresslevel)
        self.members.append((self._written, len(member), kind))
        self._out.write(member)
        self._written += len(member)

    def _write_metadata(
        self, target_uri: str, refers_to: str, doc: JsonDict, kind: str, transform: Transform = None
    ) -> None:
        block = _dumps(doc)
        if transform is not None:
            block = transform(block)
        fields = [
            ("WARC-Type", "metadata"),
            ("WARC-Target-URI", target_uri),
            ("WARC-Date", _warc_date(self.wat_time)),
            ("WARC-Record-ID", self._record_id()),
            ("WARC-Refers-To", refers_to),
            ("Content-Type", "application/json"),
        ]
        self.write_record(fields, block, kind)

    def _doc(self, record: _SourceRecord, payload: JsonDict, content_type: str) -> JsonDict:
        """The whole JSON document; the Envelope layout differs between ia-web-commons versions."""
        container = record.container(self._source.filename)
        http = content_type.startswith("application/http")
        slop = "4" if http else "0"  # as in real WATs: warc-fields records report no slop
        length = str(record.content_length)
        if self.layout == "2019":
            payload = {"Actual-Content-Type": content_type, **payload}
            if not http:
                payload["Actual-Content-Length"] = length
            payload["Trailing-Slop-Length"] = slop
            if "WARC-Info-Metadata" in payload:
                payload["Headers-Corrupt"] = True  # ia-web-commons 1.1.9 flags every warcinfo
            envelope = {
                "Format": "WARC",
                "WARC-Header-Length": str(record.header_length),
                "Block-Digest": record.block_digest,
                "Actual-Content-Length": length,
                "WARC-Header-Metadata": dict(record.fields),
                "Payload-Metadata": payload,
            }
            return {"Container": container, "Envelope": envelope}
        payload = {
            "Actual-Content-Type": content_type,
            **payload,
            "Actual-Content-Length": length,
            "Trailing-Slop-Length": slop,
            "Block-Digest": record.block_digest,
        }
        envelope = {
            "Payload-Metadata": payload,
            "Format": "WARC/1.0",
            "WARC-Header-Length": str(record.header_length),
            "WARC-Header-Metadata": dict(record.fields),
        }
        return {"Container": container, "Envelope": envelope}

    # -- warcinfo ----------------------------------------------------------------------------
    def _write_wat_warcinfo(self) -> None:
        block = _warc_fields_block(
            [
                ("Software-Info", SOFTWARE),
                ("Extracted-Date", format_datetime(self.wat_time, usegmt=True)),
                ("format", "WARC File Format 1.0"),
                ("conformsTo", "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf"),
                ("description", DERIVED_NOTE),
            ]
        )
        fields = [
            ("WARC-Type", "warcinfo"),
            ("WARC-Date", _warc_date(self.wat_time)),
            ("WARC-Filename", str(self.filename)),
            ("WARC-Record-ID", self._record_id()),
            ("Content-Type", "application/warc-fields"),
        ]
        self.write_record(fields, block, "warcinfo")

    def _write_source_warcinfo(self) -> None:
        info = {
            "software": SOFTWARE,
            "format": "WARC File Format 1.1",
            "isPartOf": "metaclip-watgen-derived",
            "description": DERIVED_NOTE,
        }
        self._warcinfo_id = self._record_id()
        fields = [
            *_record_start("warcinfo", self.crawl_start, self._warcinfo_id),
            ("WARC-Filename", self._source.filename),
        ]
        record = self._source.add(fields, _warc_fields_block(list(info.items())))
        doc = self._doc(record, {"WARC-Info-Metadata": info}, "application/warc-fields")
        self._write_metadata(self._source.filename, self._warcinfo_id, doc, "metadata-warcinfo")

    # -- pages -------------------------------------------------------------------------------
    def add_page(
        self,
        target_uri: str,
        html_page: str | bytes,
        *,
        warc_date: datetime | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        html_metadata: tuple[JsonDict, list[JsonDict]] | None = None,
        transform: Transform = None,
    ) -> tuple[JsonDict, list[JsonDict]]:
        """Write the WAT records of one capture of a page; returns the (Head, Links) written.

        html_page: str, or bytes kept as the HTTP entity and decoded by their charset.
        headers: HTTP response headers added to / overriding the defaults.
        html_metadata: (Head, Links) to write instead of parsing the page (benchmarks).
        transform: applied to the response record's JSON bytes (to write damaged files).
        """
        entity, text, charset = _entity_and_text(html_page, headers)
        head, links = html_to_wat_links(text) if html_metadata is None else html_metadata
        date = warc_date or self.crawl_start + timedelta(seconds=7 * self._pages)
        self._pages += 1
        capture = self._capture(target_uri, date, entity, status, headers, charset)
        if self.with_request_records:
            doc = self._doc(
                capture.request,
                {"HTTP-Request-Metadata": capture.request_http},
                "application/http; msgtype=request",
            )
            self._write_metadata(target_uri, capture.request.record_id, doc, "metadata-request")
        http = {**capture.response_http, "HTML-Metadata": {"Head": head, "Links": links}}
        doc = self._doc(
            capture.response, {"HTTP-Response-Metadata": http}, "application/http; msgtype=response"
        )
        self._write_metadata(
            target_uri, capture.response.record_id, doc, "metadata-response", transform
        )
        if self.with_metadata_records:
            records = [{"Name": k, "Value": v} for k, v in capture.metadata_fields]
            payload = {"WARC-Metadata-Metadata": {"Metadata-Records": records}}
            doc = self._doc(capture.metadata, payload, "application/metadata-fields")
            self._write_metadata(target_uri, capture.metadata.record_id, doc, "metadata-metadata")
        return head, links

    def _capture(
        self,
        target_uri: str,
        date: datetime,
        entity: bytes,
        status: int,
        headers: Mapping[str, str] | None,
        charset: str,
    ) -> _Capture:
        """Account for the request, response and metadata records of one capture."""
        parts = urlsplit(target_uri)
        ids = [self._record_id() for _ in range(3)]
        warcinfo = ("WARC-Warcinfo-ID", self._warcinfo_id)
        ip = ("WARC-IP-Address", _test_net_ip(parts.hostname or ""))
        uri = ("WARC-Target-URI", target_uri)
        request, request_http = self._request(parts, date, ids[0], [warcinfo, ip, uri])
        response_fields = [warcinfo, ("WARC-Concurrent-To", ids[0]), ip, uri]
        response, response_http = self._response(
            date,
            ids[1],
            response_fields,
            entity,
            status,
            _response_headers(date, entity, headers, charset),
        )
        metadata_fields = [("charset-detected", charset)]
        metadata = self._source.add(
            [
                *_record_start("metadata", date, ids[2]),
                warcinfo,
                ("WARC-Concurrent-To", ids[1]),
                uri,
            ],
            _warc_fields_block(metadata_fields)[:-2],  # CC's metadata blocks end with one CRLF
        )
        return _Capture(request, response, metadata, request_http, response_http, metadata_fields)

    def _request(
        self, parts: SplitResult, date: datetime, record_id: str, fields: list[tuple[str, str]]
    ) -> tuple[_SourceRecord, JsonDict]:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [*_REQUEST_HEADERS, ("Host", parts.netloc), ("Connection", "Keep-Alive")]
        head = _http_head(f"GET {path} HTTP/1.1", headers)
        empty_digest = sha1_b32(b"")
        record = self._source.add(
            [
                *_record_start("request", date, record_id),
                *fields,
                ("WARC-Payload-Digest", empty_digest),
            ],
            b"",
            head,
        )
        message = {"Method": "GET", "Path": path, "Version": "HTTP/1.1"}
        return record, _http_metadata("Request-Message", message, head, headers, b"", empty_digest)

    def _response(
        self,
        date: datetime,
        record_id: str,
        fields: list[tuple[str, str]],
        entity: bytes,
        status: int,
        headers: list[tuple[str, str]],
    ) -> tuple[_SourceRecord, JsonDict]:
        reason = _reason(status)
        head = _http_head(f"HTTP/1.1 {status} {reason}", headers)
        digest = sha1_b32(entity)
        record = self._source.add(
            [
                *_record_start("response", date, record_id),
                *fields,
                ("WARC-Payload-Digest", digest),
                ("WARC-Identified-Payload-Type", "text/html"),
            ],
            entity,
            head,
        )
        message = {"Version": "HTTP/1.1", "Status": str(status), "Reason": reason}
        return record, _http_metadata("Response-Message", message, head, headers, entity, digest)


def _record_start(kind: str, date: datetime, record_id: str) -> list[tuple[str, str]]:
    """First WARC fields of a source record (Content-Length is inserted after the third)."""
    content_type = {
        "request": "application/http; msgtype=request",
        "response": "application/http; msgtype=response",
    }.get(kind, "application/warc-fields")
    return [
        ("WARC-Type", kind),
        ("WARC-Date", _warc_date(date)),
        ("WARC-Record-ID", record_id),
        ("Content-Type", content_type),
    ]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _entity_and_text(
    page: str | bytes, headers: Mapping[str, str] | None
) -> tuple[bytes, str, str]:
    if isinstance(page, bytes):
        content_type = next(
            (v for k, v in (headers or {}).items() if k.lower() == "content-type"), None
        )
        text, charset = decode_html(page, content_type)
        return page, text, charset
    return page.encode("utf-8", errors="surrogatepass"), page, "UTF-8"


def _test_net_ip(host: str) -> str:
    """A documentation-range address (RFC 5737): stable per host, obviously not a real server."""
    digest = hashlib.sha256(host.encode()).digest()
    prefix = ("192.0.2", "198.51.100", "203.0.113")[digest[0] % 3]
    return f"{prefix}.{1 + digest[1] % 254}"


def _response_headers(
    date: datetime, entity: bytes, headers: Mapping[str, str] | None, charset: str
) -> list[tuple[str, str]]:
    merged = {
        "Date": format_datetime(date, usegmt=True),
        "Server": "nginx",
        "Content-Type": f"text/html; charset={charset}",
        "Connection": "keep-alive",
    }
    merged.update(headers or {})
    merged["Content-Length"] = str(len(entity))  # CC rewrites it to the stored length
    return list(merged.items())


def _http_head(start_line: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [start_line] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _http_metadata(
    message_key: str,
    message: JsonDict,
    head: bytes,
    headers: Sequence[tuple[str, str]],
    entity: bytes,
    entity_digest: str,
) -> JsonDict:
    return {
        message_key: message,
        "Headers-Length": str(len(head)),
        "Headers": dict(headers),
        "Entity-Length": str(len(entity)),
        "Entity-Digest": entity_digest,
        "Entity-Trailing-Slop-Length": "0",
    }


# --------------------------------------------------------------------------------------------
# Deliberately damaged files (for error-handling tests)
# --------------------------------------------------------------------------------------------

NON_UTF8_MARKER = "@@NON-UTF8@@"
NON_UTF8_TEXT = "Caf\u00e9 M\u00fcller \u2013 Stra\u00dfe"  # written as cp1252 bytes, not UTF-8


def _break_json(block: bytes) -> bytes:
    """Cut the JSON in the middle of its Links array: invalid JSON, exact Content-Length."""
    return block[: max(1, block.find(b'"Links"') + 40)] + b"<<< truncated JSON"


def _non_utf8(block: bytes) -> bytes:
    """Raw cp1252 bytes inside a JSON string: valid framing, invalid UTF-8."""
    doc = orjson.loads(block)
    http = doc["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    links = http["HTML-Metadata"]["Links"]
    img = next((lnk for lnk in links if lnk.get("path") == "IMG@/src"), None)
    if img is None:
        img = {"path": "IMG@/src", "url": "/non-utf8.jpg"}
        links.append(img)
    img["alt"] = NON_UTF8_MARKER
    return _dumps(doc).replace(NON_UTF8_MARKER.encode(), NON_UTF8_TEXT.encode("cp1252"))


def truncate_gzip_member(data: bytes, members: Sequence[tuple[int, int, str]], index: int) -> bytes:
    """Cut a WAT file half-way through its gzip member number `index`."""
    offset, length, _ = members[index]
    return data[: offset + length // 2]


def write_damaged_variants(
    out_dir: str | os.PathLike[str],
    pages: Sequence[tuple[str, str | bytes]],
    *,
    layout: Layout = "2024",
) -> dict[str, Path]:
    """Write three damaged WAT files from (target_uri, html) pages (at least 2); returns paths.

    broken-json: the 2nd page's response JSON is cut short (framing and Content-Length intact).
    non-utf8: the 2nd page's response JSON has an IMG alt in raw cp1252 bytes.
    truncated: the file stops half-way through the gzip member of the 2nd page's response record.
    """
    if len(pages) < 2:
        raise ValueError("need at least 2 pages")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, transform in (("broken-json", _break_json), ("non-utf8", _non_utf8)):
        paths[name] = out / f"damaged-{name}.warc.wat.gz"
        with WatWriter(paths[name], layout=layout, seed=name) as writer:
            for i, (uri, page) in enumerate(pages):
                writer.add_page(uri, page, transform=transform if i == 1 else None)
    buffer = io.BytesIO()
    name = "damaged-truncated.warc.wat.gz"
    with WatWriter(buffer, filename=name, layout=layout, seed="truncated") as writer:
        for uri, page in pages:
            writer.add_page(uri, page)
    responses = [i for i, m in enumerate(writer.members) if m[2] == "metadata-response"]
    paths["truncated"] = out / name
    paths["truncated"].write_bytes(
        truncate_gzip_member(buffer.getvalue(), writer.members, responses[1])
    )
    return paths
