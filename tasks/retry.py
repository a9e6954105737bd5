"""Retry only what may pass: throttling, 5xx, resets, timeouts (see metaclip.io.transient)."""

from __future__ import annotations

import os
from typing import Any

from metaclip.io.transient import is_transient

RETRIES = 4
# Seconds before each retry; METACLIP_RETRY_DELAYS="0,0,0,0" makes tests fast.
RETRY_DELAYS = [float(x) for x in os.environ.get("METACLIP_RETRY_DELAYS", "2,10,30,60").split(",")]


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result()
        except Exception as raised:  # noqa: BLE001 - we classify whatever was raised
            exc = raised
    return is_transient(exc)


# Keyword arguments shared by every task that does I/O. No result persistence here: Prefect's
# result store is never used (tasks.caching.DATA_CACHED_TASK turns it off explicitly).
IO_TASK_OPTIONS: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_on_transient,
}
