"""The limits that bound the memory and time one input record can cost, owned here.

A crawl is billions of records written by strangers. Every limit is applied before the expensive
step it protects (decompression, JSON or HTML parsing, URL resolution, language ID, matching),
and every limit hit is counted in the run's `skipped` by the reason named beside it, so a worker's
memory is bounded by these numbers, not by the input. The defaults never touch Common Crawl's
own records (it truncates payloads at 1 MiB); they stop hostile and broken ones.

- max_record_bytes (8 MiB): a WARC record block (WAT JSON, HTTP response) over it is skipped
  and never held in memory; also the cap on a Content-Encoding gzip body. `record_too_large`.
- max_header_bytes (64 KiB): a WARC header block over it is damage; the record is skipped.
  `record_header_invalid`.
- max_images_per_page (10,000): the images of a page past it are dropped.
  `images_over_page_limit` (one per image).
- max_text_chars (4,096): a longer alt/title text is cut to it, then cleaned and matched
  (CLIP reads 77 tokens of a caption, a few hundred characters). `text_truncated`.
- max_url_chars (2,048): a longer image URL (as written, and after resolution) is skipped.
  `img_url_too_long`.
- max_inflate_bytes (256 MiB): how much of a member over max_record_bytes is decompressed, and
  dropped, to find its end; past it the reader looks for the next gzip member in the compressed
  bytes, so a decompression bomb costs time linear in its compressed size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MIB = 2**20


@dataclass(frozen=True)
class ExtractLimits:
    """Per-record bounds of extraction (see the module docstring for each)."""

    max_record_bytes: int = 8 * MIB
    max_header_bytes: int = 64 * 1024
    max_images_per_page: int = 10_000
    max_text_chars: int = 4096
    max_url_chars: int = 2048
    max_inflate_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{f.name} must be a positive integer, got {value!r}")
        if self.max_inflate_bytes < self.max_record_bytes:
            raise ValueError("limits.max_inflate_bytes must be at least limits.max_record_bytes")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ExtractLimits:
        """Limits from a mapping of some of the fields (the rest default); unknown keys refused."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {known}")
        return cls(**values)


DEFAULT_LIMITS = ExtractLimits()
