"""WordNet lemmas in other languages: the Open Multilingual Wordnet's tab files, read as
MetaCLIP 2's build_multilingual_wordnet.py reads them through NLTK, without downloading anything.

A tab file `wn-data-<omw>.tab` holds a '#' comment header, then lines
`offset-pos<TAB><omw>:lemma<TAB>lemma` (other labels, such as `<omw>:def` or `<omw>:exe`, and
short lines are skipped; a label without a language prefix counts). As NLTK's reader does
(custom_lemmas), the lemma is the last field, stripped, and one synset lists a lemma once; as the
reference then does, '_' becomes a space and '+' is removed. Entries are the distinct lemmas in
code-point order (the reference's sorted set), each with the number of synsets listing it.

The input (`wordnet`) is a folder, an archive (.zip, .tar, .tar.gz, ...) of one, local or by
URI, or "nltk" (NLTK's downloaded `corpora/omw-1.4`, looked up on nltk.data.path). In it, the
file for a language is the first `wn-data-<omw>.tab` in sorted path order at most three folders
down (OMW 1.4's layout is `<project>/wn-data-<omw>.tab`; NLTK, like us, reads the first when two
projects hold one language), skipping the `cldr` and `wikt` folders of the extended OMW.

One difference from the reference: NLTK drops the few lemmas whose synset offset is not in
English WordNet 3.0; we do not read English WordNet here, so they are kept.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import HashedInput, InputDigest

if TYPE_CHECKING:  # metaclip.config imports this package's constants
    from metaclip.config import BuildMetadataConfig, Stores

_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".zip")
_SKIPPED_FOLDERS = {"cldr", "wikt"}
_MAX_DEPTH = 3


@dataclass(frozen=True)
class OmwLemmas:
    synsets: dict[str, int]  # entry -> number of synsets listing it
    lines: int  # lemma lines read
    inputs: list[InputDigest]


def tab_name(omw: str) -> str:
    return f"wn-data-{omw}.tab"


def parse_tab(lines: Iterable[str], omw: str) -> OmwLemmas:
    """The lemmas of one language's tab file lines (module docstring)."""
    offsets: defaultdict[str, set[str]] = defaultdict(set)
    read = 0
    for line in lines:
        if line.startswith("#"):
            continue
        fields = line.strip().split("\t")
        if len(fields) < 3:
            continue
        label = fields[1].split(":")
        if label[-1] != "lemma" or (len(label) > 1 and label[0] != omw):
            continue
        read += 1
        offsets[fields[-1].strip().replace("_", " ").replace("+", "")].add(fields[0])
    return OmwLemmas({k: len(v) for k, v in sorted(offsets.items())}, read, [])


def _pick(paths: Iterable[str], omw: str) -> str | None:
    """The first `wn-data-<omw>.tab` in sorted order, at most three folders down."""
    name = tab_name(omw)
    for path in sorted(paths):
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if parts[-1] == name and len(parts) <= _MAX_DEPTH + 1 and not (
            _SKIPPED_FOLDERS & set(parts[:-1])
        ):
            return path
    return None


def _local_folder_file(folder: str, omw: str) -> str | None:
    found = []
    for root, _dirs, files in os.walk(folder):
        if tab_name(omw) in files:
            found.append(os.path.relpath(os.path.join(root, tab_name(omw)), folder))
    picked = _pick((p.replace(os.sep, "/") for p in found), omw)
    return os.path.join(folder, picked) if picked else None


def _nltk_omw() -> str:
    import nltk

    for resource in ("corpora/omw-1.4", "corpora/omw-1.4.zip"):
        with suppress(LookupError):
            return str(nltk.data.find(resource))
    raise UserError(
        "NLTK's Open Multilingual Wordnet is not installed: run `python -m nltk.downloader "
        "omw-1.4` or pass an OMW folder or archive"
    )


def _is_archive(uri: str) -> bool:
    return uri.lower().endswith(_ARCHIVE_SUFFIXES)


def find_tab(
    source: str, omw: str, opts: dict[str, Any] | None = None
) -> tuple[str, str | None] | None:
    """(file to read, member inside it when the file is an archive) for a language, None when
    the source has no tab file for it; UserError when the source itself is missing."""
    opts = opts or {}
    where = _nltk_omw() if source == "nltk" else source
    if _is_archive(where):
        if not storage.exists(where, **opts):
            raise UserError(f"WordNet input not found: {source}")
        if storage.is_local(where) and _pick(_members(where), omw) is None:
            return None
        return where, tab_name(omw)  # a remote archive's member is found when it is read
    if storage.is_local(where):
        folder = where.removeprefix("file://")
        if not os.path.isdir(folder):
            raise UserError(f"WordNet folder not found: {source}")
        found = _local_folder_file(folder, omw)
    else:
        fs, path = storage.filesystem(where, **opts)
        if not fs.isdir(path):
            raise UserError(f"WordNet folder not found: {source}")
        rel = [p[len(path.rstrip("/")) + 1 :] for p in fs.find(path)]
        picked = _pick(rel, omw)
        found = storage.join(where, picked) if picked else None
    return (found, None) if found else None


def locate(source: str, omw: str, opts: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """find_tab, with UserError when the source has no tab file for the language."""
    found = find_tab(source, omw, opts)
    if found is None:
        raise UserError(f"no {tab_name(omw)} in {source}")
    return found


def has_language(source: str, omw: str, opts: dict[str, Any] | None = None) -> bool:
    """Whether the source holds a tab file for `omw` (a remote archive: assumed so)."""
    return find_tab(source, omw, opts) is not None


def _members(local_archive: str) -> list[str]:
    path = local_archive.removeprefix("file://")
    try:
        if path.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                return zf.namelist()
        with tarfile.open(path) as tf:
            return tf.getnames()
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"cannot unpack WordNet archive {local_archive}: {exc}") from exc


def _archive_member(archive: str, uri: str, omw: str) -> bytes:
    if uri.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            name = _pick(zf.namelist(), omw)
            if name is None:
                raise UserError(f"no {tab_name(omw)} in {uri}")
            return zf.read(name)
    with tarfile.open(archive) as tf:
        members = {m.name: m for m in tf.getmembers() if m.isfile()}
        name = _pick(members, omw)
        if name is None:
            raise UserError(f"no {tab_name(omw)} in {uri}")
        data = tf.extractfile(members[name])
        assert data is not None
        return data.read()


@contextmanager
def _local_copy(uri: str, opts: dict[str, Any]) -> Iterator[tuple[str, InputDigest]]:
    """A local path of an archive (copied when remote) and the digest of its stored bytes."""
    source = HashedInput(uri, opts)
    with tempfile.TemporaryDirectory(prefix="metaclip-omw-") as tmp:
        local = os.path.join(tmp, "archive")
        # The copy may be decompressed by suffix (.tar.gz -> .tar): tarfile reads either.
        with source.open() as stream, open(local, "wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
        assert source.digest is not None
        yield local, source.digest


def _text(data: bytes) -> IO[str]:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")


def omw_lemmas(source: str, omw: str, opts: dict[str, Any] | None = None) -> OmwLemmas:
    """The lemmas of the OMW language `omw` in `source` (module docstring)."""
    opts = opts or {}
    uri, member = locate(source, omw, opts)
    if member is None:
        reader = HashedInput(uri, opts)
        with reader.open() as stream:
            lemmas = parse_tab(_text(stream.read()), omw)
        assert reader.digest is not None
        return OmwLemmas(lemmas.synsets, lemmas.lines, [reader.digest])
    try:
        with _local_copy(uri, opts) as (local, digest):
            data = _archive_member(local, uri, omw)
    except (tarfile.TarError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot unpack WordNet archive {uri}: {exc}") from exc
    lemmas = parse_tab(_text(data), omw)
    return OmwLemmas(lemmas.synsets, lemmas.lines, [digest])


def omw_key_files(source: str, omw: str, opts: dict[str, Any] | None = None) -> list[str]:
    """The file whose identity decides a language's OMW source (for cache keys); none when
    the source has no tab file for the language."""
    found = find_tab(source, omw, opts)
    return [found[0]] if found else []


# The settings that change an OMW source (with its files' identities: omw_key_files).
KEYED_BY = ("wordnet",)


def omw_source(settings: BuildMetadataConfig, stores: Stores, omw: str, uri: str) -> SourceList:
    """Write the WordNet source list (entry, synsets) of the OMW language `omw` in
    `settings.wordnet` to `uri`, in code-point order (the reference's order)."""
    if settings.wordnet is None:
        raise UserError("no WordNet source given")
    lemmas = omw_lemmas(settings.wordnet, omw, stores.inputs)
    table = pa.table({
        "entry": pa.array(list(lemmas.synsets), pa.string()),
        "count": pa.array(list(lemmas.synsets.values()), pa.int64()),
    })  # fmt: skip
    params = {"source": settings.wordnet, "omw": omw,
              "name_rule": "lemma stripped, '_' -> ' ', '+' removed"}  # fmt: skip
    stats = {"lemma_lines": lemmas.lines, "synset_lemmas": sum(lemmas.synsets.values())}
    return write_source_list(
        "wordnet", uri, table, params, lemmas.inputs, stats, stores.output, ranked=True
    )
