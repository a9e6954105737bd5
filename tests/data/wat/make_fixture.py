"""Build the WAT test fixture in this folder (see PROVENANCE.txt).

Two steps:

  python tests/data/wat/make_fixture.py --from-tar TAR   # copy the chosen real pages into pages/
  python tests/data/wat/make_fixture.py                  # (re)write the WATs from pages/

Step 1 copies the pages listed in PAGES byte for byte (gzipped) from the trafilatura test-cache
tarball, adds the HAND-WRITTEN edge-case page below, and records each page's target URI in
pages/index.json. Step 2 only reads pages/, so tests can rebuild the WATs and compare bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from tools.watgen import (  # noqa: E402 - needs the repo on sys.path when run as a script
    Layout,
    WatWriter,
    decode_html,
    guess_page_uri,
    html_to_wat_links,
    iter_tar_pages,
    write_damaged_variants,
)

PAGES_DIR = HERE / "pages"
INDEX = PAGES_DIR / "index.json"
DEFAULT_TAR = "/work/shared/data/html-pages/trafilatura-tests-cache-110pages.tar.gz"

# Small real pages covering: <base href> (absolute, "/", with a path, empty), relative,
# protocol-relative and data: srcs, empty src, ISO-8859-1 pages, a page without images.
PAGES = [
    "bmjv.de.konsum.html",
    "futurezone.at.lyft.html",
    "viehbacher.com.steuerrecht.html",
    "rs-ingenieure.de.tragwerksplanung.html",
    "simplyscience.ch.erdoel.html",
    "lanouvellerepublique.fr.martin.html",
    "befifty.montauk.html",
    "die-partei.net.luebeck.html",
    "speicherguide.de.schwierige.html",
    "telemedicus.info.rezension.html",
    "hundeverein-kreisunna.de.html",
    "crazy-julia.de.tipps.html",
    "shingon-reiki.de.schamanismus.html",
    "landwirt.com.sensortechnik.html",
    "cdu-fraktion-erfurt.de.waldorfschule.html",
    "wehranlage-horka.de.887.html",
    "love-hina.ch.0409.html",
    "sauvonsluniversite.com.spip.html",
    "creativecommons.at.faircoin.html",
    "womencantalksports.com.top10.html",
    "gregoryszorc.com.python3.html",
]
HANDWRITTEN_NAME = "handwritten-edge-cases.html"
HANDWRITTEN_URI = "https://edge-cases.example.org/gallery/index.html"
# No real page above has a javascript: img src (and few have odd ones), so this page adds them.
HANDWRITTEN = """<!DOCTYPE html>
<!-- HAND-WRITTEN test page, NOT a real web page: edge cases for the <img> extractor. -->
<html lang="en"><head><meta charset="utf-8">
<title>  Edge   cases &amp; oddities  </title>
<script>var s = '<img src="/in-script.jpg" alt="not an image tag">';</script>
<style>.hero { background: url("/css/hero.png"); }</style>
</head><body>
<h1>Gallery</h1>
<img src="img/relative.jpg" alt="relative path">
<img src="../up-one-level.png" alt="parent directory" title="Parent">
<img src="/root-relative.gif" alt="root relative">
<img src="//cdn.example.net/protocol-relative.webp" alt="protocol relative">
<img src="https://images.example.com/absolute.jpg?w=640&amp;h=480" alt="absolute with &amp; entity">
<img src="HTTPS://IMAGES.EXAMPLE.COM/UPPER.JPG" alt="upper-case scheme">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="a data URI pixel">
<img src="javascript:void(0)" alt="javascript pseudo URL">
<img src="JavaScript:alert('x')" alt="mixed-case javascript">
<img src="" alt="empty src">
<img src="   /padded.jpg  " alt="  padded src and alt  ">
<img src="/spaces in name.jpg" alt="spaces in the file name">
<img src="/first.jpg" src="/second.jpg" alt="duplicate src attribute">
<IMG SRC="/upper-tag.jpg" ALT="upper-case tag and attributes">
<img src="/self-closing.png" alt="self closing"/>
<img src="/no-alt.png">
<img src="/empty-alt.png" alt="">
<img src="/title-only.png" title="only a title">
<img src="/multi-line.jpg" alt="first line
second line">
<img src="/umlaut.jpg" alt="Gr&uuml;&szlig;e aus M&uuml;nchen &ndash; &#x4E2D;&#25991; &#128247;">
<img src="/long-alt.jpg" alt="{LONG_ALT}">
<img data-src="/lazy-only.jpg" alt="lazy loaded, no src">
<img src alt="bare src attribute">
<img src="/with-longdesc.jpg" longdesc="/descriptions/longdesc.html" alt="with longdesc">
<a href="/photos/1">  <img src="/in-anchor.jpg" alt="inside a link"> Photo   one </a>
<a href="/long">{LONG_ANCHOR}</a>
<a name="no-href">named anchor</a>
<noscript><img src="/noscript.jpg" alt="inside noscript"></noscript>
<!-- <img src="/in-comment.jpg" alt="commented out"> -->
<picture><source srcset="/picture-2x.webp 2x">
<img src="/picture.jpg" alt="picture fallback"></picture>
<svg><title>svg title</title><image href="/svg-image.png"/></svg>
<div style="background: url(/inline-style.png)" data-href="/data-href-target">styled div</div>
</body></html>
"""
LONG_ALT = (
    "A very long alternative text that goes on and on to check that image alt texts are "
    "not clipped at 128 characters the way anchor texts are, unlike links."
)
LONG_ANCHOR = (
    "This anchor text is longer than one hundred and twenty-eight characters, so "
    "ia-web-commons clips it; the rest of it should never appear"
)
HANDWRITTEN = HANDWRITTEN.replace("{LONG_ALT}", LONG_ALT).replace("{LONG_ANCHOR}", LONG_ANCHOR)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def copy_pages(tar_path: str) -> None:
    """Step 1: real pages from the tarball (plus the hand-written one) into pages/."""
    PAGES_DIR.mkdir(exist_ok=True)
    wanted = set(PAGES)
    index = []
    for name, data in iter_tar_pages(tar_path):
        if name in wanted:
            head, _ = html_to_wat_links(decode_html(data)[0])
            index.append({"file": name + ".gz", "target_uri": guess_page_uri(name, head)})
            (PAGES_DIR / (name + ".gz")).write_bytes(gz(data))
    missing = wanted - {entry["file"].removesuffix(".gz") for entry in index}
    if missing:
        raise SystemExit(f"pages not in {tar_path}: {sorted(missing)}")
    (PAGES_DIR / (HANDWRITTEN_NAME + ".gz")).write_bytes(gz(HANDWRITTEN.encode("utf-8")))
    index.append({"file": HANDWRITTEN_NAME + ".gz", "target_uri": HANDWRITTEN_URI})
    INDEX.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    print(f"copied {len(index)} pages into {PAGES_DIR}")


def load_pages() -> list[tuple[str, str, bytes]]:
    """(file, target URI, page bytes) in index order."""
    index = json.loads(INDEX.read_text(encoding="utf-8"))
    return [
        (e["file"], e["target_uri"], gzip.decompress((PAGES_DIR / e["file"]).read_bytes()))
        for e in index
    ]


# (file name, ia-web-commons layout, slice of the page list)
WATS: list[tuple[str, Layout, slice]] = [
    ("fixture-0000.warc.wat.gz", "2024", slice(0, 8)),
    ("fixture-0001.warc.wat.gz", "2024", slice(8, 15)),
    ("fixture-0002.warc.wat.gz", "2019", slice(15, None)),
]
# Small pages for the damaged variants: the 2nd one is damaged (it has non-ASCII alt texts).
DAMAGED_PAGES = [
    "hundeverein-kreisunna.de.html.gz",
    HANDWRITTEN_NAME + ".gz",
    "rs-ingenieure.de.tragwerksplanung.html.gz",
]


def build(out_dir: Path = HERE) -> list[Path]:
    """Step 2: write the fixture WATs (and damaged variants) from pages/ into out_dir."""
    pages = load_pages()
    written = []
    for name, layout, part in WATS:
        with WatWriter(out_dir / name, layout=layout) as writer:
            for _, uri, data in pages[part]:
                writer.add_page(uri, data)
        written.append(out_dir / name)
    by_file = {file: (uri, data) for file, uri, data in pages}
    damaged = write_damaged_variants(out_dir / "damaged", [by_file[f] for f in DAMAGED_PAGES])
    return written + sorted(damaged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-tar", nargs="?", const=DEFAULT_TAR, help="copy pages first")
    args = parser.parse_args()
    if args.from_tar:
        copy_pages(args.from_tar)
    for path in build():
        print(f"wrote {path.relative_to(HERE)} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
