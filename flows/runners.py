"""The Dask task runner: an existing scheduler by address, a cluster class named in the
environment (Slurm, Kubernetes, ...), else a local cluster sized to the box."""

from __future__ import annotations

import json
import os
from typing import Any

from prefect import get_client
from prefect_dask import DaskTaskRunner

from metaclip.errors import UserError

# A cluster manager for every flow, set where the flows run (a work pool's env, a shell):
#   METACLIP_DASK_CLUSTER         import path, e.g. dask_jobqueue.SLURMCluster or
#                                 dask_kubernetes.operator.KubeCluster
#   METACLIP_DASK_CLUSTER_KWARGS  JSON object for its constructor (cores, memory, image, ...)
#   METACLIP_DASK_ADAPT           JSON object for cluster.adapt(): {"minimum": 4, "maximum": 200}
# Its workers must reach the Prefect API: give them PREFECT_API_URL (job script prologue,
# pod env) in the kwargs.
CLUSTER_ENV = "METACLIP_DASK_CLUSTER"
CLUSTER_KWARGS_ENV = "METACLIP_DASK_CLUSTER_KWARGS"
ADAPT_ENV = "METACLIP_DASK_ADAPT"


def current_api_url() -> str:
    """The API this process reports to (a temporary local server in ephemeral mode)."""
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def _json_env(name: str) -> dict[str, Any] | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{name} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UserError(f"{name} must be a JSON object, not {type(value).__name__}")
    return value


def dask_task_runner(
    address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> DaskTaskRunner:
    """Call inside a flow run. Workers of an existing cluster need PREFECT_API_URL themselves."""
    if address:
        return DaskTaskRunner(address=address)
    cluster_class = os.environ.get(CLUSTER_ENV, "").strip()
    if cluster_class:
        return DaskTaskRunner(
            cluster_class=cluster_class,
            cluster_kwargs=_json_env(CLUSTER_KWARGS_ENV) or {},
            adapt_kwargs=_json_env(ADAPT_ENV),
        )
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
