"""A PyTorch IterableDataset over a pool's Parquet (local or s3://): this epoch's balanced
sample, split among ranks and DataLoader workers (metaclip.online.split), resumable mid-epoch.

Each reader reads its own range of the pool's rows, one row group at a time. With `shuffle`
(the default) the row groups come in an order, and the rows of each in an order, that a hash
of (seed, epoch) sets: a different order every epoch, the same on every rerun.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch.utils.data import IterableDataset

from metaclip.curation import balance
from metaclip.io import storage
from metaclip.online.decide import OnlineBalance, epoch_salt
from metaclip.online.pool import Pool, read_pool
from metaclip.online.split import (
    POSITION,
    Consumer,
    EpochState,
    Resumable,
    current_consumer,
    distributed_rank,
)

_ROW_ORDER = 0x5DEECE66D  # the rows' order salt differs from the draw's and the chunks'
_CHUNK_ORDER = 0x2545F4914F6CDD1D


@dataclass(frozen=True)
class Chunk:
    """Rows [start, end) of one row group of one part (row numbers within the part)."""

    part: int
    row_group: int
    group_start: int  # the row group's first row within the part
    start: int
    end: int

    @property
    def rows(self) -> int:
        return self.end - self.start


class BalancedPool(Resumable, IterableDataset):
    """Yields the pairs the current epoch keeps (`set_epoch`), as dicts: url, caption, uuid,
    entry_ids, text_key, pair_key (the worldwide recipe: language too) and POSITION, which
    `observe` reads to keep the state dict exact whatever the workers have prefetched.

    pool: a run's output or its pool/ folder. t, seed: default the curation's (the worldwide
    recipe's t is t_en). rank, world_size: default torch.distributed's (or RANK, WORLD_SIZE).
    """

    def __init__(
        self,
        pool: str,
        t: float | None = None,
        seed: int | None = None,
        epoch: int = 0,
        shuffle: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.storage_options = dict(storage_options or {})
        self.pool: Pool = read_pool(pool, **self.storage_options)
        self.balance = OnlineBalance.from_pool(self.pool, t, seed, **self.storage_options)
        self.shuffle = shuffle
        self.rank, self.world_size = distributed_rank(rank, world_size)
        self.state = EpochState(t=self.balance.t, seed=self.balance.seed)
        self.state.start(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        consumer = current_consumer(self.rank, self.world_size)
        skip = self.state.position(consumer)
        index, count = consumer.index, consumer.count
        self.state.advance(index, skip, count)
        positions = self.state.positions  # this reader's entry, advanced as rows are yielded
        position = 0
        for chunk in self.chunks(consumer):
            if position + chunk.rows <= skip:
                position += chunk.rows
                continue
            table = self._read(chunk)
            order = self._order(table, chunk)[max(0, skip - position):]
            position = max(position, skip)
            keep = self.balance.keep_mask(self.state.epoch, table["entry_ids"],
                                          keys=table["pair_key"])  # fmt: skip
            kept = keep[order]
            rows = table.take(pa.array(order[kept])).to_pylist()
            ends = (position + 1 + np.flatnonzero(kept)).tolist()
            for row, end in zip(rows, ends, strict=True):
                row[POSITION] = (index, end, count)  # as split.POSITION says
                positions[index] = end
                yield row
            position += len(order)
        self.state.advance(index, position, count)

    def chunks(self, consumer: Consumer) -> list[Chunk]:
        """The consumer's rows as row-group pieces, in this epoch's order."""
        start, end = consumer.rows(self.pool.rows)
        pieces, first = [], 0
        for index, part in enumerate(self.pool.parts):
            if first < end and first + part.rows > start:
                lo, hi = max(start - first, 0), min(end - first, part.rows)
                pieces += self._part_chunks(index, lo, hi)
            first += part.rows
        if self.shuffle and pieces:
            salt = np.uint64(epoch_salt(self.balance.seed, self.state.epoch) ^ _CHUNK_ORDER)
            ids = np.array([(c.part << 40) + c.start for c in pieces], dtype=np.uint64)
            pieces = [pieces[i] for i in np.argsort(balance.mix64(ids ^ salt), kind="stable")]
        return pieces

    def _part_chunks(self, part: int, start: int, end: int) -> list[Chunk]:
        meta = self._metadata(part)
        if meta.num_rows != self.pool.parts[part].rows:
            raise ValueError(f"{self.pool.parts[part].uri} has {meta.num_rows} rows; the "
                             f"pool's manifest says {self.pool.parts[part].rows}")  # fmt: skip
        chunks, group_start = [], 0
        for group in range(meta.num_row_groups):
            group_end = group_start + meta.row_group(group).num_rows
            lo, hi = max(start, group_start), min(end, group_end)
            if lo < hi:
                chunks.append(Chunk(part, group, group_start, lo, hi))
            group_start = group_end
        return chunks

    def _metadata(self, part: int) -> pq.FileMetaData:
        fs, path = storage.filesystem(self.pool.parts[part].uri, **self.storage_options)
        with fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).metadata

    def _read(self, chunk: Chunk) -> pa.Table:
        fs, path = storage.filesystem(self.pool.parts[chunk.part].uri, **self.storage_options)
        with fs.open(path, "rb") as fh:
            group = pq.ParquetFile(fh, page_checksum_verification=True).read_row_group(
                chunk.row_group
            )
        return group.slice(chunk.start - chunk.group_start, chunk.rows)

    def _order(self, table: pa.Table, chunk: Chunk) -> np.ndarray:
        """The chunk's rows in this epoch's order."""
        if not self.shuffle:
            return np.arange(table.num_rows)
        keys = table["pair_key"].to_numpy().astype(np.uint64)
        salt = np.uint64(epoch_salt(self.balance.seed, self.state.epoch) ^ _ROW_ORDER)
        return np.argsort(balance.mix64(keys ^ salt), kind="stable")


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """A batch as lists per field (entry_ids have different lengths: torch's default_collate
    would refuse them); `BalancedPool.observe` reads its positions."""
    if not samples:
        return {}
    return {name: [s[name] for s in samples] for name in samples[0]}
