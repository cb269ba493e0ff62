"""A reward program as data: loading one from source, and checking what it returns.

Nothing here imports gymnasium or MuJoCo: the reward process (tools/reward_worker.py), which
runs untrusted programs and holds no simulator, loads programs through this module alone.
:func:`load_reward_program` is the single entry point that turns source into a callable; the
sandbox hardens it by checking the source first and passing restricted builtins.
"""

from __future__ import annotations

import hashlib
import math
import traceback
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from vid2reward.sim.errors import RewardError

RewardFn = Callable[[Any, np.ndarray], tuple[float, dict[str, float]]]
"""``compute_reward(s, a)``: ``s`` a state view (sim/state.py, or its copy in the reward process)."""

MAX_COMPONENTS = 64
"""Most components a program may return: each is logged per episode and kept in metrics.json."""

MAX_COMPONENT_NAME = 64
"""Longest component name, in characters."""


@dataclass
class RewardProgram:
    """A loaded reward program."""

    source: str
    """The program's source code."""
    name: str
    """Where it came from (a file path or a label), for messages."""
    compute: RewardFn
    """The program's ``compute_reward``."""
    weights: dict[str, float] = field(default_factory=dict)
    """The program's ``WEIGHTS`` (empty when it has none)."""

    @property
    def sha256(self) -> str:
        """Content hash of the source: the identity of a reward version."""
        return program_sha256(self.source)


def program_sha256(source: str) -> str:
    """The one content hash that names a reward version (sha256 of the UTF-8 source)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def load_reward_program(path_or_source: str | Path, *, name: str | None = None,
                        exec_globals: Mapping[str, Any] | None = None) -> RewardProgram:
    """Load a reward program from a file path or from source text.

    Args:
        path_or_source: a ``Path`` (or a string naming an existing ``.py`` file), or source code.
        name: label for messages; defaults to the file path or ``"<reward>"``.
        exec_globals: globals to run the module in (the sandbox passes restricted builtins);
            by default the module runs with ordinary builtins.

    Raises:
        RewardError: the file is missing, the code does not run, ``compute_reward`` is missing,
            or ``WEIGHTS`` is not a dict of names to numbers.
    """
    source, label = read_reward_source(path_or_source, name)
    namespace: dict[str, Any] = dict(exec_globals or {})
    namespace.setdefault("__name__", "reward_program")
    try:
        code = compile(source, label, "exec")
    except SyntaxError as exc:
        raise RewardError(f"syntax error on line {exc.lineno}: {exc.msg}", where=label,
                          fix="fix the Python syntax") from None
    try:
        exec(code, namespace)  # noqa: S102 - the sandbox checks the source before this point
    except Exception as exc:  # any failure of user code while defining the module
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == label]
        at_line = f" on line {lines[-1]}" if lines else ""
        raise RewardError(one_line(f"the module raised {type(exc).__name__}{at_line} while "
                                   f"loading: {exc}"),
                          where=label, fix="the module's top level may only define names") from None
    compute = namespace.get("compute_reward")
    if not callable(compute):
        raise RewardError("no compute_reward(s, a) function", where=label,
                          fix="define `def compute_reward(s, a): return total, components`")
    weights = namespace.get("WEIGHTS", {})
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in weights.items()):
        raise RewardError("WEIGHTS must be a dict of names to numbers", where=label,
                          fix='write e.g. WEIGHTS = {"forward": 1.0, "ctrl": 0.001}')
    weights = {k: float(v) for k, v in weights.items()}
    if "WEIGHTS" in namespace:  # read-only from here: the weights recorded are the ones used
        namespace["WEIGHTS"] = MappingProxyType(dict(weights))
    return RewardProgram(source=source, name=label, compute=compute, weights=weights)


def read_reward_source(path_or_source: str | Path, name: str | None = None) -> tuple[str, str]:
    """``(source, label)`` for a file path (a ``Path``, or a string naming a ``.py`` file) or
    for source text, without running anything; ``label`` is ``name``, the path or ``"<reward>"``.

    Raises:
        RewardError: a file that is missing or unreadable.
    """
    if isinstance(path_or_source, Path) or (
            isinstance(path_or_source, str) and "\n" not in path_or_source
            and path_or_source.endswith(".py")):
        path = Path(path_or_source)
        if not path.is_file():
            raise RewardError("reward file not found", where=str(path),
                              fix="give the path of a Python file defining compute_reward")
        try:
            return path.read_text(encoding="utf-8"), name or str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RewardError(f"cannot read the reward file: {exc}", where=str(path),
                              fix="give the path of a readable UTF-8 .py file") from None
    return str(path_or_source), name or "<reward>"


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (whitespace runs collapsed, control and format characters such as
    ANSI escapes and bidi overrides removed), cut to ``limit`` characters.

    Messages from reward code end up in metrics.json and on a terminal: a program must not be
    able to spread them over many lines, repaint the terminal or fill the disk with them.
    """
    raw = str(text)[: 4 * limit]
    printable = "".join(ch if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
                        else "" for ch in raw)
    flat = " ".join(printable.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_component_names(components: dict[Any, Any], where: str) -> None:
    """Raise :class:`RewardError` unless the components are at most :data:`MAX_COMPONENTS`,
    named by printable strings of at most :data:`MAX_COMPONENT_NAME` characters."""
    if len(components) <= MAX_COMPONENTS and _CHECKED_NAMES.issuperset(components):
        return  # the common case, every step: names already seen and found good
    if len(components) > MAX_COMPONENTS:
        raise RewardError(f"compute_reward returned {len(components)} components, more than "
                          f"{MAX_COMPONENTS}", where=where,
                          fix="return a few named terms; sum the rest into one")
    for key in components:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_COMPONENT_NAME \
                or one_line(key, MAX_COMPONENT_NAME) != key:
            shown = one_line(repr(key), 40)
            raise RewardError(f"component name {shown} is not a short printable string "
                              f"(1-{MAX_COMPONENT_NAME} characters, no control characters or "
                              f"spaces at the ends)", where=where,
                              fix="name components like 'forward' or 'ctrl_cost'")
        if len(_CHECKED_NAMES) < 4 * MAX_COMPONENTS:
            _CHECKED_NAMES.add(key)


_CHECKED_NAMES: set[str] = set()


def describe_exception(exc: BaseException, filename: str, step: int | None = None) -> str:
    """One line naming an exception from ``compute_reward``, the episode step and the line of
    the program (``filename`` is the name it was compiled under) where it was raised."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    at_step = f" at episode step {step}" if step is not None else ""
    at_line = f" (line {lines[-1]})" if lines else ""
    return one_line(f"compute_reward raised {type(exc).__name__}{at_step}{at_line}: {exc}")


def real_number(value: Any) -> float:
    """``value`` as a float if it is a real number: a Python or numpy int or float, or a 0-d
    numpy array of one; never a bool, a string, bytes or a complex (``float("7.5")`` and
    ``float(True)`` would pass them off as numbers).

    Raises:
        TypeError: anything else.
        OverflowError: an int too large for a float.
    """
    kind = type(value)
    if kind is float or kind is np.float64:  # the common case, every step
        return float(value)
    if isinstance(value, bool | np.bool_):
        raise TypeError(kind.__name__)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    raise TypeError(type(value).__name__)


def check_reward_output(result: Any, where: str) -> tuple[float, dict[str, float]]:
    """Validate what ``compute_reward`` returned: a finite float total and a dict of floats."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise RewardError(f"compute_reward returned {type(result).__name__}, not (total, components)",
                          where=where, fix="return a tuple: total, {name: value, ...}")
    total, components = result
    try:
        total = real_number(total)
    except OverflowError:
        raise RewardError("the total is too large for a float", where=where,
                          fix="keep the reward in a sensible range, e.g. with np.clip") from None
    except TypeError:
        raise RewardError(f"the total is {type(total).__name__}, not a number", where=where,
                          fix="return a float as the first item") from None
    if not math.isfinite(total):
        raise RewardError(f"the total is {total}", where=where,
                          fix="guard divisions and exponentials so the reward stays finite")
    if not isinstance(components, dict):
        raise RewardError(f"components are {type(components).__name__}, not a dict", where=where,
                          fix="return a dict of component name -> float as the second item")
    check_component_names(components, where)
    checked: dict[str, float] = {}
    for key, value in components.items():
        try:
            number = real_number(value)
        except OverflowError:
            raise RewardError(f"component '{key}' is too large for a float", where=where,
                              fix="keep every term of moderate size, e.g. with np.clip") from None
        except TypeError:
            raise RewardError(f"component '{key}' is {type(value).__name__}, not a number",
                              where=where, fix="return a float for every component") from None
        if not math.isfinite(number):
            raise RewardError(f"component '{key}' is {number}", where=where,
                              fix="guard divisions and exponentials so every term stays finite")
        checked[str(key)] = number
    return total, checked
