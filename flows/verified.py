"""Gather task results, recomputing any whose output files have gone since they were cached.

Prefect's cache remembers a task's return value, not that its files still exist; an operator
may have deleted an output directory. Each result names its outputs; where one is missing the
task is submitted again with refresh_cache, which recomputes it and overwrites the cache entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect import Task
from prefect.futures import PrefectFuture

from metaclip.curation import missing_outputs


def gather_verified(
    task: Task,
    calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
    outputs_of: Callable[[Any], list[str]],
    storage_options: dict[str, Any],
) -> list[Any]:
    """Submit task(*args, **kwargs) for each call; return results whose outputs all exist."""
    futures: list[PrefectFuture] = [task.submit(*a, **kw) for a, kw in calls]
    results = [f.result() for f in futures]
    stale = [i for i, r in enumerate(results) if missing_outputs(outputs_of(r), **storage_options)]
    if stale:
        redo = task.with_options(refresh_cache=True)
        again = {i: redo.submit(*calls[i][0], **calls[i][1]) for i in stale}
        for i, future in again.items():
            results[i] = future.result()
    return results
