"""Extraction: Common Crawl WAT and WARC files to (image URL, text) pairs, with a language.

records (gzip members and WARC records, within limits, resynchronised after damage) -> wat /
warc (one file's pairs; warc via html for the HTML) -> pairs (the PAIRS table: URL
resolution, uuid, text cleaning, within-file dedup) -> lid (fastText language of each text).
limits owns the per-record bounds; urls owns image URL resolution and MetaCLIP's uuid.
"""

from __future__ import annotations

import importlib.machinery


def compiled() -> bool:
    """Whether this install's extraction hot path is the compiled one (setup.py's
    METACLIP_COMPILE=1 build): the mypyc modules (judged by metaclip.extraction.records), the
    C page path of WAT files (metaclip.extraction._watpage) and the language ID kernel
    (metaclip.extraction._lid) all load."""
    from metaclip.extraction import lid, records, wat

    mypyc = (records.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    return mypyc and wat.add_wat_page is not None and lid.FastTextKernel is not None
