"""Stage 4, balanced sampling of each deduplicated bucket; the candidate units of a finished
run (for the data card's expected sizes); a run's summary after rebalancing.

The worldwide recipe samples the same way with each language's own t (metaclip.curation.
worldwide) and keeps each row's metadata language.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from metaclip.config import Stores
from metaclip.curation import balance, worldwide
from metaclip.curation.counts import read_entry_counts
from metaclip.curation.dedup import dedup_parts
from metaclip.curation.record import read_run_record
from metaclip.curation.settings import RunSettings
from metaclip.io import storage
from metaclip.io.cachekeys import file_identity
from metaclip.io.paths import OutputLayout, StoreLayout
from metaclip.io.results import written
from metaclip.io.schemas import curated_from_matched

# This process's entry probabilities of the counts file it last sampled with. Keyed by the
# file's identity, not its name (another run into the same output rewrites the same file), and
# by what turns counts into thresholds: the recipe and t (worldwide: t_en, and from it p and
# every language's t).
_PROBS: dict[tuple[str, str, float], np.ndarray] = {}


def _entry_probabilities(counts_uri: str, s: RunSettings, **storage_options: Any) -> np.ndarray:
    t = float(s.t)
    key = (file_identity(counts_uri, **storage_options), s.recipe, t)
    if key not in _PROBS:
        _PROBS.clear()  # one run's probabilities at a time per process
        if s.worldwide:
            _PROBS[key] = worldwide.entry_probabilities(counts_uri, t, **storage_options)
        else:
            counts, _ = read_entry_counts(counts_uri, **storage_options)
            _PROBS[key] = balance.entry_probabilities(counts, t)
    return _PROBS[key]


def candidates(table: pa.Table, seed: int, one_per_image: bool) -> pa.Table:
    """The rows that get a keep draw: one text per image, or every (image, text) pair."""
    if not one_per_image or table.num_rows == 0:
        return table
    chosen = balance.choose_one_per_image(table["uuid"].combine_chunks(),
                                          table["text"].to_pylist(), seed)
    return table.take(pa.array(chosen))


# The settings that change a bucket's sample (its cache key, with its inputs' identities).
KEYED_BY = ("output", "recipe", "t", "seed", "one_text_per_image", "exclude_store", "store_tag")


def sample_bucket(
    settings: RunSettings,
    stores: Stores,
    bucket: int,
    counts_uri: str,
    dedup_uris: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Balanced sampling of one deduplicated bucket into its curated part (one per sub-bucket
    where the bucket was deduplicated as sub-buckets: `dedup_uris`, default the one part)."""
    s = settings
    opts = stores.output
    layout = OutputLayout(s.output)
    started = time.perf_counter()
    probs = _entry_probabilities(counts_uri, s, **opts)
    dedup_uris = list(dedup_uris or [layout.dedup_part(bucket)])
    subs: list[int | None] = [None] if len(dedup_uris) == 1 else list(range(len(dedup_uris)))
    outputs, kept_uuids, n_candidates, n_kept = [], [], 0, 0
    by_language: dict[str, dict[str, int]] = {}
    for sub, uri in zip(subs, dedup_uris, strict=True):
        table = candidates(storage.read_parquet(uri, **opts), s.seed, s.one_text_per_image)
        mask = balance.sample_mask(
            table["entry_ids"], table["uuid"].to_pylist(), table["text"].to_pylist(), probs,
            s.seed,
        )
        curated = curated_from_matched(table.filter(pa.array(mask)), s.worldwide)
        outputs.append(layout.curated_part(bucket, sub))
        storage.write_parquet_atomic(outputs[-1], curated, **opts)
        n_candidates, n_kept = n_candidates + table.num_rows, n_kept + curated.num_rows
        kept_uuids.append(curated["uuid"])
        if s.worldwide:
            _tally(by_language, "candidates", table["language"])
            _tally(by_language, "kept", curated["language"])
    identities = written(outputs, **opts)
    if s.exclude_store:
        store_part = StoreLayout(s.exclude_store).part(bucket, s.store_tag)
        uuids = pa.table({"uuid": pa.chunked_array(kept_uuids, pa.string())})
        storage.write_parquet_atomic(store_part, uuids, **stores.exclude_store)
        identities.update(written([store_part], **stores.exclude_store))
    result = {
        "bucket": bucket,
        "curated_uris": outputs,
        "candidates": n_candidates,
        "rows_kept": n_kept,
        "seconds": time.perf_counter() - started,
        "outputs": identities,
    }
    if s.worldwide:  # per metadata language: {"candidates", "kept"}
        result["languages"] = dict(sorted(by_language.items()))
    return result


def _tally(by_language: dict[str, dict[str, int]], name: str, languages: pa.ChunkedArray) -> None:
    for language, n in worldwide.language_tally(languages).items():
        row = by_language.setdefault(language, {"candidates": 0, "kept": 0})
        row[name] += n


def rebalanced_summary(
    old: dict[str, Any],
    sampled: Sequence[dict[str, Any]],
    counts: np.ndarray,
    t: float,
    seed: int,
    seconds: float,
    thresholds: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A run's summary after sampling again with another t or seed (worldwide recipe: t is
    t_en, and p and the entries over t are the new `thresholds`' (language_thresholds.json))."""
    return {
        **old,
        "t": t,
        "seed": seed,
        "p": thresholds["p"] if thresholds else balance.t_to_p(counts, t),
        "entries_over_t": (
            thresholds["entries_over_t"] if thresholds else balance.entries_over_t(counts, t)
        ),
        "pairs_curated": sum(int(s["rows_kept"]) for s in sampled),
        "rebalanced": {"from_t": old["t"], "from_seed": old["seed"], "seconds": seconds},
    }


def iter_candidate_units(
    output: str, one_per_image: bool = True, **storage_options: Any
) -> Iterator[tuple[pa.ListArray, np.ndarray]]:
    """Per bucket: entry ids of every matched text and its weight in the expected size.

    A text's weight is 1 / (texts of its image) when one text per image is drawn, else 1.
    """
    run = read_run_record(output, **storage_options)
    for uri in (u for bucket in range(run["n_buckets"]) for u in dedup_parts(run, bucket)):
        if not storage.exists(uri, **storage_options):
            continue
        table = storage.read_parquet(uri, columns=["uuid", "entry_ids"], **storage_options)
        weights = np.ones(table.num_rows)
        if one_per_image and table.num_rows:
            uuids = table["uuid"].combine_chunks().dictionary_encode()
            per_image = np.bincount(uuids.indices.to_numpy())
            weights = 1.0 / per_image[uuids.indices.to_numpy()]
        yield table["entry_ids"].combine_chunks(), weights
