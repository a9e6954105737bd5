"""`metaclip match`: each text's matched entries as JSON lines, against a naive oracle of
MetaCLIP's (English) and MetaCLIP 2's (worldwide) matching."""

from __future__ import annotations

import string

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from metaclip.metadata.multilingual import language_list, write_index
from metaclip_prefect.flows import cli

# MetaCLIP 2's metaclip/curation/substr_matching.py, restated naively.
_FULL_WIDTH = "，。、；：？！“”‘’（）【】《》〈〉「」『』～—"
_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
           (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF),
           (0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF), (0x0E00, 0x0E7F),
           (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF)]  # fmt: skip


def _cjk_or_similar(ch: str) -> bool:
    cp = ord(ch)
    return any(a <= cp <= b for a, b in _RANGES) or ch in string.punctuation or ch in _FULL_WIDTH


def _spacing(text: str) -> str:
    text = f" {text} "
    for p in [",", ".", ";", ":", "?", "!", "`"]:
        text = text.replace(p, f" {p} ")
    for c in ["\t", "\n", "\r"]:
        text = text.replace(c, " ")
    return text


def naive_worldwide(text: str, entries: list[str]) -> list[int]:
    spaced = _spacing(text)
    out = []
    for i, entry in enumerate(entries):
        key = entry if _cjk_or_similar(entry[0]) else f" {entry}"
        key = key if _cjk_or_similar(key[-1]) else f"{key} "
        if key in spaced:
            out.append(i)
    return out


def naive_english(text: str, entries: list[str]) -> list[int]:
    spaced = _spacing(text)
    return [i for i, e in enumerate(entries) if f" {e} " in spaced]


LISTS = {
    "en": ["cat", "black cat", "(film)", "dog", "concat"],
    "zh": ["猫", "黑色", "猫咪", "北京", "cat"],
    "fr": ["chat", "chat noir", "noir", "«"],
}
TEXTS = ["a black cat.", "concatenate", "黑色的猫咪在北京", "un chat noir (film)", "", "猫cat"]


@pytest.fixture()
def worldwide(tmp_path):
    rows = []
    for language, entries in LISTS.items():
        (tmp_path / language).mkdir()
        (tmp_path / language / "metadata.json").write_bytes(orjson.dumps(entries))
        rows.append(language_list(str(tmp_path), language, f"{language}/metadata.json"))
    write_index(str(tmp_path), rows)
    return tmp_path


def _run(*args: str) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(cli.app, ["match", *args])
    lines = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines, result.stderr


@pytest.mark.parametrize("language", ["en", "zh", "fr"])
def test_worldwide_language_given_equals_the_oracle(worldwide, tmp_path, language):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    code, lines, _ = _run(str(texts), "--metadata", str(worldwide), "--language", language)
    assert code == 0
    assert [line["text"] for line in lines] == TEXTS
    entries = LISTS[language]
    for line in lines:
        assert line["language"] == language
        assert line["entry_ids"] == naive_worldwide(line["text"], entries)
        assert line["entries"] == [entries[i] for i in line["entry_ids"]]


def test_worldwide_semantics_differ_from_english_where_they_should(worldwide, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("黑色的猫咪\n", encoding="utf-8")
    _, lines, _ = _run(str(texts), "--metadata", str(worldwide), "--language", "zh")
    assert lines[0]["entries"] == ["猫", "黑色", "猫咪"]  # CJK entries match inside a run
    zh_list = tmp_path / "zh.json"
    zh_list.write_bytes(orjson.dumps(LISTS["zh"]))
    _, lines, _ = _run(str(texts), "--metadata", str(zh_list))
    assert lines[0]["entries"] == []  # MetaCLIP 1 pads every entry: no match inside a run


def test_languages_from_lid_when_not_given(worldwide, tmp_path):
    texts = ["一只黑色的猫咪在北京的家里睡觉", "un chat noir dort sur le canapé de la maison"]
    path = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"caption": texts}), path)
    code, lines, _ = _run(str(path), "--metadata", str(worldwide / "languages.json"),
                          "--column", "caption")  # fmt: skip
    assert code == 0
    assert [line["language"] for line in lines] == ["zh", "fr"]
    for line in lines:
        assert line["entry_ids"] == naive_worldwide(line["text"], LISTS[line["language"]])
    assert lines[1]["entries"] == ["chat", "chat noir", "noir"]


def test_plain_list_uses_english_semantics(tmp_path):
    listing = tmp_path / "metadata.json"
    listing.write_bytes(orjson.dumps(LISTS["en"]))
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS), encoding="utf-8")
    code, lines, _ = _run(str(texts), "--metadata", str(listing))
    assert code == 0
    for line in lines:
        assert "language" not in line
        assert line["entry_ids"] == naive_english(line["text"], LISTS["en"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.txt"], "texts file not found"),
        (["{texts}", "--language", "xx"], "language 'xx' is not in"),
        (["{texts}", "--column", "nope"], None),
    ],
)
def test_mistakes_are_one_line_and_exit_2(worldwide, tmp_path, args, message):
    texts = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["chat"]}), texts)
    args = [a.replace("{texts}", str(texts)) for a in args]
    code, lines, err = _run(*args, "--metadata", str(worldwide))
    assert code == 2 and not lines
    assert err.startswith("error: ") and err.count("\n") == 1
    if message:
        assert message in err


def test_language_with_a_plain_list_is_refused(tmp_path):
    listing = tmp_path / "metadata.json"
    listing.write_bytes(orjson.dumps(["cat"]))
    texts = tmp_path / "t.txt"
    texts.write_text("cat\n")
    code, _, err = _run(str(texts), "--metadata", str(listing), "--language", "en")
    assert code == 2 and "worldwide metadata" in err
