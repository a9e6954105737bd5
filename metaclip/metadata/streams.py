"""Reading metadata inputs through metaclip.io.storage: decompression by suffix, a sha256 of the
bytes as stored computed while they are read (so checksums cost no second pass), and batching
of input files into tasks of similar size."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from metaclip.errors import UserError
from metaclip.io import storage


@dataclass(frozen=True)
class InputDigest:
    """One input file as read: its URI, stored size and the sha256 of its stored bytes."""

    uri: str
    bytes: int
    sha256: str


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes every byte passing through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Hash what a decompressor left unread (trailing bytes), so the digest is the file's."""
        while self.readinto(bytearray(1 << 20)):
            pass


def _decompressor(uri: str, raw: IO[bytes]) -> IO[bytes]:
    name = uri.lower()
    if name.endswith((".gz", ".gzip")):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw, mode="rb")
    if name.endswith((".xz", ".lzma")):
        return lzma.LZMAFile(raw, mode="rb")
    if name.endswith(".zst"):
        try:
            import zstandard  # optional: only for .zst inputs
        except ImportError as exc:
            raise UserError(f"{uri}: reading .zst needs the 'zstandard' package") from exc
        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


class HashedInput:
    """Open an input for reading (decompressed by suffix); `digest` is set once it is closed."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self._opts = storage_options or {}
        self.digest: InputDigest | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        try:
            raw = storage.open_input(self.uri, **self._opts)
        except FileNotFoundError as exc:
            raise UserError(f"input not found: {self.uri}") from exc
        with raw:
            hashing = _HashingReader(raw)
            buffered = io.BufferedReader(hashing, buffer_size=1 << 20)
            stream = _decompressor(self.uri, buffered)
            try:
                yield stream
            except (gzip.BadGzipFile, EOFError, lzma.LZMAError, zlib.error) as exc:
                # Corrupt or truncated data is the input's fault (I/O errors are retried).
                raise UserError(f"{self.uri}: cannot decompress ({exc})") from exc
            # Bytes the decompressor never asked for (trailing data) count too.
            hashing.drain()
            self.digest = InputDigest(self.uri, hashing.size, hashing.sha256.hexdigest())


@contextmanager
def open_text(
    uri: str,
    storage_options: dict[str, Any] | None = None,
    digests: list[InputDigest] | None = None,
) -> Iterator[IO[str]]:
    """Open an input as UTF-8 text (invalid bytes replaced); append its digest when done."""
    source = HashedInput(uri, storage_options)
    with source.open() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=None)
        yield text
        text.detach()
    if digests is not None and source.digest is not None:
        digests.append(source.digest)


def peek_lines(uri: str, n: int, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The first `n` non-empty lines of an input (decompressed), reading no further."""
    out: list[str] = []
    with storage.open_input(uri, **(storage_options or {})) as raw:
        text = io.TextIOWrapper(_decompressor(uri, raw), encoding="utf-8", errors="replace")
        for line in text:
            if line.strip():
                out.append(line.rstrip("\r\n"))
            if len(out) >= n:
                break
    return out


def file_sizes(uris: Sequence[str], storage_options: dict[str, Any] | None = None) -> list[int]:
    opts = storage_options or {}
    sizes = []
    for uri in uris:
        fs, path = storage.filesystem(uri, **opts)
        sizes.append(int(fs.size(path) or 0))
    return sizes


def batch_by_size(uris: Sequence[str], sizes: Sequence[int], target_bytes: int) -> list[list[str]]:
    """Consecutive files grouped into batches of about `target_bytes` (a big file is alone)."""
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0
    for uri, size in zip(uris, sizes, strict=True):
        if current and total + size > target_bytes:
            batches.append(current)
            current, total = [], 0
        current.append(uri)
        total += size
    if current:
        batches.append(current)
    return batches


def sha256sums(digests: Sequence[InputDigest]) -> str:
    """The digests in `sha256sum` format (two spaces), sorted by URI."""
    lines = sorted(f"{d.sha256}  {d.uri}\n" for d in digests)
    return "".join(lines)
