"""Build hook: the compliance checker's two compiled parts (everything else is in pyproject.toml).

``closeloop/assistant/compliance/plain_path.py`` is the per-text logic of the checker; compiled, it
runs the hit-dense dev set about twice as fast (docs/benchmarks.md). The compilation is optional
in every way: without mypy in the build environment, with ``CLOSELOOP_PURE_PYTHON=1``, or when the
C compiler fails, the package installs without it and Python imports the module's source (the
findings are the same; ``closeloop.assistant.compliance.matcher.plain_path_implementation`` says
which one runs). An editable install (``make install``) builds it in place, beside the source.

The prefilter's scan (``_hsscan.c``, a small C extension) collects the ids Hyperscan reports in C
instead of through a Python callback per match. It opens the system's libhs at import (``make
install`` adds Debian's libvectorscan5 where it may), so it builds without Hyperscan's headers;
like the plain path it is optional: if it does not build, or no libhs is found, the prefilter scans
through the python-hyperscan binding (``closeloop.assistant.compliance.prefilter.engine_in_use``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup

COMPILED = ["src/closeloop/assistant/compliance/plain_path.py"]
SCAN = Extension(
    "closeloop.assistant.compliance._hsscan",
    ["src/closeloop/assistant/compliance/_hsscan.c"],
    libraries=["dl"],
    extra_compile_args=["-O2"],
    optional=True,  # no C compiler: build_ext warns and the binding scans
)


def _extensions() -> list[Extension]:
    if os.environ.get("CLOSELOOP_PURE_PYTHON"):
        return []
    return [*_plain_path(), SCAN]


def _plain_path() -> list[Extension]:
    try:
        from mypyc.build import mypycify
    except ImportError:  # no mypy where the package is built: the source runs
        print("closeloop: mypyc not available, the compliance plain path stays pure Python", file=sys.stderr)
        return []
    # the project's [tool.mypy] names a plugin (pydantic) the build environment lacks; the compiled
    # module imports only ``re`` and its sibling ``finding``, so a minimal configuration serves
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as config:
        config.write("[mypy]\nmypy_path = src\nstrict = True\nignore_missing_imports = True\n")
    try:
        extensions = mypycify(["--config-file", config.name, *COMPILED], opt_level="3", debug_level="0")
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a failed compile must not fail the install
        print(f"closeloop: mypyc could not compile the plain path ({error}); it stays pure Python", file=sys.stderr)
        return []
    finally:
        Path(config.name).unlink(missing_ok=True)
    for extension in extensions:
        extension.optional = True  # no C compiler: build_ext warns and the source runs
    return extensions


setup(ext_modules=_extensions())
