"""Extraction: Common Crawl WAT and WARC files to (image URL, text) pairs, with a language.

records (gzip members and WARC records, within limits, resynchronised after damage) -> wat /
warc (one file's pairs; warc via html for the HTML) -> pairs (the PAIRS table: URL
resolution, uuid, text cleaning, within-file dedup) -> lid (fastText language of each text).
limits owns the per-record bounds; urls owns image URL resolution and MetaCLIP's uuid.
"""

from __future__ import annotations

import importlib.machinery


def compiled() -> bool:
    """Whether this install's extraction hot path is the mypyc-compiled one (setup.py's
    METACLIP_COMPILE=1 build), judged by metaclip.extraction.records."""
    from metaclip.extraction import records

    return (records.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
