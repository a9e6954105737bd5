"""The curation flows' configurations: curate, rebalance, the monthly run, and the cluster."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from metaclip.config.checks import (
    CLUSTER_PARAMETERS,
    _fail,
    check_bool,
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
    given_or_default,
    optional_int,
    parse_options,
    picked,
)
from metaclip.config.storage import OPTION_PARAMETERS, StorageConfig
from metaclip.curation.balance import DEFAULT_T
from metaclip.curation.crawls import DATA_ROOT
from metaclip.curation.thresholds import DEFAULT_T_EN, ENGLISH
from metaclip.errors import UserError
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits

INPUT_FORMATS = ("wat", "warc", "auto")
MAX_BUCKETS = 4096
# The curation recipes: MetaCLIP's English one (the default), and MetaCLIP 2's worldwide one
# (a metadata list per language, thresholds per language: docs/curation.md).
ENGLISH_RECIPE = "english"
WORLDWIDE_RECIPE = "worldwide"
RECIPES = (ENGLISH_RECIPE, WORLDWIDE_RECIPE)
# The parameters a flow takes besides its configuration's fields: each location's storage
# options and the Secret blocks (a StorageConfig), and the cluster's (a ClusterConfig).
STORAGE_PARAMETERS = ("credentials", *OPTION_PARAMETERS.values())
CURATE_EXTRA = (*STORAGE_PARAMETERS, *CLUSTER_PARAMETERS)
REBALANCE_EXTRA = (
    "credentials", OPTION_PARAMETERS["output"], OPTION_PARAMETERS["exclude_store"],
    *CLUSTER_PARAMETERS,
)  # fmt: skip
POOL_EXTRA = ("credentials", OPTION_PARAMETERS["output"], *CLUSTER_PARAMETERS)
# --- the cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig:
    """Where tasks run: an existing scheduler, or a local cluster of n_workers processes."""

    dask_address: str | None = None
    n_workers: int | None = None
    dashboard_address: str = ":8787"

    @classmethod
    def from_params(cls, **given: Any) -> ClusterConfig:
        p = given_or_default(cls, given)
        dashboard = p["dashboard_address"]
        if not isinstance(dashboard, str):
            raise _fail("dashboard_address", f"must be text like ':8787': {dashboard!r}")
        return cls(
            check_dask_address("dask_address", p["dask_address"]),
            optional_int("n_workers", p["n_workers"], 1, 4096),
            dashboard,
        )


# --- the flows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurateConfig:
    """The curate flow's parameters, checked. `inputs` holds what the user named (files, globs,
    folders); the crawl's WAT list is added by the flow's preflight. `limits`: the per-record
    extraction limits (metaclip.extraction.limits), given as a mapping of the non-default ones.
    `t`: None until checked, then the recipe's default when not given (`default_t`); for the
    worldwide recipe it is English's t_en. `languages`: see `recipe_languages`."""

    inputs: tuple[str, ...]
    metadata: str
    output: str
    t: float | None = None
    recipe: str = ENGLISH_RECIPE
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
    write_pool: bool = False
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @property
    def worldwide(self) -> bool:
        """MetaCLIP 2's worldwide recipe (else MetaCLIP's English one)."""
        return self.recipe == WORLDWIDE_RECIPE

    @classmethod
    def from_params(cls, **given: Any) -> CurateConfig:
        """The configuration from a flow's parameters (defaults: the fields'), checked."""
        p = given_or_default(cls, given, CURATE_EXTRA)
        output = check_output_location("output", p["output"])
        store = check_optional_location("exclude_store", p["exclude_store"])
        if store is not None:
            store = check_output_location("exclude_store", store)
            _check_apart(output, store)
        store_tag = p["store_tag"]
        if store_tag is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", str(store_tag)):
            raise _fail("store_tag", "letters, digits, '.', '_' and '-' only (at most 100)")
        crawl = p["crawl"]
        recipe = check_choice("recipe", p["recipe"], RECIPES)
        return cls(
            inputs=check_inputs(p["inputs"], crawl),
            metadata=check_location("metadata", p["metadata"]),
            output=output,
            t=default_t(recipe) if p["t"] is None else check_positive("t", p["t"]),
            recipe=recipe,
            seed=check_int("seed", p["seed"], 0, 2**63 - 1),
            batch_size=check_int("batch_size", p["batch_size"], 1, 100_000),
            n_buckets=optional_int("n_buckets", p["n_buckets"], 1, MAX_BUCKETS),
            one_text_per_image=check_bool("one_text_per_image", p["one_text_per_image"]),
            exclude_store=store,
            store_tag=store_tag,
            input_format=check_choice("input_format", p["input_format"], INPUT_FORMATS),
            languages=recipe_languages(recipe, p["languages"]),
            crawl=None if crawl in (None, "") else check_crawl_id("crawl", crawl),
            crawl_data_root=check_location("crawl_data_root", p["crawl_data_root"]),
            max_files=optional_int("max_files", p["max_files"], 1),
            reduce_fanout=check_int("reduce_fanout", p["reduce_fanout"], 2, 4096),
            limits=check_limits("limits", p["limits"]),
            write_pool=check_bool("write_pool", p["write_pool"]),
            storage=StorageConfig.from_params(**picked(given, STORAGE_PARAMETERS)),
            cluster=ClusterConfig.from_params(**picked(given, CLUSTER_PARAMETERS)),
        )


def default_t(recipe: str) -> float:
    """The t of a run that gives none: MetaCLIP's 20,000, or MetaCLIP 2's t_en of 170,000."""
    return float(DEFAULT_T if recipe == ENGLISH_RECIPE else DEFAULT_T_EN)


def recipe_languages(recipe: str, value: Any) -> tuple[str, ...] | None:
    """The languages a run curates. English recipe: the fastText labels kept (None: every
    text). Worldwide: the metadata languages matched (None: every language of the index;
    checked against it in the preflight). The English default, ["en"], is the flows' default
    too, so in the worldwide recipe it reads as every language: English alone is the English
    recipe run on the index's en list."""
    languages = check_languages("languages", value)
    if recipe == ENGLISH_RECIPE:
        return languages
    if languages == CurateConfig.languages:
        return None
    if languages is not None and ENGLISH not in languages:
        raise _fail("languages", "the worldwide recipe takes its tail share p from English (t_en): "
                                 "include en")  # fmt: skip
    return languages


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
    def from_params(cls, **given: Any) -> RebalanceConfig:
        p = given_or_default(cls, given, REBALANCE_EXTRA)
        return cls(
            output=check_output_location("output", p["output"]),
            t=check_positive("t", p["t"]),
            seed=optional_int("seed", p["seed"], 0, 2**63 - 1),
            storage=StorageConfig.from_params(**picked(given, STORAGE_PARAMETERS)),
            cluster=ClusterConfig.from_params(**picked(given, CLUSTER_PARAMETERS)),
        )


@dataclass(frozen=True)
class PoolConfig:
    """The pool flow: write a finished curation's matched pool (metaclip.curation.pool) into
    its output."""

    output: str
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(cls, **given: Any) -> PoolConfig:
        p = given_or_default(cls, given, POOL_EXTRA)
        return cls(
            output=check_output_location("output", p["output"]),
            storage=StorageConfig.from_params(**picked(given, STORAGE_PARAMETERS)),
            cluster=ClusterConfig.from_params(**picked(given, CLUSTER_PARAMETERS)),
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
    curate: dict[str, Any]
    lookback: int = 1
    max_files: int | None = None
    crawl_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, **given: Any) -> MonthlyConfig:
        p = given_or_default(cls, given)
        root = _deployment_location("output_root", p["output_root"], "METACLIP_OUTPUT_ROOT")
        data_root = check_location("data_root", p["data_root"])
        crawl_opts = parse_options("crawl_options", p["crawl_options"])
        if p["crawl_options"] in (None, "") and data_root.startswith("s3://commoncrawl"):
            crawl_opts = {"anon": True}  # the public bucket: read anonymously, and only it
        config = cls(
            output_root=check_output_location("output_root", root),
            metadata=_deployment_location("metadata", p["metadata"], "METACLIP_METADATA"),
            collinfo=check_location("collinfo", p["collinfo"]),
            data_root=data_root,
            lookback=check_int("lookback", p["lookback"], 1, 1000),
            max_files=optional_int("max_files", p["max_files"], 1),
            crawl_options=crawl_opts,
            curate=dict(p["curate"] or {}),
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
