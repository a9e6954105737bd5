"""One curation's settings, as every stage reads them: the checked configuration, with what
the flow's preflight fixed (the metadata's identity, the bucket count, the store tag).

`RunSettings.record()` is the work record's and the run key's view of them (what defines the
outputs, by the names `_work/run.json` and the summary use); `from_record` reads it back for
rebalancing. Both directions of that format are written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from metaclip.config import CurateConfig
from metaclip.config.curation import ENGLISH_RECIPE
from metaclip.curation.plan import default_store_tag
from metaclip.errors import UserError
from metaclip.extraction.limits import ExtractLimits
from metaclip.io.paths import OutputLayout


@dataclass(frozen=True, kw_only=True)
class RunSettings(CurateConfig):
    """A CurateConfig after preflight: `n_buckets` and `store_tag` resolved, the metadata read
    (its URI and sha256). The stage tasks share it; the file list stays in the flow (a crawl's
    would weigh on every task)."""

    metadata_uri: str
    metadata_sha256: str
    n_buckets: int
    store_tag: str

    @classmethod
    def planned(cls, config: CurateConfig, **fixed: Any) -> RunSettings:
        """The configuration's settings with the preflight's `fixed` values."""
        shared = {f.name: getattr(config, f.name) for f in fields(CurateConfig)}
        return cls(**{**shared, **fixed})

    def record(self) -> dict[str, Any]:
        """The settings that define the run's outputs, by the names the work record and the
        summary use (storage options left out: they say how to reach files, not what is in
        them, and input identities are keyed separately). `limits`: all six, so that the run
        key and the record say which were in effect whatever the defaults become. `recipe`:
        only for the worldwide recipe, so English records and run keys stay what they were;
        `write_pool` only when a pool is written."""
        record: dict[str, Any] = {
            "metadata_uri": self.metadata_uri,
            "metadata_sha256": self.metadata_sha256,
            "output": self.output,
            "t": self.t,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "n_buckets": self.n_buckets,
            "one_per_image": self.one_text_per_image,
            "exclude_store": self.exclude_store,
            "store_tag": self.store_tag,
            "input_format": self.input_format,
            "languages": list(self.languages) if self.languages else None,
            "reduce_fanout": self.reduce_fanout,
            "limits": self.limits.to_dict(),
        }
        if self.recipe != ENGLISH_RECIPE:
            record["recipe"] = self.recipe
        if self.write_pool:  # likewise: records and run keys without a pool stay as they were
            record["write_pool"] = True
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], output: str, **changed: Any) -> RunSettings:
        """A finished run's settings from its work record, for `output` (where the record is
        now), with `changed` ones (rebalancing: t, seed, storage). Records from before a
        setting was recorded get its default (before the recipe: English)."""
        settings = cls(
            inputs=(),
            metadata=record["metadata_uri"],
            output=output,
            metadata_uri=record["metadata_uri"],
            metadata_sha256=record["metadata_sha256"],
            n_buckets=int(record["n_buckets"]),
            input_format=record.get("input_format", cls.input_format),
            languages=tuple(record["languages"]) if record.get("languages") else None,
            recipe=record.get("recipe", ENGLISH_RECIPE),
            t=float(record["t"]),
            seed=int(record["seed"]),
            one_text_per_image=bool(record.get("one_per_image", True)),
            exclude_store=record.get("exclude_store"),
            store_tag=record.get("store_tag") or default_store_tag(output),
            batch_size=int(record.get("batch_size", cls.batch_size)),
            reduce_fanout=int(record.get("reduce_fanout", cls.reduce_fanout)),
            limits=_limits(record),
            write_pool=bool(record.get("write_pool", False)),
        )
        return replace(settings, **changed)


def _limits(record: dict[str, Any]) -> ExtractLimits:
    """The extraction limits the run was made with, kept in the record rebalancing rewrites (a
    record from before limits were recorded names none: the defaults)."""
    try:
        return ExtractLimits.from_dict(record.get("limits"))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{OutputLayout(record['output']).run_record}: {exc}") from None
