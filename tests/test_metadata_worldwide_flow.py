"""The worldwide build through the build-metadata flow on a local Dask cluster (four languages,
three written without spaces, and English copied), its rerun from the cache, and the CLI.
The lists equal the plain-call build of test_metadata_worldwide.py, itself checked against the
reference's scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from metaclip.metadata import multilingual
from metaclip_prefect.flows.build_metadata import build_metadata
from metaclip_prefect.flows.cli_metadata import register
from tests.support.task_runs import task_states
from tests.test_metadata_worldwide import OMW, PAGEVIEWS, SMALL, WIKI, build_plain, config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]
LANGUAGES = ["fr", "zh", "ja", "th"]
CACHED_TASKS_ONLY = {"merge-language", "copy-english-metadata", "write-language-index"}


def _run(output: Path, english: Path):  # type: ignore[no-untyped-def]
    return build_metadata(
        str(output), languages=",".join([*LANGUAGES, "en"]), wiki_text_root=str(WIKI),
        wordnet=str(OMW), pageviews=[str(p) for p in PAGEVIEWS], english_metadata=str(english),
        partitions=2, max_items=1000, n_workers=1, dashboard_address=":0", return_state=True,
        **SMALL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    for module in ("jieba", "fugashi", "pythainlp"):
        pytest.importorskip(module)
    tmp = tmp_path_factory.mktemp("worldwide-flow")
    english = tmp / "metaclip1.json"
    english.write_text(json.dumps(["0", "1", "ice cream", "hot dog"]))
    state = _run(tmp / "out", english)
    return {"tmp": tmp, "state": state, "result": state.result(), "english": english}


def test_the_flow_writes_every_language_and_the_index(built: dict) -> None:
    out = built["tmp"] / "out"
    index = multilingual.load_index(str(out))
    assert index.languages == sorted([*LANGUAGES, "en"])
    assert built["result"]["index_sha256"] == index.sha256
    plain = build_plain(config(built["tmp"] / "plain", LANGUAGES, **SMALL))
    for language in LANGUAGES:
        meta = multilingual.load_language(index, language)
        assert meta.sha256 == plain[language]["sha256"], language
        prov = json.loads((out / language / "provenance.json").read_text())
        assert prov["sha256"] == meta.sha256 and prov["language"] == language
    english = multilingual.load_language(index, "en")
    assert english.entries == json.loads(built["english"].read_text())
    states = task_states(built["state"].state_details.flow_run_id)
    assert {"omw-source", "count-segmented-batch", "count-text-batch", "top-unigram-source",
            "count-wiki-titles", "merge-language"} <= set(states)  # fmt: skip
    assert (out / "work" / "segmenters" / "jieba.cache").exists()  # not the system's /tmp


def test_a_rerun_takes_every_source_from_the_cache(built: dict) -> None:
    state = _run(built["tmp"] / "out", built["english"])
    assert state.result()["index_sha256"] == built["result"]["index_sha256"]
    states = task_states(state.state_details.flow_run_id)
    uncached = {name for name, names in states.items() if set(names) != {"Cached"}}
    assert uncached == CACHED_TASKS_ONLY


def test_cli_builds_one_language_and_refuses_unknown_ones(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["build-metadata", "-o", str(tmp_path), "--language", "xx",
                                      "--wiki-text-root", str(WIKI)])  # fmt: skip
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown language code 'xx'" in result.stderr
    result = CliRunner().invoke(app, [
        "build-metadata", "-o", str(tmp_path / "fr"), "--language", "fr",
        "--wiki-text", str(WIKI / "fr"), "--wordnet", str(OMW), "--workers", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert multilingual.load_index(str(tmp_path / "fr")).languages == ["fr"]
    assert "fr" in result.stdout and "index sha256" in result.stdout
