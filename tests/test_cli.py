"""The `metaclip` command: user mistakes give one line on stderr and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaclip_prefect.flows.cli import COMMANDS, CURATE, app

WAT = Path(__file__).parent / "data" / "wat"
runner = CliRunner()
# Import Prefect (with the flow) here, after the CLI's environment defaults and outside any
# CliRunner.invoke: its terminal log handlers keep the stderr they find when set up, and the
# stderr of an invoke is closed when the invoke ends (a second in-process run then fails in
# Prefect's logging, not in the CLI). A real `metaclip` process runs once.
CURATE.load()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("curate", "demo", *(c.name for c in COMMANDS)):
        assert f" {command} " in result.output, command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metadata", "{tmp}/missing.json"], "metadata file not found: {tmp}/missing.json"),
        (["--metadata", "{tmp}/bad.json"], "metadata file must be a JSON list of strings"),
        (["--metadata", "{tmp}/ok.json", "--format", "pdf"],
         "input_format: must be one of wat, warc, auto, not 'pdf'"),
    ],
)
@pytest.mark.slow
def test_user_mistakes_are_one_line_with_exit_2(tmp_path, args, message):
    (tmp_path / "bad.json").write_text('{"a": 1}')
    (tmp_path / "ok.json").write_text('["cat"]')
    args = [a.format(tmp=tmp_path) for a in args]
    result = runner.invoke(
        app, ["curate", str(WAT), "--output", str(tmp_path / "out"), *args]
    )
    assert result.exit_code == 2
    # Prefect's own INFO lines (a temporary API starting) may come too; the error is one line.
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_input_that_matches_nothing(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(["cat"]))
    result = runner.invoke(
        app,
        ["curate", str(tmp_path / "nowhere" / "*.wat.gz"), "--metadata",
         str(tmp_path / "ok.json"), "--output", str(tmp_path / "out")],
    )
    assert result.exit_code == 2 and "no input files match" in result.stderr


@pytest.mark.slow
def test_exit_code_in_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "metaclip_prefect.flows.cli", "curate", str(WAT), "--metadata",
         str(tmp_path / "missing.json"), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: metadata file not found")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_curate_in_ephemeral_mode(tmp_path):
    """No Prefect server configured: Prefect runs a temporary API for the run."""
    import os

    (tmp_path / "meta.json").write_text(json.dumps(["Logo", "Home", "the"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    proc = subprocess.run(
        [sys.executable, "-m", "metaclip_prefect.flows.cli", "curate",
         str(WAT / "fixture-0000.warc.wat.gz"),
         "--metadata", str(tmp_path / "meta.json"), "--output", str(tmp_path / "out"),
         "--workers", "1", "--languages", "all", "--t", "5"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pairs_curated"] > 0 and summary["files"] == 1
    assert "temporary server" in proc.stderr + proc.stdout
