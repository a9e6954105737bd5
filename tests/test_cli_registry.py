"""The `metaclip` command list: every subcommand registered explicitly and shown in --help; a
missing optional dependency group gives an install hint (exit 2), never a missing command; a
broken CLI module fails loudly; and the CLI's option defaults are the flows' own."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from metaclip_prefect.flows import cli
from metaclip_prefect.flows.cli_common import MODE, FlowCall

# Every subcommand the CLI has: one dropped from cli.COMMANDS (or hidden) fails here.
EXPECTED = {
    "curate", "rebalance", "pool", "demo", "unlock", "stats", "compare", "build-metadata",
    "inspect-metadata", "match", "experts", "route",
}  # fmt: skip
# The commands that pass their options through to a flow.
FLOW_COMMANDS = {"curate", "rebalance", "pool", "build-metadata", "experts"}
# What `metaclip experts` without the `mode` group says (the whole stderr).
HINT = ("error: metaclip {} needs the optional 'mode' dependencies: "
        "pip install 'metaclip-prefect[mode]'")  # fmt: skip

# Run the CLI in a fresh interpreter with some modules made unimportable (as if not installed,
# or broken): a finder placed first on sys.meta_path raises ModuleNotFoundError for them.
BLOCKED_RUN = """
import sys

BLOCKED = {blocked!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
sys.argv = ["metaclip", *{args!r}]
from metaclip_prefect.flows.cli import main

main()
"""


def run_blocked(blocked: set[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", TERM="dumb", NO_COLOR="1")
    code = BLOCKED_RUN.format(blocked=sorted(blocked), args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


def listed(help_text: str) -> set[str]:
    """The subcommand names a `metaclip --help` shows (rich's box or plain click's list)."""
    return set(re.findall(r"^\W*([a-z][a-z-]+)\s{2,}", help_text, flags=re.M)) & (
        EXPECTED | {c.name for c in cli.COMMANDS}
    )


def test_every_command_is_registered_once():
    names = [c.name for c in cli.COMMANDS]
    assert len(names) == len(set(names)), names
    assert set(names) == EXPECTED
    assert {c.name for c in cli.COMMANDS if c.flow is not None} == FLOW_COMMANDS
    assert {c.name for c in cli.COMMANDS if c.needs is MODE} == {"experts", "route"}


def test_help_lists_every_registered_command():
    result = CliRunner().invoke(cli.app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert listed(result.output) == EXPECTED, result.output
    for name in EXPECTED:
        sub = CliRunner().invoke(cli.app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)


@pytest.mark.slow
def test_help_in_a_real_process_lists_every_command():
    proc = run_blocked(set(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert listed(proc.stdout) == EXPECTED, proc.stdout


# --- a missing optional group: listed, and says what to install --------------------------------

MODE_BLOCKED = {"sentence_transformers", "faiss", "torch"}


@pytest.mark.slow
def test_help_lists_the_experts_commands_without_the_mode_group():
    proc = run_blocked(MODE_BLOCKED, "--help")
    assert proc.returncode == 0, proc.stderr
    assert listed(proc.stdout) == EXPECTED, proc.stdout
    proc = run_blocked(MODE_BLOCKED, "experts", "--help")
    shown = set(re.findall(r"^\W*([a-z][a-z-]+)\s{2,}", proc.stdout, flags=re.M))
    assert proc.returncode == 0 and {"build", "ensemble"} <= shown, proc.stdout
    proc = run_blocked(MODE_BLOCKED, "experts", "build", "--help")
    assert proc.returncode == 0 and "--outside-share" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_experts_ensemble_runs_without_the_mode_group(tmp_path):
    """Ensembling needs numpy only: it runs where torch, faiss and the encoders are absent."""
    import numpy as np

    files = []
    for k in range(2):
        files.append(str(tmp_path / f"e{k}.npz"))
        np.savez(files[-1], logits=np.eye(3) * (k + 1), targets=np.arange(3))
    proc = run_blocked(MODE_BLOCKED, "experts", "ensemble", *files, "--weights", "0.5,0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "100.0000" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "args",
    [["experts", "curated/", "--output", "experts/"], ["route", "dog", "cat", "--experts", "."]],
)
@pytest.mark.slow
def test_a_command_without_its_group_prints_the_install_hint(tmp_path, args):
    proc = run_blocked(MODE_BLOCKED, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == HINT.format(args[0]), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_one_missing_module_of_the_group_is_enough(tmp_path):
    proc = run_blocked({"faiss"}, "experts", "curated/", "--output", "experts/")
    assert proc.returncode == 2 and proc.stderr.strip() == HINT.format("experts"), proc.stderr


def test_mode_names_what_the_mode_extra_installs():
    """MODE's import names are those of the packages pyproject's `mode` extra lists."""
    import tomllib
    from importlib.metadata import packages_distributions
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    wanted = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-")
              for r in pyproject["project"]["optional-dependencies"][MODE.name]}  # fmt: skip
    if MODE.missing():
        pytest.skip(f"the mode group is not installed here: {MODE.missing()}")
    installed = packages_distributions()
    provided = {d.lower().replace("_", "-") for m in MODE.modules for d in installed[m]}
    assert provided == wanted


# --- a broken CLI module fails loudly ------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "metaclip_prefect.flows.cli_stats",
        "metaclip_prefect.flows.cli_metadata",
        "metaclip_prefect.flows.cli_experts",
        "metaclip.experts.routing",  # a required import of cli_experts: not the optional group
    ],
)
@pytest.mark.slow
def test_a_broken_cli_module_fails_the_help_loudly(module):
    proc = run_blocked({module}, "--help")
    assert proc.returncode != 0, f"--help hid the broken {module}:\n{proc.stdout}"
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert "Traceback" in proc.stderr, proc.stderr
    assert re.match(r"(ImportError|ModuleNotFoundError): ", last), proc.stderr
    assert module in last, proc.stderr  # the error names the broken module
    assert "curate" not in proc.stdout  # no command list with a command quietly left out


# --- the options' defaults are the flows' own --------------------------------------------------


def _flow_commands():
    group = typer.main.get_command(cli.app)

    def runner(c):  # a command group's flow runs from its default command (`experts build`)
        found = group.commands[c.name]
        return found.commands["build"] if c.subcommands else found

    return [pytest.param(c, runner(c), id=c.name)
            for c in cli.COMMANDS if c.flow is not None]  # fmt: skip


@pytest.mark.parametrize(("command", "click_command"), _flow_commands())
def test_option_defaults_equal_the_flow_defaults(command, click_command):
    flow = command.flow.load()
    flow_params = inspect.signature(flow.fn).parameters
    params = {p.name: p for p in click_command.params}
    # Every option reaches the flow under a name it has (or is marked the CLI's own).
    passed = command.flow.kwargs({name: p.default for name, p in params.items()})
    assert set(passed) <= set(flow_params)
    # A rename or conversion of an option that does not exist (any more) is a mistake.
    assert set(command.flow.rename) <= set(params), command.flow.rename
    assert set(command.flow.convert) <= set(params), command.flow.convert
    # The defaults, as the flow receives them, are the flow's own.
    optional = {name: p.default for name, p in params.items() if not p.required}
    compared = 0
    for name, value in command.flow.kwargs(optional).items():
        default = flow_params[name].default
        if default is inspect.Parameter.empty:  # required by the flow, optional here (rebalance
            assert value is None, (name, value)  # has none; curate's inputs: a crawl instead)
            continue
        assert value == default, f"{command.name} --{name}: CLI {value!r}, flow {default!r}"
        compared += 1
    assert compared >= 3


def test_an_option_the_flow_lacks_is_an_error_not_dropped():
    call = FlowCall("metaclip_prefect.flows.rebalance:rebalance")
    with pytest.raises(TypeError, match="'bogus' is not a parameter"):
        call.kwargs({"output": "o", "t": 1.0, "bogus": 1})


def test_options_pass_through_with_renames_and_conversions():
    assert cli.CURATE.kwargs({
        "inputs": ["a"], "buckets": 3, "workers": 2, "languages": "en, de", "debug": True,
        "input_options": '{"anon": true}', "credentials": ["output=blk"], "limits": None,
    }) == {
        "inputs": ["a"], "n_buckets": 3, "n_workers": 2, "languages": ["en", "de"],
        "input_options": {"anon": True}, "credentials": {"output": "blk"}, "limits": None,
    }  # fmt: skip
    assert cli.CURATE.kwargs({"languages": "all"}) == {"languages": None}
