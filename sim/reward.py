"""Reward programs: loading one, and a Gymnasium wrapper that trains on it.

A reward program is one Python module with ``compute_reward(s, a) -> (total, components)``
and, optionally, ``WEIGHTS`` (named numbers). :func:`load_reward_program` is the single entry
point that turns source into a callable; the sandbox in ``vid2reward.tools`` hardens it by
checking the source first and passing restricted builtins (``exec_globals``).
"""

from __future__ import annotations

import hashlib
import math
import traceback
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import gymnasium as gym
import numpy as np

from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import RewardError
from vid2reward.sim.state import StateTracker, StateView

RewardFn = Callable[[StateView, np.ndarray], tuple[float, dict[str, float]]]

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
            raise RewardError(f"cannot read the reward file: {exc}", where=str(path)) from None
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


def check_reward_output(result: Any, where: str) -> tuple[float, dict[str, float]]:
    """Validate what ``compute_reward`` returned: a finite float total and a dict of floats."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise RewardError(f"compute_reward returned {type(result).__name__}, not (total, components)",
                          where=where, fix="return a tuple: total, {name: value, ...}")
    total, components = result
    try:
        total = float(total)
    except OverflowError:
        raise RewardError("the total is too large for a float", where=where,
                          fix="keep the reward in a sensible range, e.g. with np.clip") from None
    except Exception:  # noqa: BLE001 - whatever the value's __float__ raises
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
            number = float(value)
        except OverflowError:
            raise RewardError(f"component '{key}' is too large for a float", where=where) from None
        except Exception:  # noqa: BLE001 - whatever the value's __float__ raises
            raise RewardError(f"component '{key}' is {type(value).__name__}, not a number",
                              where=where) from None
        if not math.isfinite(number):
            raise RewardError(f"component '{key}' is {number}", where=where,
                              fix="guard divisions and exponentials so every term stays finite")
        checked[str(key)] = number
    return total, checked


_MODEL_OPTIONS = ("timestep", "gravity", "wind", "magnetic", "density", "viscosity",
                  "impratio", "tolerance", "integrator", "disableflags", "enableflags")
_MODEL_ARRAYS = ("body_mass", "body_inertia", "body_pos", "geom_friction", "geom_size",
                 "geom_solref", "dof_damping", "dof_armature", "dof_frictionloss", "jnt_range",
                 "jnt_stiffness", "actuator_gear", "actuator_ctrlrange", "actuator_gainprm",
                 "actuator_biasprm")


def model_fingerprint(env: gym.Env) -> int:
    """A checksum of the physics that a reward must never change (options, masses, friction,
    gears...); 0 for an env without a MuJoCo model. Checked once per episode: cheap."""
    model = getattr(env.unwrapped, "model", None)
    if model is None:
        return 0
    crc = 0
    for name in _MODEL_OPTIONS:
        crc = zlib.crc32(np.asarray(getattr(model.opt, name, 0)).tobytes(), crc)
    for name in _MODEL_ARRAYS:
        crc = zlib.crc32(np.ascontiguousarray(getattr(model, name, 0)).tobytes(), crc)
    return crc


class RewardWrapper(gym.Wrapper):
    """Replaces the env's reward with a reward program's total.

    Each step's components are recorded (summed per episode, and the last step's kept in
    :attr:`last_components`); the env's own reward goes to ``info["env_reward"]``. At the end of
    an episode ``info["episode_components"]`` holds each component's sum over the episode and
    ``info["episode_env_return"]`` the env's own return, so a training loop can log them
    without shipping a dict across processes every step.
    """

    def __init__(self, env: gym.Env, program: RewardProgram, env_id: str | None = None) -> None:
        super().__init__(env)
        self.program = program
        self.tracker = StateTracker(env, get_spec(env_id or env.spec.id))  # type: ignore[union-attr]
        self._model_print = model_fingerprint(env)
        self._sums: dict[str, float] = {}
        self._env_return = 0.0
        self.last_components: dict[str, float] = {}

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self.tracker.reset()
        self._sums = {}
        self._env_return = 0.0
        return obs, info

    def step(self, action: np.ndarray):  # type: ignore[override]
        self.tracker.before_step()
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        view = self.tracker.view(action, terminated)
        try:  # `action` was applied already: changing it in place alters no physics
            result = self.program.compute(view, action)
        except RewardError:
            raise
        except Exception as exc:  # the program's own bug: report it with its step and line
            raise RewardError(describe_exception(exc, self.program.name, view.step),
                              where=self.program.name) from None
        total, components = check_reward_output(result, self.program.name)
        sums = self._sums
        for key, value in components.items():
            sums[key] = sums.get(key, 0.0) + value
        self._env_return += float(env_reward)
        info["env_reward"] = float(env_reward)
        self.last_components = components
        if terminated or truncated:
            if model_fingerprint(self.env) != self._model_print:
                raise RewardError("the simulator's model (gravity, masses, friction, ...) "
                                  "changed during the episode", where=self.program.name,
                                  fix="reward code may only read the state view s")
            info["episode_components"] = dict(sums)
            info["episode_env_return"] = self._env_return
        return obs, total, terminated, truncated, info
