"""Write a large benchmark WAT (and alt-text lists) for extraction and matching benchmarks.

  python bench/make_bench_wat.py [OUT_DIR] [--size-mb 300] [--seed 0] [--alt-texts N]

OUT_DIR defaults to bench/data/ (git-ignored). The WAT is DERIVED data: the link structures
(Head + Links) of real saved pages, written again and again with perturbed target URIs, image
URLs, alt texts and anchor texts, so (url, text) pairs repeat the way a crawl's do (site-wide
images, re-crawled pages) without being all identical. Pages come from the trafilatura
test-cache tarball (--pages) or, without it, from the 22 pages in tests/data/wat/pages/.
To stay fast, Deflate-Length in each record's Container is an estimate here (exact_container=False).

``synthetic_alt_texts(n)`` makes alt-text-like strings from real captions (COCO, CC3M subsets in
tests/data/captions/) and real alt texts of the demo pages, for matching benchmarks.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.watgen import (  # noqa: E402 - needs the repo on sys.path when run as a script
    WatWriter,
    decode_html,
    guess_page_uri,
    html_to_wat_links,
    iter_tar_pages,
)

PAGES_TAR = Path("/work/shared/data/html-pages/trafilatura-tests-cache-110pages.tar.gz")
FIXTURE_PAGES = REPO / "tests" / "data" / "wat" / "pages"
CAPTIONS = REPO / "tests" / "data" / "captions"
DEMO_WATS = REPO / "metaclip" / "demo_data"
KEEP_URL = 0.45  # share of image URLs written unchanged (site-wide images recur in a crawl)
KEEP_ALT = 0.6  # share of alt texts written unchanged
JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Real sources
# --------------------------------------------------------------------------------------------


def load_pages(pages_tar: Path) -> list[tuple[str, bytes, JsonDict, list[JsonDict]]]:
    """(target URI, page bytes, Head, Links) of every real page available."""
    if pages_tar.exists():
        raw: Iterator[tuple[str, bytes]] = iter_tar_pages(pages_tar)
    else:
        raw = (
            (p.name.removesuffix(".gz"), gzip.decompress(p.read_bytes()))
            for p in sorted(FIXTURE_PAGES.glob("*.html.gz"))
        )
    pages = []
    for name, data in raw:
        head, links = html_to_wat_links(decode_html(data)[0])
        pages.append((guess_page_uri(name, head), data, head, links))
    return pages


def demo_alts() -> list[str]:
    """Non-empty alt texts of the IMG links in the demo WATs (real pages), de-duplicated."""
    alts: dict[str, None] = {}
    for path in sorted(DEMO_WATS.glob("demo-*.warc.wat.gz")):
        with gzip.open(path) as lines:
            for line in lines:
                if b'"HTML-Metadata"' in line:
                    _collect_alts(json.loads(line), alts)
    return list(alts)


def _collect_alts(doc: JsonDict, alts: dict[str, None]) -> None:
    http = doc["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    for link in http["HTML-Metadata"].get("Links", []):
        alt = " ".join(str(link.get("alt", "")).split())
        if link.get("path") == "IMG@/src" and alt:
            alts[alt] = None


def real_texts() -> list[str]:
    """Captions (10,000) and the demo pages' alt texts."""
    captions: list[str] = []
    for name in ("coco_val2017_5000.txt", "cc3m_val_5000.txt"):
        captions += (CAPTIONS / name).read_text(encoding="utf-8").splitlines()
    return captions + demo_alts()


# --------------------------------------------------------------------------------------------
# Perturbations
# --------------------------------------------------------------------------------------------

_SUFFIXES = (" - stock photo", " | News", " (Foto: dpa)", " 2019", " image", ": detail", "")


def perturb_text(text: str, pool: list[str], rng: random.Random) -> str:
    """An alt-text-like variant: word drop, splice with another text, suffix or case change."""
    words = text.split()
    roll = rng.random()
    if roll < 0.25 and len(words) > 2:
        del words[rng.randrange(len(words))]
    elif roll < 0.5:
        other = rng.choice(pool).split()
        words = words[: max(1, len(words) // 2)] + other[len(other) // 2 :]
    elif roll < 0.75:
        words.append(rng.choice(_SUFFIXES).strip() or str(rng.randrange(1000)))
    elif words:
        words[0] = words[0].capitalize() if rng.random() < 0.5 else words[0].lower()
    return " ".join(w for w in words if w)


def perturb_url(url: str, rng: random.Random) -> str:
    """Same site and path shape, another file: insert a token before the extension."""
    if url.startswith(("data:", "javascript:")) or not url:
        return url
    stem, dot, ext = url.rpartition(".")
    token = f"-{rng.randrange(16**5):05x}"
    if dot and "/" not in ext and len(ext) <= 5:
        return f"{stem}{token}.{ext}"
    return url + token


def perturb_links(links: list[JsonDict], pool: list[str], rng: random.Random) -> list[JsonDict]:
    out = []
    for link in links:
        link = dict(link)
        if link.get("path") == "IMG@/src":
            if rng.random() > KEEP_URL:
                link["url"] = perturb_url(link["url"], rng)
            if link.get("alt") and rng.random() > KEEP_ALT:
                link["alt"] = perturb_text(link["alt"], pool, rng)
        elif link.get("path") == "A@/href" and rng.random() < 0.3:
            link["url"] = perturb_url(str(link["url"]), rng)
            if link.get("text"):
                link["text"] = perturb_text(link["text"], pool, rng)[:128]
        out.append(link)
    return out


def page_uri(uri: str, n: int, rng: random.Random) -> str:
    """Another page of the same site: the page's URI with a numbered slug or query."""
    if rng.random() < 0.5:
        return f"{uri.rstrip('/')}/{n}" if "?" not in uri else f"{uri}&p={n}"
    return f"{uri}{'&' if '?' in uri else '?'}page={n}"


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def synthetic_alt_texts(n: int, seed: int = 0, pool: list[str] | None = None) -> list[str]:
    """n alt-text-like strings: real captions and alts, about half of them perturbed."""
    pool = pool if pool is not None else real_texts()
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        text = rng.choice(pool)
        texts.append(text if rng.random() < 0.5 else perturb_text(text, pool, rng))
    return texts


def make_bench_wat(
    out_dir: Path, size_mb: float, seed: int = 0, pages_tar: Path = PAGES_TAR
) -> Path:
    """Write bench-<size>MB-seed<seed>.warc.wat.gz (about size_mb * 10^6 bytes) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{size_mb:g}MB-seed{seed}.warc.wat.gz"
    pages, pool, rng = load_pages(pages_tar), real_texts(), random.Random(seed)
    limit = int(size_mb * 1_000_000)
    with WatWriter(path, seed=f"bench-{seed}", exact_container=False) as writer:
        while writer.bytes_written < limit:
            if writer.pages < len(pages):  # the first pass writes every page as it is
                uri, data, head, links = pages[writer.pages]
            else:
                uri, data, head, links = pages[rng.randrange(len(pages))]
                uri, links = page_uri(uri, writer.pages, rng), perturb_links(links, pool, rng)
            writer.add_page(uri, data, html_metadata=(head, links))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=REPO / "bench" / "data")
    parser.add_argument("--size-mb", type=float, default=300.0, help="compressed size, 10^6 B")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=Path, default=PAGES_TAR, help="saved-pages tarball")
    parser.add_argument(
        "--alt-texts",
        type=int,
        default=0,
        metavar="N",
        help="also write N synthetic alt texts, one per line",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    path = make_bench_wat(args.out_dir, args.size_mb, args.seed, args.pages)
    print(f"wrote {path} ({path.stat().st_size:,} bytes) in {time.perf_counter() - start:.1f} s")
    if args.alt_texts:
        alt_path = args.out_dir / f"alt-texts-{args.alt_texts}-seed{args.seed}.txt"
        texts = synthetic_alt_texts(args.alt_texts, args.seed)
        alt_path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print(f"wrote {alt_path} ({len(texts):,} lines)")


if __name__ == "__main__":
    main()
