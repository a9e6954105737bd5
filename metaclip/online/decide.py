"""Which pairs an epoch keeps: MetaCLIP's balancing, drawn anew every epoch.

A pair matching entries E is kept with probability 1 - prod_{e in E}(1 - min(1, t / count_e)),
as in the offline curation (metaclip.curation.balance). The uniform draw of epoch `e` is a hash
of (seed, epoch, uuid, text): the pair's 64-bit key (blake2b of uuid and text, stored in the
pool as `pair_key`) mixed with a salt of (seed, epoch) by splitmix64. So every epoch is
reproducible on any machine, whatever the split across ranks and workers, and deciding costs a
few integer operations per pair (no text is hashed again).

`epoch=CURATION_DRAW` (None) is the curation's own draw instead (balance.sample_mask: a hash of
(seed, uuid, text)): with the curation's t and seed it keeps exactly the curated set.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from metaclip.curation import balance
from metaclip.io import storage
from metaclip.online.pool import Pool, read_pool

CURATION_DRAW = None  # the epoch that reproduces the offline curation's draw
_MASK64 = (1 << 64) - 1


def pair_key(uuid: str, text: str) -> int:
    """The pair's 64-bit key: blake2b of uuid and text (the encoding balance.uniform_draws
    hashes after its seed)."""
    data = f"{uuid}\x1f{text}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def pair_keys(uuids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """pair_key of every (uuid, text), as uint64."""
    keys = (pair_key(u, t) for u, t in zip(uuids, texts, strict=True))
    return np.fromiter(keys, dtype=np.uint64, count=len(uuids))


def epoch_salt(seed: int, epoch: int) -> int:
    """The 64-bit salt of (seed, epoch) that every pair's key is mixed with."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
    return _salt(int(seed), int(epoch))


@functools.lru_cache(maxsize=64)  # a loader asks for it per sample
def _salt(seed: int, epoch: int) -> int:
    data = f"metaclip-epoch\x1f{seed}\x1f{epoch}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def epoch_draws(keys: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Uniform [0, 1) draws of every pair key for (seed, epoch)."""
    salted = np.asarray(keys, dtype=np.uint64) ^ np.uint64(epoch_salt(seed, epoch))
    return balance.to_unit(balance.mix64(salted))


def epoch_draw(key: int, salt: int) -> float:
    """epoch_draws for one key, in plain integers (bit for bit the same number)."""
    z = ((key ^ salt) + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((z ^ (z >> 31)) >> 11) / float(2**53)


def keep_probabilities(offsets: np.ndarray, flat: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """1 - prod(1 - p_e) per row of a list array given as (offsets, flat entry ids); 0 for a
    row without entries. The product runs in each row's order, one position at a time across
    all rows, so that `OnlineBalance.keep_one` gets the same number bit for bit."""
    starts, lengths = offsets[:-1].astype(np.int64), np.diff(offsets)
    miss = np.ones(len(lengths))
    rows = np.flatnonzero(lengths > 0)
    for position in range(int(lengths.max(initial=0))):
        rows = rows[lengths[rows] > position]
        miss[rows] *= 1.0 - probs[flat[starts[rows] + position]]
    return np.where(lengths > 0, 1.0 - miss, 0.0)


@dataclass(frozen=True)
class OnlineBalance:
    """The keep/drop decision of every pair for any epoch, at threshold t.

    probs: p_e = min(1, t / count_e) per entry id (the worldwide recipe: each language's own t,
    set by t_en as in the curation). Changing t is a new OnlineBalance, not a pass over data.
    """

    probs: np.ndarray
    t: float
    seed: int

    @classmethod
    def from_counts(cls, counts: np.ndarray, t: float, seed: int = 0) -> OnlineBalance:
        """One list of entry counts and one t (the English recipe)."""
        return cls(balance.entry_probabilities(np.asarray(counts), t), float(t), int(seed))

    @classmethod
    def from_pool(
        cls,
        pool: Pool | str,
        t: float | None = None,
        seed: int | None = None,
        **storage_options: Any,
    ) -> OnlineBalance:
        """The pool's global counts at t (the worldwide recipe's: t_en), default the curation's
        t and seed. The counts file must be the one the manifest names (sha256)."""
        if not isinstance(pool, Pool):
            pool = read_pool(pool, **storage_options)
        t = pool.curation_t if t is None else float(t)
        seed = pool.curation_seed if seed is None else int(seed)
        return cls(pool_probabilities(pool, t, **storage_options), t, seed)

    def keep_mask(
        self,
        epoch: int | None,
        entry_ids: pa.ListArray | pa.ChunkedArray,
        keys: np.ndarray | pa.Array | pa.ChunkedArray | None = None,
        uuids: Sequence[str] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Which rows `epoch` keeps. Rows are identified by their pair keys, or by uuids and
        texts (which the curation's own draw, epoch None, always needs)."""
        if isinstance(entry_ids, pa.ChunkedArray):
            entry_ids = entry_ids.combine_chunks()
        if epoch is CURATION_DRAW:
            if uuids is None or texts is None:
                raise ValueError("the curation's draw needs the rows' uuids and texts")
            return balance.sample_mask(entry_ids, uuids, texts, self.probs, self.seed)
        if keys is None:
            if uuids is None or texts is None:
                raise ValueError("give the rows' pair keys, or their uuids and texts")
            keys = pair_keys(uuids, texts)
        elif isinstance(keys, pa.ChunkedArray | pa.Array):
            keys = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=np.uint64)
        probs = keep_probabilities(
            entry_ids.offsets.to_numpy(), entry_ids.values.to_numpy(), self.probs
        )
        return epoch_draws(keys, self.seed, epoch) < probs

    def keep_one(self, epoch: int, entry_ids: Sequence[int], key: int) -> bool:
        """keep_mask for one pair (a webdataset sample), in plain Python: the same decision."""
        if not entry_ids:
            return False
        miss = 1.0
        for entry in entry_ids:
            miss *= 1.0 - self.probs.item(entry)
        return epoch_draw(key, epoch_salt(self.seed, epoch)) < 1.0 - miss


def pool_probabilities(pool: Pool, t: float, **storage_options: Any) -> np.ndarray:
    """p_e of every entry of the pool's counts at t (worldwide: t_en), after checking that the
    counts are the ones the manifest names."""
    from metaclip.curation import worldwide  # the curation's own rules, read on demand
    from metaclip.curation.counts import read_entry_counts

    blob = storage.read_bytes(pool.counts_uri, **storage_options)
    if hashlib.sha256(blob).hexdigest() != pool.counts_sha256:
        raise ValueError(f"{pool.counts_uri} is not the counts file its pool.json names (sha256)")
    if pool.worldwide:
        return worldwide.entry_probabilities(pool.counts_uri, t, **storage_options)
    counts, _ = read_entry_counts(pool.counts_uri, **storage_options)
    return balance.entry_probabilities(counts, t)
