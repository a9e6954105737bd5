"""The Dask task runner: an existing scheduler by address, else a local cluster sized to the box."""

from __future__ import annotations

import os
from typing import Any

from prefect import get_client
from prefect_dask import DaskTaskRunner


def current_api_url() -> str:
    """The API this process reports to (a temporary local server in ephemeral mode)."""
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def dask_task_runner(
    address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> DaskTaskRunner:
    """Call inside a flow run. Workers of an existing cluster need PREFECT_API_URL themselves."""
    if address:
        return DaskTaskRunner(address=address)
    cluster_kwargs: dict[str, Any] = {
        # One single-threaded process per core: matching and parsing hold the GIL.
        "n_workers": n_workers or os.cpu_count() or 1,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": dashboard_address,  # ":0" picks a free port
        # Local workers report to this flow's API, not to temporary servers of their own.
        "env": {"PREFECT_API_URL": current_api_url()},
    }
    return DaskTaskRunner(cluster_kwargs=cluster_kwargs)
