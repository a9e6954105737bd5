"""The service as docker/compose.yaml runs it, started as real local processes for the scale
bench (bench/bench_stack.py): PostgreSQL (or SQLite), `prefect server start`, `dask scheduler`,
`dask worker` processes over TCP, a Prefect process worker, and `prefect deploy` of
deployments/prefect.yaml. Every process runs in its own session with its log under the home
folder, so that one can be killed (SIGKILL) and restarted the way compose's
`restart: unless-stopped` would, and all of them are stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
PREFECT = [sys.executable, "-m", "prefect"]
DASK = str(Path(sys.executable).parent / "dask")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(pid: int | None) -> list[psutil.Process]:
    """A process and its descendants ([] if gone; psutil would take None for this process)."""
    if pid is None:
        return []
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except (psutil.Error, TypeError, ValueError):
        return []


def tree_rss_mb(pid: int | None) -> float:
    """Resident memory of a process and its descendants (0 if gone)."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of a process and its descendants so far (0 if gone)."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


class Service:
    """The stack's processes by role; `db` is "postgres" or "sqlite"."""

    def __init__(self, home: Path, db: str, n_workers: int) -> None:
        self.home, self.db, self.n_workers = home, db, n_workers
        home.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.api_port, self.dask_port, self.pg_port = free_port(), free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}/api"
        self.dask_address = f"tcp://127.0.0.1:{self.dask_port}"
        self.env = self._env()

    # -- environment and processes --------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home / "prefect"), PREFECT_API_URL=self.api,
            PREFECT_UI_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_CLI_PROMPT="false",
            PREFECT_CLI_COLORS="false", METACLIP_CACHE_DIR=str(self.home / "automata"),
        )  # fmt: skip
        if self.db == "postgres":
            url = f"postgresql+asyncpg://prefect@127.0.0.1:{self.pg_port}/prefect"
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = url
        return env

    def start(self, role: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.home / f"{role}.log").open("ab")
        self.procs[role] = subprocess.Popen(
            cmd, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        """Kill a role's whole process group (as a container dies)."""
        proc = self.procs[role]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=60)

    def stop_all(self) -> None:
        for role in reversed(list(self.procs)):
            proc = self.procs[role]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def pid(self, role: str) -> int | None:
        proc = self.procs.get(role)
        return proc.pid if proc is not None and proc.poll() is None else None

    # -- PostgreSQL -----------------------------------------------------------------------
    def _pg(self, *cmd: str) -> list[str]:
        """A PostgreSQL command, as the postgres user when we are root (it refuses root)."""
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def start_postgres(self) -> None:
        data = self.home / "pgdata"
        sockets = self.home / "pgsock"
        if not data.exists():
            data.mkdir(parents=True)
            sockets.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres")
                shutil.chown(sockets, "postgres")
            subprocess.run(self._pg(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust",
                                    "-U", "prefect", "-E", "UTF8"),
                           check=True, capture_output=True)  # fmt: skip
        self.start("postgres", self._pg(
            str(PG_BIN / "postgres"), "-D", str(data), "-p", str(self.pg_port), "-k",
            str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
            "-c", "fsync=on"))  # fmt: skip
        for _ in range(120):
            ok = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p",
                                 str(self.pg_port)], capture_output=True).returncode == 0
            if ok:
                break
            time.sleep(0.5)
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port),
                        "-U", "prefect", "prefect"], capture_output=True)  # fmt: skip

    def db_bytes(self) -> int:
        if self.db == "postgres":
            out = subprocess.run(
                [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                 "prefect", "-tAc", "select pg_database_size('prefect')"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()  # fmt: skip
            return int(out) if out.isdigit() else 0
        files = (self.home / "prefect").glob("prefect.db*")
        return sum(f.stat().st_size for f in files)

    # -- Prefect and Dask -----------------------------------------------------------------
    def start_server(self) -> None:
        self.start("server", [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                              str(self.api_port)])  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.procs["server"].poll() is not None:
                raise RuntimeError(f"prefect server exited; see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("prefect server did not answer in 180 s")

    def start_scheduler(self) -> None:
        self.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port",
                                 str(self.dask_port), "--no-dashboard"])  # fmt: skip
        time.sleep(2)

    def start_dask_worker(self, i: int) -> None:
        """One nanny and one single-threaded worker process, as the compose replicas."""
        self.start(f"dask-worker-{i}", [DASK, "worker", self.dask_address, "--nworkers", "1",
                                        "--nthreads", "1", "--no-dashboard"])  # fmt: skip

    def wait_dask_workers(self, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.dask_address, timeout=60) as client:
            client.wait_for_workers(self.n_workers, timeout=timeout)

    def start_prefect_worker(self) -> None:
        self.start("prefect-worker", [*PREFECT, "worker", "start", "--pool", "metaclip",
                                      "--type", "process"])  # fmt: skip

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        done = subprocess.run([*PREFECT, *args], cwd=ROOT, env=env or self.env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def up(self, metadata: Path, output_root: Path) -> None:
        """The whole stack, then the deployments registered against it."""
        if self.db == "postgres":
            self.start_postgres()
        self.start_scheduler()
        for i in range(self.n_workers):
            self.start_dask_worker(i)
        self.start_server()
        self.cli("work-pool", "create", "metaclip", "--type", "process")
        self.start_prefect_worker()
        env = {**self.env, "METACLIP_OUTPUT_ROOT": str(output_root),
               "METACLIP_METADATA": str(metadata), "METACLIP_DASK_ADDRESS": self.dask_address}
        self.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml", env=env)
        self.wait_dask_workers()

    # -- runs -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An API call, retried for a minute: the server may be restarting (the faults)."""
        for attempt in range(30):
            try:
                response = httpx.request(method, f"{self.api}{path}", timeout=60, **kwargs)
                return response.raise_for_status().json()
            except httpx.HTTPError:
                if attempt == 29:
                    raise
                time.sleep(2)
        return None

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, json=body)

    def start_run(self, params: dict[str, Any]) -> str:
        """`prefect deployment run curate/on-demand`: the new flow run's id."""
        out = self.cli("deployment", "run", "curate/on-demand", "--params", json.dumps(params))
        found = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
        if not found:
            raise RuntimeError(out)
        return found.group(1)

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/flow_runs/{run_id}")

    def wait_final(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state_type"] in FINAL:
                return run
            time.sleep(2)
        return self.flow_run(run_id)

    def task_runs(self, run_id: str) -> list[dict[str, Any]]:
        """Every task run of a flow run (paged: the API returns at most 200 at a time)."""
        runs: list[dict[str, Any]] = []
        while True:
            page = self.post("/task_runs/filter", {
                "flow_runs": {"id": {"any_": [run_id]}}, "sort": "EXPECTED_START_TIME_ASC",
                "limit": 200, "offset": len(runs)})  # fmt: skip
            runs += page
            if len(page) < 200:
                return runs

    def count_completed(self, run_id: str) -> int:
        body = {"flow_runs": {"id": {"any_": [run_id]}},
                "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}  # fmt: skip
        return int(self.post("/task_runs/count", body))

    def flow_process_pid(self) -> int | None:
        """The flow run's process: the Prefect worker's child."""
        try:
            children = psutil.Process(self.pid("prefect-worker")).children()
        except (psutil.Error, ValueError, TypeError):
            return None
        return children[0].pid if children else None
