"""Prefect cache keys built from metaclip.cachekeys (the one recipe).

Use `cache_on(files=(...), params=(...))` as a task's cache_key_fn: `files` names the task
parameters that hold input file URIs (a string or a list of them), `params` the parameters that
change the output. Everything else (for example a scheduler address) is left out of the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from metaclip.cachekeys import make_key


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def cache_on(
    files: Sequence[str] = (), params: Sequence[str] = ()
) -> Callable[[Any, dict[str, Any]], str]:
    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        task_name = context.task.name if context is not None else "task"
        uris = [u for name in files for u in _as_list(parameters.get(name))]
        chosen = {name: parameters.get(name) for name in params}
        opts = parameters.get("storage_options") or {}
        return make_key(task_name, chosen, uris, opts)

    return key_fn
