"""The cluster report: sizes per expert and fine cluster, example captions per expert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from metaclip.experts.kmeans import Centres


def merge_examples(per_shard: Sequence[list[list]], n: int) -> list[str]:
    """The n captions closest to the expert's centre across shards (ties: shard order)."""
    pooled = [item for shard in per_shard for item in shard]
    pooled.sort(key=lambda item: item[0])
    return [caption for _, caption in pooled[:n]]


def size_balance(sizes: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """How even cluster sizes are: largest / smallest (None with an empty cluster), and the
    entropy of the size distribution in bits and as a share of its maximum log2(k)."""
    s = np.asarray(sizes, dtype=np.float64)
    k, total = len(s), float(s.sum())
    p = s[s > 0] / total if total > 0 else np.array([])
    entropy = float(-(p * np.log2(p)).sum()) if len(p) else 0.0
    return {
        "clusters": k,
        "largest": int(s.max()) if k else 0,
        "smallest": int(s.min()) if k else 0,
        "largest_over_smallest": float(s.max() / s.min()) if k and s.min() > 0 else None,
        "entropy_bits": entropy,
        "entropy_share": float(entropy / np.log2(k)) if k > 1 else 1.0,
    }


def cluster_report(
    assigned: Sequence[dict[str, Any]], centres: Centres, n_examples: int
) -> dict[str, Any]:
    """Sizes and examples from the per-shard results of assign_shard."""
    k = centres.n_experts
    in_sizes = np.sum([r["in_cluster"] for r in assigned], axis=0, dtype=np.int64)
    added = np.sum([r["outside_added"] for r in assigned], axis=0, dtype=np.int64)
    fine = np.sum([r["fine_sizes"] for r in assigned], axis=0, dtype=np.int64)
    experts = []
    for j in range(k):
        members = np.flatnonzero(centres.fine_to_coarse == j)
        experts.append(
            {
                "expert": j,
                "pairs": int(in_sizes[j]),
                "outside_added": int(added[j]),
                "fine_clusters": members.tolist(),
                "examples": merge_examples([r["examples"][j] for r in assigned], n_examples),
            }
        )
    return {
        "pairs": int(in_sizes.sum()),
        "expert_sizes": in_sizes.tolist(),
        "empty_experts": [j for j in range(k) if in_sizes[j] == 0],
        "fine_sizes": fine.tolist(),
        "empty_fine_clusters": int((fine == 0).sum()),
        "balance": {"experts": size_balance(in_sizes), "fine": size_balance(fine)},
        "experts": experts,
        "clustering": centres.meta,
    }
