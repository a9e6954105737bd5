"""Per-record extraction limits (extraction.limits) as a run parameter: checked into the run's
configuration before any work (one line, a UserError), carried by RunSettings to the extractor,
part of the extraction tasks' cache keys, of the run key and work record, shown in the summary
and the data card. The CLI and the hostile-value table through the API and the CLI are in
tests/test_safety.py (the `limits-*` cases)."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip.config import CurateConfig, check_limits
from metaclip.curation import batch, completion
from metaclip.curation.settings import RunSettings
from metaclip.errors import UserError
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits
from metaclip.reporting import datacard
from metaclip.reporting.summary import limits_line

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "metaclip" / "demo_data"
WAT = ROOT / "tests" / "data" / "wat" / "fixture-0000.warc.wat.gz"


def curate_config(tmp_path: Path, **params: Any) -> CurateConfig:
    return CurateConfig.from_params(
        inputs=[str(WAT)], metadata=str(DEMO / "metadata.json"), output=str(tmp_path / "out"),
        **params,
    )  # fmt: skip


def settings(tmp_path: Path, limits: ExtractLimits = DEFAULT_LIMITS) -> RunSettings:
    return RunSettings(
        inputs=(), metadata=str(DEMO / "metadata.json"),
        output=str(tmp_path / "out"), metadata_uri=str(DEMO / "metadata.json"),
        metadata_sha256="ab" * 32, n_buckets=2, input_format="auto", languages=None, t=5.0,
        seed=0, one_text_per_image=True, exclude_store=None, store_tag="test", batch_size=1,
        reduce_fanout=16, limits=limits,
    )  # fmt: skip


# --------------------------------------------------------------------------- the configuration


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"max_text_chars": 2000}, {"max_text_chars": 2000}),
        ('{"max_url_chars": 512, "max_images_per_page": 50}',
         {"max_url_chars": 512, "max_images_per_page": 50}),  # a deployment's {{ $VAR }}
    ],
)  # fmt: skip
def test_the_non_default_limits_are_enough(tmp_path, given, expected):
    config = curate_config(tmp_path, limits=given)
    assert config.limits == ExtractLimits(**expected)
    assert config.limits.to_dict() == {**DEFAULT_LIMITS.to_dict(), **expected}


BAD_LIMITS = [
    ({"max_caption_chars": 10}, "limits: unknown limit(s) max_caption_chars; known: "),
    ({"max_text_chars": 0}, "limits.max_text_chars must be a positive integer, got 0"),
    ({"max_url_chars": -5}, "limits.max_url_chars must be a positive integer, got -5"),
    ({"max_text_chars": 12.5}, "limits.max_text_chars must be a positive integer, got 12.5"),
    ({"max_text_chars": 100.0}, "limits.max_text_chars must be a positive integer, got 100.0"),
    ({"max_text_chars": "100"}, "limits.max_text_chars must be a positive integer, got '100'"),
    ({"max_header_bytes": True}, "limits.max_header_bytes must be a positive integer, got True"),
    ({"max_text_chars": None}, "limits.max_text_chars must be a positive integer, got None"),
    ({"max_record_bytes": 2048, "max_inflate_bytes": 1024},
     "limits.max_inflate_bytes must be at least limits.max_record_bytes"),
    ({"max_inflate_bytes": 1024}, "limits.max_inflate_bytes must be at least"),
    ({"max_text_chars": 2**64}, "limits.max_text_chars: must be between 1 and"),
    ({1: 2}, "limits: keys must be limit names"),
    ([["max_text_chars", 2]], "limits: must be an object"),
    ("2000", "limits: must be an object"),
    ("{max_text_chars: 2}", "limits: is not a JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "message"), BAD_LIMITS)
def test_a_bad_limit_is_one_line_naming_it(tmp_path, given, message):
    with pytest.raises(UserError) as caught:
        curate_config(tmp_path, limits=given)
    text = str(caught.value)
    assert message in text and "\n" not in text, text
    assert not (tmp_path / "out").exists()


def test_the_monthly_flow_takes_limits_in_curate_options(tmp_path):
    from metaclip_prefect.flows.monthly import CURATE_OPTIONS, _config, curate_new_crawl

    assert "limits" in CURATE_OPTIONS
    defaults = {
        name: p.default for name, p in inspect.signature(curate_new_crawl.fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }  # fmt: skip
    base = {**defaults, "output_root": str(tmp_path / "root"),
            "metadata": str(DEMO / "metadata.json"), "data_root": str(tmp_path)}  # fmt: skip
    config = _config({**base, "curate_options": {"limits": {"max_text_chars": 2000}}})
    assert config.curate_config("CC-MAIN-2024-22").limits.max_text_chars == 2000
    with pytest.raises(UserError, match=r"^limits\.max_text_chars must be a positive"):
        _config({**base, "curate_options": {"limits": {"max_text_chars": 0}}})
    assert not (tmp_path / "root").exists()


def test_limits_keep_their_type_through_the_check():
    limits = ExtractLimits(max_text_chars=10)
    assert check_limits("limits", limits) is limits
    assert check_limits("limits", "") is DEFAULT_LIMITS


# --------------------------------------------------------------------------- keys and records


def test_limits_are_in_the_record_and_the_run_key(tmp_path):
    default, short = settings(tmp_path), settings(tmp_path, ExtractLimits(max_text_chars=20))
    assert default.record()["limits"] == DEFAULT_LIMITS.to_dict()
    assert short.record()["limits"] == {**DEFAULT_LIMITS.to_dict(), "max_text_chars": 20}
    json.dumps(short.record())  # the record is written as JSON
    files = [str(WAT)]
    assert completion.run_key(files, default.record()) != completion.run_key(files, short.record())
    assert completion.run_key(files, short.record()) == completion.run_key(
        files, settings(tmp_path, ExtractLimits(max_text_chars=20)).record()
    )  # fmt: skip


def test_limits_change_the_extract_task_cache_key(tmp_path, monkeypatch):
    """The same batch with other limits is extracted again, not taken from the cache; the
    settings' limits are what the batch's files are read with."""
    from metaclip_prefect.tasks.curate import extract_and_match

    calls: list[ExtractLimits] = []

    def fake_extract_files(files: Any, fmt: str, limits: ExtractLimits, **options: Any):
        calls.append(limits)
        return batch.concat_pairs([]), batch.ExtractStats()

    monkeypatch.setattr(batch, "extract_files", fake_extract_files)
    monkeypatch.setattr(batch, "matcher_for", lambda *a, **k: batch.Matcher.build(["cat"]))
    short = ExtractLimits(max_text_chars=20)

    def run(limits: ExtractLimits) -> str:
        result = extract_and_match.fn(
            settings(tmp_path, limits), batch_id="b0", files=[str(WAT)]
        )
        return "hit" if not isinstance(result, dict) else result["cache"]

    assert run(DEFAULT_LIMITS) == "computed" and calls == [DEFAULT_LIMITS]
    assert run(DEFAULT_LIMITS) == "hit" and len(calls) == 1
    assert run(short) == "computed" and calls[-1] == short
    assert run(replace(short, max_url_chars=100)) == "computed" and len(calls) == 3
    assert run(short) == "hit" and len(calls) == 3
    tasks = tmp_path / "out" / "_work" / "tasks" / "extract-and-match"
    assert len(list(tasks.glob("*.json"))) == 3


def test_extract_files_gives_the_limits_to_every_extractor(monkeypatch):
    seen: list[tuple[str, Any]] = []

    def extractor(kind: str):
        def extract(uri: str, limits: ExtractLimits = DEFAULT_LIMITS, **options: Any):
            seen.append((kind, limits))
            assert not options  # the limits are not taken for a storage option
            table, stats = batch.concat_pairs([]), batch.ExtractStats()
            return table, stats

        return extract

    monkeypatch.setitem(batch.EXTRACTORS, "wat", extractor("wat"))
    monkeypatch.setitem(batch.EXTRACTORS, "warc", extractor("warc"))
    limits = ExtractLimits(max_images_per_page=7)
    batch.extract_files(["a.warc.wat.gz", "b.warc.gz"], "auto", limits)
    assert seen == [("wat", limits), ("warc", limits)]


def test_the_extractors_take_limits():
    """The contract extract_files relies on (metaclip.extraction.wat, metaclip.extraction.warc)."""
    for extract in (batch.extract_wat_file, batch.extract_warc_file):
        parameter = inspect.signature(extract).parameters.get("limits")
        assert parameter is not None, extract.__module__
        assert parameter.default == DEFAULT_LIMITS


# --------------------------------------------------------------------------- what a reader sees


def test_the_card_shows_the_limits_in_one_line():
    limits = {**DEFAULT_LIMITS.to_dict(), "max_text_chars": 2000, "max_url_chars": 512}
    run = datacard.RunData(output="out", counts=np.array([5, 1, 0], dtype=np.uint64),
                           entries=["a", "b", "c"],
                           summary={"t": 2.0, "seed": 0, "limits": limits})  # fmt: skip
    rows = dict((r[0], r[1]) for r in datacard.overview_rows(datacard.build_datacard(run)))
    line = rows["extraction limits (what was cut or skipped)"]
    assert line == ("max_text_chars 2,000 (default 4,096); max_url_chars 512 (default 2,048); "
                    "the others default")  # fmt: skip
    assert limits_line(DEFAULT_LIMITS.to_dict()) == "all default"
    assert "extraction limits" in datacard.render_markdown(datacard.build_datacard(run))


# --------------------------------------------------------------------------- a real run


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_run_extracts_within_its_limits_and_other_limits_extract_again(tmp_path):
    """The demo curation with short texts: no curated caption is longer, the cuts are counted,
    and the same run with other limits extracts again (no reuse of the batch results, no
    'nothing to do' from the run key)."""
    from metaclip_prefect.flows.curate import curate

    output = tmp_path / "out"

    def run(limits: dict[str, int]) -> dict[str, Any]:
        state = curate(
            inputs=[str(DEMO / "demo-0000.warc.wat.gz")], metadata=str(DEMO / "metadata.json"),
            output=str(output), t=10**9, batch_size=4, n_buckets=2, n_workers=1,
            dashboard_address=":0", languages=None, limits=limits, return_state=True,
        )  # fmt: skip
        assert state.is_completed(), state.message
        return state.result()

    def longest_caption() -> int:
        captions = pq.read_table(output / "curated", columns=["caption"])["caption"]
        assert len(captions) > 0
        return max(len(c) for c in captions.to_pylist())

    first = run({"max_text_chars": 20})
    assert longest_caption() <= 20
    assert first["skipped"].get("text_truncated", 0) > 0
    assert first["limits"] == {**DEFAULT_LIMITS.to_dict(), "max_text_chars": 20}
    record = json.loads((output / "_work" / "run.json").read_text())
    assert record["limits"]["max_text_chars"] == 20

    second = run({"max_text_chars": 40})
    assert 20 < longest_caption() <= 40  # extracted again, within the new limit
    assert second["limits"]["max_text_chars"] == 40
    tasks = output / "_work" / "tasks" / "extract-and-match"
    assert len(list(tasks.glob("*.json"))) == 2  # one stored result per limits, none reused
