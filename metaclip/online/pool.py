"""A pool as a training job reads it: pool/pool.json, the manifest (its format is owned here:
`pool_manifest` writes it, `read_pool` reads it back), names every part with its rows and
sha256, the entry counts, and the curation (recipe, t, seed) the pool came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import POOL_COUNTS, POOL_MANIFEST, OutputLayout
from metaclip.io.results import read_json

POOL_FORMAT = 1


def pool_manifest(
    recipe: str,
    t: float,
    seed: int,
    one_text_per_image: bool,
    counts: bytes,
    parts: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """pool.json: `parts` as the pool stage wrote them ({uri, rows, sha256}), `counts` the bytes
    of the counts file beside them."""
    return {
        "format": POOL_FORMAT,
        "recipe": recipe,
        "curation": {"t": t, "seed": seed, "one_text_per_image": one_text_per_image},
        "rows": sum(int(p["rows"]) for p in parts),
        "entry_counts": {"path": POOL_COUNTS, "sha256": hashlib.sha256(counts).hexdigest()},
        "parts": [
            {"path": p["uri"].rsplit("/", 1)[-1], "rows": int(p["rows"]), "sha256": p["sha256"]}
            for p in parts
        ],
    }


@dataclass(frozen=True)
class PoolPart:
    uri: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Pool:
    """A pool as its manifest describes it: where its parts and counts are, and the curation
    (recipe, t, seed) it came from."""

    root: str
    recipe: str
    curation_t: float
    curation_seed: int
    rows: int
    parts: tuple[PoolPart, ...]
    counts_uri: str
    counts_sha256: str

    @property
    def worldwide(self) -> bool:
        return self.recipe == WORLDWIDE_RECIPE


def pool_root(location: str, **storage_options: Any) -> str:
    """The pool folder of `location`: a run's output (its pool/) or a pool folder itself."""
    location = location.rstrip("/")
    if storage.exists(storage.join(location, POOL_MANIFEST), **storage_options):
        return location
    nested = OutputLayout(location).pool_dir
    if storage.exists(storage.join(nested, POOL_MANIFEST), **storage_options):
        return nested
    raise UserError(
        f"no pool in {location}: write one with `metaclip pool OUTPUT` or `metaclip curate "
        "--write-pool`"
    )


def read_pool(location: str, **storage_options: Any) -> Pool:
    """The pool at `location` (a run's output or its pool/ folder), checked for shape."""
    root = pool_root(location, **storage_options)
    manifest = read_json(storage.join(root, POOL_MANIFEST), **storage_options)
    try:
        if manifest["format"] != POOL_FORMAT:
            raise ValueError(f"format {manifest['format']!r}, this version reads {POOL_FORMAT}")
        parts = tuple(
            PoolPart(storage.join(root, _plain_name(p["path"])), int(p["rows"]), str(p["sha256"]))
            for p in manifest["parts"]
        )
        counts = manifest["entry_counts"]
        return Pool(
            root=root, recipe=str(manifest["recipe"]),
            curation_t=float(manifest["curation"]["t"]),
            curation_seed=int(manifest["curation"]["seed"]),
            rows=int(manifest["rows"]), parts=parts,
            counts_uri=storage.join(root, _plain_name(counts["path"])),
            counts_sha256=str(counts["sha256"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        manifest_uri = storage.join(root, POOL_MANIFEST)
        raise UserError(f"{manifest_uri} is not a pool manifest: {exc}") from None


def _plain_name(name: str) -> str:
    """A file name inside the pool folder, never a path that leaves it."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"bad file name {name!r}")
    return name
