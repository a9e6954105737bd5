"""How every flow starts: its configuration checked, its output leased, then its tasks on a
Dask cluster chosen at run time.

`DeferredDaskTaskRunner` is every flow's task runner: Prefect enters it with the flow run, but
it starts no cluster until the flow has validated its configuration and called
`use_cluster(...)`, and the first task is submitted. So tasks, their progress and artifacts
all belong to the flow run the user started (no inner flow), and a mistake costs no cluster.

The cluster: an existing scheduler by address, a cluster class named in the environment
(Slurm, Kubernetes, ...), else a local cluster sized to the box.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect_dask import DaskTaskRunner

from metaclip.config import ClusterConfig
from metaclip.errors import UserError
from metaclip.io import lease
from metaclip.io.paths import lock_uri
from metaclip_prefect.flows.submission import submit_task

# A cluster manager for every flow, set where the flows run (a work pool's env, a shell):
#   METACLIP_DASK_CLUSTER         import path, e.g. dask_jobqueue.SLURMCluster or
#                                 dask_kubernetes.operator.KubeCluster
#   METACLIP_DASK_CLUSTER_KWARGS  JSON object for its constructor (cores, memory, image, ...)
#   METACLIP_DASK_ADAPT           JSON object for cluster.adapt(): {"minimum": 4, "maximum": 200}
# Its workers must reach the Prefect API: give them PREFECT_API_URL (job script prologue,
# pod env) in the kwargs.
C = TypeVar("C")
R = TypeVar("R")

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


# Flow options: the parameters are checked by the flow's configuration (metaclip.config), one line
# naming the parameter, instead of Prefect's pydantic validation (a multi-line error, before the
# flow's own checks; deployments still check the schema when a run is created).
# persist_result=False: a flow's return value never goes to Prefect's (pickled) result store.
CHECKED_BY_CONFIG: dict[str, Any] = {"validate_parameters": False, "persist_result": False}


class DeferredDaskTaskRunner(DaskTaskRunner):
    """A DaskTaskRunner whose cluster the flow chooses after validating its parameters."""

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Any = None,
        dependencies: Any = None,
    ) -> Any:
        """DaskTaskRunner.submit at a fifth of its cost in the flow process (flows.submission)."""
        return submit_task(self, task, parameters, wait_for, dependencies)

    def configure(self, cluster: ClusterConfig) -> None:
        if self._client is not None:
            raise RuntimeError("the Dask cluster has already started")
        if cluster.dask_address:
            self.address = cluster.dask_address
            return
        cluster_class = os.environ.get(CLUSTER_ENV, "").strip()
        if cluster_class:
            from prefect.utilities.importtools import from_qualified_name

            self.cluster_class = cluster_class
            self.resolved_cluster_class = from_qualified_name(cluster_class)
            self.cluster_kwargs = _json_env(CLUSTER_KWARGS_ENV) or {}
            self.adapt_kwargs = _json_env(ADAPT_ENV) or {}
            return
        self.cluster_kwargs = {
            # One single-threaded process per core: matching and parsing hold the GIL.
            "n_workers": cluster.n_workers or os.cpu_count() or 1,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": cluster.dashboard_address,  # ":0" picks a free port
            # Local workers report to this flow's API, not to temporary servers of their own.
            "env": {"PREFECT_API_URL": current_api_url()},
        }


def use_cluster(cluster: ClusterConfig) -> None:
    """Point this flow run's task runner at the cluster of its configuration."""
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if isinstance(runner, DeferredDaskTaskRunner):
        runner.configure(cluster)


def user_error(exc: UserError) -> State:
    """The flow's end for a user mistake: one line, in the log and as the Failed state's
    message (the CLI exits 2 on it: the state's data is the UserError)."""
    get_run_logger().error("%s", exc)
    return Failed(message=str(exc), data=exc)


def checked_run(configure: Callable[[], C], work: Callable[[C], R]) -> R | State:
    """Every flow's body: its configuration checked (configure(): a metaclip.config class from
    the flow's parameters), then work(config). A UserError from either, before any work or on
    the way (inputs missing, output leased by another run), ends the flow in one line: see
    user_error. Any other exception fails the run as usual, its traceback in the run's log."""
    try:
        return work(configure())
    except UserError as exc:
        return user_error(exc)


def run_owner() -> str:
    """Who holds an output's lease: the top flow run of this run (a monthly run and the
    curation it starts share it), or this process outside Prefect."""
    for get in (flow_run.get_root_flow_run_id, flow_run.get_id):
        try:
            run_id = get()
        except Exception:  # noqa: BLE001 - no run context, or the API is unreachable
            run_id = None
        if run_id:
            return str(run_id)
    return f"pid-{os.getpid()}"


def run_has_ended(owner: str) -> bool:
    """Whether the flow run holding a lease is over (crashed or cancelled runs leave leases)."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(owner)).state
    except Exception:  # noqa: BLE001 - unknown owner (other server, a pid): trust the TTL
        return False
    return state is not None and state.is_final()


@contextmanager
def output_lease(output_lock_uri: str, **storage_options: Any) -> Iterator[None]:
    """Hold an output's lease for the block (metaclip.io.lease); OutputBusyError if another live
    run holds it."""
    owner = run_owner()
    with lease.held(output_lock_uri, owner, owner_ended=run_has_ended, **storage_options):
        yield


@contextmanager
def writing_output(config: Any, **output_options: Any) -> Iterator[None]:
    """Every writing flow's work: its output's lease held (one writer per output) and its
    tasks on the cluster its configuration names (`config.output`, `config.cluster`)."""
    with output_lease(lock_uri(config.output), **output_options):
        use_cluster(config.cluster)
        yield
