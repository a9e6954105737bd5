"""Fine and coarse k-means, and the clustering a MoDE output is assigned with.

MoDE clusters twice: fine-grained k-means on caption embeddings (1,024 centres), then coarse
k-means over the fine centres (2 to 32 experts). A pair's expert is its fine centre's coarse
cluster. Three methods (`KMEANS_METHODS`):
- `balanced` (default, the reference's apps/mode/prep_hrchy.py): balanced k-means
  (metaclip.experts.balanced) at both levels; the fine level online over chunks of the
  sample (`FINE_ITER` iterations per chunk), the coarse level on the fine centres
  (`COARSE_ITER`); fine centres then go to their nearest coarse centre, as the reference
  predicts them. Euclidean or cosine distance.
- `faiss`: plain k-means (faiss) at both levels.
- `faiss-balanced`: plain fine k-means, then a coarse k-means whose assignment is a greedy
  capacity-constrained one weighted by the fine clusters' sizes (this project's earlier
  `balanced` option).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from metaclip.errors import UserError
from metaclip.io import storage

N_FINE = 1024
N_COARSE = 4
N_ITER = 50  # the reference's iteration limit per fine chunk
COARSE_ITER = 100  # and for the coarse fit
KMEANS_METHODS = ("balanced", "faiss", "faiss-balanced")
DISTANCES = ("euclidean", "cosine")  # the reference's two (prep_hrchy.py `--cd`)
CHUNK_ROWS = 10_240  # fine chunk: about one img2dataset shard (10,000), a multiple of 1,024
COARSE_REDO = 10  # restarts of the coarse k-means: over ~1,024 points they cost nothing


def _faiss() -> Any:
    try:
        import faiss  # optional dependency, imported where used
    except ImportError as exc:
        hint = "pip install 'metaclip-prefect[mode]'"
        raise UserError(f"MoDE needs faiss-cpu: {hint} ({exc})") from exc
    return faiss


def kmeans(x: np.ndarray, k: int, niter: int = N_ITER, seed: int = 0, nredo: int = 1) -> np.ndarray:
    """Plain k-means (L2) with faiss, best of `nredo` runs; returns float32 centres (k, dim)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) < k:
        raise ValueError(f"k-means needs at least k={k} points, got {len(x)}")
    # Use every point (faiss subsamples to 256 per centre by default: the sample is the choice).
    km = _faiss().Kmeans(
        x.shape[1],
        k,
        niter=niter,
        seed=seed,
        nredo=nredo,
        verbose=False,
        max_points_per_centroid=len(x),
        min_points_per_centroid=1,
    )
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32)


def nearest(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to the nearest centre, for each row of x."""
    faiss = _faiss()
    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    sq, ids = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return ids[:, 0].astype(np.int64), np.sqrt(np.maximum(sq[:, 0], 0.0))


def nearest_cosine(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and cosine distance (1 - similarity) to the most similar centre, per row."""
    faiss = _faiss()
    c = np.ascontiguousarray(centres, dtype=np.float32)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    xn = np.ascontiguousarray(x, dtype=np.float32)
    xn = xn / np.maximum(np.linalg.norm(xn, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    sim, ids = index.search(xn, 1)
    return ids[:, 0].astype(np.int64), 1.0 - sim[:, 0]


def squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    c = centres.astype(np.float64)
    return np.maximum((x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :], 0.0)


def balanced_assign(sq: np.ndarray, weights: np.ndarray, slack: float = 0.0) -> np.ndarray:
    """Greedy capacity-constrained assignment: closest (point, centre) pairs first.

    Each centre takes at most ceil(total weight / k) * (1 + slack) weight, except that a point
    heavier than every remaining capacity goes to its nearest centre with the most room left.
    """
    n, k = sq.shape
    capacity = np.full(k, np.ceil(weights.sum() / k) * (1.0 + slack))
    labels = np.full(n, -1, dtype=np.int64)
    for flat in np.argsort(sq, axis=None, kind="stable"):
        i, j = divmod(int(flat), k)
        if labels[i] < 0 and capacity[j] >= weights[i]:
            labels[i] = j
            capacity[j] -= weights[i]
    for i in np.flatnonzero(labels < 0):
        labels[i] = int(np.argmax(capacity))
        capacity[labels[i]] -= weights[i]
    return labels


def balanced_kmeans(
    x: np.ndarray, k: int, weights: np.ndarray | None = None, niter: int = N_ITER, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """k-means whose assignment step is balanced_assign; returns (centres, labels)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.maximum(w, 1e-9)  # an empty fine cluster still needs a home
    centres = kmeans(x, k, niter, seed, nredo=COARSE_REDO).astype(np.float64)
    labels = balanced_assign(squared_distances(x, centres), w)
    for _ in range(niter):
        for j in range(k):
            members = labels == j
            if members.any():
                centres[j] = np.average(x[members], axis=0, weights=w[members])
        new = balanced_assign(squared_distances(x, centres), w)
        if np.array_equal(new, labels):
            break
        labels = new
    return centres.astype(np.float32), labels


@dataclass(frozen=True)
class Centres:
    """The clustering: fine centres, each fine centre's expert, coarse centres, and how."""

    fine: np.ndarray  # (n_fine, dim) float32
    fine_to_coarse: np.ndarray  # (n_fine,) int64
    coarse: np.ndarray  # (n_coarse, dim) float32
    meta: dict[str, Any]  # encoder, normalize, parameters, sample size

    @property
    def n_experts(self) -> int:
        return len(self.coarse)

    @property
    def distance(self) -> str:
        return str(self.meta.get("distance", "euclidean"))

    def assign(
        self, x: np.ndarray, distance: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fine id, expert id, distance to the fine centre) per row, by the clustering's
        distance unless given (routing always uses Euclidean, as the reference)."""
        if (distance or self.distance) == "cosine":  # prep_inference.py: the largest dot product
            fine, dist = nearest_cosine(x, self.fine)
        else:
            fine, dist = nearest(x, self.fine)
        return fine, self.fine_to_coarse[fine], dist

    def save(self, uri: str, **storage_options: Any) -> None:
        buf = io.BytesIO()
        np.savez(
            buf,
            fine=self.fine,
            fine_to_coarse=self.fine_to_coarse,
            coarse=self.coarse,
            meta=np.frombuffer(orjson.dumps(self.meta), dtype=np.uint8),
        )
        storage.write_bytes_atomic(uri, buf.getvalue(), **storage_options)

    @classmethod
    def load(cls, uri: str, **storage_options: Any) -> Centres:
        with np.load(io.BytesIO(storage.read_bytes(uri, **storage_options))) as z:
            meta = orjson.loads(z["meta"].tobytes())
            return cls(z["fine"], z["fine_to_coarse"], z["coarse"], meta)


def fit_centres(
    sample: np.ndarray,
    n_fine: int = N_FINE,
    n_coarse: int = N_COARSE,
    method: str = "balanced",
    niter: int = N_ITER,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    distance: str = "euclidean",
    coarse_niter: int = COARSE_ITER,
    chunk_rows: int = CHUNK_ROWS,
    device: str | None = None,
) -> Centres:
    """Fine k-means on the sample, then coarse k-means over the fine centres, by `method`."""
    info = dict(meta or {})
    if method == "balanced":
        fine, labels, coarse, fitted = _fit_balanced(
            sample, n_fine, n_coarse, niter, coarse_niter, chunk_rows, distance, seed, device
        )
        info.update(fitted)
    elif method in ("faiss", "faiss-balanced"):
        if distance != "euclidean":
            raise UserError(f"kmeans={method} clusters by Euclidean distance only")
        fine = kmeans(sample, n_fine, niter, seed)
        fine_ids, _ = nearest(sample, fine)
        sizes = np.bincount(fine_ids, minlength=n_fine).astype(np.float64)
        if method == "faiss-balanced":
            coarse, labels = balanced_kmeans(fine, n_coarse, sizes, coarse_niter, seed)
        else:
            coarse = kmeans(fine, n_coarse, coarse_niter, seed, nredo=COARSE_REDO)
            labels, _ = nearest(fine, coarse)
    else:
        raise UserError(f"kmeans must be one of {', '.join(KMEANS_METHODS)}: {method!r}")
    info.update(
        n_fine=n_fine,
        n_coarse=n_coarse,
        kmeans=method,
        distance=distance,
        niter=niter,
        coarse_niter=coarse_niter,
        seed=seed,
        sample_rows=len(sample),
        dim=int(sample.shape[1]),
    )
    return Centres(fine, labels.astype(np.int64), coarse, info)


def _fit_balanced(
    sample: np.ndarray,
    n_fine: int,
    n_coarse: int,
    niter: int,
    coarse_niter: int,
    chunk_rows: int,
    distance: str,
    seed: int,
    device: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """prep_hrchy.py's cluster_fine and cluster_coarse: the sample L2-normalised, the fine level
    fitted chunk by chunk (warm-started), the coarse level on the fine centres (normalised for
    cosine), each fine centre then mapped to its nearest coarse centre."""
    from metaclip.experts.balanced import BalancedKMeans, fine_chunks

    x = np.asarray(sample, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    fine_km = BalancedKMeans(n_fine, seed=seed, device=device)
    chunks = fine_chunks(len(x), n_fine, chunk_rows, seed)
    for rows in chunks:
        fine_km.fit(x[rows], distance, iter_limit=niter, online=True)
    fine = fine_km.centres_array()
    coarse_km = BalancedKMeans(n_coarse, seed=seed + 1, device=device)
    on = fine if distance == "euclidean" else fine / np.linalg.norm(fine, axis=1, keepdims=True)
    coarse_km.fit(on, distance, iter_limit=coarse_niter)
    labels = coarse_km.predict(fine, distance)
    fitted = {
        "fine_chunks": len(chunks),
        "fine_chunk_rows": len(chunks[0]),
        "fine_rows_used": int(sum(len(r) for r in chunks)),
        "fine_iterations": fine_km.iterations,
        "coarse_iterations": coarse_km.iterations[0],
        "device": str(fine_km.device),
    }
    return fine, labels, coarse_km.centres_array(), fitted
