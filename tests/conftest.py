"""Shared test set-up: no telemetry, private caches, a real Prefect test server on demand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("DASK_DISTRIBUTED__LOGGING__DISTRIBUTED", "warning")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["METACLIP_CACHE_DIR"] = str(tmp_path_factory.mktemp("automata"))


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API (temporary SQLite database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def real_captions() -> list[str]:
    """Real COCO and CC3M captions shipped in tests/data/captions (see its PROVENANCE.txt)."""
    lines: list[str] = []
    for path in sorted((DATA / "captions").glob("*_5000.txt")):
        lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line)
    assert len(lines) >= 5000, "tests/data/captions should hold thousands of captions"
    return lines
