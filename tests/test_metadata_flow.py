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
from metaclip_prefect.flows.build_metadata import build_metadata
from metaclip_prefect.flows.cli_metadata import register
from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from typer.testing import CliRunner

from metaclip.metadata.load import load_metadata
from metaclip.metadata.text import segments

ARCHIVE = Path(__file__).parent / "data" / "wordnet" / "wordnet-3.0-nltk-minimal.tar.xz"


pytestmark = pytest.mark.usefixtures("prefect_server")  # tests/conftest.py


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


def _task_states(flow_run_id: object) -> dict[str, list[str]]:
    """Task states of the flow run's subflow (the one on Dask)."""
    parent = FlowRunFilterParentFlowRunId(any_=[flow_run_id])
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
    out: dict[str, list[str]] = {}
    for run in runs:
        out.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return out


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


def test_rerun_takes_every_task_from_the_cache(built: dict, inputs: dict) -> None:
    state = _run(built["output"], inputs)
    assert state.result()["sha256"] == built["prov"]["sha256"]
    states = _task_states(state.state_details.flow_run_id)
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
