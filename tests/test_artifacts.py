"""Prefect artifacts: keys per output, the summary and outputs, the data card with embedded plots,
stage progress; published from flows run on a real (temporary) Prefect API and read back."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg
from prefect.types.names import raise_on_name_alphanumeric_dashes_only

from metaclip.extraction.limits import DEFAULT_LIMITS
from metaclip.reporting import datacard
from metaclip.reporting.summary import build_summary, limits_line
from metaclip_prefect.tasks import artifacts
from metaclip_prefect.tasks import datacard as datacard_task
from metaclip_prefect.tasks.artifacts import (
    StageProgress,
    artifact_key,
    publish,
    publish_summary,
    summary_markdown,
)
from metaclip_prefect.tasks.datacard import publish_datacard
from tests.test_datacard import PNG_MAGIC, write_run

STAGES = ("extract-and-match", "dedup-and-count", "reduce-counts", "sample")
SKIPPED = {"bad_json": 3, "charset_replaced": 2, "missing_file": 1, "truncated_gzip": 4}
STAGE_SECONDS = {"extract-and-match": 12.5, "dedup-and-count": 3.25, "reduce-counts": 0.75,
                 "sample": 250.5}  # fmt: skip
LIMITS = {**DEFAULT_LIMITS.to_dict(), "max_text_chars": 2000}
DATA_PNG = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def fake_summary(output: str) -> dict[str, Any]:
    """A summary as build_summary makes it: every field a real run's summary.json has."""
    batch = {"extract": {"files": 2, "records": 1500, "pages": 500, "images": 4000,
                         "pairs": 3000, "skipped": SKIPPED},
             "pairs_matched": 1200, "pairs_unmatched": 1800, "peak_rss_mb": 512.0,
             "seconds": {"extract": 20.25, "match": 5.5}}  # fmt: skip
    bucket = {"pairs_unique": 900, "duplicates": 250, "excluded_seen": 50, "images": 700,
              "seconds": 2.5, "peak_rss_mb": 640.5}  # fmt: skip
    params = {"t": 30.0, "seed": 7, "one_per_image": True, "metadata_uri": "s3://m/meta.json",
              "metadata_sha256": "ab" * 32, "limits": LIMITS}  # fmt: skip
    return build_summary(
        batches=[batch, batch], buckets=[bucket], sampled=[{"rows_kept": 420, "seconds": 1.25}],
        counts=np.array([100, 20, 0, 3], dtype=np.uint64), params=params,
        outputs={"curated": f"{output}/curated", "entry_counts": f"{output}/entry_counts.parquet",
                 "summary": f"{output}/summary.json"},
        stage_seconds=STAGE_SECONDS,
    )  # fmt: skip


def table_rows(markdown: str) -> dict[str, str]:
    """First cell -> second cell of every two-column Markdown table row."""
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", markdown, flags=re.M)
    return {name: value for name, value in rows if not set(value) <= {"-"}}


def expected_rows(summary: dict[str, Any]) -> dict[str, Any]:
    """Every leaf of summary.json (outputs aside), named as the summary artifact names it."""
    rows: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "metadata":
            rows |= {f"metadata.{k}": v for k, v in value.items()}
        elif key == "skipped":
            rows |= value
        elif key == "limits":  # one line: those that differ from the defaults
            rows["limits"] = limits_line(value)
        elif key == "seconds":
            rows |= {f"wall: {k}": v for k, v in value["stages_wall"].items()}
            rows |= {k: v for k, v in value.items() if k != "stages_wall"}
        elif key != "outputs":
            rows[key] = value
    return rows


def same_value(shown: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return shown == str(value)
    return float(shown.replace(",", "")) == pytest.approx(value, rel=1e-5, abs=0.006)


def decoded_pngs(markdown: str) -> list[bytes]:
    return [base64.b64decode(b64, validate=True) for b64 in DATA_PNG.findall(markdown)]


# --------------------------------------------------------------------------- no API needed


def test_keys_are_valid_per_output_and_stable():
    crawl = "s3://bucket/curated/CC-MAIN-2024-22"
    keys = {
        artifact_key(kind, out)
        for kind in ("summary", "datacard")
        for out in (crawl, "s3://bucket/curated/CC-MAIN-2024-26", "s3://other/curated/CC-MAIN-2024-22",
                    "/data/Out Dir_2/CC-MAIN-2024-22", "gs://b/" + "x" * 300)
    }  # fmt: skip
    assert len(keys) == 10  # no two (kind, output) share a key
    for key in keys:
        assert raise_on_name_alphanumeric_dashes_only(key) == key  # Prefect's own rule
        assert len(key) <= 80
    key = artifact_key("datacard", crawl)
    assert key.startswith("datacard-curated-cc-main-2024-22-") and len(key) == len(
        "datacard-curated-cc-main-2024-22-") + 8
    assert artifact_key("datacard", crawl + "/") == key  # the same output, the same key
    assert artifact_key("datacard", "out") == artifact_key("datacard", str(Path("out").resolve()))
    with pytest.raises(ValueError):
        artifact_key("--", crawl)


def test_summary_markdown_shows_every_field(tmp_path):
    summary = fake_summary(str(tmp_path))
    expected = expected_rows(summary)
    summary["rebalanced"] = {"from_t": 20.0, "from_seed": 0, "seconds": 4.5}
    expected |= {f"rebalanced.{k}": v for k, v in summary["rebalanced"].items()}
    md = summary_markdown(summary, "s3://bucket/curated/CC-MAIN-2024-22")
    assert md.startswith("# Curation summary: `s3://bucket/curated/CC-MAIN-2024-22`")
    rows = table_rows(md)
    assert len(expected) > 40 and set(SKIPPED) <= set(expected)
    for name, value in expected.items():
        assert name in rows and same_value(rows[name], value), (name, rows.get(name), value)
    assert "## Skipped inputs, by reason\n\nnone" in summary_markdown({"skipped": {}}, "o")
    assert rows["limits"] == "max_text_chars 2,000 (default 4,096); the others default"


def test_outputs_are_code_or_links():
    md = artifacts.outputs_markdown({"outputs": {"curated": "s3://b/run/curated",
                                                 "report": "https://example.org/r|1"}}, "s3://b/run")
    assert md.startswith("# Outputs of `s3://b/run`")
    assert "| curated | `s3://b/run/curated` |" in md
    assert "| report | [https://example.org/r\\|1](https://example.org/r\\|1) |" in md
    assert "| datacard | `s3://b/run/datacard/datacard.md` |" in md


@pytest.fixture
def recorded(monkeypatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Artifact API calls, recorded instead of sent, with a clock the test moves."""
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(artifacts, "create_progress_artifact",
                        lambda **kw: calls.append(("create", kw)) or "id-1")
    monkeypatch.setattr(artifacts, "update_progress_artifact",
                        lambda **kw: calls.append(("update", kw)) or kw["artifact_id"])
    for module in (artifacts, datacard_task):
        monkeypatch.setattr(module, "create_markdown_artifact",
                            lambda **kw: calls.append(("markdown", kw)) or "id-2")
    yield calls


def test_progress_is_throttled_and_always_reaches_100(recorded, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(artifacts.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(artifacts, "in_run", lambda: True)
    progress = StageProgress("sample", 1000, "s3://b/run")
    for done in range(1, 1001):  # no time passes: one update per 10%
        progress.advance(done)
    progress.advance(1000)
    sent = [kw["progress"] for kind, kw in recorded if kind == "update"]
    assert sent == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    assert recorded[0] == ("create", {"progress": 0.0, "_sync": True,
                                      "description": "sample: 0 / 1,000 tasks of `s3://b/run`"})
    recorded.clear()
    slow = StageProgress("reduce-counts", 1000, "o")
    for done in (1, 2, 3, 999):  # 2.5 s between calls: each one is sent
        clock[0] += 2.5
        slow.advance(done)
    clock[0] += 0.1
    slow.advance(1000)  # 100% at once, whatever the clock
    assert [kw["progress"] for _, kw in recorded[1:]] == [0.1, 0.2, 0.3, 99.9, 100.0]
    recorded.clear()
    StageProgress("empty", 0, "o").advance(0)
    assert [kind for kind, _ in recorded] == ["create"] and recorded[0][1]["progress"] == 100.0


@pytest.mark.slow
def test_nothing_is_published_outside_a_run(recorded, tmp_path, monkeypatch):
    write_run(tmp_path / "run", seed=3)
    monkeypatch.setattr(datacard, "candidate_source", lambda output: lambda: list(
        datacard.matched_pair_units(output)))
    publish_summary(fake_summary(str(tmp_path / "run")), str(tmp_path / "run"))
    progress = StageProgress("sample", 4, str(tmp_path / "run"))
    progress.advance(4)
    written = publish_datacard(str(tmp_path / "run"), 30.0)
    assert recorded == [] and progress.id is None
    assert Path(written["datacard.md"]).exists()  # the files are written all the same


@pytest.mark.slow
def test_card_writing_is_retried_on_transient_errors_only(tmp_path, monkeypatch):
    write_run(tmp_path / "run", seed=5)
    monkeypatch.setattr(datacard, "candidate_source", lambda output: lambda: [])
    monkeypatch.setattr(datacard_task.time, "sleep", lambda s: None)
    real, failures = datacard.write_files, [ConnectionResetError("reset"), ConnectionError("x")]

    def flaky(*args: Any, **kwargs: Any) -> dict[str, str]:
        if failures:
            raise failures.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(datacard, "write_files", flaky)
    written = publish_datacard(str(tmp_path / "run"), 30.0)
    assert failures == [] and Path(written["datacard.md"]).exists()
    failures.append(ValueError("a bug, not the network"))
    with pytest.raises(ValueError):
        publish_datacard(str(tmp_path / "run"), 30.0)
    assert failures == []  # tried once


@pytest.mark.slow
def test_too_large_plots_are_linked_not_embedded(tmp_path, monkeypatch):
    write_run(tmp_path / "run", seed=4)
    run = datacard.load_run(str(tmp_path / "run"))
    card = datacard.build_datacard(run, 30.0)
    blobs = datacard.render_card(run, card)
    written = {name: f"/far/{name}" for name in blobs}
    assert len(decoded_pngs(datacard_task.card_artifact_markdown(card, blobs, written))) == 1
    monkeypatch.setattr(datacard_task, "MAX_EMBEDDED_CHARS", 1000)
    md = datacard_task.card_artifact_markdown(card, blobs, written)
    assert decoded_pngs(md) == [] and "![entry counts](/far/count_distribution.png)" in md


# --------------------------------------------------------------------------- on a Prefect API


def read_artifacts(**filters: list[Any]) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    kinds = {"key": ArtifactFilterKey, "flow_run_id": ArtifactFilterFlowRunId}
    artifact_filter = ArtifactFilter(**{k: kinds[k](any_=v) for k, v in filters.items()})
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=artifact_filter)


@pytest.fixture(scope="module")
def runs(prefect_server, tmp_path_factory) -> dict[str, Any]:
    """The same flow run twice for output a, once for output b; what each returned."""
    from prefect import flow
    from prefect.context import FlowRunContext

    root = tmp_path_factory.mktemp("artifacts")
    outputs = {"a": str(root / "curated" / "CC-MAIN-2024-22"),
               "b": str(root / "curated" / "CC-MAIN-2024-26")}  # fmt: skip
    for seed, out in enumerate(outputs.values()):
        write_run(Path(out), seed=20 + seed)

    @flow(name="publish-artifacts")
    def publish_all(output: str) -> dict[str, Any]:
        publish_summary(fake_summary(output), output)
        written = publish_datacard(output, 30.0, targets=[400])
        ids = {}
        for stage in STAGES:
            progress = StageProgress(stage, 25, output)
            for done in range(1, 26):
                progress.advance(done)
            ids[stage] = str(progress.id)
        return {"flow_run_id": str(FlowRunContext.get().flow_run.id), "written": written,
                "progress": ids}  # fmt: skip

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datacard, "candidate_source", lambda output: lambda: list(
            datacard.matched_pair_units(output)))
        done = {name: publish_all(outputs[name[0]]) for name in ("a1", "a2", "b")}
    return {"outputs": outputs, **done}


def keys_of(run: dict[str, Any]) -> set[str]:
    return {a.key for a in read_artifacts(flow_run_id=[run["flow_run_id"]]) if a.key}


@pytest.mark.slow
def test_artifacts_are_keyed_by_output_and_stable(runs):
    a = runs["outputs"]["a"]
    expected = {artifact_key(kind, a) for kind in ("summary", "outputs", "datacard")}
    assert keys_of(runs["a1"]) == keys_of(runs["a2"]) == expected
    assert all("cc-main-2024-22" in key for key in expected)
    assert keys_of(runs["b"]) and keys_of(runs["b"]).isdisjoint(expected)
    for key in expected:  # a's collections hold a's two runs and nothing of b
        owners = {str(x.flow_run_id) for x in read_artifacts(key=[key])}
        assert owners == {runs["a1"]["flow_run_id"], runs["a2"]["flow_run_id"]}


@pytest.mark.slow
def test_artifacts_belong_to_the_calling_flow_run(runs):
    for name in ("a1", "a2", "b"):
        published = read_artifacts(flow_run_id=[runs[name]["flow_run_id"]])
        assert len(published) == 3 + len(STAGES)  # summary, outputs, card; one progress a stage
        assert {str(x.flow_run_id) for x in published} == {runs[name]["flow_run_id"]}
        assert {str(x.id) for x in published if x.type == "progress"} == set(
            runs[name]["progress"].values())


@pytest.mark.slow
def test_card_embeds_both_plots_and_the_file_keeps_relative_links(runs):
    out = runs["outputs"]["b"]
    (card,) = read_artifacts(key=[artifact_key("datacard", out)])
    assert card.type == "markdown" and f"# Data card: `{out}`" in card.data
    pngs = decoded_pngs(card.data)
    assert len(pngs) == 2
    for png in pngs:
        assert png.startswith(PNG_MAGIC)
        assert mpimg.imread(io.BytesIO(png), format="png").shape[1] > 300
    assert 100_000 < len(card.data) < 300_000  # about the size the docstring states
    written = runs["b"]["written"]
    assert [Path(written[f]).read_bytes() for f in datacard.PLOT_FILES.values()] == pngs
    md = Path(written["datacard.md"]).read_text()
    assert "![entry counts](count_distribution.png)" in md and "data:image" not in md


@pytest.mark.slow
def test_summary_artifact_has_every_skip_reason_and_stage(runs):
    out = runs["outputs"]["a"]
    latest = read_artifacts(key=[artifact_key("summary", out)])
    assert len(latest) == 2 and {x.type for x in latest} == {"markdown"}
    rows = table_rows(latest[0].data)
    for reason, n in SKIPPED.items():
        assert same_value(rows[reason], 2 * n)  # two batches
    for stage, seconds in STAGE_SECONDS.items():
        assert same_value(rows[f"wall: {stage}"], seconds)
    assert same_value(rows["extract_cpu"], 40.5) and same_value(rows["peak_worker_rss_mb"], 640.5)
    (where,) = read_artifacts(key=[artifact_key("outputs", runs["outputs"]["b"])])
    assert f"`{runs['outputs']['b']}/curated`" in where.data and runs["outputs"]["b"] in (
        where.data.splitlines()[0])


@pytest.mark.slow
def test_progress_artifacts_reach_100(runs):
    published = read_artifacts(flow_run_id=[runs["a1"]["flow_run_id"]])
    progress = {x.description.split(":")[0]: x for x in published if x.type == "progress"}
    assert set(progress) == set(STAGES)
    for stage, artifact in progress.items():
        assert float(artifact.data) == 100.0
        assert artifact.description == f"{stage}: 25 / 25 tasks of `{runs['outputs']['a']}`"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_failing_api_call_is_a_warning_not_a_failed_run(caplog):
    from prefect import flow

    def refused(**_: Any) -> None:
        raise RuntimeError("503 from the API")

    @flow(name="publish-refused")
    def refused_flow() -> Any:
        return publish(refused, markdown="x", key="k")

    assert refused_flow() is None
    assert "refused failed: 503 from the API" in caplog.text
