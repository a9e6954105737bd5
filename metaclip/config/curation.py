"""The curation flows' configurations: curate, rebalance, the monthly run, and the cluster."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from metaclip.config.checks import (
    _fail,
    check_choice,
    check_crawl_id,
    check_dask_address,
    check_int,
    check_languages,
    check_limits,
    check_location,
    check_optional_location,
    check_output_location,
    check_positive,
    optional_int,
    parse_options,
)
from metaclip.config.storage import StorageConfig
from metaclip.curation.balance import DEFAULT_T
from metaclip.curation.crawls import DATA_ROOT
from metaclip.errors import UserError
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits

INPUT_FORMATS = ("wat", "warc", "auto")
MAX_BUCKETS = 4096
# --- the cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig:
    """Where tasks run: an existing scheduler, or a local cluster of n_workers processes."""

    dask_address: str | None = None
    n_workers: int | None = None
    dashboard_address: str = ":8787"

    @classmethod
    def from_params(
        cls, dask_address: Any = None, n_workers: Any = None, dashboard_address: Any = ":8787"
    ) -> ClusterConfig:
        if not isinstance(dashboard_address, str):
            raise _fail("dashboard_address", f"must be text like ':8787': {dashboard_address!r}")
        return cls(
            check_dask_address("dask_address", dask_address),
            optional_int("n_workers", n_workers, 1, 4096),
            dashboard_address,
        )


# --- the flows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurateConfig:
    """The curate flow's parameters, checked. `inputs` holds what the user named (files, globs,
    folders); the crawl's WAT list is added by the flow's preflight. `limits`: the per-record
    extraction limits (metaclip.extraction.limits), given as a mapping of the non-default ones."""

    inputs: tuple[str, ...]
    metadata: str
    output: str
    t: float = DEFAULT_T
    seed: int = 0
    batch_size: int = 16
    n_buckets: int | None = None
    one_text_per_image: bool = True
    exclude_store: str | None = None
    store_tag: str | None = None
    input_format: str = "auto"
    languages: tuple[str, ...] | None = ("en",)
    crawl: str | None = None
    crawl_data_root: str = DATA_ROOT
    max_files: int | None = None
    reduce_fanout: int = 16
    limits: ExtractLimits = DEFAULT_LIMITS
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        inputs: Any = None,
        metadata: Any,
        output: Any,
        t: Any = DEFAULT_T,
        seed: Any = 0,
        batch_size: Any = 16,
        n_buckets: Any = None,
        one_text_per_image: Any = True,
        exclude_store: Any = None,
        store_tag: Any = None,
        input_format: Any = "auto",
        languages: Any = ("en",),
        crawl: Any = None,
        crawl_data_root: Any = DATA_ROOT,
        max_files: Any = None,
        reduce_fanout: Any = 16,
        limits: Any = None,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
        **storage_options: Any,
    ) -> CurateConfig:
        inputs = check_inputs(inputs, crawl)
        output = check_output_location("output", output)
        store = check_optional_location("exclude_store", exclude_store)
        if store is not None:
            store = check_output_location("exclude_store", store)
            _check_apart(output, store)
        if store_tag is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", str(store_tag)):
            raise _fail("store_tag", "letters, digits, '.', '_' and '-' only (at most 100)")
        if not isinstance(one_text_per_image, bool):
            raise _fail("one_text_per_image", f"must be true or false, not {one_text_per_image!r}")
        return cls(
            inputs=inputs,
            metadata=check_location("metadata", metadata),
            output=output,
            t=check_positive("t", t),
            seed=check_int("seed", seed, 0, 2**63 - 1),
            batch_size=check_int("batch_size", batch_size, 1, 100_000),
            n_buckets=optional_int("n_buckets", n_buckets, 1, MAX_BUCKETS),
            one_text_per_image=one_text_per_image,
            exclude_store=store,
            store_tag=store_tag,
            input_format=check_choice("input_format", input_format, INPUT_FORMATS),
            languages=check_languages("languages", languages),
            crawl=None if crawl in (None, "") else check_crawl_id("crawl", crawl),
            crawl_data_root=check_location("crawl_data_root", crawl_data_root),
            max_files=optional_int("max_files", max_files, 1),
            reduce_fanout=check_int("reduce_fanout", reduce_fanout, 2, 4096),
            limits=check_limits("limits", limits),
            storage=StorageConfig.from_params(credentials, **storage_options),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )

    def with_output(self, output: str) -> CurateConfig:
        return replace(self, output=check_output_location("output", output))


def check_inputs(inputs: Any, crawl: Any) -> tuple[str, ...]:
    if inputs is None:
        inputs = []
    if isinstance(inputs, str) or not isinstance(inputs, Sequence):
        raise _fail("inputs", f"must be a list of files, globs, folders or URIs, not {inputs!r}")
    checked = tuple(check_location("inputs", uri) for uri in inputs)
    if not checked and crawl in (None, ""):
        raise UserError("no inputs: give input files (or globs, folders, URIs) or a crawl id")
    return checked


def _check_apart(output: str, store: str) -> None:
    """The output and the exclusion store are written by the run: neither may hold the other."""
    a, b = output.rstrip("/") + "/", store.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise UserError(f"output {output} and exclude_store {store} must not contain each other")


@dataclass(frozen=True)
class RebalanceConfig:
    output: str
    t: float
    seed: int | None = None
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        output: Any,
        t: Any,
        seed: Any = None,
        output_options: Any = None,
        exclude_store_options: Any = None,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
    ) -> RebalanceConfig:
        return cls(
            output=check_output_location("output", output),
            t=check_positive("t", t),
            seed=optional_int("seed", seed, 0, 2**63 - 1),
            storage=StorageConfig.from_params(
                credentials,
                output_options=output_options,
                exclude_store_options=exclude_store_options,
            ),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )


PROBE_CRAWL = "CC-MAIN-2013-20"  # any valid id: checks a monthly run's curation parameters


@dataclass(frozen=True)
class MonthlyConfig:
    """The monthly flow: which crawl (collinfo, lookback), where (output_root), and the
    curation's own parameters for it (checked as a CurateConfig per crawl)."""

    output_root: str
    metadata: str
    collinfo: str
    data_root: str
    lookback: int
    max_files: int | None
    crawl_options: dict[str, Any]
    curate: dict[str, Any]

    @classmethod
    def from_params(
        cls,
        *,
        output_root: Any,
        metadata: Any,
        collinfo: Any,
        data_root: Any,
        lookback: Any = 1,
        max_files: Any = None,
        crawl_options: Any = None,
        curate: Mapping[str, Any],
    ) -> MonthlyConfig:
        root = _deployment_location("output_root", output_root, "METACLIP_OUTPUT_ROOT")
        data_root = check_location("data_root", data_root)
        crawl_opts = parse_options("crawl_options", crawl_options)
        if crawl_options in (None, "") and data_root.startswith("s3://commoncrawl"):
            crawl_opts = {"anon": True}  # the public bucket: read anonymously, and only it
        config = cls(
            output_root=check_output_location("output_root", root),
            metadata=_deployment_location("metadata", metadata, "METACLIP_METADATA"),
            collinfo=check_location("collinfo", collinfo),
            data_root=data_root,
            lookback=check_int("lookback", lookback, 1, 1000),
            max_files=optional_int("max_files", max_files, 1),
            crawl_options=crawl_opts,
            curate=dict(curate),
        )
        config.curate_config(PROBE_CRAWL)  # the curation's parameters, checked now
        return config

    @property
    def storage(self) -> StorageConfig:
        """The curations' storage (output, metadata; the crawl's are crawl_options)."""
        return self.curate_config(PROBE_CRAWL).storage

    def curate_config(self, crawl_id: str) -> CurateConfig:
        from metaclip.curation.crawls import crawl_output

        return CurateConfig.from_params(
            **self.curate,
            metadata=self.metadata,
            output=crawl_output(self.output_root, crawl_id),
            crawl=crawl_id,
            crawl_data_root=self.data_root,
            max_files=self.max_files,
            input_options=self.crawl_options,
        )


def _deployment_location(name: str, value: Any, variable: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(
            name,
            f"is empty: pass it, or set {variable} before `prefect deploy` (see "
            "deployments/prefect.yaml)",
        )
    return check_location(name, value)
