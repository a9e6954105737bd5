"""Storage per location (inputs and the crawl, metadata, output, exclusion store): fsspec
options that never hold secrets, and the name of a Prefect Secret block for credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from metaclip.config.checks import _BLOCK_NAME, _fail, check_choice, parse_options
from metaclip.errors import UserError

LOCATIONS = ("inputs", "metadata", "output", "exclude_store")
# The parameter that holds each location's fsspec options.
OPTION_PARAMETERS = {
    "inputs": "input_options",
    "metadata": "metadata_options",
    "output": "output_options",
    "exclude_store": "exclude_store_options",
}
READ_WRITE_LOCATIONS = ("inputs", "output")


@dataclass(frozen=True)
class Location:
    """How to reach one location: fsspec options (never secret) and, optionally, the name of a
    Prefect Secret block whose JSON object is merged into them where files are opened."""

    options: Mapping[str, Any] = field(default_factory=dict)
    secret_block: str | None = None


@dataclass(frozen=True)
class StorageConfig:
    inputs: Location = Location()
    metadata: Location = Location()
    output: Location = Location()
    exclude_store: Location = Location()

    @classmethod
    def from_params(
        cls,
        credentials: Mapping[str, str] | str | None = None,
        **options: Any,
    ) -> StorageConfig:
        """options: OPTION_PARAMETERS by name; credentials: location -> Secret block name."""
        blocks = check_credentials(credentials)
        unknown = set(options) - set(OPTION_PARAMETERS.values())
        if unknown:
            raise UserError(f"unknown storage parameters: {', '.join(sorted(unknown))}")
        return cls(**{
            loc: Location(parse_options(name, options.get(name)), blocks.get(loc))
            for loc, name in OPTION_PARAMETERS.items()
        })  # fmt: skip


def check_credentials(value: Any) -> dict[str, str]:
    """credentials: {location: Prefect Secret block name}."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _fail("credentials", "is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise _fail("credentials", "must map locations to Prefect Secret block names")
    for loc, block in value.items():
        check_choice("credentials", loc, LOCATIONS)
        if not isinstance(block, str) or not _BLOCK_NAME.match(block):
            raise _fail(f"credentials.{loc}", f"not a Prefect block name: {block!r}")
    return dict(value)


@dataclass(frozen=True)
class Stores:
    """Resolved fsspec options for each location of one run (secrets included: never persist,
    log or return these). Built where files are opened, from a StorageConfig."""

    inputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    exclude_store: dict[str, Any] = field(default_factory=dict)
    exclude_store_root: str | None = None

    def for_written(self, uri: str) -> dict[str, Any]:
        """Options for a file a run wrote: the exclusion store's, or the output's."""
        root = self.exclude_store_root
        if root and (uri == root or uri.startswith(root.rstrip("/") + "/")):
            return self.exclude_store
        return self.output


def check_read_write_storage(
    credentials: Any = None, input_options: Any = None, output_options: Any = None
) -> StorageConfig:
    """Storage of a flow that reads `inputs` and writes `output`: their options (never
    credentials) and, for those two locations only, Prefect Secret block names."""
    for loc in check_credentials(credentials):
        check_choice("credentials", loc, READ_WRITE_LOCATIONS)
    return StorageConfig.from_params(
        credentials, input_options=input_options, output_options=output_options
    )
