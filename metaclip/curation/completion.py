"""A finished curation's record: what it was run on, and what it wrote.

Rerunning a finished run through its cached tasks still costs a task run per batch and bucket
(a Prefect API round trip each) and a Dask cluster. The completion record, written last, lets
a rerun with the same run key (inputs' identities, metadata, output-changing parameters,
pipeline version: metaclip.io.cachekeys) whose outputs are all still the ones written return the
stored summary at once. Anything else (another t, a deleted or rewritten part, no record, a
damaged record) takes the normal path, where each task's cache and output checks decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from metaclip.io.cachekeys import make_key
from metaclip.io.paths import OutputLayout
from metaclip.io.results import changed_outputs, read_json, write_json, written

RUN_KEY_NAME = "curate-run"


def run_key(files: Sequence[str], params: Mapping[str, Any], **storage_options: Any) -> str:
    """The key of a whole curation: every input file's identity and every parameter."""
    return make_key(RUN_KEY_NAME, params, files, storage_options)


def record_completion(
    output: str,
    key: str,
    outputs: Iterable[str],
    result: Mapping[str, Any],
    /,
    **storage_options: Any,
) -> None:
    """Write the record (after every output it names): the key, the outputs' identities, and
    the run's summary."""
    record = {"run_key": key, "outputs": written(outputs, **storage_options), "summary": result}
    write_json(OutputLayout(output).completion, record, **storage_options)


def completed_summary(
    output: str, key: str, /, **storage_options: Any
) -> dict[str, Any] | None:
    """The summary of a finished run with this key whose outputs are intact, else None."""
    try:
        record = read_json(OutputLayout(output).completion, **storage_options)
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        return None  # a damaged record only costs the normal path
    if not isinstance(record, dict) or record.get("run_key") != key:
        return None
    if not isinstance(record.get("outputs"), dict) or not isinstance(record.get("summary"), dict):
        return None
    if changed_outputs(record, **storage_options):
        return None
    return record["summary"]

