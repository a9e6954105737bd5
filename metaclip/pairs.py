"""Collect (image, text) pairs from any source format into the PAIRS schema.

WAT and WARC extraction both feed a PairBuffer, so url resolution, uuid, text cleaning and the
within-file dedup of (uuid, text) are the same whatever the input format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from metaclip.schemas import PAIRS, TEXT_KEYS
from metaclip.urls import clean_text, image_uuid, page_base, resolve_image_url


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

    def __init__(self, source: str, stats: ExtractStats) -> None:
        self.source = source
        self.stats = stats
        self._seen: set[tuple[str, str]] = set()
        self._cols: dict[str, list[Any]] = {name: [] for name in PAIRS.names}

    def add_image(
        self,
        page_url: str,
        base_href: str | None,
        src: Any,
        attrs: Mapping[str, Any],
        record_offset: int,
    ) -> None:
        """Add one <img>: one row per non-empty text among alt, title, data-image-title."""
        self.stats.images += 1
        if not isinstance(src, str):
            self.stats.skip("img_without_src")
            return
        url = resolve_image_url(page_base(page_url, base_href), src)
        if url is None:
            self.stats.skip("img_url_not_http")
            return
        texts = self._texts(attrs)
        if not texts:
            self.stats.skip("img_without_text")
            return
        uuid = image_uuid(url)
        for key, text in texts:
            if (uuid, text) in self._seen:
                self.stats.skip("duplicate_pair_in_file")
                continue
            self._seen.add((uuid, text))
            self._append(uuid, url, text, key, page_url, record_offset)

    def _texts(self, attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        for key in TEXT_KEYS:
            value = attrs.get(key)
            if isinstance(value, str):
                text = clean_text(value)
                if text:
                    out.append((key, text))
        return out

    def _append(
        self, uuid: str, url: str, text: str, key: str, page_url: str, offset: int
    ) -> None:
        cols = self._cols
        cols["uuid"].append(uuid)
        cols["url"].append(url)
        cols["text"].append(text)
        cols["text_key"].append(key)
        cols["page_url"].append(page_url)
        cols["source"].append(self.source)
        cols["record_offset"].append(offset)
        self.stats.pairs += 1

    def to_table(self) -> pa.Table:
        return pa.table(self._cols, schema=PAIRS)


def concat_pairs(tables: Iterable[pa.Table]) -> pa.Table:
    tables = list(tables)
    return pa.concat_tables(tables) if tables else PAIRS.empty_table()
