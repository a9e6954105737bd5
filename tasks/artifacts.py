"""Prefect artifacts of a run: the summary, the output locations, stage progress.

Plain functions, not tasks: an artifact attaches to the flow run (and task run, if any) whose
context calls it, so these are called from the flow the user started and show on its page.
Outside any run they publish nothing (no temporary API is started for them), and a failing API
call is logged as a warning: artifacts are a view of the outputs, never a reason to fail a run.

Keys carry the output (`artifact_key`), so the Artifacts page keeps one versioned collection per
output (`summary-…`, `outputs-…`, `datacard-…`) instead of the latest card of any output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger

from metaclip.io import storage
from metaclip.reporting.summary import limits_line

log = logging.getLogger(__name__)

# Prefect 3.8 validates keys against ^[a-z0-9-]*$ (prefect.types.names.ArtifactKey) and sets no
# length limit (an unbounded, indexed column); keys here stay under 80 characters to read well.
KEY_RE = re.compile(r"^[a-z0-9-]+$")
SLUG_CHARS = 40
HASH_CHARS = 8
COUNTS = (
    "files", "batches", "buckets", "records_read", "pages", "images", "pairs_read",
    "pairs_matched", "pairs_unmatched", "pairs_unique", "duplicates_across_files",
    "excluded_seen_before", "images_matched", "pairs_curated", "matches_total",
)  # fmt: skip
BALANCING = ("t", "seed", "one_text_per_image", "p", "entries_over_t", "pipeline_version")
SECTIONED = {*COUNTS, *BALANCING, "metadata", "limits", "skipped", "seconds",
             "peak_worker_rss_mb", "outputs", "rebalanced", "languages", "recipe"}  # fmt: skip
# A worldwide summary's per-language figures shown in its Languages table, in this order.
LANGUAGE_COLUMNS = ("pairs_read", "pairs_matched", "pairs_curated", "t", "entries_matched")


# --------------------------------------------------------------------------- keys


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def canonical_output(output: str) -> str:
    """The output's identity: local paths absolute, no file:// prefix, no trailing slash."""
    if storage.is_local(output):
        return os.path.abspath(output.removeprefix("file://"))
    return output.rstrip("/")


def artifact_key(kind: str, output: str) -> str:
    """`<kind>-<last two path parts>-<8 hex of sha256(output)>`, a valid Prefect artifact key.

    >>> artifact_key("datacard", "s3://bucket/curated/CC-MAIN-2024-22")[:-9]
    'datacard-curated-cc-main-2024-22'
    """
    kind_slug = _slug(kind)
    if not kind_slug:
        raise ValueError(f"artifact kind needs a letter or digit: {kind!r}")
    uri = canonical_output(output)
    path = uri.split("://", 1)[-1]
    slug = _slug("-".join(path.rstrip("/").split("/")[-2:]))[-SLUG_CHARS:].strip("-")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:HASH_CHARS]
    key = "-".join(part for part in (kind_slug, slug, digest) if part)
    assert KEY_RE.match(key), key
    return key


# --------------------------------------------------------------------------- publishing


def in_run() -> bool:
    """Whether a flow or task run is current (artifacts would attach to it)."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (shown in the UI) in a run, this module's logger outside one."""
    return get_run_logger() if in_run() else log


def publish(create: Callable[..., UUID], **kwargs: Any) -> UUID | None:
    """create(**kwargs) in a run, synchronously even under an async flow; None outside a run or
    when the API call fails (logged as a warning)."""
    if not in_run():
        return None
    try:
        return create(**kwargs, _sync=True)
    except Exception as exc:  # the outputs are written: a view of them must not fail the run
        run_logger().warning("%s failed: %s", getattr(create, "__name__", create), exc)
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.6g}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Iterable[tuple[str, Any]], header: str = "| field | value |") -> list[str]:
    lines = [header, "|---|---|"]
    lines += [f"| {_cell(name)} | {_cell(_fmt(value))} |" for name, value in rows]
    return lines if len(lines) > 2 else ["none"]


def _seconds(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    seconds = summary.get("seconds") or {}
    stages = seconds.get("stages_wall") or {}
    rows = [(f"wall: {k}", round(float(v), 2)) for k, v in stages.items()]
    rows += [(k, round(float(v), 2)) for k, v in seconds.items() if k != "stages_wall"]
    return rows


def _flat(items: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Nested objects as dotted rows (task_results.hit, ...), not a Python dict as text."""
    rows: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, Mapping):
            rows += _flat((f"{key}.{k}", v) for k, v in value.items())
        else:
            rows.append((key, value))
    return rows


def summary_markdown(summary: Mapping[str, Any], output: str) -> str:
    """Every field of summary.json (outputs aside) in Markdown tables, one section per theme."""
    meta = summary.get("metadata") or {}
    rebalanced = summary.get("rebalanced") or {}
    sections = [
        ("Counts", [(k, summary[k]) for k in COUNTS if k in summary]),
        ("Balancing", [(k, summary[k]) for k in BALANCING if k in summary]
         + [(f"rebalanced.{k}", v) for k, v in rebalanced.items()]),
        ("Metadata", [(f"metadata.{k}", v) for k, v in meta.items()]),
        ("Extraction limits (extraction.limits)", [("limits", limits_line(summary["limits"]))]
         if "limits" in summary else []),
        ("Skipped inputs, by reason", list((summary.get("skipped") or {}).items())),
        ("Seconds (wall per stage, then CPU summed over tasks)", _seconds(summary)),
        ("Memory", [("peak_worker_rss_mb", summary.get("peak_worker_rss_mb"))]
         if "peak_worker_rss_mb" in summary else []),
        ("Other", _flat((k, v) for k, v in summary.items() if k not in SECTIONED)),
    ]
    lines = [f"# Curation summary: `{output}`"]
    if "recipe" in summary:
        lines += ["", f"Recipe: {summary['recipe']} (t is t_en; every language has its own t)"]
    for title, rows in sections:
        if rows or title.startswith("Skipped"):
            lines += ["", f"## {title}", "", *_table(rows)]
    if summary.get("languages"):
        lines += ["", "## Languages (by pairs matched)", "", *_languages_table(summary)]
    return "\n".join(lines) + "\n"


def _languages_table(summary: Mapping[str, Any]) -> list[str]:
    rows = sorted(summary["languages"].items(), key=lambda kv: (-kv[1].get("pairs_matched", 0),
                                                                  kv[0]))  # fmt: skip
    lines = ["| language | " + " | ".join(LANGUAGE_COLUMNS) + " |",
             "|---|" + "---|" * len(LANGUAGE_COLUMNS)]  # fmt: skip
    for language, figures in rows:
        cells = [_cell(_fmt(figures.get(name, ""))) for name in LANGUAGE_COLUMNS]
        lines.append(f"| {_cell(language)} | " + " | ".join(cells) + " |")
    return lines


def location(uri: str) -> str:
    """A link where a browser can open it (http/https), else the full location as code."""
    if uri.startswith(("http://", "https://")):
        return f"[{uri}]({uri})"
    return f"`{uri}`"


def outputs_markdown(summary: Mapping[str, Any], output: str) -> str:
    outputs = {"output": output, **(summary.get("outputs") or {}),
               "datacard": storage.join(output, "datacard", "datacard.md")}
    lines = [f"# Outputs of `{output}`", "", "| output | location |", "|---|---|"]
    lines += [f"| {name} | {_cell(location(uri))} |" for name, uri in outputs.items()]
    return "\n".join(lines) + "\n"


def publish_summary(summary: dict[str, Any], output: str) -> None:
    """Publish the summary and the output locations as two Markdown artifacts of the current run.

    The summary is Markdown tables, not a table artifact: it has 40 to 50 rows, and Prefect 3.8's
    new UI pages a table artifact 10 rows at a time, hiding skip reasons and stage timings on
    later pages; Markdown shows every row at once, grouped (counts, balancing, metadata, skipped,
    seconds, memory). The same figures, machine-readable, are in summary.json (linked in the
    outputs artifact). Keys: artifact_key("summary", output), artifact_key("outputs", output).
    """
    publish(create_markdown_artifact, markdown=summary_markdown(summary, output),
            key=artifact_key("summary", output),
            description=f"What was read, matched and kept for {output}.")
    publish(create_markdown_artifact, markdown=outputs_markdown(summary, output),
            key=artifact_key("outputs", output), description=f"Where the outputs of {output} are.")


# --------------------------------------------------------------------------- progress


class StageProgress:
    """A progress artifact for one stage of a run (unkeyed: it shows on the run's page).

    advance(done) updates it at most every `interval_s` seconds or every 10%, and always at 100%;
    outside a run, or if the API refuses it, it does nothing.
    """

    def __init__(self, stage: str, total: int, output: str, interval_s: float = 2.0) -> None:
        self.stage, self.total, self.output = stage, max(0, total), output
        self.interval_s = interval_s
        self.sent = 100.0 if self.total == 0 else 0.0
        self.sent_at = time.monotonic()
        self.id = publish(create_progress_artifact, progress=self.sent,
                          description=self._description(self.total if self.sent else 0))

    def _description(self, done: int) -> str:
        return f"{self.stage}: {done:,} / {self.total:,} tasks of `{self.output}`"

    def advance(self, done: int) -> None:
        if self.id is None or self.sent >= 100.0:
            return
        pct = 100.0 if done >= self.total else round(100.0 * max(0, done) / self.total, 1)
        due = time.monotonic() - self.sent_at >= self.interval_s or pct - self.sent >= 10.0
        if pct >= 100.0 or (due and pct > self.sent):
            self.sent, self.sent_at = pct, time.monotonic()
            publish(update_progress_artifact, artifact_id=self.id, progress=pct,
                    description=self._description(min(done, self.total)))
