"""Write a large benchmark WARC from real saved pages, for the extraction benchmark.

  python bench/make_bench_warc.py [OUT_DIR] [--size-mb 300] [--seed 0]

OUT_DIR defaults to bench/data/ (git-ignored). The WARC is DERIVED data: the 110 real pages of
../shared/data/html-pages (trafilatura's test cache; without it, the 8 pages in
tests/data/warc/pages/) written again and again as HTTP responses under perturbed page URIs, with
about half of their alt texts changed by a per-record token, so pairs repeat the way a crawl's do
without being all identical. Each page is a request, a response and a metadata record, each its own
gzip member (level 6), as in a Common Crawl WARC; no request was ever made.
Page URIs are made up from the file names (https://www.<first label>.example/<rest>). Output is
deterministic (record ids are uuid5 of type + URI).
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import tarfile
import time
import uuid
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES_TAR = Path("/work/shared/data/html-pages/trafilatura-tests-cache-110pages.tar.gz")
FIXTURE_PAGES = REPO / "tests" / "data" / "warc" / "pages"
_ALT = re.compile(rb'(\balt=")')


def load_pages(pages_tar: Path) -> list[tuple[str, bytes]]:
    """(page URI, bytes) of every real page available."""
    if not pages_tar.exists():
        import json

        index = json.loads((FIXTURE_PAGES / "index.json").read_text())
        return [(p["target_uri"], gzip.decompress((FIXTURE_PAGES / p["file"]).read_bytes()))
                for p in index]
    with tarfile.open(pages_tar) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".html")),
                         key=lambda m: m.name)
        out = []
        for m in members:
            stem = m.name.rsplit("/", 1)[-1].removesuffix(".html")
            host, _, path = stem.partition(".")
            out.append((f"https://www.{host}.example/{path}", tar.extractfile(m).read()))
        return out


def member(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def record(kind: str, uri: str, block: bytes, content_type: str) -> bytes:
    head = (
        f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Date: 2024-05-18T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + uri)}>\r\n"
        f"WARC-Target-URI: {uri}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(block)}\r\n\r\n"
    ).encode()
    return member(head + block + b"\r\n\r\n")


def page_records(uri: str, html: bytes) -> bytes:
    host = uri.split("/")[2]
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench (no request made)\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html
    meta = b"fetchTimeMs: 120\r\ncharset-detected: UTF-8\r\n"
    return (
        record("request", uri, request.encode(), "application/http; msgtype=request")
        + record("response", uri, response, "application/http; msgtype=response")
        + record("metadata", uri, meta, "application/warc-fields")
    )


def perturb(html: bytes, n: int, rng: random.Random) -> bytes:
    token = f"v{n:x} ".encode()
    return _ALT.sub(lambda m: m.group(1) + token if rng.random() < 0.5 else m.group(1), html)


def make_bench_warc(out_dir: Path, size_mb: float, seed: int = 0,
                    pages_tar: Path = PAGES_TAR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{size_mb:g}MB-seed{seed}.warc.gz"
    pages, rng = load_pages(pages_tar), random.Random(seed)
    limit, written, n = int(size_mb * 1_000_000), 0, 0
    with open(path, "wb") as fh:
        while written < limit:
            uri, html = pages[n] if n < len(pages) else pages[rng.randrange(len(pages))]
            if n >= len(pages):  # the first pass writes every page as it is
                uri, html = f"{uri}?page={n}", perturb(html, n, rng)
            data = page_records(uri, html)
            fh.write(data)
            written += len(data)
            n += 1
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=REPO / "bench" / "data")
    parser.add_argument("--size-mb", type=float, default=300.0, help="compressed size, 10^6 B")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=Path, default=PAGES_TAR, help="saved-pages tarball")
    args = parser.parse_args()
    start = time.perf_counter()
    path = make_bench_warc(args.out_dir, args.size_mb, args.seed, args.pages)
    print(f"wrote {path} ({path.stat().st_size:,} bytes) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
