"""Gather task results, recomputing any whose output files changed since they were cached.

A cached result remembers what the task returned, not that its files are still the ones it
wrote: an operator may have deleted an output directory, or a run with another t may have
overwritten a part. Each result maps its outputs to their identity when written (size and mtime,
or ETag); where one is gone or different, the task is submitted again with `refresh=True`
(every task of the project is cached as data by tasks.caching.cached_run and takes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import Task, get_run_logger
from prefect.futures import PrefectFuture

from metaclip.io.results import changed_outputs

Calls = Sequence[Mapping[str, Any]]


def gather_verified(
    task: Task,
    calls: Calls,
    options_for: Callable[[str], dict[str, Any]],
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Submit task(**call) for each call; return results whose outputs are intact.

    options_for(uri): the storage options of an output a result names. on_done(done)
    is told as results come in (stage progress)."""
    futures: list[PrefectFuture] = [task.submit(**call) for call in calls]
    results = _results_with_progress(futures, task.name, on_done)
    stale = [i for i, r in enumerate(results) if changed_outputs(r, options_for)]
    if stale:
        again = {i: task.submit(**{**calls[i], "refresh": True}) for i in stale}
        for i, future in again.items():
            results[i] = future.result()
    return results


def _results_with_progress(
    futures: Sequence[PrefectFuture],
    name: str,
    on_done: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """Results in submission order, logging `name: k/n done` about every tenth of a stage: the
    progress line of a long stage in the terminal and in the UI's flow-run log."""
    logger = get_run_logger()
    step = max(1, len(futures) // 10)
    results = []
    for done, future in enumerate(futures, 1):
        results.append(future.result())
        if on_done is not None:
            on_done(done)
        if len(futures) > 1 and (done % step == 0 or done == len(futures)):
            logger.info("%s: %d/%d done", name, done, len(futures))
    return results
