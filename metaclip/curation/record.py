"""A finished run's work record, `_work/run.json`: its settings and where its counts and
deduplicated parts are, as paths relative to the output, so that a copied or moved output
rebalances in place and never reads or writes the folder it was copied from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.io.results import read_json, write_json


def _relative(root: str, uri: str) -> str:
    prefix = root.rstrip("/") + "/"
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not inside the output {root}")
    return uri[len(prefix):]


def write_run_record(
    output: str,
    settings: Mapping[str, Any],
    counts_uri: str,
    dedup_uris: Mapping[str, Sequence[str]],
    **storage_options: Any,
) -> None:
    record = {
        **settings,
        "output": output,
        "counts_uri": _relative(output, counts_uri),
        "dedup_uris": {b: [_relative(output, u) for u in uris] for b, uris in dedup_uris.items()},
        "paths": "relative",
    }
    write_json(OutputLayout(output).run_record, record, **storage_options)


def read_run_record(output: str, **storage_options: Any) -> dict[str, Any]:
    """The record with its paths under `output` (where it is now), or a UserError.

    Records written before paths were relative name the output they were written in; their
    paths are moved under `output` when they lie inside that old output, else refused.
    """
    uri = OutputLayout(output).run_record
    if not storage.exists(uri, **storage_options):
        raise UserError(f"no finished curation in {output} (run `metaclip curate` first)")
    record = read_json(uri, **storage_options)
    where = str(record.get("output", output))
    if record.get("paths") == "relative":
        def place(p: str) -> str:
            return storage.join(output, p)
    else:
        def place(p: str) -> str:
            try:
                return storage.join(output, _relative(where, p))
            except ValueError:
                raise UserError(
                    f"{output}: its work record names {p}, outside the output; rerun "
                    "`metaclip curate` into this output"
                ) from None
    return {
        **record,
        "output": output,
        "counts_uri": place(str(record["counts_uri"])),
        "dedup_uris": {
            b: [place(str(u)) for u in uris] for b, uris in (record.get("dedup_uris") or {}).items()
        },
    }
