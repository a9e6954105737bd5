"""Safe to operate: every way of starting a run checks it first, in one line, and writes only
where it was told.

The hostile parameter table runs each case through the Python API (a Failed state whose data
is a UserError and whose message is one line naming the parameter) and, where the CLI has the
option, through `metaclip` (exit code 2, one line on stderr, no traceback). Nothing may be
written anywhere: the sandbox tree is the same before and after, and nothing appears at the
filesystem root. Deployment runs of a subset are in tests/test_deployment.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metaclip.errors import UserError
from metaclip.io import lease
from metaclip_prefect.flows.cli import app
from metaclip_prefect.flows.curate import curate
from metaclip_prefect.flows.monthly import curate_new_crawl
from metaclip_prefect.flows.rebalance import rebalance

ROOT = Path(__file__).resolve().parents[1]
WAT = ROOT / "tests" / "data" / "wat"
FILES = sorted(str(p) for p in WAT.glob("fixture-*.warc.wat.gz"))
DEMO_META = ROOT / "metaclip" / "demo_data" / "metadata.json"
runner = CliRunner()

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder with a valid metadata file, a malformed one, a plain file and an empty crawl
    data root; the hostile cases name paths inside it."""
    (tmp_path / "meta.json").write_text(json.dumps(["Home", "the", "logo"]))
    (tmp_path / "bad.json").write_text('{"a": 1}')
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "crawl-root").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "curated").mkdir()
    return tmp_path


# (id, API parameters, CLI arguments or None, expected part of the message). "{s}" is the
# sandbox. API cases start from a valid curation of FILES into {s}/out.
CURATE_CASES: list[tuple[str, dict[str, Any], list[str] | None, str]] = [
    ("t-zero", {"t": 0}, ["--t", "0"], "t: must be a positive finite number"),
    ("t-negative", {"t": -5}, ["--t", "-5"], "t: must be a positive finite number"),
    ("t-nan", {"t": float("nan")}, ["--t", "nan"], "t: must be a positive finite number"),
    ("t-inf", {"t": float("inf")}, ["--t", "inf"], "t: must be a positive finite number"),
    ("t-text", {"t": "many"}, None, "t: must be a number"),
    ("seed-negative", {"seed": -1}, ["--seed", "-1"], "seed: must be between"),
    ("batch-size-zero", {"batch_size": 0}, ["--batch-size", "0"], "batch_size: must be"),
    ("buckets-zero", {"n_buckets": 0}, ["--buckets", "0"], "n_buckets: must be between"),
    ("buckets-huge", {"n_buckets": 10**6}, ["--buckets", "1000000"], "n_buckets: must be"),
    ("fanout-one", {"reduce_fanout": 1}, None, "reduce_fanout: must be between"),
    ("workers-zero", {"n_workers": 0}, ["--workers", "0"], "n_workers: must be between"),
    ("output-empty", {"output": ""}, ["--output", ""], "output: is empty"),
    ("output-blank", {"output": "   "}, ["--output", "   "], "output: is empty"),
    ("output-root", {"output": "/"}, ["--output", "/"], "is a filesystem root"),
    ("output-a-file", {"output": "{s}/a-file"}, ["--output", "{s}/a-file"],
     "exists and is not a folder"),
    ("output-no-bucket", {"output": "s3://"}, ["--output", "s3://"], "names no bucket"),
    ("output-userinfo", {"output": "s3://AKIAX:s3cr3t@bucket/out"},
     ["--output", "s3://AKIAX:s3cr3t@bucket/out"], "must not carry credentials"),
    ("output-scheme", {"output": "nosuchfs://host/out"}, ["--output", "nosuchfs://host/out"],
     "unknown storage scheme"),
    ("metadata-empty", {"metadata": ""}, ["--metadata", ""], "metadata: is empty"),
    ("metadata-missing", {"metadata": "{s}/none.json"}, ["--metadata", "{s}/none.json"],
     "metadata file not found"),
    ("metadata-malformed", {"metadata": "{s}/bad.json"}, ["--metadata", "{s}/bad.json"],
     "must be a JSON list of strings"),
    ("no-inputs", {"inputs": []}, [], "no inputs"),
    ("inputs-match-nothing", {"inputs": ["{s}/nowhere/*.wat.gz"]}, ["{s}/nowhere/*.wat.gz"],
     "no input files match"),
    ("inputs-not-a-list", {"inputs": "x.wat.gz"}, None, "inputs: must be a list"),
    ("crawl-word", {"inputs": [], "crawl": "foo"}, ["--crawl", "foo"], "crawl: must be a crawl"),
    ("crawl-week", {"inputs": [], "crawl": "CC-MAIN-2024-99"}, ["--crawl", "CC-MAIN-2024-99"],
     "crawl: must be a crawl"),
    ("crawl-unknown",
     {"inputs": [], "crawl": "CC-MAIN-2099-05", "crawl_data_root": "{s}/crawl-root"},
     ["--crawl", "CC-MAIN-2099-05", "--crawl-data-root", "{s}/crawl-root"],
     "no WAT list for CC-MAIN-2099-05"),
    ("max-files-zero", {"max_files": 0}, ["--max-files", "0"], "max_files: must be"),
    ("format", {"input_format": "pdf"}, ["--format", "pdf"], "input_format: must be one of"),
    ("language", {"languages": ["english"]}, ["--languages", "english"],
     "not a fastText language code"),
    ("options-secret", {"output_options": {"key": "AKIAX", "secret": "s3cr3t"}},
     ["--output-options", '{"key": "AKIAX", "secret": "s3cr3t"}'], "is a credential"),
    ("options-nested-secret",
     {"input_options": {"client_kwargs": {"aws_secret_access_key": "s3cr3t"}}},
     ["--input-options", '{"client_kwargs": {"aws_secret_access_key": "s3cr3t"}}'],
     "is a credential"),
    ("options-not-json", {"output_options": "{not json"}, None, "is not a JSON object"),
    ("options-not-object", {"metadata_options": "[1, 2]"}, ["--metadata-options", "[1, 2]"],
     "must be"),
    ("endpoint-userinfo", {"output_options": {"client_kwargs": {
        "endpoint_url": "http://user:s3cr3t@127.0.0.1:9"}}}, None, "must not carry credentials"),
    ("credentials-location", {"credentials": {"elsewhere": "blk"}},
     ["--credentials", "elsewhere=blk"], "credentials: must be one of"),
    ("credentials-name", {"credentials": {"output": "Not A Name!"}},
     ["--credentials", "output=Not A Name!"], "not a Prefect block name"),
    ("credentials-missing-block", {"credentials": {"output": "no-such-block"}},
     ["--credentials", "output=no-such-block"], "no Prefect Secret block named"),
    ("dask-address", {"dask_address": "localhost:8786"}, ["--dask-address", "localhost:8786"],
     "dask_address: must be a scheduler address"),
    ("store-inside-output", {"exclude_store": "{s}/out/seen"},
     ["--exclude-store", "{s}/out/seen"], "must not contain each other"),
    ("limits-unknown", {"limits": {"max_caption_chars": 10}},
     ["--limits", '{"max_caption_chars": 10}'], "limits: unknown limit(s) max_caption_chars"),
    ("limits-zero", {"limits": {"max_text_chars": 0}}, ["--limits", '{"max_text_chars": 0}'],
     "limits.max_text_chars must be a positive integer, got 0"),
    ("limits-negative", {"limits": {"max_url_chars": -1}}, ["--limits", '{"max_url_chars": -1}'],
     "limits.max_url_chars must be a positive integer, got -1"),
    ("limits-float", {"limits": {"max_text_chars": 2000.5}},
     ["--limits", '{"max_text_chars": 2000.5}'], "limits.max_text_chars must be a positive"),
    ("limits-text", {"limits": {"max_text_chars": "2000"}},
     ["--limits", '{"max_text_chars": "2000"}'], "limits.max_text_chars must be a positive"),
    ("limits-bool", {"limits": {"max_images_per_page": True}},
     ["--limits", '{"max_images_per_page": true}'], "limits.max_images_per_page must be a"),
    ("limits-inflate-below-record",
     {"limits": {"max_record_bytes": 1 << 20, "max_inflate_bytes": 1 << 10}},
     ["--limits", '{"max_record_bytes": 1048576, "max_inflate_bytes": 1024}'],
     "limits.max_inflate_bytes must be at least limits.max_record_bytes"),
    ("limits-not-an-object", {"limits": [1, 2]}, ["--limits", "[1, 2]"], "limits: must be"),
    ("limits-not-json", {"limits": "{max_text_chars: 2}"}, ["--limits", "{max_text_chars: 2}"],
     "limits: is not a JSON object"),
]


def _fill(value: Any, s: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{s}", str(s))
    if isinstance(value, list):
        return [_fill(v, s) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, s) for k, v in value.items()}
    return value


def _assert_nothing_written(before: dict[str, int], sandbox: Path) -> None:
    assert tree(sandbox) == before, "a refused run wrote into the sandbox"
    assert not list(Path("/").glob("CC-MAIN-*")), "a run wrote at the filesystem root"


def test_the_table_is_large_enough():
    assert len(CURATE_CASES) >= 25
    assert sum(1 for case in CURATE_CASES if case[2] is not None) >= 25


@pytest.mark.parametrize(("name", "params", "cli", "message"), CURATE_CASES,
                         ids=[c[0] for c in CURATE_CASES])
def test_hostile_curate_parameters_through_the_python_api(sandbox, name, params, cli, message):
    base = {"inputs": FILES, "metadata": str(sandbox / "meta.json"),
            "output": str(sandbox / "out"), "n_workers": 1, "dashboard_address": ":0"}
    before = tree(sandbox)
    state = curate(**{**base, **_fill(params, sandbox)}, return_state=True)
    assert state.is_failed()
    assert message in state.message and "\n" not in state.message, state.message
    assert isinstance(state.result(raise_on_failure=False), UserError)
    assert "s3cr3t" not in state.message
    _assert_nothing_written(before, sandbox)


CLI_CASES = [c for c in CURATE_CASES if c[2] is not None]


@pytest.mark.parametrize(("name", "params", "cli", "message"), CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_hostile_curate_parameters_through_the_cli(sandbox, name, params, cli, message):
    args = ["curate", "--metadata", str(sandbox / "meta.json"), "--output",
            str(sandbox / "out"), "--workers", "1"]
    extra = _fill(cli, sandbox)
    inputs = [] if "inputs" in params or "--crawl" in extra else FILES
    before = tree(sandbox)
    result = runner.invoke(app, [*args, *extra, *inputs])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.output and "s3cr3t" not in result.stderr
    _assert_nothing_written(before, sandbox)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"output_root": ""}, "set METACLIP_OUTPUT_ROOT"),
        ({"output_root": "   "}, "set METACLIP_OUTPUT_ROOT"),
        ({"metadata": ""}, "set METACLIP_METADATA"),
        ({"lookback": 0}, "lookback: must be between"),
        ({"t": 0}, "t: must be a positive"),
        ({"dask_address": "nonsense"}, "dask_address: must be"),
        ({"curate_options": {"output": "/elsewhere"}}, "cannot be set there"),
        ({"curate_options": {"limits": {"max_text_chars": 0}}},
         "limits.max_text_chars must be a positive integer"),
        ({"output_options": "{oops"}, "output_options: is not a JSON object"),
        ({"collinfo": "{s}/none.json"}, "crawl list not found"),
    ],
)
def test_hostile_monthly_parameters(sandbox, params, message):
    base = {"output_root": str(sandbox / "monthly"), "metadata": str(sandbox / "meta.json"),
            "collinfo": str(sandbox / "collinfo.json"), "data_root": str(sandbox / "crawl-root")}
    (sandbox / "collinfo.json").write_text(json.dumps([{"id": "CC-MAIN-2099-05"}]))
    before = tree(sandbox)
    state = curate_new_crawl(**{**base, **_fill(params, sandbox)}, return_state=True)
    assert state.is_failed() and message in state.message and "\n" not in state.message
    assert isinstance(state.result(raise_on_failure=False), UserError)
    _assert_nothing_written(before, sandbox)


def test_rebalance_of_a_folder_without_a_curation_exits_2(sandbox):
    before = tree(sandbox)
    result = runner.invoke(app, ["rebalance", str(sandbox / "out"), "--t", "4"])
    assert result.exit_code == 2 and "no finished curation" in result.stderr
    result = runner.invoke(app, ["rebalance", str(sandbox / "out"), "--t", "0"])
    assert result.exit_code == 2 and "t: must be a positive" in result.stderr
    _assert_nothing_written(before, sandbox)


def test_deploy_check_refuses_unset_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("METACLIP_")}
    cmd = [sys.executable, "-m", "metaclip_prefect.flows.deploy_check"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: METACLIP_OUTPUT_ROOT is not set: export it before `prefect deploy` "
        "(see deployments/prefect.yaml)"
    ]
    env.update(METACLIP_OUTPUT_ROOT=str(tmp_path), METACLIP_METADATA="m.json",
               METACLIP_OUTPUT_OPTIONS='{"secret": "x"}')
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "is a credential" in done.stderr
    env["METACLIP_OUTPUT_OPTIONS"] = '{"client_kwargs": {"endpoint_url": "http://s3:9000"}}'
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0


# --- finished runs: copies, concurrent writers, the cache ----------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished curation of the WAT fixtures (t=3)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "meta.json").write_text(DEMO_META.read_text())
    state = curate(inputs=FILES, metadata=str(root / "meta.json"), output=str(root / "runA"),
                   t=3, n_buckets=2, batch_size=2, n_workers=2, dashboard_address=":0",
                   languages=None, return_state=True)
    assert state.is_completed(), state.message
    return root / "runA"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_rebalance_of_a_copy_changes_the_copy_only(finished, tmp_path):
    """Finding 3: rebalancing a `cp -a` copy rewrote the original and left the copy as it was."""
    copy = tmp_path / "runB"
    shutil.copytree(finished, copy, symlinks=True)
    original = snapshot(finished)
    result = runner.invoke(app, ["rebalance", str(copy), "--t", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert snapshot(finished) == original  # not one byte, not one mtime
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["t"] == 1 and summary["outputs"]["curated"] == str(copy / "curated")
    assert json.loads((finished / "summary.json").read_text())["t"] == 3


def test_rebalance_of_a_moved_output_works_in_place(finished, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(finished, tmp_path / "tmp-copy")
    (tmp_path / "tmp-copy").rename(moved)  # the recorded output no longer exists anywhere
    state = rebalance(output=str(moved), t=2, n_workers=1, dashboard_address=":0",
                      return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["pairs_curated"] > 0
    record = json.loads((moved / "_work" / "run.json").read_text())
    assert record["paths"] == "relative" and not record["counts_uri"].startswith("/")


def test_a_held_output_refuses_a_second_writer(finished, tmp_path):
    """Finding 4: two curations into one output at once. The second stops in one line."""
    copy = tmp_path / "busy"
    shutil.copytree(finished, copy)
    (copy / "complete.json").unlink()  # or the second run would be a no-op
    lock = copy / "_lock.json"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        taken, _ = lease.try_acquire(str(lock), "another-run", **{})
        assert taken
        data = json.loads(lock.read_text())
        lock.write_text(json.dumps({**data, "pid": holder.pid}))  # a live process holds it
        before = snapshot(copy)
        result = runner.invoke(app, ["curate", *FILES, "--metadata", str(DEMO_META),
                                     "--output", str(copy), "--t", "5", "--workers", "1"])
        assert result.exit_code == 2, result.output
        assert "is being written by another-run" in result.stderr
        assert snapshot(copy) == before
    finally:
        holder.kill()
        holder.wait()
    # Its process is gone: the lease is stale, and the next run takes it over.
    result = runner.invoke(app, ["curate", *FILES, "--metadata", str(DEMO_META), "--output",
                                 str(copy), "--t", "5", "--workers", "1", "--languages", "all"])
    assert result.exit_code == 0, result.output
    assert not lock.exists()
    record = json.loads((copy / "complete.json").read_text())
    assert record["summary"]["t"] == 5
    written = {Path(u).name for u in record["outputs"] if "/curated/" in u}
    assert written == {p.name for p in (copy / "curated").glob("*.parquet")}


def test_lease_heartbeat_renews_and_unlock_breaks_only_stale_leases(tmp_path):
    uri = str(tmp_path / "out" / "_lock.json")
    with lease.held(uri, "run-1", ttl_s=0.4) as held:
        time.sleep(0.35)
        renewed = lease.read_lock(uri)
        assert renewed.owner == "run-1" and renewed.renewed_at > held.acquired_at
        with pytest.raises(lease.OutputBusyError, match="run-1"), lease.held(uri, "run-2"):
            pass
        result = runner.invoke(app, ["unlock", str(tmp_path / "out")])
        assert result.exit_code == 2 and "looks alive" in result.stderr
    assert lease.read_lock(uri) is None  # released at the end of the block
    lease.try_acquire(uri, "crashed", now=0.0)  # never renewed since 1970
    result = runner.invoke(app, ["unlock", str(tmp_path / "out")])
    assert result.exit_code == 0 and "removed the lease of crashed" in result.output


def test_cached_results_are_found_whatever_prefect_storage_the_process_has(finished, tmp_path):
    """Finding 8: a CLI rerun after a deployment run (another PREFECT_LOCAL_STORAGE_PATH)
    re-extracted everything. Task results now live under the output."""
    copy = tmp_path / "runC"
    shutil.copytree(finished, copy)
    meta = finished.parent / "meta.json"
    args = [sys.executable, "-m", "metaclip_prefect.flows.cli", "curate", *FILES, "--metadata",
            str(meta), "--output", str(copy), "--t", "3", "--buckets", "2", "--batch-size", "2",
            "--workers", "1", "--languages", "all"]
    summaries = []
    for storage in ("results-a", "results-b"):
        env = {**os.environ, "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / storage),
               "PREFECT_HOME": str(tmp_path / f"home-{storage}")}
        env.pop("PREFECT_API_URL", None)
        (copy / "complete.json").unlink(missing_ok=True)  # take the task path every time
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        summaries.append(json.loads((copy / "summary.json").read_text()))
    assert summaries[1]["task_results"]["computed"] == 0
    assert summaries[1]["task_results"]["hit"] > 0
    assert summaries[1]["pairs_curated"] == summaries[0]["pairs_curated"]


def test_a_tampered_task_result_is_recomputed_not_trusted(finished, tmp_path):
    copy = tmp_path / "runD"
    shutil.copytree(finished, copy)
    (copy / "complete.json").unlink()
    meta = finished.parent / "meta.json"
    common = dict(inputs=FILES, metadata=str(meta), output=str(copy), t=3, n_buckets=2,
                  batch_size=2, n_workers=1, dashboard_address=":0", languages=None)
    assert curate(**common, return_state=True).is_completed()  # results under runD now
    # The copy also holds runA's results (other keys: another output); plant every one.
    for path in (copy / "_work" / "tasks" / "extract-and-match").glob("*.json"):
        record = json.loads(path.read_text())
        record["result"]["pairs_matched"] += 1000  # checksum not updated
        path.write_text(json.dumps(record))
    (copy / "complete.json").unlink()
    state = curate(**common, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["task_results"]["damaged"] == summary["batches"] > 0
    assert summary["pairs_matched"] == json.loads((finished / "summary.json").read_text())[
        "pairs_matched"]


def test_a_rerun_with_nothing_to_do_shows_the_card_and_writes_nothing(finished):
    """A finished run again: the summary and the data card (plots embedded) on the new run,
    and not one file of the output rewritten, so complete.json keeps approving it."""
    from prefect import get_client

    from metaclip_prefect.tasks.artifacts import artifact_key

    params = dict(inputs=FILES, metadata=str(finished.parent / "meta.json"),
                  output=str(finished), t=3, n_buckets=2, batch_size=2, n_workers=1,
                  dashboard_address=":0", languages=None)  # as the fixture ran it
    before = snapshot(finished)
    state = curate(**params, return_state=True)
    assert state.is_completed() and snapshot(finished) == before
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:  # this run's artifacts, however many exist
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    mine = {a.key: a for a in found if a.flow_run_id == run_id}
    card = mine[artifact_key("datacard", str(finished))]
    assert card.data.count("data:image/png;base64,") == 2
    assert artifact_key("summary", str(finished)) in mine
