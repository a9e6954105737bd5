"""Prefect task: write a run's data card and publish it as artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metaclip_prefect.tasks.retry import IO_TASK_OPTIONS
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from metaclip import datacard

# Not cached: the artifacts must be published on every run, and the card is cheap next to a run.
_OPTIONS = {k: v for k, v in IO_TASK_OPTIONS.items() if k != "persist_result"}


@task(name="publish-datacard", **_OPTIONS)
def publish_datacard(
    output: str,
    t: float,
    targets: Sequence[float] = (),
    success_rate: float = 0.9,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write <output>/datacard/{datacard.json, datacard.md, *.png}; publish them as artifacts.

    Returns the written files' URIs by name.
    """
    opts = storage_options or {}
    run = datacard.load_run(output, **opts)
    card = datacard.build_datacard(
        run, t, datacard.candidate_source(output, **opts), targets, success_rate
    )
    written = datacard.write_datacard(run, card, **opts)
    images = {name: written[file] for name, file in datacard.PLOT_FILES.items() if file in written}
    create_markdown_artifact(
        markdown=datacard.render_markdown(card, images),
        key="metaclip-datacard",
        description=f"Data card of {output} at t={t:g}",
    )
    create_table_artifact(
        table=[{"name": name, "value": datacard.format_value(value)}
               for name, value in datacard.overview_rows(card)],
        key="metaclip-datacard-overview",
        description=f"Data card overview of {output}",
    )
    return written
