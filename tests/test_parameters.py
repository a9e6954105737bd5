"""A flow parameter is written in two places: the flow's signature (what Prefect shows and a
deployment's schema holds) and the field of the flow's configuration that checks it. These
tests keep the two from drifting, and keep every parameter known to the configuration (a
parameter it does not know would be refused at run time)."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from typing import Any

import pytest

from metaclip.config import (
    BuildMetadataConfig,
    ClusterConfig,
    CurateConfig,
    ExpertsConfig,
    MonthlyConfig,
    PoolConfig,
    RebalanceConfig,
)
from metaclip.config.builds import READ_WRITE_EXTRA
from metaclip.config.curation import CURATE_EXTRA, POOL_EXTRA, REBALANCE_EXTRA
from metaclip.curation.balance import DEFAULT_T
from metaclip.errors import UserError
from metaclip_prefect.flows.build_metadata import build_metadata
from metaclip_prefect.flows.curate import curate
from metaclip_prefect.flows.experts import data_experts
from metaclip_prefect.flows.monthly import curate_new_crawl
from metaclip_prefect.flows.pool import write_pool
from metaclip_prefect.flows.rebalance import rebalance

FLOWS = [
    (curate, CurateConfig, CURATE_EXTRA),
    (rebalance, RebalanceConfig, REBALANCE_EXTRA),
    (write_pool, PoolConfig, POOL_EXTRA),
    (build_metadata, BuildMetadataConfig, READ_WRITE_EXTRA),
    (data_experts, ExpertsConfig, READ_WRITE_EXTRA),
]


def field_defaults(*configs: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for config in configs:
        for f in fields(config):
            if f.default is not MISSING:
                out.setdefault(f.name, f.default)
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as a run sees them: a flow's list default is the configuration's tuple, and a
    flow's None means "unset", which the configuration reads as its field's default."""
    if a is None:
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a == b


def flow_defaults(flow: Any) -> dict[str, Any]:
    params = inspect.signature(flow.fn).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize(("flow", "config", "extra"), FLOWS, ids=lambda x: getattr(x, "name", ""))
def test_every_flow_parameter_is_known_to_its_configuration(flow, config, extra):
    known = {f.name for f in fields(config)} | set(extra)
    assert set(inspect.signature(flow.fn).parameters) <= known


@pytest.mark.parametrize(("flow", "config", "extra"), FLOWS, ids=lambda x: getattr(x, "name", ""))
def test_flow_defaults_are_the_configuration_defaults(flow, config, extra):
    defaults = field_defaults(config, ClusterConfig)
    drifted = {
        name: (value, defaults[name])
        for name, value in flow_defaults(flow).items()
        if name in defaults and not same(value, defaults[name])
    }
    assert drifted == {}


def test_monthly_defaults_are_the_monthly_and_curation_defaults():
    defaults = field_defaults(MonthlyConfig, CurateConfig, ClusterConfig)
    drifted = {
        name: (value, defaults[name])
        for name, value in flow_defaults(curate_new_crawl).items()
        if name in defaults and not same(value, defaults[name])
    }
    assert drifted == {}


@pytest.mark.parametrize(("flow", "config", "extra"), FLOWS, ids=lambda x: getattr(x, "name", ""))
def test_a_parameter_the_configuration_does_not_know_is_one_line(flow, config, extra):
    with pytest.raises(UserError, match=r"^unknown parameters: bogus$"):
        config.from_params(bogus=1)


def test_a_missing_parameter_reads_as_the_field_default():
    given = {"inputs": ["a.wat.gz"], "metadata": "m.json", "output": "/tmp/out"}
    config = CurateConfig.from_params(**given)
    # t's field default is None: "the recipe's", MetaCLIP's 20,000 for the default recipe
    assert config.t == DEFAULT_T and config.batch_size == CurateConfig.batch_size
    assert config.cluster == ClusterConfig()
    assert CurateConfig.from_params(**given, limits=None).limits == CurateConfig.limits
