"""WordNet synset names, MetaCLIP's first source, read through NLTK's WordNet reader.

An entry is a synset's name up to its first '.', with '_' turned into a space ('hot_dog.n.01' ->
'hot dog'); its count is the number of synsets with that name. The data may come from
- "nltk": NLTK's own download (`python -m nltk.downloader wordnet`), found on nltk.data.path;
- a WordNet 3.0 directory (the directory itself, or an NLTK data root holding corpora/wordnet);
- an archive of either (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2, .zip), local or by URI.
The reader needs lexnames, index.{noun,verb,adj,adv}, data.{noun,verb,adj,adv} and the four
.exc files; Debian's wordnet-base lacks lexnames (see tests/data/wordnet/PROVENANCE.txt).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import HashedInput, InputDigest

if TYPE_CHECKING:  # metaclip.config imports this package's constants
    from metaclip.config import BuildMetadataConfig, Stores

POS = ("noun", "verb", "adj", "adv")
WORDNET_FILES: tuple[str, ...] = (
    "lexnames",
    *(f"index.{p}" for p in POS),
    *(f"data.{p}" for p in POS),
    *(f"{p}.exc" for p in POS),
)
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".zip")


@dataclass(frozen=True)
class WordNetNames:
    counts: dict[str, int]  # entry -> number of synsets with that name
    synsets: int
    version: str
    inputs: list[InputDigest]


def synset_entry(synset_name: str) -> str:
    """'hot_dog.n.01' -> 'hot dog' (MetaCLIP: the name up to the first '.', '_' -> ' ')."""
    return synset_name.split(".", 1)[0].replace("_", " ")


def _reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):  # type: ignore[misc]
        # The stock reader maps every version onto NLTK's own 'wordnet' corpus for OMW
        # (reading index.sense twice); English synset names never use that mapping.
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    return EnglishWordNetReader


def _open_reader(root: Any) -> Any:
    with warnings.catch_warnings():  # "multilingual functions are not available": expected
        warnings.simplefilter("ignore", UserWarning)
        try:
            return _reader_class()(root, None)
        except (OSError, ValueError, AssertionError) as exc:
            raise UserError(f"not a usable WordNet directory: {root} ({exc})") from exc


def _find_wordnet_dir(base: str) -> str:
    """The directory under `base` (at most three levels down) that holds WordNet's lexnames."""
    for depth_dir, _dirs, files in sorted(os.walk(base)):
        if depth_dir[len(base) :].count(os.sep) > 3:
            continue
        if "lexnames" in files and "data.noun" in files:
            return depth_dir
    raise UserError(f"no WordNet files (lexnames, data.noun, ...) found in {base}")


@contextmanager
def _on_nltk_path(directory: str) -> Iterator[None]:
    """NLTK (>= 3.9) only reads files below an nltk.data.path entry."""
    import nltk

    added = directory not in nltk.data.path
    if added:
        nltk.data.path.insert(0, directory)
    try:
        yield
    finally:
        if added:
            with suppress(ValueError):
                nltk.data.path.remove(directory)


def _file_digests(directory: str, label: str) -> list[InputDigest]:
    out = []
    for name in WORDNET_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise UserError(f"WordNet file missing: {label}/{name}")
        with open(path, "rb") as fh:
            data = fh.read()
        out.append(InputDigest(f"{label}/{name}", len(data), hashlib.sha256(data).hexdigest()))
    return out


def _extract(archive: str, uri: str, dest: str) -> None:
    if uri.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
        return
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")


def _fetch_archive(uri: str, dest: str, opts: dict[str, Any]) -> InputDigest:
    local = os.path.join(dest, "archive")
    source = HashedInput(uri, opts)
    # The copy may be decompressed by suffix (.tar.gz -> .tar): tarfile reads either.
    with source.open() as stream, open(local, "wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    try:
        _extract(local, uri, os.path.join(dest, "x"))
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"cannot unpack WordNet archive {uri}: {exc}") from exc
    os.unlink(local)
    assert source.digest is not None
    return source.digest


@contextmanager
def wordnet_reader(
    source: str, storage_options: dict[str, Any] | None = None
) -> Iterator[tuple[Any, list[InputDigest]]]:
    """Yield (NLTK WordNet reader, digests of the data read) for a source (module docstring)."""
    opts = storage_options or {}
    if source == "nltk":
        yield _nltk_download_reader()
        return
    with tempfile.TemporaryDirectory(prefix="metaclip-wordnet-") as tmp:
        if source.lower().endswith(_ARCHIVE_SUFFIXES):
            digests = [_fetch_archive(source, tmp, opts)]
            directory = _find_wordnet_dir(os.path.join(tmp, "x"))
        elif storage.is_local(source):
            base = source.removeprefix("file://")
            if not os.path.isdir(base):
                raise UserError(f"WordNet directory not found: {source}")
            directory = _find_wordnet_dir(os.path.abspath(base))
            digests = _file_digests(directory, directory)
        else:
            fs, path = storage.filesystem(source, **opts)
            if not fs.isdir(path):
                raise UserError(f"WordNet directory not found: {source}")
            fs.get(path.rstrip("/") + "/", os.path.join(tmp, "x"), recursive=True)
            directory = _find_wordnet_dir(os.path.join(tmp, "x"))
            digests = _file_digests(directory, source.rstrip("/"))
        with _on_nltk_path(directory):
            yield _open_reader(directory), digests


def _nltk_wordnet_root() -> Any:
    import nltk

    # As nltk.corpus.wordnet looks: an unpacked folder, else the downloader's zip.
    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        with suppress(LookupError):
            return nltk.data.find(resource)
    raise UserError(
        "NLTK's WordNet is not installed: run `python -m nltk.downloader wordnet` "
        "or pass a WordNet 3.0 directory"
    )


def _nltk_download_reader() -> tuple[Any, list[InputDigest]]:
    root = _nltk_wordnet_root()
    digests = []
    for name in WORDNET_FILES:
        with root.join(name).open() as fh:
            data = fh.read()
        digests.append(
            InputDigest(f"nltk:corpora/wordnet/{name}", len(data), hashlib.sha256(data).hexdigest())
        )
    return _open_reader(root), digests


def wordnet_names(
    source: str, pos: str | None = None, storage_options: dict[str, Any] | None = None
) -> WordNetNames:
    """Every synset's entry with its synset count; `pos` ('n', 'v', 'a', 's', 'r') restricts."""
    with wordnet_reader(source, storage_options) as (reader, digests):
        counts: Counter[str] = Counter()
        for synset in reader.all_synsets(pos):
            counts[synset_entry(synset.name())] += 1
        version = str(reader.get_version())
    return WordNetNames(dict(counts), sum(counts.values()), version, digests)


def wordnet_key_files(source: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The files whose identity decides a WordNet source's output (for cache keys)."""
    if source == "nltk":
        _nltk_wordnet_root()  # fail early when it is not installed
        return []
    if storage.is_local(source) and os.path.isdir(base := source.removeprefix("file://")):
        directory = _find_wordnet_dir(os.path.abspath(base))
        return [os.path.join(directory, name) for name in WORDNET_FILES]
    if not storage.exists(source, **(storage_options or {})):
        raise UserError(f"WordNet input not found: {source}")
    return [source]


# The settings that change the WordNet source (with its files' identities: wordnet_key_files).
KEYED_BY = ("wordnet",)


def wordnet_source(
    settings: BuildMetadataConfig, stores: Stores, uri: str, pos: str | None = None
) -> SourceList:
    """Write the WordNet source list (entry, number of synsets) of `settings.wordnet` to `uri`
    (WordNet read with the inputs' options, the list written with the output's); `pos` ('n',
    'v', 'a', 's', 'r') restricts it to one part of speech."""
    source = settings.wordnet
    if source is None:
        raise UserError("no WordNet source given")
    names = wordnet_names(source, pos, stores.inputs)
    table = pa.table(
        {"entry": list(names.counts), "count": pa.array(list(names.counts.values()), pa.int64())}
    )
    params = {"source": source, "pos": pos, "name_rule": "name up to first '.', '_' -> ' '"}
    stats = {"synsets": names.synsets, "wordnet_version": names.version}
    return write_source_list("wordnet", uri, table, params, names.inputs, stats, stores.output)
