"""Expected curated size as a function of t, exact and without sampling, and the t for a size.

Over the candidate units (per sampled image, the entry-id lists of its matched texts and each
text's weight: 1 / that image's number of texts; 1 everywhere for per-pair sampling):
    size(t) = sum over texts of weight * (1 - prod_e (1 - p_e(t))),
with p_e(t) = min(1, t / count_e) when one t holds for every entry (SingleT, the English
recipe). A ThresholdRule says how a grid point sets every p_e; the worldwide recipe's (a t per
language, from t_en) is metaclip.reporting.languages.LanguageT. Every rule, and a plain vector
of p_e, goes through one function, sizes_for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from metaclip.curation import balance
from metaclip.errors import UserError

Units = tuple[pa.ListArray, np.ndarray]  # (entry ids per text, weight per text)
GRID_POINTS = 48
_BLOCK_CELLS = 1 << 22  # float64 cells per (flat entries x t) block: 32 MiB

# Entry ids -> their p_e at each grid point, (ids x points). A function of a block of ids
# rather than a (entries x points) matrix: with millions of entries (the worldwide metadata)
# and ~50 grid points, that matrix would take gigabytes.
BlockProbs = Callable[[np.ndarray], np.ndarray]


class ThresholdRule(Protocol):
    """How a grid point (t; t_en for the worldwide recipe) sets every entry's probability."""

    def grid(self, ts: np.ndarray) -> BlockProbs: ...

    def probs(self, t: float) -> np.ndarray: ...

    def t_grid(self, t: float) -> np.ndarray: ...


@dataclass(frozen=True)
class SingleT:
    """One t for every entry: p_e = t / max(count_e, t) (metaclip.curation.balance)."""

    counts: np.ndarray

    def grid(self, ts: np.ndarray) -> BlockProbs:
        row = np.asarray(ts, dtype=np.float64)[None, :]

        def block(ids: np.ndarray) -> np.ndarray:
            c = self.counts[ids].astype(np.float64)[:, None]
            return row / np.maximum(c, row)

        return block

    def probs(self, t: float) -> np.ndarray:
        return balance.entry_probabilities(self.counts, t)

    def t_grid(self, t: float) -> np.ndarray:
        return t_grid(self.counts, t)


def probability_vector(probs: np.ndarray) -> BlockProbs:
    """A one-point grid of given p_e."""
    probs = np.asarray(probs, dtype=np.float64)
    return lambda ids: probs[ids][:, None]


def _as_list_array(entry_ids: pa.ListArray | pa.ChunkedArray) -> pa.ListArray:
    if isinstance(entry_ids, pa.ChunkedArray):
        return entry_ids.combine_chunks()
    return entry_ids


def _group_by_entry_set(
    entry_ids: pa.ListArray, weights: np.ndarray
) -> tuple[pa.ListArray, np.ndarray]:
    """One row per distinct entry set, with the summed weight of its rows.

    Real pools repeat the same few entry sets ('photo', 'the') millions of times, so the
    (rows x t) work shrinks by orders of magnitude. A row's key is the sum of its ids' 64-bit
    hashes (rows hold distinct ids, so this is a set hash; collisions are ~n^2 / 2^64).
    """
    lengths = np.diff(entry_ids.offsets.to_numpy())
    nonempty = np.flatnonzero(lengths > 0)  # an empty row is never kept
    entry_ids = entry_ids.take(pa.array(nonempty))
    lengths, weights = lengths[nonempty], np.asarray(weights, dtype=np.float64)[nonempty]
    if not len(nonempty):
        return entry_ids, weights
    flat = entry_ids.flatten().to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    keys = np.add.reduceat(balance.mix64(flat), starts)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return entry_ids.take(pa.array(first)), np.bincount(inverse.ravel(), weights=weights)


def _keep_matrix(entry_ids: pa.ListArray, block_probs: BlockProbs, points: int) -> np.ndarray:
    """(rows x points) keep probabilities of non-empty rows, in blocks to bound memory."""
    lengths = np.diff(entry_ids.offsets.to_numpy())
    flat = entry_ids.flatten().to_numpy()
    ends = np.cumsum(lengths)
    out = np.empty((len(lengths), points))
    rows_per_block = max(1, _BLOCK_CELLS // (points * max(1, int(lengths.max(initial=1)))))
    for lo in range(0, len(lengths), rows_per_block):
        hi = min(lo + rows_per_block, len(lengths))
        f_lo, f_hi = (ends[lo - 1] if lo else 0), ends[hi - 1]
        with np.errstate(divide="ignore"):  # p_e = 1 gives log(0) = -inf: kept for sure
            log_miss = np.log1p(-block_probs(flat[f_lo:f_hi]))
        starts = np.concatenate([[0], ends[lo : hi - 1] - f_lo])
        out[lo:hi] = -np.expm1(np.add.reduceat(log_miss, starts, axis=0))
    return out


def sizes_for(units: Iterable[Units], block_probs: BlockProbs, points: int) -> np.ndarray:
    """Expected curated size at each of `points` grid points whose p_e `block_probs` gives:
    sum of weight * keep probability, exactly. Every rule (one t, a t per language, a given
    probability vector) goes through here."""
    total = np.zeros(points)
    for entry_ids, weights in units:
        grouped, group_weights = _group_by_entry_set(_as_list_array(entry_ids), weights)
        if len(group_weights):
            total += group_weights @ _keep_matrix(grouped, block_probs, points)
    return total


def _checked(ts: Iterable[float] | np.ndarray) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.float64)
    if (ts <= 0).any():
        raise ValueError("every t must be positive")
    return ts


def expected_sizes_under(
    units: Iterable[Units], rule: ThresholdRule, ts: Iterable[float] | np.ndarray
) -> np.ndarray:
    """Expected curated size at each t of `rule` (t, or t_en for the worldwide recipe)."""
    ts = _checked(ts)
    return sizes_for(units, rule.grid(ts), len(ts))


def expected_sizes(
    units: Iterable[Units], counts: np.ndarray, ts: Iterable[float] | np.ndarray
) -> np.ndarray:
    """Expected curated size at each t (one t for every entry): exactly."""
    return expected_sizes_under(units, SingleT(counts), ts)


def expected_size(units: Iterable[Units], probs: np.ndarray) -> float:
    """Expected curated size for given entry probabilities p_e (one per entry id)."""
    return float(sizes_for(units, probability_vector(probs), 1)[0])


@dataclass
class CandidateScan:
    """One pass over the candidates: sizes on a t grid, and the expected counts at t."""

    ts: np.ndarray
    sizes: np.ndarray
    expected_counts: np.ndarray  # expected per-entry count after balancing at t
    units: float  # sum of weights: the number of images (or pairs) that can be sampled
    texts: int
    matches: int
    # Per entry id, over the texts whose first entry id it is: how many texts, and their
    # expected kept weight at t. A worldwide text matches one language's list only, so
    # summed over a language's ids these are its distinct pairs and expected curated size.
    texts_by_first: np.ndarray | None = None
    kept_by_first: np.ndarray | None = None


def _first_ids(entry_ids: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(first entry id of each non-empty row, which rows those are)."""
    lengths = np.diff(entry_ids.offsets.to_numpy())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    rows = np.flatnonzero(lengths > 0)
    return entry_ids.flatten().to_numpy()[starts[rows]], rows


def scan_candidates(
    units: Iterable[Units],
    counts: np.ndarray,
    t: float,
    ts: np.ndarray,
    rule: ThresholdRule | None = None,
) -> CandidateScan:
    """Expected sizes over ts and the expected after-balancing count of every entry at t
    (under `rule`; default one t for every entry)."""
    rule = rule or SingleT(counts)
    probs = rule.probs(t)
    ts = _checked(ts)
    grid = rule.grid(ts)
    n = len(counts)
    sizes, expected = np.zeros(len(ts)), np.zeros(n)
    texts_by_first, kept_by_first = np.zeros(n), np.zeros(n)
    n_units, n_texts, n_matches = 0.0, 0, 0
    for entry_ids, weights in units:
        entry_ids = _as_list_array(entry_ids)
        weights = np.asarray(weights, dtype=np.float64)
        sizes += sizes_for([(entry_ids, weights)], grid, len(ts))
        kept = balance.keep_probabilities(entry_ids, probs) * weights
        lengths = np.diff(entry_ids.offsets.to_numpy())
        flat = entry_ids.flatten().to_numpy()
        expected += np.bincount(flat, weights=np.repeat(kept, lengths), minlength=n)
        first, rows = _first_ids(entry_ids)
        texts_by_first += np.bincount(first, minlength=n)
        kept_by_first += np.bincount(first, weights=kept[rows], minlength=n)
        n_units += float(weights.sum())
        n_texts += len(weights)
        n_matches += len(flat)
    return CandidateScan(
        ts, sizes, expected, n_units, n_texts, n_matches, texts_by_first, kept_by_first
    )


def t_grid(counts: np.ndarray, t: float, points: int = GRID_POINTS) -> np.ndarray:
    """Log-spaced t from 1 to past the largest count (where everything is kept), with t."""
    top = max(2.0, float(counts.max(initial=0)) * 1.25)
    return np.unique(np.concatenate([np.geomspace(1.0, top, points), [float(t)]]))




def t_for_size(ts: np.ndarray, sizes: np.ndarray, target: float) -> float | None:
    """The t whose expected size is target, interpolated (log t) on a monotone grid.

    None when no t on the grid reaches it (the pool is too small) or every t exceeds it.
    """
    if target > sizes[-1] or target < sizes[0]:
        return None
    i = int(np.searchsorted(sizes, target))
    if sizes[i] == target or i == 0:
        return float(ts[i])
    frac = (target - sizes[i - 1]) / (sizes[i] - sizes[i - 1])
    return float(np.exp(np.log(ts[i - 1]) + frac * (np.log(ts[i]) - np.log(ts[i - 1]))))


def solve_t(
    sizes_at: Callable[[np.ndarray], np.ndarray],
    ts: np.ndarray,
    sizes: np.ndarray,
    target_downloaded: float,
    success_rate: float = 1.0,
    passes: int = 1,
    points: int = 16,
) -> dict[str, Any]:
    """The t whose expected downloaded size (success_rate x curated) is the target.

    Interpolates on the grid, then narrows the bracket `passes` times, each a pass of sizes_at
    over `points` new t values (sizes are monotone in t, so a bracket always holds the answer).
    """
    if not 0 < success_rate <= 1:
        raise UserError(f"the download success rate must be in (0, 1], got {success_rate}")
    if target_downloaded <= 0:
        raise UserError(f"the target size must be positive, got {target_downloaded}")
    need = target_downloaded / success_rate
    row = {"target_downloaded": target_downloaded, "success_rate": success_rate,
           "target_curated": need, "t": None, "expected_curated": None}
    for _ in range(passes):
        t = t_for_size(ts, sizes, need)
        if t is None:
            break
        i = int(np.searchsorted(ts, t))
        lo, hi = ts[max(i - 1, 0)], ts[min(i, len(ts) - 1)]
        if hi <= lo:
            break
        ts = np.geomspace(lo, hi, points)
        sizes = sizes_at(ts)
    t = t_for_size(ts, sizes, need)
    if t is not None:
        row.update(t=t, expected_curated=float(np.interp(t, ts, sizes)))
    else:
        row["note"] = (f"unreachable: the expected size spans {sizes[0]:,.0f} to "
                       f"{sizes[-1]:,.0f} pairs")
    return row
