"""One writer per output: a lease file in the output location, held by the running flow.

`<output>/_lock.json` (paths.lock_uri) names its owner (the flow run, or the CLI process), the
host and pid, when it was taken and when it was last renewed. It is created only if absent (an
exclusive link locally, a conditional PUT on S3), so of two runs started at once exactly one
gets it; the other stops in one line naming the holder. The holder renews it every
`ttl_s / 4` from a background thread; a lease not renewed for `ttl_s` (its process died), whose
owner run is known to have ended, or whose local process is gone, is stale and taken over.
`metaclip unlock OUTPUT` shows the holder and removes a stale lease (`--force`: any lease).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from metaclip.errors import UserError
from metaclip.io import storage

# A lease not renewed for this long belongs to a dead process (renewals come every ttl / 4).
LEASE_TTL_S = float(os.environ.get("METACLIP_LEASE_TTL_S", "600"))


@dataclass(frozen=True)
class Lock:
    owner: str  # the flow run (or process) holding it
    acquired_at: float  # seconds since the epoch
    host: str = ""
    pid: int = 0
    renewed_at: float = 0.0  # 0: never renewed (counts from acquired_at)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Lock:
        raw = json.loads(data)
        return cls(
            str(raw["owner"]), float(raw["acquired_at"]), str(raw.get("host", "")),
            int(raw.get("pid", 0)), float(raw.get("renewed_at", 0.0)),
        )  # fmt: skip

    @property
    def last_seen(self) -> float:
        return max(self.acquired_at, self.renewed_at)

    def describe(self) -> str:
        where = f" on {self.host}" if self.host else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.last_seen))
        return f"{self.owner}{where}{pid}, alive at {when}"


def is_stale(lock: Lock, now: float, ttl_s: float = LEASE_TTL_S, owner_ended: bool = False) -> bool:
    """A lease stops counting when its owner has ended or it has not been renewed in time."""
    return owner_ended or _dead_local_process(lock) or now - lock.last_seen > ttl_s


def _dead_local_process(lock: Lock) -> bool:
    if not lock.pid or lock.host != socket.gethostname():
        return False
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def read_lock(uri: str, **storage_options: Any) -> Lock | None:
    """The lock at uri; None when there is none. An unreadable lock is treated as stale (0)."""
    try:
        data = storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        return None
    try:
        return Lock.from_bytes(data)
    except (ValueError, KeyError, TypeError):
        return Lock(owner="<unreadable>", acquired_at=0.0)


def _create_exclusive(uri: str, data: bytes, **storage_options: Any) -> bool:
    """Write uri only if it does not exist, atomically; False if it already did."""
    fs, path = storage.filesystem(uri, **storage_options)
    if storage.is_local(uri):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # link(2) fails if path exists: create-if-absent, whole file
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    try:
        fs.pipe_file(path, data, mode="create")  # S3: a conditional PUT (If-None-Match: *)
    except (FileExistsError, OSError) as exc:
        if isinstance(exc, FileExistsError) or "PreconditionFailed" in repr(exc):
            return False
        raise
    return True


def try_acquire(
    uri: str,
    owner: str,
    now: float | None = None,
    ttl_s: float = LEASE_TTL_S,
    owner_ended: Callable[[str], bool] = lambda _owner: False,
    **storage_options: Any,
) -> tuple[bool, Lock | None]:
    """Take the lock at uri for `owner`: (True, ours) or (False, the holder's).

    A stale lock (see is_stale) is removed and taken over; a fresh one held by someone else
    is refused. Re-acquiring one's own lock succeeds (a retried flow run keeps its guard).
    """
    now = time.time() if now is None else now
    mine = Lock(owner=owner, acquired_at=now, host=socket.gethostname(), pid=os.getpid())
    for _ in range(2):  # at most one takeover of a stale lock
        if _create_exclusive(uri, mine.to_bytes(), **storage_options):
            return True, mine
        held = read_lock(uri, **storage_options)
        if held is None:
            continue  # released in between: try again
        if held.owner == owner:
            return True, held
        if not is_stale(held, now, ttl_s, owner_ended(held.owner)):
            return False, held
        _remove_if_unchanged(uri, held, **storage_options)
    return False, read_lock(uri, **storage_options)


def renew(uri: str, owner: str, **storage_options: Any) -> bool:
    """Mark the lease alive now; False (and nothing written) if `owner` no longer holds it."""
    with _guard(uri, **storage_options):
        held = read_lock(uri, **storage_options)
        if held is None or held.owner != owner:
            return False
        fresh = Lock(held.owner, held.acquired_at, held.host, held.pid, time.time())
        storage.write_bytes_atomic(uri, fresh.to_bytes(), **storage_options)
        return True


def release(uri: str, owner: str, **storage_options: Any) -> bool:
    """Remove the lock if `owner` holds it (never someone else's)."""
    with _guard(uri, **storage_options):
        held = read_lock(uri, **storage_options)
        if held is None or held.owner != owner:
            return False
        _remove(uri, **storage_options)
        return True


def break_lock(uri: str, force: bool = False, **storage_options: Any) -> Lock | None:
    """Remove a stale lease (any lease with force); returns the lease removed, else None.
    Raises UserError when the lease is live and force is not given."""
    held = read_lock(uri, **storage_options)
    if held is None:
        return None
    if not force and not is_stale(held, time.time()):
        raise UserError(
            f"{uri} is held by {held.describe()} and looks alive; stop that run, or wait "
            f"{LEASE_TTL_S / 60:.0f} minutes after it died, or pass --force"
        )
    _remove_if_unchanged(uri, held, **storage_options)
    return held


def _remove_if_unchanged(uri: str, stale: Lock, **storage_options: Any) -> None:
    """Remove a stale lock, but not a fresh one another taker wrote since it was read.

    Locally, removals (takeovers and releases) are serialised by an flock on a guard file, so
    the lock read under the guard is the one removed; creation needs no guard, as it is
    exclusive. On S3 a narrow race is left; the deployment's concurrency limit covers it.
    """
    with _guard(uri, **storage_options):
        if read_lock(uri, **storage_options) == stale:
            _remove(uri, **storage_options)


@contextlib.contextmanager
def _guard(uri: str, **storage_options: Any) -> Iterator[None]:
    if not storage.is_local(uri):
        yield
        return
    _, path = storage.filesystem(uri, **storage_options)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(f"{path}.guard", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove(uri: str, **storage_options: Any) -> None:
    fs, path = storage.filesystem(uri, **storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


class OutputBusyError(UserError):
    """Another run holds the output's lease."""


@contextlib.contextmanager
def held(
    uri: str,
    owner: str,
    owner_ended: Callable[[str], bool] = lambda _owner: False,
    ttl_s: float = LEASE_TTL_S,
    **storage_options: Any,
) -> Iterator[Lock]:
    """Hold the lease at uri for the block, renewing it in the background; released at the end,
    however the block ends. Raises OutputBusyError when another live run holds it."""
    taken, lock = try_acquire(uri, owner, ttl_s=ttl_s, owner_ended=owner_ended, **storage_options)
    if not taken:
        holder = lock.describe() if lock else "another run"
        raise OutputBusyError(
            f"{uri.rsplit('/', 1)[0]} is being written by {holder}: one run at a time writes "
            "an output (a stale lease expires by itself; see `metaclip unlock --help`)"
        )
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(uri, owner, ttl_s / 4, stop, storage_options), daemon=True
    )
    beat.start()
    try:
        assert lock is not None
        yield lock
    finally:
        stop.set()
        beat.join(timeout=30)
        release(uri, owner, **storage_options)


def _heartbeat(
    uri: str, owner: str, every_s: float, stop: threading.Event, opts: dict[str, Any]
) -> None:
    while not stop.wait(every_s):
        with contextlib.suppress(Exception):  # a missed beat is retried at the next one
            if not renew(uri, owner, **opts):
                return  # taken over (we were presumed dead): nothing more to renew
