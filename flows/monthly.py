"""The monthly service flow: curate the newest CommonCrawl dump that is not curated yet.

collinfo.json -> the newest crawl ids -> skip those with <output_root>/<crawl>/summary.json ->
take the crawl's guard (a lock file in its output folder) -> run `curate` on the crawl's WAT
files -> release the guard. Deployed as `curate-new-crawl/monthly` (deployments/prefect.yaml)
with a deployment concurrency limit of 1; the guard also stops a manual run of the same crawl.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from metaclip_prefect.flows.curate import curate
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed

from metaclip import crawls
from metaclip.balance import DEFAULT_T
from metaclip.errors import UserError

# Retries as every I/O task, but no cache: the crawl list and the done crawls change.
_IO = {
    **{k: v for k, v in IO_TASK_OPTIONS.items() if k != "persist_result"},
    "cache_policy": NO_CACHE,
}


@task(name="list-candidate-crawls", **_IO)
def candidate_crawls(
    collinfo: str, output_root: str, lookback: int, storage_options: dict[str, Any]
) -> list[str]:
    ids = crawls.read_collinfo(collinfo)  # public HTTPS or a local file: no bucket options
    return crawls.choose_crawl(
        ids, lambda c: crawls.is_done(output_root, c, **storage_options), lookback
    )


@task(name="list-wat-files", **_IO)
def crawl_wat_files(
    data_root: str, crawl_id: str, max_files: int | None, storage_options: dict[str, Any]
) -> list[str]:
    return crawls.wat_inputs(data_root, crawl_id, max_files, **storage_options)


def run_has_ended(owner: str) -> bool:
    """Whether the flow run holding a lock is over (crashed or cancelled runs leave locks)."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(owner)).state
    except Exception:  # noqa: BLE001 - unknown owner (other server, bad id): trust the TTL
        return False
    return state is not None and state.is_final()


def _report(markdown: str) -> None:
    create_markdown_artifact(markdown, key="monthly-crawl", description="The monthly choice.")


@flow(name="curate-new-crawl", log_prints=True)
def curate_new_crawl(
    output_root: str,
    metadata: str,
    collinfo: str = crawls.COLLINFO_URI,
    data_root: str = crawls.DATA_ROOT,
    t: float = DEFAULT_T,
    seed: int = 0,
    batch_size: int = 16,
    lookback: int = 1,
    max_files: int | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    storage_options: dict[str, Any] | None = None,
    lock_ttl_hours: float = crawls.LOCK_TTL_S / 3600,
    curate_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Curate the newest of the `lookback` newest crawls not done in output_root, if any.

    Each crawl goes to <output_root>/<crawl_id>/. `data_root` holds CommonCrawl's layout
    (crawl-data/<crawl>/wat.paths.gz); `max_files` caps the WAT files (trial runs);
    `curate_options` are more parameters of `curate`, by name (e.g. {"n_buckets": 64}).
    """
    opts = storage_options or {}
    logger = get_run_logger()
    try:
        candidates = candidate_crawls(collinfo, output_root, lookback, opts)
    except UserError as exc:
        return Failed(message=str(exc))
    owner = str(flow_run.get_id() or "local")
    for crawl_id in candidates:
        guard = crawls.lock_uri(output_root, crawl_id)
        taken, holder = crawls.try_acquire(
            guard, owner, ttl_s=lock_ttl_hours * 3600, owner_ended=run_has_ended, **opts
        )
        if taken:
            params = dict(metadata=metadata, t=t, seed=seed, batch_size=batch_size,
                          dask_address=dask_address, n_workers=n_workers)  # fmt: skip
            params.update(curate_options or {})
            output = crawls.crawl_output(output_root, crawl_id)
            with _guard(guard, owner, opts):
                return _curate_crawl(crawl_id, output, data_root, max_files, opts, params)
        owner_of = holder.owner if holder else "?"
        logger.info("%s is being curated by flow run %s: skipped", crawl_id, owner_of)
    _report(f"Nothing to curate: the newest {lookback} crawl(s) are done or in progress.")
    logger.info("nothing to curate in %s", output_root)
    return {"crawl": None, "status": "nothing-to-do", "candidates": candidates}


@contextmanager
def _guard(uri: str, owner: str, opts: dict[str, Any]) -> Iterator[None]:
    """Hold a crawl's guard (already taken) until the block ends, however it ends."""
    try:
        yield
    finally:
        crawls.release(uri, owner, **opts)


def _curate_crawl(
    crawl_id: str,
    output: str,
    data_root: str,
    max_files: int | None,
    opts: dict[str, Any],
    params: dict[str, Any],
) -> Any:
    try:
        files = crawl_wat_files(data_root, crawl_id, max_files, opts)
    except UserError as exc:
        return Failed(message=str(exc))
    _report(f"Curating **{crawl_id}**: {len(files)} WAT files into `{output}`.")
    # Parameters by name: curate's signature grows (n_buckets, exclude store, ...).
    state = curate(inputs=files, output=output, storage_options=opts, return_state=True, **params)
    if not state.is_completed():
        return Failed(message=f"curation of {crawl_id} failed: {state.message}")
    return {"crawl": crawl_id, "status": "curated", "output": output, "summary": state.result()}
