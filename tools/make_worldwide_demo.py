"""Rebuild the worldwide (MetaCLIP 2) demo's WAT files in metaclip/demo_worldwide.

  python tools/make_worldwide_demo.py

Reads only committed files (no network, no extra package), so reruns give the same bytes:

* real pages: the Common Crawl / ClueWeb09 captures in tests/data/real and tests/data/warc
  (Chinese, Japanese, Russian, German, Dutch, Aragonese, English), and the English demo's own
  saved pages (tests/data/warc/pages, 8 of the trafilatura pages behind metaclip/demo_data);
* tests/data/worldwide/alt_texts.jsonl: its CLDR and Debian rows (names in 45 locales and
  many scripts) become the alt texts of small made-up "gallery" pages. A country's flag and a
  file-type icon ('JPEG image') have the same image URL in every language, so one picture
  carries alt texts in many languages; other concepts get one image per language site.

Every page is written 1-3 times (gallery pages 1-2) under different URIs of its site (the
original and query-string variants), spread over the files, so (url, alt) pairs repeat like a
crawl's duplicates; every gallery page also repeats its site's logo. Written by tools.watgen.

No metadata is written here: build it from tests/data/worldwide_sources (see PROVENANCE.txt).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metaclip.extraction.warc import dechunk  # noqa: E402
from tools.watgen import WatWriter, decode_html  # noqa: E402 - needs the repo on sys.path

OUT = REPO / "metaclip" / "demo_worldwide"
ALTS = REPO / "tests" / "data" / "worldwide" / "alt_texts.jsonl"
N_FILES = 3
SEED = "metaclip-worldwide-demo"
VARIANTS = ("", "utm_source=newsletter", "ref=rss")  # "" is the page's own URI
IMAGES_PER_PAGE = 12

CC2020 = "tests/data/real/CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz"
# (committed WARC, response records to use (counted from 0), charset if the page declares none)
REAL_WARCS: tuple[tuple[str, tuple[int, ...], str | None], ...] = (
    # Chinese, Russian, German and Dutch sites; the adult / gambling spam captures are left out.
    (CC2020, (0, 1, 8, 9, 10, 12, 14), None),
    ("tests/data/real/CC-MAIN-2024-22-whirlwind.warc.gz", (0,), None),  # an.wikipedia.org
    ("tests/data/warc/clueweb09-ja-quirk.warc.gz", tuple(range(8)), "EUC-JP"),  # Japanese shop
    ("tests/data/warc/dolma-sample-0001.warc.gz", (0, 1, 4, 6, 7), None),  # English, long alts
)
PAGES = REPO / "tests" / "data" / "warc" / "pages"  # English demo pages (index.json)


def digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def copies(key: str, most: int) -> int:
    return 1 + digest(SEED, key)[0] % most


def variant_uri(uri: str, query: str) -> str:
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def real_pages() -> Iterator[tuple[str, str, str | bytes, dict[str, str], str]]:
    """(key, target URI, page, HTTP headers, provenance) of each real page."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    for rel, wanted, charset in REAL_WARCS:
        with open(REPO / rel, "rb") as f:
            records = ArchiveIterator(
                f, record_types=WarcRecordType.response, parse_http=True, strict_mode=False
            )
            for n, record in enumerate(records):
                if n not in wanted:
                    continue
                uri = (record.headers.get("WARC-Target-URI") or "").strip("<>")
                body = record.reader.read()
                http = record.http_headers
                if http is not None and "chunked" in (http.get("Transfer-Encoding") or ""):
                    body = dechunk(body)
                content_type = (http.get("Content-Type") if http else None) or "text/html"
                if charset:  # declared nowhere in the page: decode here, write as UTF-8
                    yield (f"{rel}#{n}", uri, body.decode(charset.lower()), {},
                           f"{rel} response {n}, decoded as {charset}")  # fmt: skip
                else:
                    yield (f"{rel}#{n}", uri, body, {"Content-Type": content_type},
                           f"{rel} response {n}")  # fmt: skip
    for entry in json.loads((PAGES / "index.json").read_text(encoding="utf-8")):
        data = gzip.decompress((PAGES / entry["file"]).read_bytes())
        text, _ = decode_html(data)
        rel = f"tests/data/warc/pages/{entry['file']}"
        yield rel, entry["target_uri"], text, {}, f"{rel} (a page of the English demo)"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def image_url(source: str, lang: str) -> str:
    """Made-up image URLs (under .example): a country's flag and a file-type icon are the same
    image in every language; the other concepts have one image per language site."""
    if source.startswith("CLDR "):
        key = source.split(" ", 2)[2]
        if key.startswith("territories/"):
            return f"https://img.gallery.example/flags/{slug(key.split('/')[1])}.svg"
        return f"https://{lang}.gallery.example/img/{slug(key)}.png"
    msgid = re.search(r"msgid '([^']*)'", source)
    return f"https://img.gallery.example/icons/{slug(msgid.group(1) if msgid else source)}.png"


def gallery_pages(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    """(key, target URI, HTML, provenance) of the made-up gallery pages."""
    by_lang: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row["source"].startswith(("CLDR ", "Debian ")):
            by_lang[row["lang_hint"]].append(row)
    pages = []
    for lang in sorted(by_lang):
        items = by_lang[lang]
        name = next((r["text"] for r in items if " languages/" in r["source"]), lang)
        logo = (f"https://{lang}.gallery.example/static/logo.png", name)
        for start in range(0, len(items), IMAGES_PER_PAGE):
            chunk = items[start : start + IMAGES_PER_PAGE]
            n = start // IMAGES_PER_PAGE + 1
            uri = f"https://{lang}.gallery.example/album/{n}"
            images = [logo] + [(image_url(r["source"], lang), r["text"]) for r in chunk]
            body = "\n".join(
                f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}"></figure>'
                for src, alt in images
            )
            page = (
                f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
                f"<title>{html.escape(name)} {n}</title></head>\n<body>\n"
                f'<h1><a href="/">{html.escape(name)}</a></h1>\n{body}\n</body></html>\n'
            )
            pages.append((f"gallery/{lang}/{n}", uri, page, f"alt_texts.jsonl rows ({lang})"))
    return pages


def build() -> dict[str, object]:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = [OUT / f"worldwide-{i:04d}.warc.wat.gz" for i in range(N_FILES)]
    writers = [WatWriter(p, seed=SEED, compresslevel=9) for p in paths]
    rows = [json.loads(line) for line in ALTS.read_text(encoding="utf-8").splitlines() if line]
    stats: dict[str, int] = defaultdict(int)
    pages: list[tuple[str, str, str | bytes, dict[str, str], str]] = list(real_pages())
    pages += [(k, u, p, {}, s) for k, u, p, s in gallery_pages(rows)]
    for index, (key, uri, page, headers, _) in enumerate(pages):
        kind = "gallery" if key.startswith("gallery/") else "real"
        for k in range(copies(key, 2 if kind == "gallery" else len(VARIANTS))):
            writer = writers[(index + k) % N_FILES]
            _, links = writer.add_page(variant_uri(uri, VARIANTS[k]), page, headers=headers)
            stats[f"{kind}_captures"] += 1
            stats["img_with_alt"] += sum(
                1 for link in links if link.get("path") == "IMG@/src" and link.get("alt")
            )
        stats[f"{kind}_pages"] += 1
    for writer in writers:
        writer.close()
    stats["bytes"] = sum(p.stat().st_size for p in paths)
    write_provenance(pages, dict(stats), paths)
    return dict(stats)


def write_provenance(pages, stats: dict[str, int], paths: list[Path]) -> None:  # noqa: ANN001
    real = [(uri, src) for key, uri, _, _, src in pages if not key.startswith("gallery/")]
    sha = hashlib.sha256(ALTS.read_bytes()).hexdigest()
    lines = [
        "Worldwide (MetaCLIP 2) demo data. Rebuild: python tools/make_worldwide_demo.py",
        "(reads only committed files; deterministic).",
        "",
        *(f"{p.name}  ({p.stat().st_size:,} bytes)" for p in paths),
        "   *** DERIVED, NOT Common Crawl files *** written in Common Crawl's WAT format by",
        "   tools.watgen (ia-web-commons 1.1.10 layout). No real CC WAT with image links is",
        "   available offline. "
        f"{stats['real_pages']} real pages ({stats['real_captures']} captures) and "
        f"{stats['gallery_pages']} made-up gallery pages ({stats['gallery_captures']} captures);",
        f"   {stats['img_with_alt']:,} IMG links with a non-empty alt in all.",
        "   DUPLICATES ARE DELIBERATE: each page is written 1-3 times (gallery pages 1-2; fixed",
        "   by a hash of its key) under its URI and query-string variants",
        "   (?utm_source=newsletter, ?ref=rss),",
        "   spread over the files, so (url, alt) pairs repeat as in a crawl.",
        "",
        "1) REAL pages (content belongs to the original sites; see the PROVENANCE.txt of",
        "   tests/data/real and tests/data/warc for their origin and licenses). Target URI =",
        "   the capture's own (saved pages: tests/data/warc/pages/index.json's). CC-MAIN-2020-34",
        "   responses 2-7, 11, 13, 15 (adult-video, gambling and lottery spam) are left out.",
        "   The ClueWeb09 pages declare no charset: decoded as EUC-JP and written as UTF-8.",
        *(f"   {uri}  <- {src}" for uri, src in real),
        "",
        "2) MADE-UP gallery pages (https://<lang>.gallery.example/album/<n>, a reserved",
        "   domain): the PAGES, their URLs and the image URLs are made up; their ALT TEXTS are",
        "   the REAL texts of the CLDR and Debian rows of tests/data/worldwide/alt_texts.jsonl",
        f"   (sha256 {sha}; see ALT_TEXTS_PROVENANCE.txt there), grouped by lang_hint,",
        f"   {IMAGES_PER_PAGE} per page in file order, plus the site's logo on every page (alt =",
        "   the CLDR name of the language in itself). Image URLs: a country's flag",
        "   (https://img.gallery.example/flags/<code>.svg) and a file-type / folder icon",
        "   (.../icons/<msgid>.png) are the same image in every language (one picture, alt texts",
        "   in many languages: with one text per image, one of them survives); every other",
        "   concept has one image per language site (https://<lang>.gallery.example/img/...).",
        "",
        "metadata/ (languages.json, <language>/metadata.json and provenance.json): built by",
        "the real builder from the committed fixtures (zh/ja/th/km/lo need the segmenter extra),",
        "into a scratch folder, then the lists, the index and the provenance copied here with",
        "the scratch and checkout paths in the provenance made relative (<output>/, repo root):",
        "  metaclip build-metadata --languages all --partitions 1 --output /tmp/wwmeta \\",
        "    --wiki-text-root tests/data/worldwide_sources/wiki \\",
        "    --wordnet tests/data/worldwide_sources/omw \\",
        "    --pageviews tests/data/worldwide_sources/pageviews \\",
        "    --english-metadata metaclip/demo_data/metadata.json",
        "  en/metadata.json is the English demo's list (metaclip/demo_data/metadata.json), as",
        "  MetaCLIP 2 takes MetaCLIP 1's English list.",
        "`metaclip demo --recipe worldwide` curates these files with that metadata, as",
        "Then: metaclip curate metaclip/demo_worldwide --recipe worldwide \\",
        "    --metadata metaclip/demo_worldwide/metadata --output <out>",
    ]
    (OUT / "PROVENANCE.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    stats = build()
    for key, value in stats.items():
        print(f"{key}: {value:,}")


if __name__ == "__main__":
    main()
