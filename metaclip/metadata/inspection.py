"""Inspecting a built metadata folder: its provenance summary and where given entries come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.errors import MetadataError
from metaclip.io import storage
from metaclip.metadata.load import load_metadata


@dataclass(frozen=True)
class EntryInfo:
    entry: str
    entry_id: int | None  # position in metadata.json, None when absent
    block: str | None  # the block that added it (base, seeds, a source or an extra list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> its row


def read_provenance(output: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    uri = storage.join(output, "provenance.json")
    try:
        return orjson.loads(storage.read_bytes(uri, **(storage_options or {})))
    except FileNotFoundError as exc:
        raise MetadataError(f"no provenance.json in {output}: was it built here?") from exc
    except orjson.JSONDecodeError as exc:
        raise MetadataError(f"provenance file is not valid JSON: {uri}") from exc


def source_table(prov: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per block: entries the source kept, new entries it added, first id."""
    rows = []
    for block in prov["blocks"]:
        record = prov["sources"].get(block["source"], {})
        rows.append(
            {
                "source": block["source"],
                "kept": record.get("valid_entries", block["entries"]),
                "added": block["entries"],
                "first_id": block["first_id"],
            }
        )
    return rows


def _block_of(entry_id: int, blocks: list[dict[str, Any]]) -> str | None:
    for block in blocks:
        if block["first_id"] <= entry_id < block["first_id"] + block["entries"]:
            return str(block["source"])
    return None


def lookup(
    output: str, entries: list[str], storage_options: dict[str, Any] | None = None
) -> list[EntryInfo]:
    """Where each entry sits in metadata.json and which source lists hold it (with counts)."""
    opts = storage_options or {}
    prov = read_provenance(output, opts)
    meta = load_metadata(storage.join(output, prov.get("metadata", "metadata.json")), **opts)
    ids: dict[str, int] = {}
    for i, e in enumerate(meta.entries):
        ids.setdefault(e, i)
    found: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in entries}
    for name, record in prov["sources"].items():
        if "entry_list" in record:
            table = storage.read_parquet(record["entry_list"], **opts)
            wanted = pc.is_in(table.column("entry"), value_set=pa.array(entries, pa.string()))
            for row in table.filter(wanted).to_pylist():
                found[row["entry"]].setdefault(name, row)
    out = []
    for entry in entries:
        entry_id = ids.get(entry)
        block = None if entry_id is None else _block_of(entry_id, prov["blocks"])
        out.append(EntryInfo(entry, entry_id, block, found[entry]))
    return out
