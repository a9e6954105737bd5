"""Gather task results, recomputing any whose output files changed since they were cached.

Prefect's cache remembers a task's return value, not that its files are still the ones it
wrote: an operator may have deleted an output directory, or a run with another t may have
overwritten a part. Each result maps its outputs to their identity when written (size and mtime,
or ETag); where one is gone or different, the task is submitted again with refresh_cache, which
recomputes it and overwrites the cache entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import Task, get_run_logger
from prefect.futures import PrefectFuture

from metaclip.results import changed_outputs


def gather_verified(
    task: Task,
    calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
    storage_options: dict[str, Any],
) -> list[dict[str, Any]]:
    """Submit task(*args, **kwargs) for each call; return results whose outputs are intact."""
    futures: list[PrefectFuture] = [task.submit(*a, **kw) for a, kw in calls]
    results = _results_with_progress(futures, task.name)
    stale = [i for i, r in enumerate(results) if changed_outputs(r, **storage_options)]
    if stale:
        redo = task.with_options(refresh_cache=True)
        again = {i: redo.submit(*calls[i][0], **calls[i][1]) for i in stale}
        for i, future in again.items():
            results[i] = future.result()
    return results


def _results_with_progress(futures: Sequence[PrefectFuture], name: str) -> list[dict[str, Any]]:
    """Results in submission order, logging `name: k/n done` about every tenth of a stage: the
    progress line of a long stage in the terminal and in the UI's flow-run log."""
    logger = get_run_logger()
    step = max(1, len(futures) // 10)
    results = []
    for done, future in enumerate(futures, 1):
        results.append(future.result())
        if len(futures) > 1 and (done % step == 0 or done == len(futures)):
            logger.info("%s: %d/%d done", name, done, len(futures))
    return results
