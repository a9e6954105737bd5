"""Task caching for the project: keys from metaclip.io.cachekeys (the one recipe), results as
data under the run's own output (metaclip.io.results.store_result), never pickles.

`cached_run(...)` is the body of every cached task (curation, metadata, data experts): it
returns the stored result of the same work (key: the task's name, the parameters that change
its output, its input files' identities) when one is intact, as a task state named "Cached" so
the UI tells them apart; otherwise it computes, stores and returns the result. A stored result
that is damaged or tampered with is recomputed, and the result says so (`cache: "damaged"`).
Because results live under the output, any process of any deployment that writes the same
output finds them: no per-process result storage to agree on.

No task of the project uses Prefect's own result persistence: Prefect's result store is
unpickled on a cache hit (cloudpickle, or a JSON decoder that imports any qualified name, as
the stored record itself says), so a file planted there would run code. `DATA_CACHED_TASK` (and
`UNCACHED_TASK` for a task that is never cached) turn it off explicitly, whatever the
PREFECT_RESULTS_PERSIST_BY_DEFAULT setting says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from metaclip.config import Stores
from metaclip.io.cachekeys import file_identity, make_key
from metaclip.io.paths import OutputLayout
from metaclip.io.results import load_result, store_result
from metaclip_prefect.tasks.credentials import stores_for
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS

# Options of every task cached by cached_run: Prefect neither caches nor persists results.
DATA_CACHED_TASK: dict[str, Any] = {
    **IO_TASK_OPTIONS,
    "persist_result": False,
    "cache_policy": NO_CACHE,
}
# Options of an I/O task that is never cached (the metadata merge): the same, by another name.
UNCACHED_TASK: dict[str, Any] = dict(DATA_CACHED_TASK)


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
    result_uri: Callable[[str, str], str] | None = None,
) -> dict[str, Any] | State:
    """`result_uri(task, key)`: where the result is stored, under the flow's own output
    (default: the curation layout's, OutputLayout(output).task_result)."""
    key = make_key(task, params, files, file_options)
    uri = (result_uri or OutputLayout(output).task_result)(task, key)
    opts = dict(output_options or {})
    damaged = False
    if not refresh:
        stored, damaged = load_result(uri, key, **opts)
        if stored is not None:
            return Completed(data={**stored, "cache": "hit"}, name="Cached")
    result = compute()
    store_result(uri, key, result, **opts)
    return {**result, "cache": "damaged" if damaged else "computed"}


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def identities_on(stores: Stores, by_location: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The identities of a task's files, grouped by the location they are on ("inputs",
    "output"), each taken with that location's resolved options: a cache key parameter for
    tasks whose files are on several locations. The key holds identities only, never an
    option."""
    return {
        location: [file_identity(uri, **getattr(stores, location)) for uri in uris]
        for location, uris in by_location.items()
    }


def _under_output(settings: Any) -> Callable[[str, str], str]:
    """Where a curation task's result is stored: OutputLayout(settings.output).task_result."""
    return OutputLayout(settings.output).task_result


def _as_data(result: Any) -> dict[str, Any]:
    """A stage's result as data: a dict, or a result object's to_dict() (the metadata
    stages' result types, metaclip.metadata.manifest.AsData)."""
    return result if isinstance(result, dict) else result.to_dict()


def stage_task(
    name: str,
    stage: Callable[..., Any],
    keyed_by: Sequence[str],
    input_files: Sequence[str] | Mapping[str, str] = (),
    files_on: str = "output",
    unkeyed: Sequence[str] = (),
    key_only: Sequence[str] = (),
    result_uri: Callable[[Any], Callable[[str, str], str]] = _under_output,
) -> Task:
    """The one way a stage of the library becomes a task: `stage(settings, stores, **call)`
    run with the project's retry policy, its result cached as data by cached_run.

    The key: the task's name, the settings named in `keyed_by` (the stage module's KEYED_BY:
    those that change its output), the call's own arguments except its input files and
    `unkeyed` ones, and the identities of the files named by the `input_files` arguments:
    all taken on the `files_on` location, or a mapping {argument: location} for files on
    several (their identities then key the result by location, as `file_identities`).
    `key_only` arguments key the result but are not passed to the stage (files the stage
    finds by itself). `result_uri(settings)`: where results are stored, as `(task, key) ->
    uri` (default: the curation layout's, under settings.output). Storage options with their
    credentials are resolved here, in the worker (stores_for), and are never part of a key or
    a parameter.
    """
    located = (
        dict(input_files) if isinstance(input_files, Mapping)
        else dict.fromkeys(input_files, files_on)
    )  # fmt: skip
    skip = {*located, *unkeyed, *key_only}

    def run(settings: Any, refresh: bool = False, **call: Any) -> dict[str, Any] | State:
        stores = stores_for(settings.storage, getattr(settings, "exclude_store", None))
        params = {field: getattr(settings, field) for field in keyed_by}
        params.update({arg: value for arg, value in call.items() if arg not in skip})
        by_location: dict[str, list[str]] = {}
        for arg, location in located.items():
            by_location.setdefault(location, []).extend(_as_list(call.get(arg)))
        location, files = files_on, []
        if len(by_location) == 1:
            [(location, files)] = by_location.items()
        elif by_location:
            params["file_identities"] = identities_on(stores, by_location)
        args = {arg: value for arg, value in call.items() if arg not in key_only}
        return cached_run(
            name, settings.output, params, lambda: _as_data(stage(settings, stores, **args)),
            files=files, file_options=getattr(stores, location), output_options=stores.output,
            refresh=refresh, result_uri=result_uri(settings),
        )  # fmt: skip

    run.__doc__ = stage.__doc__
    run.__qualname__ = run.__name__ = name.replace("-", "_")
    return task(name=name, **DATA_CACHED_TASK)(run)
