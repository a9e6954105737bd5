"""Rebuild the demo data in metaclip/demo_data (see its PROVENANCE.txt).

  python tools/make_demo_data.py [--pages TAR] [--wordnet TAR] [--only wat|metadata]

demo-000{0..3}.warc.wat.gz: all 110 real pages of the trafilatura test cache, each written 1-4
    times under different target URIs of its site (query-string variants of its URI, so relative
    image URLs resolve to the same absolute URL and counts accumulate like a crawl's duplicates);
    the copies of a page are spread over the files. Written by tools.watgen.
metadata.json: MetaCLIP's WordNet part of the metadata: {"0".."99"} plus every WordNet 3.0 synset
    name up to its first '.', '_' -> ' ' (MetaCLIP build_metadata.py wordnet_synsets()), sorted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import string
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "metaclip" / "demo_data"
sys.path.insert(0, str(REPO))

from tools.watgen import (  # noqa: E402 - needs the repo on sys.path when run as a script
    WatWriter,
    decode_html,
    guess_page_uri,
    html_to_wat_links,
    iter_tar_pages,
)

PAGES_TAR = "/work/shared/data/html-pages/trafilatura-tests-cache-110pages.tar.gz"
WORDNET_TAR = "/work/shared/data/wordnet/nltk_data-corpora-wordnet-3.0-debian.tar.gz"
N_FILES = 4
VARIANTS = ("", "utm_source=newsletter", "ref=rss", "amp=1")  # "" is the page's own URI
EXPECTED_ENTRIES = 86_654  # the size MetaCLIP reports for its WordNet part


def copies(name: str) -> int:
    """1-4 copies per page, fixed by its name, so pages get different duplicate counts."""
    return 1 + hashlib.sha256(name.encode()).digest()[0] % len(VARIANTS)


def variant_uri(uri: str, query: str) -> str:
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def build_wats(pages_tar: str) -> list[Path]:
    paths = [DEMO / f"demo-{i:04d}.warc.wat.gz" for i in range(N_FILES)]
    writers = [WatWriter(p, seed="metaclip-demo", compresslevel=9) for p in paths]
    for index, (name, data) in enumerate(iter_tar_pages(pages_tar)):
        head, links = html_to_wat_links(decode_html(data)[0])
        uri = guess_page_uri(name, head)
        for k in range(copies(name)):
            writer = writers[(index + k) % N_FILES]
            writer.add_page(variant_uri(uri, VARIANTS[k]), data, html_metadata=(head, links))
    for writer in writers:
        writer.close()
    return paths


def wordnet_entries(wordnet_tar: str) -> list[str]:
    with tempfile.TemporaryDirectory() as nltk_data:
        with tarfile.open(wordnet_tar) as tar:
            tar.extractall(nltk_data, filter="data")
        os.environ["NLTK_DATA"] = nltk_data
        import nltk  # imported late: nltk reads NLTK_DATA when imported

        nltk.data.path.insert(0, nltk_data)
        from nltk.corpus import wordnet as wn

        names = {s.name()[: s.name().find(".")].replace("_", " ") for s in wn.all_synsets()}
    entries = {str(i) for i in range(100)}
    entries |= {n for n in names if n and n not in string.punctuation}
    return sorted(entries)


def build_metadata(wordnet_tar: str) -> Path:
    entries = wordnet_entries(wordnet_tar)
    if len(entries) != EXPECTED_ENTRIES:
        raise SystemExit(f"expected {EXPECTED_ENTRIES} entries, got {len(entries)}")
    path = DEMO / "metadata.json"
    path.write_text(json.dumps(entries, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default=PAGES_TAR, help="saved-pages tarball")
    parser.add_argument("--wordnet", default=WORDNET_TAR, help="NLTK WordNet 3.0 tarball")
    parser.add_argument("--only", choices=["wat", "metadata"])
    args = parser.parse_args()
    paths = [] if args.only == "metadata" else build_wats(args.pages)
    if args.only != "wat":
        paths.append(build_metadata(args.wordnet))
    for path in paths:
        print(f"wrote {path.name} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
