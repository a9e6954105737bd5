"""Copy a few real saved pages into pages/ (gzip, mtime 0) with their page URIs in index.json.

  python tests/data/warc/make_pages.py \
      /work/shared/data/html-pages/trafilatura-tests-cache-110pages.tar.gz

Each .html.gz decompresses to the tarball member byte for byte. The URI is the page's
canonical / og:url (tools.watgen.guess_page_uri), as for the WAT fixtures.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from tools.watgen import decode_html, guess_page_uri, html_to_wat_links, iter_tar_pages

PAGES = (
    "befifty.montauk.html",  # <base href>, 75 <img>
    "bmjv.de.konsum.html",  # <base href>
    "rs-ingenieure.de.tragwerksplanung.html",  # <base href>
    "lanouvellerepublique.fr.martin.html",  # <base href>, French
    "cdu-fraktion-erfurt.de.waldorfschule.html",  # charset iso-8859-1 in <meta> only
    "love-hina.ch.0409.html",  # charset iso-8859-1 in <meta> only
    "knowtechie.com.rally.html",  # English, 96 <img>
    "correctiv.org.zusage.html",  # German, 109 <img>
)


def main(tar_path: str) -> None:
    out = Path(__file__).parent / "pages"
    out.mkdir(exist_ok=True)
    index = []
    for name, data in iter_tar_pages(tar_path):
        base = name.rsplit("/", 1)[-1]
        if base not in PAGES:
            continue
        head, _ = html_to_wat_links(decode_html(data)[0])
        (out / f"{base}.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        index.append({"file": f"{base}.gz", "target_uri": guess_page_uri(base, head)})
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
