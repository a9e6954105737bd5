"""Who reads what: a pool's rows (or a download's shards) split among distributed ranks and
DataLoader workers, with no overlap and nothing lost, and how far each reader has got.

A reader ("consumer") is one DataLoader worker of one rank: index rank * workers + worker
among world_size * workers. Consumer i of n reads the pool's rows [i * N // n, (i+1) * N // n)
(or shards i, i + n, ...). Its position is how many of its rows (or samples) it has examined,
kept or not: a state dict holds one position per consumer, and a resumed epoch starts each
consumer there, so exactly the pairs not yet yielded come next.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STATE_FORMAT = 1
POSITION = "__position__"  # a yielded sample's (reader index, position after it, readers)


@dataclass(frozen=True)
class Consumer:
    rank: int = 0
    world_size: int = 1
    worker: int = 0
    workers: int = 1

    @property
    def index(self) -> int:
        return self.rank * self.workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.workers

    def rows(self, total: int) -> tuple[int, int]:
        """This consumer's share of `total` rows: [start, end)."""
        return total * self.index // self.count, total * (self.index + 1) // self.count


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size): as given, else torch.distributed's when it is initialised, else the
    RANK and WORLD_SIZE environment variables torchrun sets, else (0, 1)."""
    if rank is not None and world_size is not None:
        return _checked_rank(rank, world_size)
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return _checked_rank(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def _checked_rank(rank: int, world_size: int) -> tuple[int, int]:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}")
    return rank, world_size


def current_consumer(rank: int, world_size: int) -> Consumer:
    """This process's consumer: the rank's, and the DataLoader worker this runs in (if any)."""
    try:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
    except ImportError:
        info = None
    if info is None:
        return Consumer(rank, world_size)
    return Consumer(rank, world_size, info.id, info.num_workers)


@dataclass
class EpochState:
    """The epoch and each consumer's position in it; what `state_dict` saves."""

    epoch: int = 0
    t: float = 0.0
    seed: int = 0
    consumers: int | None = None  # how many the positions are for (set by the first one seen)
    positions: dict[int, int] = field(default_factory=dict)

    def start(self, epoch: int) -> None:
        """A new epoch: every consumer from its beginning."""
        self.epoch, self.consumers, self.positions = int(epoch), None, {}

    def position(self, consumer: Consumer) -> int:
        """Where `consumer` starts: its saved position (0 when none)."""
        if self.positions and self.consumers not in (None, consumer.count):
            raise ValueError(
                f"this state is for {self.consumers} readers (ranks x DataLoader workers); "
                f"resume with the same number, not {consumer.count}"
            )
        return self.positions.get(consumer.index, 0)

    def advance(self, consumer_index: int, position: int, consumers: int) -> None:
        if self.consumers not in (None, consumers):
            raise ValueError(f"positions for {consumers} readers mixed with {self.consumers}")
        self.consumers = consumers
        if position > self.positions.get(consumer_index, 0):
            self.positions[consumer_index] = position

    def observe(self, samples: Any) -> None:
        """Record the positions that yielded samples (or collated batches of them) carry."""
        for index, position, count in _positions(samples):
            self.advance(index, position, count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT, "epoch": self.epoch, "t": self.t, "seed": self.seed,
            "consumers": self.consumers,
            "positions": {str(k): v for k, v in sorted(self.positions.items())},
        }  # fmt: skip

    def load(self, state: Mapping[str, Any]) -> None:
        """Resume from `to_dict`'s state: the same t and seed, or the sample would differ."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not an online-balancing state: format {state.get('format')!r}")
        if float(state["t"]) != self.t or int(state["seed"]) != self.seed:
            raise ValueError(
                f"the state was saved at t={state['t']}, seed={state['seed']}; this loader has "
                f"t={self.t}, seed={self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.consumers = None if state["consumers"] is None else int(state["consumers"])
        self.positions = {int(k): int(v) for k, v in state["positions"].items()}


class Resumable:
    """What both loaders share: an epoch, and each reader's position in it, saved and loaded
    as a state dict (`self.state`, set by the loader)."""

    state: EpochState

    def set_epoch(self, epoch: int) -> None:
        """Draw `epoch`'s sample next, from the beginning. Call it before iterating (before
        `iter(loader)`: workers copy the dataset then; so not with persistent_workers)."""
        self.state.start(epoch)

    def observe(self, samples: Any) -> None:
        """Record what the training loop has consumed: a batch (or samples) it was given."""
        self.state.observe(samples)

    def state_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: the next iteration starts each reader where the state says."""
        self.state.load(state)


def _positions(samples: Any) -> Iterable[tuple[int, int, int]]:
    """(index, position, consumers) of one sample, a list of samples, or a collated batch (a
    dict whose POSITION holds a list of markers, or three tensors/lists as default_collate
    makes them)."""
    if isinstance(samples, Mapping):
        value = samples[POSITION]
        if len(value) == 3 and not isinstance(value[0], list | tuple) and _is_scalar(value[0]):
            yield tuple(int(v) for v in value)  # one sample's marker
            return
        if len(value) == 3 and all(hasattr(v, "tolist") for v in value):
            value = list(zip(*(v.tolist() for v in value), strict=True))  # default_collate
        for item in value:
            yield tuple(int(v) for v in item)
        return
    for sample in samples:
        yield from _positions(sample)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int) or (hasattr(value, "ndim") and value.ndim == 0)
