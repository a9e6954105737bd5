"""WordNet source: MetaCLIP's 86,654 figure from real WordNet 3.0, offline and via NLTK's layout.

The data ships in tests/data/wordnet (see its PROVENANCE.txt), so this needs no network and no
../shared.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import nltk
import pyarrow.parquet as pq
import pytest

from metaclip.config import BuildMetadataConfig, Stores
from metaclip.errors import UserError
from metaclip.metadata.build import build_metadata_files
from metaclip.metadata.load import load_metadata
from metaclip.metadata.sources import read_entries
from metaclip.metadata.wordnet import WORDNET_FILES, synset_entry, wordnet_names, wordnet_source

ARCHIVE = Path(__file__).parent / "data" / "wordnet" / "wordnet-3.0-nltk-minimal.tar.xz"


def _settings(wordnet: str, tmp: Path) -> BuildMetadataConfig:
    return BuildMetadataConfig(str(tmp), str(tmp / "work"), wordnet=wordnet)


@pytest.fixture(scope="module")
def wordnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nltk_data")
    with tarfile.open(ARCHIVE) as tf:
        tf.extractall(root, filter="data")
    return root / "corpora" / "wordnet"


def test_synset_name_rule() -> None:
    assert synset_entry("ice_cream.n.01") == "ice cream"
    assert synset_entry("u.s..n.01") == "u"  # up to the FIRST '.', as MetaCLIP cuts it
    assert synset_entry(".22.n.01") == ""


@pytest.mark.slow
def test_wordnet_30_alone_gives_metaclips_86654_entries(tmp_path: Path) -> None:
    uri = str(tmp_path / "sources" / "wordnet.parquet")
    source = wordnet_source(_settings(str(ARCHIVE), tmp_path), Stores(), uri)
    assert source.stats["wordnet_version"] == "3.0"
    assert source.entries == 86_555  # unique synset names, the empty one included
    prov = build_metadata_files([source], str(tmp_path))
    assert prov["total"] == 86_654  # MetaCLIP's figure: 86,555 names + 100 seeds, less ''
    meta = load_metadata(str(tmp_path / "metadata.json"))
    assert len(meta) == 86_654 and meta.sha256 == prov["sha256"]
    assert meta.entries[:100] == [str(i) for i in range(100)]
    assert "ice cream" in meta.entries and "" not in meta.entries
    assert prov["sources"]["wordnet"]["dropped_empty_or_punctuation"] == 1
    assert prov["sources"]["wordnet"]["inputs"]["list"][0]["bytes"] == ARCHIVE.stat().st_size


@pytest.mark.slow
def test_directory_and_nltk_download_layouts_read_the_same(
    wordnet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_dir = wordnet_names(str(wordnet_dir), pos="r")
    # NLTK's downloader installs corpora/wordnet.zip holding a wordnet/ folder.
    data_root = tmp_path / "nltk_data"
    (data_root / "corpora").mkdir(parents=True)
    with zipfile.ZipFile(data_root / "corpora" / "wordnet.zip", "w") as zf:
        for name in WORDNET_FILES:
            zf.writestr(f"wordnet/{name}", (wordnet_dir / name).read_bytes())
    monkeypatch.setattr(nltk.data, "path", [str(data_root)])
    from_nltk = wordnet_names("nltk", pos="r")
    assert from_nltk.counts == from_dir.counts
    assert from_dir.synsets == 3_621  # adverb synsets of WordNet 3.0
    assert [d.sha256 for d in from_nltk.inputs] == [d.sha256 for d in from_dir.inputs]


@pytest.mark.slow
def test_source_list_is_ranked_by_synset_count(wordnet_dir: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "wn.parquet")
    root = str(wordnet_dir.parent.parent)  # an NLTK data root
    source = wordnet_source(_settings(root, tmp_path), Stores(), uri, pos="r")
    rows = pq.read_table(uri).to_pylist()
    assert len(rows) == source.entries and sum(r["count"] for r in rows) == 3_621
    keys = [(-r["count"], r["entry"].encode()) for r in rows]
    assert keys == sorted(keys) and rows[0]["count"] > 1
    assert read_entries(uri) == [r["entry"] for r in rows]


def test_missing_or_incomplete_wordnet_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        wordnet_names(str(tmp_path / "nope"))
    (tmp_path / "wn").mkdir()
    (tmp_path / "wn" / "lexnames").write_text("")
    (tmp_path / "wn" / "data.noun").write_text("")
    with pytest.raises(UserError):
        wordnet_names(str(tmp_path / "wn"))
    monkey_path = list(nltk.data.path)
    try:
        nltk.data.path[:] = [str(tmp_path / "empty")]
        os.environ.pop("NLTK_DATA", None)
        with pytest.raises(UserError, match="nltk.downloader wordnet"):
            wordnet_names("nltk")
    finally:
        nltk.data.path[:] = monkey_path
