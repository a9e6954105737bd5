"""Entries per source with real data: WordNet 3.0 and real Wikipedia word counts as unigrams.

No Wikipedia bigram or pageview data is available offline, so those sources are left out; the
word counts of pywordfreq 0.4.2 (English Wikipedia, 'word;count' lines) stand in for the
unigram counts of a Wikipedia dump. Runs the real build-metadata flow on a local Dask cluster.

    python bench/metadata_sources.py [--wordnet PATH] [--unigram-counts PATH] [--output DIR]

Prints a Markdown table (the one in docs/metadata.md) and writes
bench/results/metadata_sources.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WORDNET = SHARED / "wordnet" / "nltk_data-corpora-wordnet-3.0-debian.tar.gz"
WORDFREQ = SHARED / "wordfreq" / "pywordfreq-0.4.2-enwiki-word_frequencies.gz"
RESULTS = Path(__file__).resolve().parent / "results" / "metadata_sources.json"


def figures(prov: dict) -> dict:
    rows = []
    for block in prov["blocks"]:
        record = prov["sources"].get(block["source"], {})
        rows.append(
            {
                "source": block["source"],
                "kept": record.get("valid_entries", block["entries"]),
                "added": block["entries"],
                "stats": record.get("stats", {}),
                "inputs": [d["sha256"] for d in record.get("inputs", {}).get("list", [])],
            }
        )
    return {
        "total": prov["total"],
        "sha256": prov["sha256"],
        "rows": rows,
        "overlaps": prov["overlaps"],
    }


def markdown(result: dict) -> str:
    lines = [
        "| source | entries kept by the source | new entries added | ids from |",
        "|---|---:|---:|---:|",
    ]
    first = 0
    for row in result["rows"]:
        lines.append(f"| {row['source']} | {row['kept']:,} | {row['added']:,} | {first:,} |")
        first += row["added"]
    lines.append(f"| **total** | | **{result['total']:,}** | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", default=str(WORDNET))
    parser.add_argument("--unigram-counts", default=str(WORDFREQ))
    parser.add_argument("--min-unigram-count", type=int, default=100)
    parser.add_argument("--output", default=None, help="default: a temporary folder")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from metaclip_prefect.flows.build_metadata import build_metadata

    with tempfile.TemporaryDirectory(prefix="metaclip-bench-") as tmp:
        prov = build_metadata(
            args.output or tmp,
            wordnet=args.wordnet,
            unigram_counts=[args.unigram_counts],
            min_unigram_count=args.min_unigram_count,
            partitions=8,
            n_workers=2,
            dashboard_address=":0",
        )
    result = figures(prov)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"\noverlap wordnet/unigram: {result['overlaps']['wordnet'].get('unigram', 0):,}")


if __name__ == "__main__":
    main()
