"""The MoDE data-experts flow: curated pairs -> embeddings -> fine/coarse k-means -> experts.

`data_experts` checks its whole configuration (metaclip.config.ExpertsConfig), then finds the
curated shards (none found stops it in one line), before any work; it then takes the output's
lease (one writer per output) and runs every stage's tasks on its own Dask task runner: one
embedding task and one assignment task per shard, a sampling task per shard and one k-means
fit in between, all on the flow run the user started.

Task results are JSON data with a checksum under the MoDE output (`_work/tasks/`, see
tasks/experts.py), never Prefect's pickled result store: neither the tasks nor the flow persist a
Prefect result. The summary's `task_results` counts the task results that came from the cache,
were computed, or were found damaged and recomputed.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import Task, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from metaclip.config import ExpertsConfig, contains, glob_base
from metaclip.errors import UserError
from metaclip.experts import inputs
from metaclip.experts.assign import N_EXAMPLES, OUTSIDE_SHARE
from metaclip.experts.embedding import BATCH_SIZE, DEFAULT_ENCODER
from metaclip.experts.kmeans import CHUNK_ROWS, COARSE_ITER, N_COARSE, N_FINE, N_ITER, Centres
from metaclip.experts.paths import ModeLayout, shard_id
from metaclip.experts.report import cluster_report
from metaclip.io.results import write_json
from metaclip_prefect.flows.runners import (
    CHECKED_BY_CONFIG,
    DeferredDaskTaskRunner,
    checked_run,
    writing_output,
)
from metaclip_prefect.flows.verified import gather_verified
from metaclip_prefect.tasks.artifacts import StageProgress, artifact_key, publish
from metaclip_prefect.tasks.credentials import resolve
from metaclip_prefect.tasks.experts import assign_shard, embed_shard, fit_centres, sample_shard


@flow(
    name="data-experts",
    log_prints=True,
    task_runner=DeferredDaskTaskRunner(),
    # Nothing of the run goes to Prefect's (pickled) result store, whatever the settings say.
    **CHECKED_BY_CONFIG,
)
def data_experts(
    curated: str,
    output: str,
    encoder: str = DEFAULT_ENCODER,
    n_fine: int = N_FINE,
    n_coarse: int = N_COARSE,
    kmeans: str = "balanced",
    distance: str = "euclidean",
    sample_size: int = inputs.SAMPLE_SIZE,
    outside_share: float = OUTSIDE_SHARE,
    outside_base: str = "outside",
    seed: int = 0,
    niter: int = N_ITER,
    coarse_niter: int = COARSE_ITER,
    chunk_rows: int = CHUNK_ROWS,
    n_examples: int = N_EXAMPLES,
    normalize: bool = True,
    dtype: str = "float16",
    batch_size: int = BATCH_SIZE,
    input_options: dict[str, Any] | str | None = None,
    output_options: dict[str, Any] | str | None = None,
    credentials: dict[str, str] | str | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    dashboard_address: str = ":8787",
) -> dict[str, Any]:
    """Split a curated set (curation output root, its curated/ folder or a glob) into experts.

    input_options (the curated shards), output_options: fsspec options (a dict or a JSON
    object), never credentials. credentials: {"inputs"|"output": Prefect Secret block}.
    """
    params = dict(locals())
    return checked_run(lambda: ExpertsConfig.from_params(**params), run_experts)


def find_shards(config: ExpertsConfig) -> tuple[list[str], list[int]]:
    """The checks that need I/O, before any work: the curated shards and their row counts, and
    an output outside the folder they are listed from (else the experts' own Parquet parts
    would be read as curated shards by the next run)."""
    read = resolve(config.storage.inputs)
    source = inputs.shard_source(config.curated, **read)
    if contains(glob_base(source), config.output):
        raise UserError(
            f"output: {config.output} is inside the curated input {source}: write the experts "
            "elsewhere"
        )
    shards = inputs.curated_shards(config.curated, **read)
    return shards, inputs.count_rows(shards, **read)


def run_experts(config: ExpertsConfig) -> dict[str, Any]:
    shards, rows = find_shards(config)
    get_run_logger().info(
        "%d curated shards, %d pairs, output %s", len(shards), sum(rows), config.output
    )
    with writing_output(config, **resolve(config.storage.output)):
        result = build_experts(shards, inputs.sample_rate(sum(rows), config.sample_size), config)
    publish_experts(result, config.output)
    return result


def publish_experts(result: dict[str, Any], output: str) -> None:
    """Pairs per expert, as an artifact of the run (versioned per output)."""
    rows = [
        f"| {k} | {size:,} | {added:,} | `{folder}` |"
        for k, (size, added, folder) in enumerate(zip(
            result["expert_sizes"], result["outside_added"], result["outputs"]["experts"],
            strict=True,
        ))
    ]  # fmt: skip
    balance = result["balance"]["experts"]
    ratio = balance["largest_over_smallest"]
    markdown = "\n".join([
        f"## Data experts of `{output}`: {result['pairs']:,} pairs", "",
        "| expert | pairs | out-of-cluster added | folder |", "|---:|---:|---:|---|", *rows, "",
        f"Balance: largest/smallest {'-' if ratio is None else f'{ratio:.2f}'}, entropy "
        f"{balance['entropy_bits']:.3f} bits ({balance['entropy_share']:.1%} of even); "
        f"k-means `{result['kmeans']}`, `{result['distance']}` distance.",
    ])  # fmt: skip
    publish(
        create_markdown_artifact, markdown=markdown, key=artifact_key("experts", output),
        description=f"Pairs per data expert of {output}.",
    )  # fmt: skip


def build_experts(shards: list[str], rate: float, c: ExpertsConfig) -> dict[str, Any]:
    """Every stage, under the output's lease: tasks of this flow run."""
    out = resolve(c.storage.output)

    def options_for(_uri: str) -> dict[str, Any]:
        return out  # every task output is under the MoDE output

    def stage(task: Task, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One stage's tasks, with a progress artifact on the run."""
        progress = StageProgress(task.name, len(calls), c.output)
        return gather_verified(task, calls, options_for, progress.advance)

    layout = ModeLayout(c.output)
    ids = [shard_id(s) for s in shards]
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    embedded = stage(
        embed_shard,
        [{"curated_uri": s, "out_uri": layout.embeddings(i), "settings": c}
         for s, i in zip(shards, ids, strict=True)],
    )  # fmt: skip
    seconds["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    sampled = stage(
        sample_shard,
        [{"embeddings_uri": e["embeddings_uri"], "out_uri": layout.sample(i), "rate": rate,
          "shard_index": n, "settings": c}
         for n, (e, i) in enumerate(zip(embedded, ids, strict=True))],
    )  # fmt: skip
    fit_call = {
        "sample_uris": [r["sample_uri"] for r in sampled], "out_uri": layout.centres,
        "meta": {"encoder": c.encoder, "normalize": c.normalize}, "settings": c,
    }  # fmt: skip
    fitted = gather_verified(fit_centres, [fit_call], options_for)
    centres_uri = fitted[0]["centres_uri"]
    seconds["kmeans"] = time.perf_counter() - started

    started = time.perf_counter()
    assigned = stage(
        assign_shard,
        [{"curated_uri": s, "embeddings_uri": e["embeddings_uri"], "centres_uri": centres_uri,
          "shard": i, "settings": c}
         for s, e, i in zip(shards, embedded, ids, strict=True)],
    )  # fmt: skip
    seconds["assign"] = time.perf_counter() - started

    report = cluster_report(assigned, Centres.load(centres_uri, **out), c.n_examples)
    write_json(layout.clusters, report, **out)
    result = {
        "shards": len(shards),
        "pairs": report["pairs"],
        "sample_rows": sum(r["rows"] for r in sampled),
        "expert_sizes": report["expert_sizes"],
        "outside_added": [e["outside_added"] for e in report["experts"]],
        "empty_fine_clusters": report["empty_fine_clusters"],
        "encoder": c.encoder,
        "n_fine": c.n_fine,
        "n_coarse": c.n_coarse,
        "kmeans": c.kmeans,
        "distance": c.distance,
        "balance": report["balance"],
        "outside_share": c.outside_share,
        "outside_base": c.outside_base,
        "seed": c.seed,
        "seconds": seconds,
        "task_results": _cache_report([*embedded, *sampled, *fitted, *assigned]),
        "outputs": {
            "experts": [layout.expert_dir(k) for k in range(c.n_coarse)],
            "centres": layout.centres,
            "clusters": layout.clusters,
            "summary": layout.summary,
        },
    }
    write_json(layout.summary, result, **out)
    return result


def _cache_report(results: list[dict[str, Any]]) -> dict[str, int]:
    """How many task results came from the cache, were computed, or were found damaged (and
    recomputed)."""
    report = {"hit": 0, "computed": 0, "damaged": 0}
    for r in results:
        status = r.get("cache", "computed")
        report[status] = report.get(status, 0) + 1
    return report
