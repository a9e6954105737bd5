"""Transient I/O errors are retried with backoff; errors in the data are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow

from metaclip.curation.settings import RunSettings
from metaclip.io.transient import is_transient
from tests.support import flaky

WAT = Path(__file__).parent / "data" / "wat" / "fixture-0000.warc.wat.gz"

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture
def flaky_fs(tmp_path, monkeypatch):
    flaky.register()
    budget = tmp_path / "budget"
    monkeypatch.setenv("FLAKY_BUDGET_FILE", str(budget))
    return budget


def run_batch(tmp_path: Path):
    import metaclip_prefect.tasks.curate as tc

    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(["Home", "Logo", "the"]))
    from metaclip.metadata import load_metadata

    sha = load_metadata(str(meta)).sha256
    task = tc.extract_and_match.with_options(retry_delay_seconds=0)
    settings = RunSettings(
        inputs=(), metadata=str(meta),
        output=str(tmp_path / "out"), metadata_uri=str(meta), metadata_sha256=sha, n_buckets=4,
        input_format="auto", languages=None, t=5.0, seed=0, one_text_per_image=True,
        exclude_store=None, store_tag="test", batch_size=1, reduce_fanout=16,
    )

    @flow
    def one_batch():
        return task(batch_id="b0", files=["flaky://" + str(WAT)], settings=settings,
                    return_state=True)

    return one_batch(return_state=True)  # the flow ends in its task's state


def test_transient_failure_twice_then_success(flaky_fs, tmp_path):
    flaky_fs.write_text("2")
    state = run_batch(tmp_path)
    assert state.is_completed()
    result = state.result()
    result = result.result() if hasattr(result, "result") else result  # the task's own state
    assert result["extract"]["pairs"] > 0
    assert flaky_fs.with_suffix(".calls").read_text() == "3"  # two failures, then success


def test_permanent_failure_is_not_retried(flaky_fs, tmp_path, monkeypatch):
    monkeypatch.setenv("FLAKY_ERROR", "value")
    flaky_fs.write_text("5")
    state = run_batch(tmp_path)
    assert state.is_failed()
    assert flaky_fs.with_suffix(".calls").read_text() == "1"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError("read timed out"), True),
        (OSError(110, "timed out"), True),
        (FileNotFoundError("gone"), False),
        (PermissionError("denied"), False),
        (ValueError("bad data"), False),
    ],
)
def test_classification(exc, expected):
    assert is_transient(exc) is expected


def test_throttling_and_5xx_from_s3_are_transient():
    class ClientError(Exception):
        def __init__(self, code, status):
            self.response = {
                "Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}
            }

    assert is_transient(ClientError("SlowDown", 503))
    assert is_transient(ClientError("InternalError", 500))
    assert not is_transient(ClientError("NoSuchKey", 404))
    wrapped = OSError("s3fs wraps it")
    wrapped.__cause__ = ClientError("SlowDown", 503)
    assert is_transient(wrapped)
