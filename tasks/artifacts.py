"""Prefect artifacts of a run: the curation summary as a table, its outputs as markdown.

Artifacts attach to the flow run that calls the task, so the UI shows them on the run page;
keyed artifacts are also versioned across runs (Artifacts page, key `curation-summary`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

SUMMARY_KEY = "curation-summary"
OUTPUTS_KEY = "curation-outputs"
SCALARS = (
    "files", "batches", "records_read", "pairs_read", "pairs_matched", "pairs_curated",
    "t", "seed", "p", "entries_over_t", "pipeline_version",
)  # fmt: skip


def summary_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """(field, value) rows: headline figures, metadata, skipped inputs by reason, wall seconds."""
    rows = [(k, summary[k]) for k in SCALARS if k in summary]
    meta = summary.get("metadata") or {}
    rows += [(f"metadata.{k}", meta[k]) for k in ("uri", "entries", "entries_matched") if k in meta]
    rows += [(f"skipped.{k}", v) for k, v in (summary.get("skipped") or {}).items()]
    stages = (summary.get("seconds") or {}).get("stages_wall") or {}
    rows += [(f"seconds.{k}", round(float(v), 2)) for k, v in stages.items()]
    return [{"field": k, "value": _fmt(v)} for k, v in rows]


def outputs_markdown(summary: Mapping[str, Any]) -> str:
    lines = ["| output | location |", "|---|---|"]
    lines += [f"| {name} | `{uri}` |" for name, uri in (summary.get("outputs") or {}).items()]
    return "### Curation outputs\n\n" + "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)


@task(name="publish-summary")
def publish_summary(summary: dict[str, Any]) -> None:
    """Publish the summary table and the output locations as artifacts of the current run."""
    create_table_artifact(
        summary_rows(summary), key=SUMMARY_KEY, description="What was read, matched and kept."
    )
    create_markdown_artifact(
        outputs_markdown(summary), key=OUTPUTS_KEY, description="Where the outputs are."
    )
