"""Merging sources into metadata.json + provenance.json: order, cleaning, overlaps, extending."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest

from metaclip.errors import UserError
from metaclip.metadata.build import build_metadata_files
from metaclip.metadata.load import load_metadata
from metaclip.metadata.sources import SourceList, write_source_list
from metaclip.metadata.streams import InputDigest


def _source(tmp: Path, name: str, rows: dict[str, int], inputs: int = 1) -> SourceList:
    uri = str(tmp / "sources" / f"{name}.parquet")
    table = pa.table({"entry": list(rows), "count": pa.array(list(rows.values()), pa.int64())})
    digests = [InputDigest(f"in-{name}-{i}", i, f"{i:064x}") for i in range(inputs)]
    return write_source_list(name, uri, table, {"threshold": 1}, digests, {})


@pytest.fixture
def sources(tmp_path: Path) -> list[SourceList]:
    return [
        _source(tmp_path, "title", {"Paris": 900, "dog": 80, " Tokyo ": 75}),
        _source(tmp_path, "wordnet", {"dog": 3, "cat": 1, "7": 1, "": 1, "hot dog": 1}),
        _source(tmp_path, "unigram", {"the": 500, "dog": 200, "...": 150, "Paris": 120}, 101),
    ]


def test_order_cleaning_and_counts(tmp_path: Path, sources: list[SourceList]) -> None:
    prov = build_metadata_files(sources, str(tmp_path))
    entries = load_metadata(str(tmp_path / "metadata.json")).entries
    seeds = [str(i) for i in range(100)]
    # seeds, then wordnet (ranked), unigram, title; '' and '...' dropped, ' Tokyo ' stripped
    assert entries == [*seeds, "dog", "cat", "hot dog", "the", "Paris", "Tokyo"]
    assert prov["total"] == len(entries)
    assert prov["sha256"] == hashlib.sha256((tmp_path / "metadata.json").read_bytes()).hexdigest()
    wn, uni, title = (prov["sources"][n] for n in ("wordnet", "unigram", "title"))
    assert (
        wn["entries"],
        wn["valid_entries"],
        wn["added"],
        wn["dropped_empty_or_punctuation"],
    ) == (5, 4, 3, 1)
    assert (uni["valid_entries"], uni["added"], uni["dropped_empty_or_punctuation"]) == (3, 2, 1)
    assert (title["valid_entries"], title["added"]) == (3, 1)
    assert prov["overlaps"]["wordnet"] == {"seeds": 1, "unigram": 1, "title": 1}
    assert prov["overlaps"]["unigram"]["title"] == 2  # dog, Paris
    assert [b["first_id"] for b in prov["blocks"]] == [0, 100, 103, 105]
    assert "list" in wn["inputs"] and "sha256sums" in uni["inputs"]
    sums = (tmp_path / uni["inputs"]["sha256sums"]).read_text().splitlines()
    assert len(sums) == 101 and sums[0].endswith("  in-unigram-0")


def test_build_is_deterministic(tmp_path: Path, sources: list[SourceList]) -> None:
    build_metadata_files(sources, str(tmp_path / "a"))
    build_metadata_files(list(reversed(sources)), str(tmp_path / "b"))
    for name in ("metadata.json", "provenance.json"):
        a, b = (tmp_path / d / name for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes()


def test_extending_published_metadata_keeps_its_ids(
    tmp_path: Path, sources: list[SourceList]
) -> None:
    published = ["0", "dog", "Zürich", "dog", "!"]  # as is: even duplicates and punctuation
    base = tmp_path / "published.json"
    base.write_text(json.dumps(published))  # json.dump's ASCII escapes, like MetaCLIP's file
    extra = tmp_path / "mine.txt"
    extra.write_text("  gizmo \n?\ncat\n")
    prov = build_metadata_files(sources, str(tmp_path / "out"), base=str(base), extra=[str(extra)])
    entries = load_metadata(str(tmp_path / "out" / "metadata.json")).entries
    assert entries[:5] == published
    assert entries[5:104] == [str(i) for i in range(1, 100)]
    assert entries[104:] == ["cat", "hot dog", "the", "Paris", "Tokyo", "gizmo"]
    assert prov["base"]["entries"] == 5
    assert prov["sources"]["extra-1"]["added"] == 1
    assert prov["sources"]["extra-1"]["dropped_empty_or_punctuation"] == 1


def test_max_entries_truncates_the_last_sources(tmp_path: Path, sources: list[SourceList]) -> None:
    prov = build_metadata_files(sources, str(tmp_path), max_entries=104)
    entries = load_metadata(str(tmp_path / "metadata.json")).entries
    assert len(entries) == 104 and entries[-1] == "the"
    assert prov["sources"]["unigram"]["truncated"] == 1
    assert prov["sources"]["title"]["truncated"] == 2  # Paris (cut from unigram too), Tokyo


def test_missing_source_list_is_a_user_error(tmp_path: Path, sources: list[SourceList]) -> None:
    Path(sources[0].uri).unlink()
    with pytest.raises(UserError, match="--refresh"):
        build_metadata_files(sources, str(tmp_path / "out"))


def test_source_list_knows_when_it_was_overwritten(tmp_path: Path) -> None:
    source = _source(tmp_path, "title", {"Paris": 900})
    assert source.intact()
    _source(tmp_path, "title", {"Paris": 900, "Rome": 800})  # e.g. a run with another threshold
    assert not source.intact()
    Path(source.uri).unlink()
    assert not source.intact()
