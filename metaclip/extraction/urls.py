"""Image URL resolution and MetaCLIP's image uuid."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urljoin, urlsplit

ALLOWED_SCHEMES = ("http", "https")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def image_uuid(url: str) -> str:
    """MetaCLIP's uuid: first 24 hex chars of sha224 of the URL with tabs and spaces removed."""
    cleaned = url.replace("\t", "").replace(" ", "")
    return hashlib.sha224(cleaned.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def page_base(page_url: str, base_href: str | None) -> str:
    """The URL that relative links resolve against: <base href> (itself relative to the page)."""
    if base_href:
        base_href = base_href.strip()
        if base_href:
            try:
                resolved = urljoin(page_url, base_href)
            except ValueError:
                return page_url
            if urlsplit(resolved).scheme in ALLOWED_SCHEMES:
                return resolved
    return page_url


def resolve_image_url(base: str, src: str) -> str | None:
    """Absolute http(s) URL of an <img src>, or None (data:, javascript:, malformed, empty)."""
    src = src.strip()  # browsers strip surrounding whitespace from URL attributes
    if not src:
        return None
    try:
        url = urljoin(base, src)
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme not in ALLOWED_SCHEMES or not parts.netloc:
        return None
    return url


def url_refusal(url: str, max_chars: int) -> str | None:
    """Why a resolved image URL is not kept, or None. Refused: longer than max_chars; with
    userinfo (`user:pass@`: credentials must not be published in a dataset, nor sent by the
    downloader); with control characters (urljoin has already removed tabs and line breaks, as
    browsers do). Backslashes are kept as written, as MetaCLIP keeps them."""
    if len(url) > max_chars:
        return "img_url_too_long"
    if "@" in url and "@" in urlsplit(url).netloc:
        return "img_url_credentials"
    if _CONTROL.search(url):
        return "img_url_control_chars"
    return None


def clean_text(text: str) -> str:
    """MetaCLIP's text cleaning: newlines to spaces, then strip."""
    return text.replace("\n", " ").replace("\r", " ").strip()
