"""Retry only what may pass: throttling, 5xx, resets, timeouts (see metaclip.transient)."""

from __future__ import annotations

from typing import Any

from metaclip.transient import is_transient

RETRIES = 4
RETRY_DELAYS = [2, 10, 30, 60]


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result()
        except Exception as raised:  # noqa: BLE001 - we classify whatever was raised
            exc = raised
    return is_transient(exc)


# Keyword arguments shared by every task that does I/O.
IO_TASK_OPTIONS: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_on_transient,
    "persist_result": True,
}
