"""Optional compiled build: METACLIP_COMPILE=1 compiles the extraction hot path with mypyc.

    METACLIP_COMPILE=1 pip install .        # the same code, as C extensions (needs a C compiler)
    pip install .                           # pure Python (the default, and every editable install)

mypyc (part of mypy) compiles these typed modules as they are written: the same source, the
same rows (tests/test_compiled.py builds the wheel and checks), about 1.2x faster extraction
(docs/benchmarks.md). Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

MYPY = "mypy==2.4.1"  # the compiler (a build requirement only; the extensions need no runtime)
COMPILED = [
    "metaclip/extraction/framing.py",
    "metaclip/extraction/records.py",
    "metaclip/extraction/wat.py",
    "metaclip/extraction/pairs.py",
    "metaclip/extraction/urls.py",
]


# Never for an editable install: extensions built into the source tree would shadow the .py
# files being edited. Only the wheel build compiles (not pip's metadata steps).
COMPILE = os.environ.get("METACLIP_COMPILE") == "1" and "editable_wheel" not in sys.argv
BUILDING_WHEEL = "bdist_wheel" in sys.argv


def ext_modules() -> list:
    from mypyc.build import mypycify

    # Third-party packages are typed as Any (the build environment need not hold them).
    return mypycify(
        ["--ignore-missing-imports", *COMPILED],
        opt_level="3",
        group_name="metaclip.extraction.compiled",  # its shared library stays in our package
    )


if COMPILE:
    try:
        import mypyc  # noqa: F401
    except ImportError:  # pip's isolated build asks for requirements first: ask for mypy
        setup(setup_requires=[MYPY])
    else:
        setup(ext_modules=ext_modules() if BUILDING_WHEEL else [])
else:
    setup()
