"""S3-compatible servers for tests: each a separate `moto_server` process on loopback.

Separate processes share no state (moto keeps its buckets, IAM users and request counter in
memory), so one can stand in for a public bucket and another for a private store that
enforces authentication (`MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"})`: the first
four calls run unauthenticated, every later one must be signed by an IAM access key)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

MOTO_SERVER = Path(sys.executable).with_name("moto_server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """`with MotoServer() as server:` a moto_server on 127.0.0.1 at `server.endpoint`, stopped
    (terminated, then killed) on leaving. Its output goes to a file outside pytest's tmp dirs,
    shown if it fails to start."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 60) -> None:
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self._logdir = tempfile.TemporaryDirectory(prefix="moto-server-")
        log = Path(self._logdir.name) / "moto.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.env)
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            with log.open("wb") as out:
                self.process = subprocess.Popen(
                    [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            if self._wait_ready():
                return self
            self.stop(cleanup=False)
        message = log.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"moto_server did not start:\n{message}")

    def _wait_ready(self) -> bool:
        """Ready when the port accepts connections (a TCP connect is no S3 or IAM call, so it
        does not count against INITIAL_NO_AUTH_ACTION_COUNT)."""
        deadline = time.monotonic() + self.startup_timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self, cleanup: bool = True) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if cleanup and self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
