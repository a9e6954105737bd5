"""Task submission to Dask at a fifth of prefect-dask's cost in the flow process.

A flow submits its tasks one after another, so the flow process's cost per submission bounds
how fast a run can feed its cluster. prefect-dask's submit (0.3.7) spends about 40 ms of CPU on
each (bench/bench_submit.py): ~75% serializing Prefect's whole settings model into the task's
context, again for every task, and most of the rest in Dask tokenizing that context to name
the task (`pure=True`, no key). With the handling of each result, a 4,096-bucket stage fed by
one flow process stalled at 5 to 10 task runs a second, whatever the cluster's size (docs/scale.md).

`submit_task` does what prefect-dask's submit does, with two changes:
- the settings context is serialized once per settings object (a SettingsContext stands for
  one profile and Settings object, never changed in place: `temporary_settings` and profiles
  make new ones, which are serialized afresh);
- the Dask key is the task's name and a random suffix, so Dask does not tokenize the
  arguments (every Prefect task run is unique anyway: it has its own task run id).

The task itself, its context, its parameters and dependencies reach the worker as before.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any
from uuid import uuid4

from prefect import Task
from prefect.context import SettingsContext
from prefect_dask.task_runners import DaskTaskRunner, PrefectDaskFuture

# (id(profile), id(settings), include_secrets) -> (profile, settings, serialized); the objects
# are held so that no other object takes their ids. A flow run sees one or two settings contexts.
_SERIALIZED: dict[tuple[int, int, bool], tuple[Any, Any, dict[str, Any]]] = {}
_MAX_KEPT = 8
# The runner internals submit_task relies on (prefect-dask 0.3.7, the lock); checked once, on
# the class, because reading `client` on a runner starts its cluster.
_RUNNER_INTERNALS = all(hasattr(DaskTaskRunner, name) for name in ("_optimize_futures", "client"))


class SettingsSerializedOnce(SettingsContext):
    """The current SettingsContext, whose serialize() is computed once per profile and settings
    objects; entered around a submission, where prefect-dask's serialize_context reads it."""

    @classmethod
    def of(cls, context: SettingsContext) -> SettingsSerializedOnce:
        """A copy of `context` (the same profile, settings and set fields; not validated again)."""
        return cls.model_construct(
            _fields_set=set(context.model_fields_set),
            profile=context.profile,
            settings=context.settings,
        )

    def serialize(self, include_secrets: bool = True) -> dict[str, Any]:
        key = (id(self.profile), id(self.settings), include_secrets)
        kept = _SERIALIZED.get(key)
        if kept is None:
            if len(_SERIALIZED) >= _MAX_KEPT:
                _SERIALIZED.clear()
            kept = (self.profile, self.settings, super().serialize(include_secrets))
            _SERIALIZED[key] = kept
        return kept[2]


def task_key(task: Task) -> str:
    """The Dask key of one submission: the task's name, unique by a random suffix."""
    return f"{task.name}-{uuid4().hex}"


def submit_task(
    runner: DaskTaskRunner,
    task: Task,
    parameters: dict[str, Any],
    wait_for: Any = None,
    dependencies: Any = None,
) -> PrefectDaskFuture:
    """`runner.submit(...)` of prefect-dask's DaskTaskRunner, without its per-task costs; its
    own submit where the runner's internals are not those of the locked prefect-dask 0.3.7."""
    if not (_RUNNER_INTERNALS and hasattr(runner, "_started")):
        return DaskTaskRunner.submit(runner, task, parameters, wait_for, dependencies)
    if not runner._started:
        raise RuntimeError("The task runner must be started before submitting work.")
    parameters = runner._optimize_futures(parameters)
    wait_for = runner._optimize_futures(wait_for) if wait_for else None
    current = SettingsContext.get()
    with SettingsSerializedOnce.of(current) if current is not None else nullcontext():
        future = runner.client.submit(
            task,
            key=task_key(task),
            parameters=parameters,
            wait_for=wait_for,
            dependencies=dependencies,
            return_type="state",
        )
    return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)
