"""Task submission (metaclip_prefect.flows.submission): the settings a task runs under are the
flow's, serialized once per settings object and afresh for new ones; every submission has its
own Dask key; tasks run on a real local Dask cluster and return what they were given."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task
from prefect.context import SettingsContext
from prefect.settings import PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS, temporary_settings
from prefect.settings.context import get_current_settings

from metaclip.config import ClusterConfig
from metaclip_prefect.flows.runners import DeferredDaskTaskRunner, use_cluster
from metaclip_prefect.flows.submission import SettingsSerializedOnce


def test_serialized_once_is_prefects_serialization_and_follows_new_settings() -> None:
    current = SettingsContext.get()
    once = SettingsSerializedOnce.of(current)
    assert once.serialize() == current.serialize()
    assert once.serialize() is once.serialize()  # computed once
    assert SettingsSerializedOnce.of(current).serialize() is once.serialize()  # per settings
    assert once.serialize(include_secrets=False) == current.serialize(include_secrets=False)
    with temporary_settings(updates={PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS: 7}):
        changed = SettingsContext.get()
        again = SettingsSerializedOnce.of(changed).serialize()
        assert again == changed.serialize()
        assert again != once.serialize()
        assert again["settings"]["tasks"]["default_retry_delay_seconds"] == 7


@task(persist_result=False)
def retry_delay(i: int) -> tuple[int, Any]:
    return i, get_current_settings().tasks.default_retry_delay_seconds


@flow(task_runner=DeferredDaskTaskRunner(), persist_result=False)
def submitting(n: int) -> dict[str, Any]:
    use_cluster(ClusterConfig(n_workers=1, dashboard_address=":0"))
    before = [retry_delay.submit(i) for i in range(n)]
    with temporary_settings(updates={PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS: 7}):
        inside = [retry_delay.submit(n + i) for i in range(n)]
    futures = before + inside
    return {
        "before": [f.result() for f in before],
        "inside": [f.result() for f in inside],
        "keys": [f.wrapped_future.key for f in futures],
        "flow_delay": get_current_settings().tasks.default_retry_delay_seconds,
    }


@pytest.mark.usefixtures("prefect_server")
def test_tasks_run_under_the_flows_settings_with_their_own_keys() -> None:
    n = 4
    got = submitting(n)
    flow_delay = got["flow_delay"]
    assert flow_delay != 7
    assert got["before"] == [(i, flow_delay) for i in range(n)]
    assert got["inside"] == [(n + i, 7) for i in range(n)]
    assert len(set(got["keys"])) == 2 * n
    assert all(key.startswith("retry_delay-") for key in got["keys"])
