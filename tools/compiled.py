"""Build the mypyc-compiled extraction (setup.py, METACLIP_COMPILE=1) into a folder to import.

    python -m tools.compiled DEST      # prints DEST: put it first on sys.path / PYTHONPATH

The wheel is built from a copy of the repository (nothing is written into the working tree)
without build isolation, so mypy comes from this environment (requirements-compile.lock), and
unpacked into DEST. tests/test_compiled.py and bench/bench_extract.py --compiled use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "metaclip", "metaclip_prefect", "flows",
           "tasks")  # fmt: skip


def build_compiled(dest: Path) -> Path:
    """Build the compiled wheel and unpack it into dest (created); returns dest."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, src / name)
        wheels = Path(tmp) / "wheels"
        env = {**os.environ, "METACLIP_COMPILE": "1"}
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
             "--disable-pip-version-check", "-w", str(wheels), str(src)],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        (wheel,) = wheels.glob("*.whl")
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(dest)
    return dest


if __name__ == "__main__":
    print(build_compiled(Path(sys.argv[1])))
