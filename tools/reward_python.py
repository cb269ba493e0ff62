"""The restricted Python a reward program runs in, inside the reward process.

Curated builtins whose ``__import__`` hands out the program's own copies of math and numpy,
and a wall-time limit (SIGALRM) that names the line it interrupted. This module imports only
the standard library and numpy: the reward process (tools/reward_worker.py) imports it before
it is isolated, and holds no simulator.
"""

from __future__ import annotations

import importlib
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

ALLOWED_IMPORTS = frozenset({"math", "numpy", "numpy.linalg", "numpy.random", "numpy.fft"})
"""Modules a reward program may import (``import numpy as np``, ``from math import pi``)."""


# -- restricted builtins --------------------------------------------------------------------------

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "complex", "dict", "divmod", "enumerate", "filter", "float",
    "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min", "next", "pow",
    "range", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip",
    # exceptions a reward may raise or catch (never BaseException: see reward_check)
    "Exception", "ArithmeticError", "AssertionError", "FloatingPointError", "IndexError",
    "KeyError", "LookupError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
)


def _private_modules() -> dict[str, ModuleType]:
    """Fresh copies of math, numpy and its allowed submodules for one reward program.

    A program that assigns ``np.isfinite = ...`` or deletes ``np.float64`` changes only its
    own copies: the trusted harness in the same process keeps computing with the real ones.
    """
    import numpy

    def copy(module: ModuleType) -> ModuleType:
        clone = ModuleType(module.__name__, module.__doc__)
        clone.__dict__.update(module.__dict__)
        return clone

    modules = {"math": copy(math), "numpy": copy(numpy)}
    for name in sorted(ALLOWED_IMPORTS):
        if name.startswith("numpy."):
            sub = copy(importlib.import_module(name))
            modules[name] = sub
            setattr(modules["numpy"], name.partition(".")[2], sub)
    return modules


def _importer(modules: dict[str, ModuleType]) -> Callable[..., ModuleType]:
    def safe_import(name: str, globals: Mapping[str, Any] | None = None,
                    locals: Mapping[str, Any] | None = None,
                    fromlist: tuple[str, ...] | None = (), level: int = 0) -> ModuleType:
        """``__import__`` for reward programs: their own copies of math and numpy only."""
        if level != 0 or name not in modules:
            raise ImportError(f"import of '{name}' is not allowed in a reward program")
        if not fromlist and "." in name:  # `import numpy.linalg` binds the name `numpy`
            return modules[name.partition(".")[0]]
        return modules[name]
    return safe_import


def _discard_print(*args: Any, **kwargs: Any) -> None:
    """``print`` for reward programs: debugging prints run, and print nothing."""


def safe_builtins() -> dict[str, Any]:
    """A fresh curated builtins dict for one reward module (nothing shared between modules),
    whose ``__import__`` hands out the module's private copies of math and numpy."""
    import builtins
    table = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table["__import__"] = _importer(_private_modules())
    table["print"] = _discard_print
    return table


# -- time limits --------------------------------------------------------------------------------

class SandboxTimeout(BaseException):  # noqa: N818 - reads like the events it reports
    """Raised in reward code when a time limit of :func:`time_limit` expires.

    A BaseException so that a reward's ``except Exception`` cannot swallow it (reward_check
    forbids bare ``except:``).
    """


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`SandboxTimeout` in the block after ``seconds`` of wall time (SIGALRM).

    Python code is interrupted between bytecodes; a single long C call is interrupted when it
    returns, which is why the caller also bounds the whole process. An alarm that was already
    armed (a training worker's step timeout) is restored afterwards. Outside the main thread,
    where signals cannot be used, the block runs unbounded (the process limits still apply).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise SandboxTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # re-arm the outer alarm with what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))


def program_line(exc: BaseException, filename: str) -> int | None:
    """The line of the reward program (compiled as ``filename``) an exception last passed."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None
