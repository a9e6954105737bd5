"""Per-shard work after embedding: drawing the k-means sample, assigning pairs to experts.

Each curated shard gives one Parquet file per expert: its in-cluster pairs, plus (optionally)
a share of out-of-cluster pairs as MoDE adds (int(2% of the shard's pairs outside the
expert), as the reference's mode_wds.py does per shard) so each expert sees a little of the
rest. Draws are deterministic per (seed, expert, uuid, caption): the same pairs whatever
the workers or sharding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from metaclip.curation.balance import uniform_draws
from metaclip.experts.embedding import load_array, save_array
from metaclip.experts.kmeans import Centres
from metaclip.experts.paths import ModeLayout
from metaclip.io import storage
from metaclip.io.results import written
from metaclip.io.schemas import CURATED

if TYPE_CHECKING:  # metaclip.config imports this module's constants
    from metaclip.config import ExpertsConfig, Stores

# Expert parts: the curated columns (img2dataset reads url/caption) plus where the pair fell.
EXPERT = (
    CURATED.append(pa.field("fine_cluster", pa.int32(), nullable=False))
    .append(pa.field("expert", pa.int16(), nullable=False))
    .append(pa.field("in_cluster", pa.bool_(), nullable=False))
)

N_EXAMPLES = 8

# The settings that change each stage's output (with its files' identities and its own
# arguments: the sample's file, rate and shard index; the shard's id).
SAMPLE_KEYED_BY = ("seed",)
ASSIGN_KEYED_BY = ("output", "outside_share", "outside_base", "seed", "n_examples")


def sample_shard(
    settings: ExpertsConfig,
    stores: Stores,
    embeddings_uri: str,
    out_uri: str,
    rate: float,
    shard_index: int,
) -> dict[str, Any]:
    """Keep each row with probability `rate` (seeded by `settings.seed` and the shard) for the
    k-means sample; everything under the MoDE output, read and written with its options."""
    opts = stores.output
    x = load_array(embeddings_uri, **opts)
    rng = np.random.default_rng([settings.seed, shard_index])
    picked = x[rng.random(len(x)) < rate]
    save_array(out_uri, picked, **opts)
    return {
        "sample_uri": out_uri,
        "rows": len(picked),
        "outputs": written([out_uri], **opts),
    }


OUTSIDE_BASES = ("outside", "expert")
OUTSIDE_SHARE = 0.02  # the reference's ooc_ratio (configs_mode.py: "slightly better than 0.0")


def outside_mask(
    uuids: list[str],
    captions: list[str],
    inside: np.ndarray,
    share: float,
    seed: int,
    expert: int,
    base: str = "outside",
) -> np.ndarray:
    """Out-of-cluster rows of this shard added to `expert`.

    base "outside" (the reference, mode_wds.py): exactly int(share x n_out) of the shard's
    n_out pairs outside the expert, those with the lowest draws. base "expert": each outside
    pair with probability share x n_in / n_out, about share x the expert's own size (this
    project's earlier rule; 3x fewer pairs at 4 experts, 31x fewer at 32). Draws are hashed
    per (seed, expert, uuid, caption): the same pairs whatever the workers.
    """
    outside = ~inside
    n_in, n_out = int(inside.sum()), int(outside.sum())
    if share <= 0 or n_out == 0:
        return np.zeros(len(inside), dtype=bool)
    draws = uniform_draws(seed, uuids, captions, purpose=f"mode-outside-{expert}")
    if base == "expert":
        return outside & (draws < min(1.0, share * n_in / n_out))
    take = int(share * n_out)
    rows = np.flatnonzero(outside)
    picked = rows[np.argsort(draws[rows], kind="stable")[:take]]
    mask = np.zeros(len(inside), dtype=bool)
    mask[picked] = True
    return mask


def _examples(
    captions: list[str], x: np.ndarray, mask: np.ndarray, centre: np.ndarray, n: int
) -> list[list]:
    """The n captions of `mask` nearest `centre`, as [distance, caption].

    The expert's coarse centre, not each pair's fine one: that shows the middle of the expert
    rather than its tightest fine cluster (often near-duplicates of one narrow thing).
    """
    idx = np.flatnonzero(mask)
    dist = np.linalg.norm(x[idx].astype(np.float32) - centre, axis=1)
    order = np.argsort(dist, kind="stable")[:n]
    return [[float(dist[j]), captions[idx[j]]] for j in order]


def expert_table(
    table: pa.Table, rows: np.ndarray, fine: np.ndarray, expert: int, inside: np.ndarray
) -> pa.Table:
    take = pa.array(rows, type=pa.int64())
    part = table.select(CURATED.names).take(take)
    return (
        part.append_column(EXPERT.field("fine_cluster"), pa.array(fine[rows], pa.int32()))
        .append_column(EXPERT.field("expert"), pa.array(np.full(len(rows), expert), pa.int16()))
        .append_column(EXPERT.field("in_cluster"), pa.array(inside[rows], pa.bool_()))
        .cast(EXPERT)
    )


def assign_shard(
    settings: ExpertsConfig,
    stores: Stores,
    curated_uri: str,
    embeddings_uri: str,
    centres_uri: str,
    shard: str,
) -> dict[str, Any]:
    """Write this shard's part of every expert under `settings.output`, with about
    `settings.outside_share` out-of-cluster pairs (of `settings.outside_base`) drawn with
    `settings.seed`; return sizes and
    `settings.n_examples` example captions per expert. The curated shard is read with the
    inputs' options; embeddings, centres and the expert parts (all under the MoDE output) with
    the output's."""
    read, write = stores.inputs, stores.output
    output, outside_share = settings.output, settings.outside_share
    seed, n_examples = settings.seed, settings.n_examples
    centres = Centres.load(centres_uri, **write)
    table = storage.read_parquet(curated_uri, **read)
    x = load_array(embeddings_uri, **write)
    if len(x) != table.num_rows:
        raise ValueError(f"{embeddings_uri} has {len(x)} rows, {curated_uri} {table.num_rows}")
    fine, experts, _ = centres.assign(x)
    uuids, captions = table["uuid"].to_pylist(), table["caption"].to_pylist()
    layout = ModeLayout(output)
    parts, in_sizes, out_sizes, examples = [], [], [], []
    for k in range(centres.n_experts):
        inside = experts == k
        extra = outside_mask(
            uuids, captions, inside, outside_share, seed, k, settings.outside_base
        )
        rows = np.flatnonzero(inside | extra)
        uri = layout.expert_part(k, shard)
        storage.write_parquet_atomic(uri, expert_table(table, rows, fine, k, inside), **write)
        parts.append(uri)
        in_sizes.append(int(inside.sum()))
        out_sizes.append(int(extra.sum()))
        examples.append(_examples(captions, x, inside, centres.coarse[k], n_examples))
    return {
        "shard": shard,
        "rows": table.num_rows,
        "parts": parts,
        "in_cluster": in_sizes,
        "outside_added": out_sizes,
        "examples": examples,
        "fine_sizes": np.bincount(fine, minlength=len(centres.fine)).tolist(),
        "outputs": written(parts, **write),
    }
