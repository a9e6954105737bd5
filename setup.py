"""Optional compiled build: METACLIP_COMPILE=1 compiles the extraction hot path.

    METACLIP_COMPILE=1 pip install .        # C extensions (needs a C compiler)
    pip install .                           # pure Python (the default, and every editable install)

Three parts, the same rows (tests/test_compiled.py builds the wheel and checks on every extraction
input), about 1.5x faster WAT extraction and 4x faster language ID (docs/benchmarks.md):
- mypyc (part of mypy) compiles these typed modules as they are written, from the same source;
- Cython compiles metaclip/extraction/_watpage.pyx, the WAT page path in C (wat._add_fast and
  PairBuffer.add_images, which stay the specification and the pure build's code);
- Cython compiles metaclip/extraction/_lid.pyx, fastText's prediction bit for bit (fastText
  itself stays the specification and the pure build's language ID).
Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# The compilers: build requirements only (the extensions need neither at run time).
MYPY = "mypy==2.4.1"
CYTHON = "Cython==3.1.4"
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
    from Cython.Build import cythonize
    from mypyc.build import mypycify
    from setuptools import Extension

    # Third-party packages are typed as Any (the build environment need not hold them).
    mypyc_modules = mypycify(
        ["--ignore-missing-imports", *COMPILED],
        opt_level="3",
        group_name="metaclip.extraction.compiled",  # its shared library stays in our package
    )
    watpage = Extension(
        "metaclip.extraction._watpage",
        ["metaclip/extraction/_watpage.pyx"],
        define_macros=[("_GNU_SOURCE", None)],  # memmem
        extra_compile_args=["-O3"],
    )
    lid = Extension(
        "metaclip.extraction._lid",
        ["metaclip/extraction/_lid.pyx"],
        # fastText's float arithmetic exactly: no fused multiply-add, no reassociation.
        extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"],
    )
    return [*mypyc_modules, *cythonize([watpage, lid], quiet=True)]


if COMPILE:
    try:
        import Cython  # noqa: F401
        import mypyc  # noqa: F401
    except ImportError:  # pip's isolated build asks for requirements first: ask for them
        setup(setup_requires=[MYPY, CYTHON])
    else:
        setup(ext_modules=ext_modules() if BUILDING_WHEEL else [])
else:
    setup()
