"""The curation pipeline as plain function calls (no Prefect, no Dask), and a naive reference.

Every stage function is called through ONE helper here (run_batch ... run_sample, and
make_settings for the run's settings), so that a change of a stage's signature is made in one
place. `curate_plain` chains them as flows/curate.py does; `naive_run` recomputes the same run
from the extracted pairs with tests/naive.py (naive substring matching, direct counts, the
product formula) and the library's deterministic draws.

The inputs are the real fixtures of tests/data (see their PROVENANCE.txt), copied under names
that fix the batching: WAT and WARC files mixed, two WARCs that share real pairs (the same
Semantic Scholar images), a byte copy of a WAT file, and a missing file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from metaclip.config import Stores
from metaclip.curation import batch, dedup, reduce, sample
from metaclip.curation.balance import uniform_draws
from metaclip.curation.counts import read_entry_counts
from metaclip.curation.plan import make_batches, preflight
from metaclip.curation.record import write_run_record
from metaclip.curation.settings import RunSettings
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import write_json
from metaclip.reporting.summary import build_summary
from tests.naive import naive_counts, naive_keep_probability, naive_match

DATA = Path(__file__).parent / "data"
T = 3
SEED = 11
BATCH_SIZE = 4  # the 7 inputs make 2 batches: 00..03 and 04..06
REDUCE_FANOUT = 2  # 4 buckets: a tree of 2 levels

# (name in the inputs folder, fixture it is a copy of); None: the file is missing.
INPUTS = [
    ("00-fixture-0000.warc.wat.gz", "wat/fixture-0000.warc.wat.gz"),
    ("01-dolma-sample-0000.warc.gz", "warc/dolma-sample-0000.warc.gz"),
    ("02-fixture-0001.warc.wat.gz", "wat/fixture-0001.warc.wat.gz"),
    ("03-fixture-0002.warc.wat.gz", "wat/fixture-0002.warc.wat.gz"),
    ("04-dolma-sample-0001.warc.gz", "warc/dolma-sample-0001.warc.gz"),  # shares pairs with 01
    ("05-copy-of-fixture-0001.warc.wat.gz", "wat/fixture-0001.warc.wat.gz"),  # = 02, byte for byte
    ("06-missing.warc.wat.gz", None),
]


# --------------------------------------------------------------------------- one helper a stage


def make_settings(
    output: str | Path,
    metadata_uri: str,
    metadata_sha256: str,
    n_buckets: int,
    **changed: Any,
) -> RunSettings:
    """A run's settings as the flow's preflight fixes them (languages: all, no fastText)."""
    fields: dict[str, Any] = dict(
        inputs=(), metadata=metadata_uri, output=str(output), t=T, seed=SEED, languages=None,
        batch_size=BATCH_SIZE, reduce_fanout=REDUCE_FANOUT, metadata_uri=metadata_uri,
        metadata_sha256=metadata_sha256, n_buckets=n_buckets, store_tag="test-run",
    )  # fmt: skip
    fields.update(changed)
    return RunSettings(**fields)


def settings_from_record(record: dict[str, Any], output: str) -> RunSettings:
    return RunSettings.from_record(record, output)


def run_batch(s: RunSettings, stores: Stores, batch_id: str, files: Sequence[str]) -> dict:
    return batch.process_batch(s, stores, batch_id, list(files))


def run_index(s: RunSettings, stores: Stores, manifest_uris: Sequence[str], out_uri: str) -> dict:
    return dedup.build_bucket_index(s, stores, list(manifest_uris), out_uri)


def run_bucket(s: RunSettings, stores: Stores, bucket: int, index_uri: str) -> dict:
    return dedup.process_bucket(s, stores, bucket, index_uri)


def run_reduce(s: RunSettings, stores: Stores, uris: Sequence[str], out_uri: str) -> dict:
    return reduce.reduce_counts(s, stores, list(uris), out_uri)


def run_entry_counts(s: RunSettings, stores: Stores, total_uri: str, out_uri: str) -> dict:
    return reduce.write_entry_counts(s, stores, total_uri, out_uri)


def run_sample(
    s: RunSettings, stores: Stores, bucket: int, counts_uri: str, dedup_uris: Sequence[str]
) -> dict:
    return sample.sample_bucket(s, stores, bucket, counts_uri, list(dedup_uris))


# --------------------------------------------------------------------------- inputs, metadata


def make_inputs(folder: Path) -> list[str]:
    """The input files (copies of the fixtures, and one missing), in batching order."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in INPUTS:
        if source is not None:
            shutil.copyfile(DATA / source, folder / name)
    return [str(folder / name) for name, _ in INPUTS]


def extract(uri: str) -> list[dict[str, Any]]:
    """One file's pairs (the library's extraction: the stages after it are what is checked)."""
    extractor = extract_wat_file if ".wat" in Path(uri).name else extract_warc_file
    table, _ = extractor(uri)
    return table.to_pylist()


def make_metadata(path: Path, files: Sequence[str]) -> list[str]:
    """Entries drawn from the inputs' own texts (words, word pairs, numbers), and the words of
    the pairs the two WARC files share, so that those are matched and must be deduplicated."""
    texts = [r["text"] for f in files for r in extract(f)]
    words = sorted({w for t in texts for w in t.split()})
    pairs = sorted({" ".join(t.split()[i : i + 2]) for t in texts for i in range(len(t.split()))})
    entries = [str(i) for i in range(100)] + words[::2] + pairs[::7] + ["Scholar", "Icon"]
    entries = list(dict.fromkeys(entries))
    path.write_text(json.dumps(entries))
    return entries


# --------------------------------------------------------------------------- the chain


@dataclass
class Run:
    settings: RunSettings
    stores: Stores
    files: list[str]
    entries: list[str]
    batches: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    sampled: list[dict[str, Any]]
    plan: list[list[tuple[list[str], str]]]  # the tree reduction's levels
    counts_uri: str
    counts: np.ndarray
    summary: dict[str, Any]

    @property
    def output(self) -> str:
        return self.settings.output


def curate_plain(
    inputs: Sequence[str], metadata_uri: str, output: str | Path, n_buckets: int, **changed: Any
) -> Run:
    """Every stage, in the flow's order: preflight, batches, index, buckets, tree reduction,
    dense counts, work record, sampling, summary (written to summary.json)."""
    stores = Stores()
    meta, files = preflight(list(inputs), metadata_uri, "auto")
    s = make_settings(output, meta.uri, meta.sha256, n_buckets, **changed)
    layout = OutputLayout(s.output)
    batches = [run_batch(s, stores, bid, fs) for bid, fs in make_batches(files, s.batch_size)]
    digest = batch.batches_digest(batches)
    index = run_index(s, stores, [b["manifest_uri"] for b in batches], layout.bucket_index(digest))
    buckets = [run_bucket(s, stores, b, index["uri"]) for b in range(s.n_buckets)]
    levels = reduce.reduction_plan([b["counts_uri"] for b in buckets], layout, s.reduce_fanout)
    total_uri = ""
    for level in levels:
        total_uri = [run_reduce(s, stores, group, out)["uri"] for group, out in level][-1]
    counts_uri = run_entry_counts(s, stores, total_uri, layout.entry_counts)["uri"]
    counts, _ = read_entry_counts(counts_uri)
    dedup_uris = {str(b["bucket"]): b["dedup_uris"] for b in buckets}
    write_run_record(s.output, s.record(), counts_uri, dedup_uris)
    sampled = [run_sample(s, stores, b["bucket"], counts_uri, b["dedup_uris"]) for b in buckets]
    summary = build_summary(
        batches=batches, buckets=buckets, sampled=sampled, counts=counts, params=s.record(),
        outputs={"curated": layout.curated_dir, "entry_counts": layout.entry_counts,
                 "summary": layout.summary},
        stage_seconds={},
    )  # fmt: skip
    write_json(layout.summary, summary)
    entries = json.loads(storage.read_bytes(metadata_uri))
    return Run(s, stores, files, entries, batches, buckets, sampled, levels, counts_uri, counts,
               summary)  # fmt: skip


def curated_rows(curated_uris: Sequence[str]) -> set[tuple[str, str, tuple[int, ...]]]:
    """(uuid, caption, entry ids) of every curated row, from the given parts."""
    rows: set[tuple[str, str, tuple[int, ...]]] = set()
    for uri in curated_uris:
        table = pq.read_table(uri)
        rows.update(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                        map(tuple, table["entry_ids"].to_pylist()), strict=True))  # fmt: skip
    return rows


def run_curated(run: Run) -> set[tuple[str, str, tuple[int, ...]]]:
    return curated_rows([u for s in run.sampled for u in s["curated_uris"]])


# --------------------------------------------------------------------------- the reference


@dataclass
class Naive:
    pairs_read: int  # extracted pairs, every file (within-file duplicates already dropped)
    matched: list[tuple[str, str, str]]  # (uuid, text, source) of every matched extracted pair
    unique: dict[tuple[str, str], list[int]]  # distinct matched (uuid, text) -> entry ids
    counts: list[int]
    candidates: list[tuple[str, str]]  # the (uuid, text) pairs that get a keep draw
    kept: set[tuple[str, str, tuple[int, ...]]]
    expected: float  # the expected number kept (sum of the candidates' keep probabilities)
    variance: float


def naive_run(
    files: Sequence[str], entries: list[str], t: float = T, seed: int = SEED,
    one_per_image: bool = True,
) -> Naive:  # fmt: skip
    """Algorithm 1 with MetaCLIP 2's global dedup: distinct (uuid, text) pairs are counted,
    then one text per image is chosen uniformly and kept with probability 1 - prod(1 - p_e)."""
    rows = [r for f in files for r in extract(f)]
    matched, unique = [], {}
    for r in rows:
        ids = naive_match(r["text"], entries)
        if ids:
            matched.append((r["uuid"], r["text"], r["source"]))
            unique[r["uuid"], r["text"]] = ids
    counts = naive_counts(unique.values(), len(entries))
    by_image: dict[str, list[str]] = {}
    for u, text in unique:
        by_image.setdefault(u, []).append(text)
    candidates, weights = [], []
    for u, texts in by_image.items():
        if one_per_image:
            draws = uniform_draws(seed, [u] * len(texts), texts, purpose="choose")
            candidates.append((u, texts[int(np.argmin(draws))]))
        else:
            candidates.extend((u, text) for text in texts)
    keep_draws = uniform_draws(seed, [u for u, _ in candidates], [x for _, x in candidates])
    kept = {
        (u, x, tuple(unique[u, x]))
        for (u, x), draw in zip(candidates, keep_draws, strict=True)
        if draw < naive_keep_probability(unique[u, x], counts, t)
    }
    # An image's chance to be kept: the mean of its texts' (one is drawn), else each pair's.
    for u, texts in by_image.items():
        probs = [naive_keep_probability(unique[u, x], counts, t) for x in texts]
        weights.extend([sum(probs) / len(probs)] if one_per_image else probs)
    q = np.array(weights)
    return Naive(len(rows), matched, unique, counts, candidates, kept, float(q.sum()),
                 float((q * (1 - q)).sum()))  # fmt: skip
