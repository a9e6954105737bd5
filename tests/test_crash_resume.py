"""Crashes: SIGKILL the flow process (with its local Dask cluster) at several points of a run,
or one Dask worker alone; the rerun's curated output equals an uninterrupted run's, row for row.

Runs are real `metaclip curate` processes reporting to the test's Prefect server, sharing one
result store, as a rerun after a crash would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from prefect import get_client

from metaclip_prefect.flows.curate import curate

WAT = Path(__file__).parent / "data" / "wat"
ENTRIES = ["Home", "Logo", "the", "Foto", "image", "of", "und", "der", "die", "in", "and"]
PARAMS = {"t": 2, "seed": 5, "batch_size": 1, "n_buckets": 4}

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    inputs = root / "inputs"
    inputs.mkdir()
    for copy in range(3):  # 9 files, 9 batches: room to crash in the middle
        for path in sorted(WAT.glob("fixture-*.warc.wat.gz")):
            shutil.copy(path, inputs / f"c{copy}-{path.name}")
    metadata = root / "metadata.json"
    metadata.write_text(json.dumps(ENTRIES))
    reference = root / "reference"
    state = curate(inputs=[str(inputs)], metadata=str(metadata), output=str(reference),
                   n_workers=2, dashboard_address=":0", return_state=True, **PARAMS)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        api = str(client.api_url)
    env = {**os.environ, "PREFECT_API_URL": api,
           "PREFECT_LOCAL_STORAGE_PATH": str(root / "results"),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "5"}
    return inputs, metadata, rows(reference), env, root


def rows(output: Path) -> set:
    table = pq.read_table(output / "curated")
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(), strict=True))


def start(setup, output: Path) -> subprocess.Popen:
    inputs, metadata, _, env, root = setup
    cmd = [sys.executable, "-m", "metaclip_prefect.flows.cli", "curate", str(inputs), "--metadata",
           str(metadata), "--output", str(output), "--workers", "2",
           *[f"--{k.replace('_', '-')}={v}" for k, v in PARAMS.items() if k != "n_buckets"],
           f"--buckets={PARAMS['n_buckets']}"]
    log = open(root / "runs.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 240) -> bool:
    """True once `ready()` holds while the run is still going; False if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise TimeoutError("the run neither reached the point nor ended")


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the flow process and its local Dask cluster
    proc.wait(timeout=60)


def test_sigkill_flow_at_several_points_then_rerun(setup):
    _, _, reference, _, root = setup
    output = root / "killed"
    points = {
        "first batch committed": lambda: any((output / "_work" / "manifests").glob("*.json")),
        "global counts written": lambda: (output / "entry_counts.parquet").exists(),
        "first curated part": lambda: any((output / "curated").glob("*.parquet")),
    }
    killed = []
    for name, ready in points.items():
        proc = start(setup, output)
        if wait_for(proc, ready):
            kill_group(proc)
            killed.append(name)
        else:
            proc.wait()
    assert killed, "the runs ended before any crash point"
    final = start(setup, output)
    assert final.wait(timeout=300) == 0, (root / "runs.log").read_text()[-3000:]
    assert rows(output) == reference
    assert len(killed) >= 2, killed


def test_sigkill_one_dask_worker_mid_run(setup):
    _, _, reference, _, root = setup
    output = root / "worker-killed"
    proc = start(setup, output)
    assert wait_for(proc, lambda: any((output / "_work" / "manifests").glob("*.json")))
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "multiprocessing" in " ".join(p.cmdline())]
    assert workers, "no Dask worker process found"
    workers[0].send_signal(signal.SIGKILL)
    code = proc.wait(timeout=300)
    if code != 0:  # the killed worker's task failed the run: a rerun must finish it
        code = start(setup, output).wait(timeout=300)
    assert code == 0, (root / "runs.log").read_text()[-3000:]
    assert rows(output) == reference
