"""Prefect tasks of the MoDE data-experts flow: each runs one stage function of
metaclip.experts, `stage(settings, stores, **call)` with the flow's checked configuration
(metaclip.config.ExpertsConfig) as its settings, made a task by tasks.caching.stage_task.

Storage options are resolved in the worker, where files are opened: the curated shards with the
`inputs` location, everything under the MoDE output with the `output` location.

Results are JSON data stored with a checksum under the MoDE output (`_work/tasks/`; never
Prefect's pickled result store), keyed by the task's name, the settings that change its output
(the stage module's KEYED_BY), its call's own arguments and its files' identities: a rerun
skips finished work, and a damaged or tampered stored result is recomputed
(`cache: "damaged"`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from metaclip.config import ExpertsConfig
from metaclip.experts import assign, embedding, inputs
from metaclip.experts.paths import ModeLayout
from metaclip_prefect.tasks.caching import stage_task


def under_mode_output(settings: ExpertsConfig) -> Callable[[str, str], str]:
    """Where a MoDE task's result is stored: `<output>/_work/tasks/<task>/<key>.json`."""
    return ModeLayout(settings.output).task_result


_mode_task = partial(stage_task, result_uri=under_mode_output)

embed_shard = _mode_task(
    "mode-embed", embedding.embed_shard, embedding.KEYED_BY,
    input_files=["curated_uri"], files_on="inputs", unkeyed=["device"],
)  # fmt: skip
sample_shard = _mode_task(
    "mode-sample", assign.sample_shard, assign.SAMPLE_KEYED_BY, input_files=["embeddings_uri"]
)
fit_centres = _mode_task(
    "mode-fit", inputs.fit_from_samples, inputs.FIT_KEYED_BY, input_files=["sample_uris"],
    unkeyed=["device"],
)
assign_shard = _mode_task(
    "mode-assign", assign.assign_shard, assign.ASSIGN_KEYED_BY,
    input_files={"curated_uri": "inputs", "embeddings_uri": "output", "centres_uri": "output"},
)  # fmt: skip
