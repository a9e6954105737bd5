"""Collect (image, text) pairs from any source format into the PAIRS schema.

WAT and WARC extraction both feed a PairBuffer, so url resolution, uuid, text cleaning and the
within-file dedup of (uuid, text) are the same whatever the input format.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits
from metaclip.extraction.urls import (
    clean_text,
    image_uuid,
    page_base,
    resolve_image_url,
    url_refusal,
)
from metaclip.io.schemas import PAIRS, TEXT_KEYS

# Fast paths that give exactly what resolve_image_url gives (urljoin + urlsplit), for the src
# shapes that are most of the web's: urljoin returns such a URL as written (or under the base's
# origin / scheme), so the slow general parse is skipped. Anything unusual (userinfo, IPv6,
# ';' params, empty '?' or '#', dot or empty path segments, controls) takes the general path.
_HOST = r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?"
_TAIL = r"(?:[/?#][^\x00-\x20\x7f\\;]*)?"
_ABSOLUTE = re.compile(rf"https?://{_HOST}{_TAIL}")
_PROTOCOL_RELATIVE = re.compile(rf"//{_HOST}{_TAIL}")
_ROOT_RELATIVE = re.compile(r"/(?![/.])[^\x00-\x20\x7f\\;]*")
_ORIGIN = re.compile(rf"(https?:)//{_HOST}(?=[/?#]|$)")  # a base that urlsplit takes as is
_NOT_HTTP = ("data:", "javascript:")


@dataclass
class ExtractStats:
    """What one or more input files yielded, and what was skipped, by reason."""

    files: int = 0
    records: int = 0  # WARC records read
    pages: int = 0  # records that carried HTML metadata / an HTML page
    images: int = 0  # <img> links seen
    pairs: int = 0  # pairs kept after within-file dedup
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def merge(self, other: ExtractStats) -> None:
        self.files += other.files
        self.records += other.records
        self.pages += other.pages
        self.images += other.images
        self.pairs += other.pairs
        self.skipped.update(other.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "records": self.records,
            "pages": self.pages,
            "images": self.images,
            "pairs": self.pairs,
            "skipped": dict(sorted(self.skipped.items())),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExtractStats:
        return cls(
            files=d["files"],
            records=d["records"],
            pages=d["pages"],
            images=d["images"],
            pairs=d["pairs"],
            skipped=Counter(d.get("skipped", {})),
        )


class PairBuffer:
    """Accumulates pairs of one input file column-wise, dropping duplicate (uuid, text)."""

    def __init__(
        self, source: str, stats: ExtractStats, limits: ExtractLimits = DEFAULT_LIMITS
    ) -> None:
        self.source = source
        self.stats = stats
        self.limits = limits
        # uuid + text: a uuid is always 24 characters, so the key is unambiguous; strings, not
        # tuples, so that the cyclic GC has nothing to walk through (it re-scans every tracked
        # object of a file's buffer at each full collection: a third of the time, with tuples).
        self._seen: set[str] = set()
        self._base_key: tuple[str, str | None] | None = None
        self._base_url = ""
        self._origin: re.Match[str] | None = None
        # Images recur within a file (site-wide logos, re-crawled pages): remember the
        # base-independent resolutions and the uuids.
        self._absolute: dict[str, str] = {}
        self._uuids: dict[str, str] = {}
        # The columns, kept apart for the same reason; page_url and record_offset as one run
        # per page: (page_url, record_offset, rows).
        self._uuid: list[str] = []
        self._url: list[str] = []
        self._text: list[str] = []
        self._key: list[str] = []
        self._pages: list[tuple[str, int, int]] = []

    def add_image(
        self,
        page_url: str,
        base_href: str | None,
        src: Any,
        attrs: Mapping[str, Any],
        record_offset: int,
    ) -> None:
        """Add one <img>: one row per non-empty text among alt, title, data-image-title."""
        self.add_images(page_url, base_href, [(src, attrs)], record_offset)

    def add_images(
        self,
        page_url: str,
        base_href: str | None,
        images: Sequence[tuple[Any, Mapping[str, Any]]],
        record_offset: int,
    ) -> None:
        """Add a page's <img>s, each as (src, attributes): add_image for each, in one loop
        (this is the extraction's hot loop, hence the local names)."""
        if (page_url, base_href) != self._base_key:
            self._set_base(page_url, base_href)
        stats, limits = self.stats, self.limits
        stats.images += len(images)
        skipped, seen, uuids = stats.skipped, self._seen, self._uuids
        if len(images) > limits.max_images_per_page:
            skipped["images_over_page_limit"] += len(images) - limits.max_images_per_page
            images = images[: limits.max_images_per_page]
        absolute = self._absolute if self._origin is not None else {}
        resolve, max_text = self._resolve, limits.max_text_chars
        add_uuid, add_url, add_text, add_key = (
            self._uuid.append, self._url.append, self._text.append, self._key.append
        )
        pairs = 0
        for src, attrs in images:
            if not isinstance(src, str):
                skipped["img_without_src"] += 1
                continue
            url = absolute.get(src) or resolve(src)
            if url.__class__ is not str:
                skipped[url[0] if url else "img_url_not_http"] += 1
                continue
            uuid = None
            for key in TEXT_KEYS:  # one row per non-empty text, in this order
                value = attrs.get(key)
                if not isinstance(value, str):
                    continue
                if len(value) > max_text:  # cut before any work on it (cleaning, LID, matching)
                    value = value[:max_text]
                    skipped["text_truncated"] += 1
                # clean_text, without its two replaces for the texts without line breaks
                text = clean_text(value) if "\n" in value or "\r" in value else value.strip()
                if not text:
                    continue
                if uuid is None:
                    uuid = uuids.get(url)
                    if uuid is None:
                        uuid = uuids[url] = image_uuid(url)
                pair = uuid + text
                if pair in seen:
                    skipped["duplicate_pair_in_file"] += 1
                    continue
                seen.add(pair)
                add_uuid(uuid)
                add_url(url)
                add_text(text)
                add_key(key)
                pairs += 1
            if uuid is None:
                skipped["img_without_text"] += 1
        if pairs:
            self._pages.append((page_url, record_offset, pairs))
        stats.pairs += pairs

    def _set_base(self, page_url: str, base_href: str | None) -> None:
        """A page's images share one base: resolve it (and its origin) once per page."""
        self._base_key = (page_url, base_href)
        self._base_url = page_base(page_url, base_href)
        self._origin = _ORIGIN.match(self._base_url)

    def _resolve(self, src: str) -> str | tuple[str] | None:
        """resolve_image_url(base, src) for the current page's base, fast for common shapes;
        None for a URL that is not http(s), (reason,) for one refused by url_refusal."""
        max_url = self.limits.max_url_chars
        s = src.strip()
        if s[:11].lower().startswith(_NOT_HTTP):
            return None
        if len(s) > max_url:  # before any parsing of it
            return ("img_url_too_long",)
        origin = self._origin
        if origin is not None and s and s[-1] not in "?#" and "?#" not in s:
            if _ABSOLUTE.fullmatch(s):
                self._absolute[src] = s  # the same whatever the (well-formed) base
                return s
            if _PROTOCOL_RELATIVE.fullmatch(s):
                url = origin.group(1) + s
                return url if len(url) <= max_url else ("img_url_too_long",)
            if _ROOT_RELATIVE.fullmatch(s) and "//" not in s and "/." not in s:
                url = origin.group(0) + s
                return url if len(url) <= max_url else ("img_url_too_long",)
        # The shapes above hold no userinfo and no control character; the rest is checked.
        url = resolve_image_url(self._base_url, src)
        if url is None:
            return None
        refused = url_refusal(url, max_url)
        return (refused,) if refused else url

    def to_table(self) -> pa.Table:
        page_url: list[str] = []
        record_offset: list[int] = []
        for page, offset, rows in self._pages:
            page_url += [page] * rows
            record_offset += [offset] * rows
        data = {
            "uuid": self._uuid,
            "url": self._url,
            "text": self._text,
            "text_key": self._key,
            "page_url": page_url,
            "source": [self.source] * len(self._uuid),
            "record_offset": record_offset,
        }
        return pa.table({name: data[name] for name in PAIRS.names}, schema=PAIRS)


def concat_pairs(tables: Iterable[pa.Table]) -> pa.Table:
    tables = list(tables)
    return pa.concat_tables(tables) if tables else PAIRS.empty_table()
