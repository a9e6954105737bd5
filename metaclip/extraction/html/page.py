"""One HTML page to its image pairs: whether a record is HTML, and the bounded parse of a page.

Every `<img>` goes through `PairBuffer.add_images`, as the WAT path's links do."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from metaclip.extraction.html.bound import needs_scan, nesting_cut
from metaclip.extraction.pairs import ExtractStats, PairBuffer

try:  # selectolax >= 1.0: parse without DOM mutation events (see bound.py's docstring)
    from selectolax.lexbor import LexborDocumentOptions

    _PARSE_OPTIONS = {"options": int(LexborDocumentOptions.WO_EVENTS)}
except ImportError:  # pragma: no cover - older selectolax has no mutation events to turn off
    _PARSE_OPTIONS = {}

HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES
    head = body[:1024].lstrip().lower()  # no Content-Type: sniff, as browsers do
    return head.startswith((b"<!doctype html", b"<head", b"<body")) or b"<html" in head


def add_html_page(
    html: str, page_url: str, offset: int, buffer: PairBuffer, stats: ExtractStats
) -> None:
    """Add the image pairs of one HTML page (of what comes before its cut, if it has one)."""
    if needs_scan(html) and (cut := nesting_cut(html)) is not None:
        stats.skip("page_cut_too_deep")  # counted; the pairs before the cut are kept
        html = html[:cut]
    tree = LexborHTMLParser(html, **_PARSE_OPTIONS)
    stats.pages += 1
    base = tree.css_first("base[href]")  # the first <base href> counts, as in browsers
    base_href = base.attributes.get("href") if base is not None else None
    images = [(attrs.get("src"), attrs) for attrs in (img.attributes for img in tree.css("img"))]
    buffer.add_images(page_url, base_href, images, offset)
