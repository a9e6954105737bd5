"""A local filesystem whose opens fail with a transient error a set number of times.

It stands in for a storage service that throttles or resets connections; the count of failures
left lives in a file, so that it is shared by the processes a test starts."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem


class FlakyFileSystem(LocalFileSystem):
    protocol = "flaky"
    root_marker = "/"

    @classmethod
    def _strip_protocol(cls, path):
        path = path[len("flaky://"):] if str(path).startswith("flaky://") else path
        return super()._strip_protocol(path)

    def _open(self, path, mode="rb", **kwargs):
        budget = Path(os.environ["FLAKY_BUDGET_FILE"])
        left = int(budget.read_text())
        calls = budget.with_suffix(".calls")
        calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
        if left > 0:
            budget.write_text(str(left - 1))
            error = os.environ.get("FLAKY_ERROR", "reset")
            if error == "reset":
                raise ConnectionResetError(104, "Connection reset by peer")
            raise ValueError("a permanent, non-transient failure")
        return super()._open(path, mode=mode, **kwargs)


def register() -> None:
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
