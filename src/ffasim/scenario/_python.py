"""Scenarios written in Python: a ``.py`` file that defines ``SCENARIO`` or ``scenario()``.

The file is executed as a module of its own. It must define either ``SCENARIO``, a
:class:`~ffasim.scenario.Scenario`, or ``scenario()``, a function of no arguments returning one.
Any exception while loading becomes a :class:`ScenarioError` naming the file and the line
that raised.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path as FsPath
from typing import Any

from ._errors import ScenarioError
from ._model import Scenario


def _line_in(file: str, exc: BaseException) -> int | None:
    """The last line of ``file`` in ``exc``'s traceback."""
    target = FsPath(file).resolve()
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if FsPath(frame.filename).resolve() == target:
                line = frame.lineno
        except OSError:
            continue
    return line


def _wrap(file: str, exc: Exception) -> ScenarioError:
    if isinstance(exc, ScenarioError):
        return ScenarioError(exc.problem, file=file, line=_line_in(file, exc))
    if isinstance(exc, SyntaxError):
        return ScenarioError(f"invalid Python: {exc.msg}", file=file, line=exc.lineno)
    return ScenarioError(f"{type(exc).__name__}: {exc}", file=file, line=_line_in(file, exc))


def load_python(path: str | FsPath) -> Scenario:
    """The scenario that Python file ``path`` defines (``SCENARIO`` or ``scenario()``)."""
    file = str(path)
    fs = FsPath(path)
    if not fs.is_file():
        raise ScenarioError("cannot read: No such file or directory", file=file)
    name = f"_ffasim_scenario_{abs(hash(str(fs.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, fs)
    if spec is None or spec.loader is None:
        raise ScenarioError("cannot load as a Python module", file=file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    source = "SCENARIO"
    try:
        spec.loader.exec_module(module)
        obj: Any = getattr(module, "SCENARIO", None)
        if obj is None:
            factory = getattr(module, "scenario", None)
            if factory is None:
                raise ScenarioError("defines neither SCENARIO nor scenario()", file=file)
            if not callable(factory):
                raise ScenarioError("scenario must be a function returning a Scenario", file=file)
            source = "scenario()"
            obj = factory()
    except ScenarioError as e:
        if e.file == file:
            raise
        raise _wrap(file, e) from None
    except SystemExit as e:  # exit() at import time would end ffasim itself
        raise ScenarioError(f"called exit({e.code!r}) while loading", file=file) from None
    except Exception as e:
        raise _wrap(file, e) from None
    finally:
        sys.modules.pop(name, None)
    if not isinstance(obj, Scenario):
        what = "SCENARIO must be" if source == "SCENARIO" else "scenario() must return"
        raise ScenarioError(
            f"{what} a ffasim.scenario.Scenario, got {type(obj).__name__}", file=file
        )
    return obj
