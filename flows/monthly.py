"""The monthly service flow: curate the newest CommonCrawl dump that is not curated yet.

collinfo.json -> the newest crawl ids -> skip those with <output_root>/<crawl>/summary.json ->
curate the first whose output is not leased by another run (metaclip.io.lease: one writer per
output) into <output_root>/<crawl>/. Deployed as `curate-new-crawl/monthly`
(deployments/prefect.yaml) with a deployment concurrency limit of 1; the lease also stops a
manual run of the same crawl. The curation runs inside this flow run, so its tasks, progress
and artifacts are on the run the schedule started.

The crawl is read with `crawl_options` (anonymous for the public bucket by default) and
nothing else: the output and metadata have their own options, and no anonymous access ever
applies to them.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from metaclip.config import MonthlyConfig
from metaclip.curation import crawls
from metaclip.errors import UserError
from metaclip.io.lease import OutputBusyError
from metaclip_prefect.flows.curate import run_curation
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
)
from metaclip_prefect.tasks.artifacts import artifact_key, publish
from metaclip_prefect.tasks.credentials import resolve
from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS

# Retries as every I/O task, but no cache: the crawl list and the done crawls change.
_IO = {
    **IO_TASK_OPTIONS,
    "persist_result": False,
    "cache_policy": NO_CACHE,
}
# Parameters of `curate` that curate_options may set (the others are the monthly flow's own).
CURATE_OPTIONS = frozenset({
    "recipe", "n_buckets", "one_text_per_image", "exclude_store", "store_tag", "input_format",
    "languages", "reduce_fanout", "limits", "exclude_store_options", "dashboard_address",
})  # fmt: skip


@task(name="list-crawls", **_IO)
def list_crawls(collinfo: str) -> list[str]:
    """The crawl ids of collinfo.json, newest first (public HTTPS or a local file)."""
    return crawls.read_collinfo(collinfo)


def _report(markdown: str, output_root: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    publish(
        create_markdown_artifact, markdown=markdown,
        key=artifact_key("monthly", output_root), description="The monthly choice.",
    )  # fmt: skip


@flow(
    name="curate-new-crawl", log_prints=True, task_runner=DeferredDaskTaskRunner(),
    **CHECKED_BY_CONFIG,
)
def curate_new_crawl(
    output_root: str,
    metadata: str,
    collinfo: str = crawls.COLLINFO_URI,
    data_root: str = crawls.DATA_ROOT,
    t: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    lookback: int = 1,
    max_files: int | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    crawl_options: dict[str, Any] | str | None = None,
    metadata_options: dict[str, Any] | str | None = None,
    output_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    curate_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Curate the newest of the `lookback` newest crawls not done in output_root, if any.

    Each crawl goes to <output_root>/<crawl_id>/. `data_root` holds CommonCrawl's layout
    (crawl-data/<crawl>/wat.paths.gz); `max_files` caps the WAT files (trial runs);
    `curate_options` are more parameters of `curate`, by name (e.g. {"n_buckets": 64}, or
    {"limits": {"max_text_chars": 2000}} for the per-record extraction limits, or
    {"recipe": "worldwide"} with a worldwide `metadata`). t: the curation's (default: the
    recipe's, 20,000 or a worldwide t_en of 170,000).
    """
    params = dict(locals())
    return checked_run(lambda: _config(params), run_monthly)


def _config(params: dict[str, Any]) -> MonthlyConfig:
    extra = params.pop("curate_options") or {}
    if not isinstance(extra, dict):
        raise UserError("curate_options: must be an object of curate parameters")
    refused = sorted(set(extra) - CURATE_OPTIONS)
    if refused:
        raise UserError(
            f"curate_options: {', '.join(refused)} cannot be set there (allowed: "
            f"{', '.join(sorted(CURATE_OPTIONS))}; the others are the monthly flow's own)"
        )
    curate = {k: params.pop(k) for k in ("t", "seed", "batch_size", "dask_address", "n_workers",
                                         "metadata_options", "output_options", "credentials")}
    return MonthlyConfig.from_params(**params, curate={**curate, **extra})


def run_monthly(config: MonthlyConfig) -> dict[str, Any]:
    logger = get_run_logger()
    output_opts = resolve(config.storage.output)
    ids = list_crawls(config.collinfo)
    candidates = crawls.choose_crawl(
        ids, lambda c: crawls.is_done(config.output_root, c, **output_opts), config.lookback
    )
    for crawl_id in candidates:
        curate_config = config.curate_config(crawl_id)
        try:
            _report(
                f"Curating **{crawl_id}** (the newest of the {config.lookback} newest crawls "
                f"not yet in `{config.output_root}`) into `{curate_config.output}`.",
                config.output_root,
            )
            summary = run_curation(curate_config)
        except OutputBusyError as exc:
            logger.info("%s: skipped (%s)", crawl_id, exc)
            continue
        return {"crawl": crawl_id, "status": "curated", "output": curate_config.output,
                "summary": summary}  # fmt: skip
    _report(
        f"Nothing to curate in `{config.output_root}`: the newest {config.lookback} crawl(s) "
        f"({', '.join(ids[: config.lookback]) or 'none listed'}) are done or being curated.",
        config.output_root,
    )
    logger.info("nothing to curate in %s", config.output_root)
    return {"crawl": None, "status": "nothing-to-do", "candidates": candidates}
