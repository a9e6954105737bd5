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

from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from metaclip.config import StorageConfig
from metaclip.io.cachekeys import file_identity, make_key
from metaclip.io.paths import OutputLayout
from metaclip.io.results import load_result, store_result
from metaclip_prefect.tasks.credentials import resolve
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


def identities_on(
    storage: StorageConfig | None, **by_location: str | Sequence[str] | None
) -> dict[str, list[str]]:
    """The identities of a task's files, grouped by the location they are on ("inputs",
    "output"), each taken with that location's options from the run's `storage` (resolved here,
    in the worker): a cache key parameter for tasks whose files are on several locations. The
    key holds identities only, never an option."""
    storage = storage or StorageConfig()
    return {
        location: [
            file_identity(uri, **resolve(getattr(storage, location))) for uri in _as_list(files)
        ]
        for location, files in by_location.items()
    }
