"""Online balancing over img2dataset's webdataset shards: each sample's json carries its pool
row's entry_ids, uuid and pair_key (img2dataset's save_additional_columns), so the epoch's
decision needs nothing but the sample.

- `BalancedShards`: the first stage of a `wds.DataPipeline`; this reader's shards (shards i,
  i + n, ... for reader i of n: metaclip.online.split), only the samples the epoch keeps,
  resumable mid-epoch;
- `balanced`: the same decision as a plain stage, for a pipeline that splits shards its own way.

A sample whose json is missing or damaged, or names an entry the counts do not have, is
skipped and counted in `skipped` by reason (per process); the rest of its shard is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

import numpy as np
import orjson
from torch.utils.data import IterableDataset
from webdataset.handlers import reraise_exception
from webdataset.tariterators import tarfile_samples

from metaclip.online.decide import OnlineBalance, epoch_draws, keep_probabilities, pair_key
from metaclip.online.split import (
    POSITION,
    EpochState,
    Resumable,
    current_consumer,
    distributed_rank,
)

Sample = dict[str, Any]


BLOCK = 256  # samples decided at once: one vectorised decision instead of 256 Python ones


class SampleDecider:
    """keep/drop of downloaded samples for an epoch, a block at a time, with skips counted by
    reason. A block whose json is all well formed is decided in one OnlineBalance.keep_mask
    call; a block with a damaged sample is decided sample by sample (keep_one: the same
    decisions), so that exactly the damaged ones are skipped and counted."""

    def __init__(self, balance: OnlineBalance, skipped: Counter[str]) -> None:
        self.balance, self.skipped = balance, skipped

    def keep_block(self, samples: Sequence[Sample], epoch: int) -> list[bool]:
        fast = self._fast_block(samples, epoch)
        return fast if fast is not None else [self.keep(s, epoch) for s in samples]

    def keep(self, sample: Sample, epoch: int) -> bool:
        pair = self._pair(sample)
        if pair is None:
            return False
        return self.balance.keep_one(epoch, *pair)

    def _fast_block(self, samples: Sequence[Sample], epoch: int) -> list[bool] | None:
        """The block's decisions in one vectorised call, or None when any sample needs the
        checks of `_pair` (then nothing is counted here)."""
        try:
            metas = [orjson.loads(s["json"]) for s in samples]
            ids = [m["entry_ids"] for m in metas]
            keys = [m.get("pair_key") for m in metas]
            keys = [pair_key(m["uuid"], m["caption"]) if k is None else k
                    for m, k in zip(metas, keys, strict=True)]  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not all(type(k) is int for k in keys) or not all(type(x) is list for x in ids):
            return None
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.asarray(list(chain.from_iterable(ids)))
        if len(flat) and (flat.dtype.kind != "i" or flat.min() < 0
                          or flat.max() >= len(self.balance.probs)):  # fmt: skip
            return None
        try:
            key_array = np.array(keys, dtype=np.uint64)
        except OverflowError:
            return None
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        probs = keep_probabilities(offsets, flat.astype(np.int64), self.balance.probs)
        return (epoch_draws(key_array, self.balance.seed, epoch) < probs).tolist()

    def _pair(self, sample: Sample) -> tuple[list[int], int] | None:
        """(entry ids, pair key) from the sample's json; None (counted) when unusable."""
        raw = sample.get("json")
        if raw is None:
            self.skipped["no json"] += 1
            return None
        try:
            meta = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
            entry_ids = [int(e) for e in meta["entry_ids"]]
            key = meta.get("pair_key")
            if key is None:
                key = pair_key(meta["uuid"], meta["caption"])
            elif isinstance(key, bool) or not isinstance(key, int):  # a float is a damaged key
                raise TypeError(key)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.skipped["damaged json"] += 1
            return None
        if any(not 0 <= e < len(self.balance.probs) for e in entry_ids):
            self.skipped["entry id out of range"] += 1
            return None
        if not 0 <= key < 2**64:
            self.skipped["damaged json"] += 1
            return None
        return entry_ids, key


def blocks(samples: Iterable[Sample], size: int = BLOCK) -> Iterator[list[Sample]]:
    """The samples in lists of `size` (the last one shorter)."""
    iterator = iter(samples)
    while block := list(islice(iterator, size)):
        yield block


def balanced(balance: OnlineBalance, epoch: int) -> Callable[[Iterable[Sample]], Iterator[Sample]]:
    """A pipeline stage keeping the samples `epoch` keeps (wds.WebDataset(...).compose(it))."""
    decider = SampleDecider(balance, Counter())

    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        for block in blocks(samples):
            keep = decider.keep_block(block, epoch)
            yield from (s for s, k in zip(block, keep, strict=True) if k)

    return stage


class BalancedShards(Resumable, IterableDataset):
    """This reader's share of `urls` (tar shards, local or any URL webdataset opens), yielding
    the raw samples (dicts of bytes, as wds.tarfile_to_samples makes them) the current epoch
    keeps, each with POSITION for `observe`. Follow it with wds.decode, wds.to_tuple, ...
    """

    def __init__(
        self,
        urls: Sequence[str],
        balance: OnlineBalance,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        handler: Callable[[Exception], bool] = reraise_exception,
    ) -> None:
        super().__init__()
        self.urls, self.balance, self.handler = list(urls), balance, handler
        self.rank, self.world_size = distributed_rank(rank, world_size)
        self.skipped: Counter[str] = Counter()
        self.state = EpochState(t=balance.t, seed=balance.seed)
        self.state.start(epoch)

    def __iter__(self) -> Iterator[Sample]:
        consumer = current_consumer(self.rank, self.world_size)
        skip, epoch = self.state.position(consumer), self.state.epoch
        decider = SampleDecider(self.balance, self.skipped)
        shards = ({"url": url} for url in self.urls[consumer.index :: consumer.count])
        samples = tarfile_samples(shards, handler=self.handler)
        for _ in islice(samples, skip):  # read past what the resumed epoch has seen
            pass
        index, count = consumer.index, consumer.count
        self.state.advance(index, skip, count)
        positions = self.state.positions  # this reader's entry, advanced as samples are yielded
        position = skip
        for block in blocks(samples):
            keep = decider.keep_block(block, epoch)
            for end, (sample, kept) in enumerate(zip(block, keep, strict=True), position + 1):
                if kept:
                    sample[POSITION] = (index, end, count)  # as split.POSITION says
                    positions[index] = end
                    yield sample
            position += len(block)
        self.state.advance(index, position, count)
