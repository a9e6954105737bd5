"""gather_verified: every result comes back in submission order, with progress lines logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prefect import flow, task

from metaclip_prefect.flows.verified import gather_verified


@task
def square(x: int) -> dict[str, Any]:
    return {"value": x * x, "outputs": {}}


@flow
def squares(n: int) -> list[int]:
    return [r["value"] for r in gather_verified(square, [{"x": i} for i in range(n)], lambda _: {})]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.slow
def test_results_in_order_with_progress_lines():
    lines = Lines()
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(lines)
    try:
        assert squares(25) == [i * i for i in range(25)]
    finally:
        logger.removeHandler(lines)
    progress = [m for m in lines.messages if m.startswith("square: ")]
    # About every tenth of the stage (every 2 of 25), and the last one.
    assert progress[0] == "square: 2/25 done"
    assert progress[-1] == "square: 25/25 done"
    assert len(progress) == 13
