"""MetaCLIP balancing (Algorithm 1): cap head entries at t, keep the tail.

An entry's probability is p_e = t / max(count_e, t); a pair matching entries E is kept with
probability 1 - prod_{e in E}(1 - p_e). The uniform draw for a pair is a hash of
(seed, uuid, text), so the kept set does not depend on workers, batching, or reruns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

DEFAULT_T = 20_000
_TWO_POW_53 = float(2**53)


def entry_probabilities(counts: np.ndarray, t: float) -> np.ndarray:
    """p_e = t / max(count_e, t): 1 for tail entries (and unseen ones), t/count for the head."""
    if t <= 0:
        raise ValueError(f"t must be positive, got {t}")
    return t / np.maximum(counts.astype(np.float64), float(t))


def keep_probabilities(entry_ids: pa.ListArray | pa.ChunkedArray, probs: np.ndarray) -> np.ndarray:
    """1 - prod(1 - p_e) per row; 0 for a row without entries."""
    if isinstance(entry_ids, pa.ChunkedArray):
        entry_ids = entry_ids.combine_chunks()
    offsets = entry_ids.offsets.to_numpy()
    flat = entry_ids.flatten().to_numpy()
    n_rows = len(entry_ids)
    rows = np.repeat(np.arange(n_rows), np.diff(offsets))
    with np.errstate(divide="ignore"):  # p_e == 1 gives log(0) = -inf: kept for sure
        log_miss = np.log1p(-probs[flat])
    total = np.bincount(rows, weights=log_miss, minlength=n_rows)
    return -np.expm1(total)


def uniform_draws(
    seed: int, uuids: Sequence[str], texts: Sequence[str], purpose: str = ""
) -> np.ndarray:
    """A deterministic uniform number in [0, 1) per (seed, uuid, text).

    `purpose` separates independent draws made from the same pair (choosing vs keeping).
    """
    out = np.empty(len(uuids), dtype=np.float64)
    prefix = f"{seed}\x1f{purpose}\x1f".encode() if purpose else f"{seed}\x1f".encode()
    for i, (uuid, text) in enumerate(zip(uuids, texts, strict=True)):
        digest = hashlib.blake2b(
            prefix + f"{uuid}\x1f{text}".encode("utf-8", "surrogatepass"), digest_size=8
        ).digest()
        out[i] = (int.from_bytes(digest, "big") >> 11) / _TWO_POW_53
    return out


def sample_mask(
    entry_ids: pa.ListArray | pa.ChunkedArray,
    uuids: Sequence[str],
    texts: Sequence[str],
    probs: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Which rows the balanced sampling keeps."""
    return uniform_draws(seed, uuids, texts) < keep_probabilities(entry_ids, probs)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value (wraps mod 2^64)."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def to_unit(bits: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers from uniform 64-bit values: their top 53 bits, as uniform_draws."""
    return (bits >> np.uint64(11)).astype(np.float64) / _TWO_POW_53


def choose_one_per_image(uuids: pa.Array, texts: Sequence[str], seed: int) -> np.ndarray:
    """Row index of one text per image, uniformly among its texts, the same on every rerun.

    Rows must be grouped by uuid (equal uuids adjacent), as a deduplicated bucket is.
    """
    n = len(uuids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    uuid_list = uuids.to_pylist()
    draws = uniform_draws(seed, uuid_list, texts, purpose="choose")
    starts = np.ones(n, dtype=bool)
    starts[1:] = np.array(uuid_list[1:], dtype=object) != np.array(uuid_list[:-1], dtype=object)
    group = np.cumsum(starts) - 1
    order = np.lexsort((draws, group))  # by group, then by draw: first of each group wins
    firsts = np.ones(n, dtype=bool)
    firsts[1:] = group[order][1:] != group[order][:-1]
    return np.sort(order[firsts])


def t_to_p(counts: np.ndarray, t: float) -> float:
    """Tail share: the fraction of all matches that fall on entries with count < t."""
    total = counts.sum(dtype=np.float64)
    return float(counts[counts < t].sum(dtype=np.float64) / total) if total else 0.0


def p_to_t(counts: np.ndarray, p: float) -> int:
    """The t whose tail share t_to_p(t) is closest to p.

    Candidates are the distinct counts (and one past the largest, where p = 1), so
    t_to_p(p_to_t(p)) is exactly the achievable share nearest p. MetaCLIP's own conversion picks
    a count by an inclusive cumulative sum and can land one entry off; for real pools the two
    differ by less than one count.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    ordered = np.sort(counts[counts > 0]).astype(np.float64)
    if not len(ordered):
        return 0
    candidates, first = np.unique(ordered, return_index=True)
    below = np.concatenate([[0.0], np.cumsum(ordered)])  # below[i]: sum of the i smallest
    shares = np.append(below[first], below[-1]) / below[-1]
    ts = np.append(candidates, candidates[-1] + 1)
    return int(ts[int(np.abs(shares - p).argmin())])


def entries_over_t(counts: np.ndarray, t: float) -> int:
    """How many entries are capped (count above t)."""
    return int((counts > t).sum())
