"""The task runs of one flow run, read back from the Prefect server."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


def task_states(flow_run_id: object) -> dict[str, list[str]]:
    """State names by task name (the run-number suffix dropped) of the flow run's task runs
    (its tasks run on its own Dask task runner: no subflow)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    out: dict[str, list[str]] = {}
    for run in runs:
        out.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return out
