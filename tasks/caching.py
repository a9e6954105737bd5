"""Task caching for the project: keys from metaclip.cachekeys (the one recipe), results as
data under the run's own output (metaclip.results.store_result), never pickles.

`cached_run(...)` is the body of every curation task: it returns the stored result of the same
work (key: the task's name, the parameters that change its output, its input files'
identities) when one is intact, as a task state named "Cached" so the UI tells them apart;
otherwise it computes, stores and returns the result. A stored result that is damaged or
tampered with is recomputed, and the result says so (`cache: "damaged"`). Because results live
under the output, any process of any deployment that writes the same output finds them: no
per-process result storage to agree on.

`cache_on_locations(...)` keys the tasks that still use Prefect's own result persistence
(metadata, data experts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from metaclip.cachekeys import file_identity, make_key
from metaclip.config import StorageConfig
from metaclip.paths import OutputLayout
from metaclip.results import load_result, store_result
from metaclip_prefect.tasks.credentials import resolve
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS

# Options of every task cached by cached_run: Prefect neither caches nor persists results.
DATA_CACHED_TASK: dict[str, Any] = {
    **{k: v for k, v in IO_TASK_OPTIONS.items() if k != "persist_result"},
    "persist_result": False,
    "cache_policy": NO_CACHE,
}


def cached_run(
    task: str,
    output: str,
    params: Mapping[str, Any],
    compute: Callable[[], dict[str, Any]],
    *,
    files: Sequence[str] = (),
    file_options: Mapping[str, Any] | None = None,
    output_options: Mapping[str, Any] | None = None,
    refresh: bool = False,
) -> dict[str, Any] | State:
    key = make_key(task, params, files, file_options)
    uri = OutputLayout(output).task_result(task, key)
    opts = dict(output_options or {})
    damaged = False
    if not refresh:
        stored, damaged = load_result(uri, key, **opts)
        if stored is not None:
            return Completed(data={**stored, "cache": "hit"}, name="Cached")
    result = compute()
    store_result(uri, key, result, **opts)
    return {**result, "cache": "damaged" if damaged else "computed"}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def cache_on_locations(
    files: Mapping[str, str] | None = None, params: Sequence[str] = ()
) -> Callable[[Any, dict[str, Any]], str]:
    """A Prefect cache_key_fn over metaclip.cachekeys.make_key: `files` maps the parameters
    that hold file URIs (a string or a list) to the location they are on ("inputs" or
    "output"), whose identities are taken with that location's options from the task's
    `storage` parameter (resolved in the worker; the key holds no option, only identities);
    `params` names the parameters that change the output."""
    by_parameter = dict(files or {})

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        name = context.task.name if context is not None else "task"
        storage = parameters.get("storage") or StorageConfig()
        identities: dict[str, list[str]] = {}
        for parameter, location in by_parameter.items():
            opts = resolve(getattr(storage, location))
            identities.setdefault(location, []).extend(
                file_identity(uri, **opts) for uri in _as_list(parameters.get(parameter))
            )
        chosen = {p: parameters.get(p) for p in params}
        return make_key(name, {**chosen, "file_identities": identities})

    return key_fn
