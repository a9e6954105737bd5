"""The build-metadata flow on a real local Dask cluster, its cache on rerun, and the CLI."""

from __future__ import annotations

import gzip
import shutil
import tarfile
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import typer
from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from typer.testing import CliRunner

from metaclip.errors import UserError
from metaclip.metadata.load import load_metadata
from metaclip.metadata.text import segments
from metaclip_prefect.flows.build_metadata import build_metadata
from metaclip_prefect.flows.cli_metadata import register
from tests.support.task_runs import task_states

ARCHIVE = Path(__file__).parent / "data" / "wordnet" / "wordnet-3.0-nltk-minimal.tar.xz"


# prefect_server: tests/conftest.py
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("flow-inputs")
    with tarfile.open(ARCHIVE) as tf:
        verbs = tf.extractfile("corpora/wordnet/data.verb").read().decode()  # type: ignore[union-attr]
    glosses = [ln.split(" | ", 1)[1].strip() for ln in verbs.splitlines() if " | " in ln][:4000]
    (tmp / "text").mkdir()
    (tmp / "text" / "wiki_00").write_text("".join(f"{g}\n" for g in glosses[:2000]))
    docs = [{"id": str(i), "title": "", "text": g} for i, g in enumerate(glosses[2000:])]
    (tmp / "text" / "wiki_01").write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    for hour, lines in enumerate([b"en Main_Page 300 0\nen Hot_dog 60 0\n", b"en Hot_dog 55 0\n"]):
        with gzip.open(tmp / f"pageviews-20240101-0{hour}0000.gz", "wb") as fh:
            fh.write(lines)
    (tmp / "extra.txt").write_text("my new entry\n")
    finder = BigramCollocationFinder.from_documents([s for g in glosses for s in segments(g)])
    return {"tmp": tmp, "finder": finder}


def _run(output: Path, inputs: dict, **kwargs: object):  # type: ignore[no-untyped-def]
    tmp = inputs["tmp"]
    return build_metadata(
        str(output),
        wordnet=str(ARCHIVE),
        wiki_text=[str(tmp / "text")],
        pageviews=[str(tmp / "pageviews-*.gz")],
        extra=[str(tmp / "extra.txt")],
        min_unigram_count=20,
        min_bigram_pmi=12.0,
        partitions=3,
        max_items=5000,
        n_workers=1,
        dashboard_address=":0",
        return_state=True,
        **kwargs,
    )


def _on_the_run(flow_run_id: object) -> tuple[list[tuple[str, str | None]], int]:
    """The run's artifacts (type, key) and how many flow runs it started (subflows)."""
    run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    children = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        artifacts = [(a.type, a.key) for a in client.read_artifacts(flow_run_filter=run)]
        subflows = len(client.read_flow_runs(flow_run_filter=children))
    return artifacts, subflows


@pytest.fixture(scope="module")
def built(prefect_server: None, inputs: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("flow-out")
    state = _run(output, inputs)
    return {"output": output, "state": state, "prov": state.result()}


def test_flow_builds_every_source(built: dict, inputs: dict) -> None:
    prov, output = built["prov"], built["output"]
    meta = load_metadata(str(output / "metadata.json"))
    assert len(meta) == prov["total"] and meta.sha256 == prov["sha256"]
    sources = prov["sources"]
    assert sources["wordnet"]["added"] == 86_554
    finder = inputs["finder"]
    expected = {
        f"{a} {b}" for (a, b), s in finder.score_ngrams(BigramAssocMeasures.pmi) if s >= 12.0
    }
    bigrams = pq.read_table(output / "sources" / "bigram.parquet").column("entry").to_pylist()
    assert set(bigrams) == expected
    unigrams = pq.read_table(output / "sources" / "unigram.parquet").to_pylist()
    assert {r["entry"]: r["count"] for r in unigrams} == {
        w: c for w, c in finder.word_fd.items() if c >= 20
    }
    titles = pq.read_table(output / "sources" / "title.parquet").column("entry").to_pylist()
    assert titles == ["Main Page", "Hot dog"]
    assert meta.entries[-1] == "my new entry"
    assert sources["unigram"]["inputs"]["files"] == 2


def test_tasks_and_artifacts_sit_on_the_run_the_user_started(built: dict) -> None:
    run_id = built["state"].state_details.flow_run_id
    states = task_states(run_id)
    assert {"wordnet-source", "count-text-batch", "merge-metadata"} <= set(states)
    artifacts, subflows = _on_the_run(run_id)
    assert subflows == 0
    keys = [key for kind, key in artifacts if kind == "markdown"]
    assert len(keys) == 1 and keys[0].startswith("metadata-")
    assert sum(kind == "progress" for kind, _ in artifacts) >= 5  # one per stage


def test_rerun_takes_every_task_from_the_cache(built: dict, inputs: dict) -> None:
    state = _run(built["output"], inputs)
    assert state.result()["sha256"] == built["prov"]["sha256"]
    states = task_states(state.state_details.flow_run_id)
    uncached = {name for name, names in states.items() if set(names) != {"Cached"}}
    assert uncached == {"merge-metadata"}
    assert len(states["count-text-batch"]) == 1 and len(states["score-bigrams"]) == 3


def test_deleted_outputs_are_recomputed(built: dict, inputs: dict) -> None:
    output = built["output"]
    shutil.rmtree(output / "work")
    (output / "sources" / "bigram.parquet").unlink()
    state = _run(output, inputs)
    assert state.result()["sha256"] == built["prov"]["sha256"]
    assert (output / "sources" / "bigram.parquet").exists()


def test_cli_reports_user_errors_in_one_line(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["build-metadata", "-o", str(tmp_path), "--wiki-text", str(tmp_path / "missing")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "input not found" in result.stderr
    result = CliRunner().invoke(
        app, ["build-metadata", "-o", str(tmp_path), "--bigram-counts", str(ARCHIVE)]
    )
    assert result.exit_code == 2 and "needs unigram counts" in result.stderr


def test_cli_inspects_a_built_folder(built: dict) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["inspect-metadata", str(built["output"]), "--entry", "Hot dog", "--entry", "nope"]
    )
    assert result.exit_code == 0, result.output
    assert f"{built['prov']['total']:,} entries" in result.stdout
    assert "'Hot dog': id " in result.stdout and "(from title)" in result.stdout
    assert "'nope': absent; in no source list" in result.stdout


# --- the configuration is checked in the flow, before any work ------------------------------

# (parameters, the parameter the one-line message names); {tmp} is the test's folder, where
# `file` is an existing file. Every set is valid but for the one mistake.
HOSTILE = [
    ({"partitions": 0}, "partitions"),
    ({"partitions": 5000}, "partitions"),
    ({"min_unigram_count": 0}, "min_unigram_count"),
    ({"min_bigram_pmi": float("nan")}, "min_bigram_pmi"),
    ({"min_hourly_views": -3}, "min_hourly_views"),
    ({"batch_mb": 0}, "batch_mb"),
    ({"max_items": 10}, "max_items"),
    ({"max_entries": 0}, "max_entries"),
    ({"wiki_text": [""]}, "wiki_text"),
    ({"output": ""}, "output"),
    ({"output": "{tmp}/file"}, "output"),
    ({"output": "/"}, "output"),
    ({"work_dir": "{tmp}/elsewhere"}, "work_dir"),
    ({"output_options": {"client_kwargs": {"aws_secret_access_key": "x"}}}, "output_options"),
    ({"input_options": '{"token": "abc"}'}, "input_options"),
    ({"input_options": "not json"}, "input_options"),
    ({"credentials": {"metadata": "my-block"}}, "credentials"),
    ({"text_format": "xml"}, "text_format"),
    ({"count_layout": "middle"}, "count_layout"),
    ({"skip": ["wordnet", "trigram"]}, "skip"),
    ({"pageview_domains": ["en m"]}, "pageview_domains"),
    ({"bigram_counts": ["{tmp}/file"]}, "bigram_counts"),
]


# Values of the wrong type (the CLI's own parsing refuses these; the Python API and deployments
# reach the flow's configuration with them).
HOSTILE_TYPES = [
    ({"partitions": "many"}, "partitions"),
    ({"partitions": 2.5}, "partitions"),
    ({"wiki_text": "one/file/not/a/list"}, "wiki_text"),
    ({"refresh": "yes"}, "refresh"),
    ({"min_bigram_pmi": "high"}, "min_bigram_pmi"),
    ({"skip": "title"}, "skip"),
]


def _hostile(tmp_path: Path, overrides: dict) -> dict:
    (tmp_path / "file").write_text("not a folder\n")
    params: dict = {"output": str(tmp_path / "out"), "wordnet": str(ARCHIVE)}
    for key, value in overrides.items():
        if isinstance(value, str):
            value = value.replace("{tmp}", str(tmp_path))
        elif isinstance(value, list):
            value = [v.replace("{tmp}", str(tmp_path)) for v in value]
        params[key] = value
    return params


def _nothing_written(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "not a folder\n"


@pytest.mark.parametrize(("overrides", "parameter"), HOSTILE + HOSTILE_TYPES)
def test_hostile_parameters_fail_before_any_work(
    tmp_path: Path, overrides: dict, parameter: str
) -> None:
    state = build_metadata(**_hostile(tmp_path, overrides), return_state=True)
    assert state.is_failed()
    assert "\n" not in state.message and state.message.startswith(f"{parameter}:"), state.message
    assert isinstance(state.result(raise_on_failure=False), UserError)
    _nothing_written(tmp_path)


def _cli_args(params: dict) -> list[str]:
    args = []
    for key, value in params.items():
        flag = "--" + {"pageview_domains": "pageview-domain"}.get(key, key.replace("_", "-"))
        if isinstance(value, list):
            args += [a for v in value for a in (flag, v)]
        elif isinstance(value, dict):
            if key == "credentials":
                args += [a for k, v in value.items() for a in (flag, f"{k}={v}")]
            else:
                args += [flag, orjson.dumps(value).decode()]
        else:
            args += [flag, str(value)]
    return args


@pytest.mark.parametrize(("overrides", "parameter"), HOSTILE)
def test_hostile_parameters_exit_2_in_one_line(
    tmp_path: Path, overrides: dict, parameter: str
) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["build-metadata", *_cli_args(_hostile(tmp_path, overrides))])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    named = (f"error: {parameter}:", f"error: --{parameter.replace('_', '-')}:")
    assert lines[0].startswith(named), result.stderr  # the CLI's own JSON check says --option
    assert "Traceback" not in result.output
    _nothing_written(tmp_path)


def test_a_second_writer_of_an_output_is_refused(tmp_path: Path) -> None:
    from metaclip.io import lease
    from metaclip.io.paths import lock_uri

    extra = tmp_path / "extra.txt"
    extra.write_text("entry\n")
    output = tmp_path / "out"
    with lease.held(lock_uri(str(output)), "another-run"):
        state = build_metadata(str(output), extra=[str(extra)], return_state=True)
    assert state.is_failed() and "is being written by another-run" in state.message
    assert not (output / "metadata.json").exists()


def test_credentials_come_from_secret_blocks_and_stay_out_of_the_run(tmp_path: Path) -> None:
    """Secret blocks are merged into each location's options where files are opened; the
    flow run's parameters hold only the block names."""
    from prefect.blocks.system import Secret

    Secret(value={"auto_mkdir": True}).save("metadata-test-out", overwrite=True)
    Secret(value={"skip_instance_cache": True}).save("metadata-test-in", overwrite=True)
    extra = tmp_path / "extra.txt"
    extra.write_text("my entry\n")
    state = build_metadata(
        str(tmp_path / "out"), extra=[str(extra)], output_options='{"auto_mkdir": false}',
        credentials={"inputs": "metadata-test-in", "output": "metadata-test-out"},
        n_workers=1, dashboard_address=":0", return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    assert load_metadata(str(tmp_path / "out" / "metadata.json")).entries[-1] == "my entry"
    with get_client(sync_client=True) as client:
        params = client.read_flow_run(state.state_details.flow_run_id).parameters
    assert params["credentials"] == {"inputs": "metadata-test-in", "output": "metadata-test-out"}
    assert "skip_instance_cache" not in str(params)
    assert not (tmp_path / "out" / "_lock.json").exists()  # released


def test_a_missing_secret_block_is_one_line_before_any_work(tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("entry\n")
    for location in ("inputs", "output"):
        state = build_metadata(
            str(tmp_path / "out"), extra=[str(extra)], credentials={location: "no-such-block"},
            return_state=True,
        )  # fmt: skip
        assert state.is_failed() and "\n" not in state.message
        assert state.message == "credentials: no Prefect Secret block named 'no-such-block'"
        assert isinstance(state.result(raise_on_failure=False), UserError)
        assert not (tmp_path / "out").exists()
