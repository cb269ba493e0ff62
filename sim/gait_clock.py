"""A gait clock: a phase the policy can see, so that a reward can ask for a rhythm in time.

A reward program may declare a module-level number ``GAIT_CLOCK_HZ = f``. Training (and every
rollout of a policy trained so) then appends ``(sin 2 pi f t, cos 2 pi f t)`` to the env's
observation, ``t`` the time since the episode started, and the program reads the same phase
from ``s.time``: a term such as "the thighs' difference follows A sin(2 pi f t)" pays for a
rhythm the policy can keep in step with. Without a clock a policy must invent its own
oscillator from its joint state, and PPO rarely does within a short budget; periodic-reward
locomotion work gives the policy such a phase input (DeepMimic's motion phase; the cycle clock
of Siekmann et al. 2021, "Sim-to-real learning of all common bipedal gaits via periodic reward
composition").

The frequency is read from the program's syntax tree, not by running it: the program is
hostile input, and the process that builds the envs is not its sandbox.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from vid2reward.sim.errors import RewardError

CLOCK_NAME = "GAIT_CLOCK_HZ"
"""The module-level name a reward program assigns its clock's frequency (Hz) to."""

CLOCK_RANGE_HZ = (0.05, 20.0)
"""Frequencies a clock may have: slower than one cycle per 20 s or faster than the control
rate's Nyquist limit (~30-60 Hz) at a margin is a mistake, not a gait."""


def declared_clock_hz(source: str, name: str = "<reward>") -> float | None:
    """The ``GAIT_CLOCK_HZ`` that ``source`` assigns at module level, or None when it has none
    (or does not parse: loading the program reports that).

    Raises:
        RewardError: the name is assigned something other than a number in
            :data:`CLOCK_RANGE_HZ`.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    assignments = clock_assignments(tree)
    if not assignments:
        return None
    assigned = assignments[-1].value  # the last module-level assignment wins, as when run
    assert assigned is not None
    try:
        value: Any = ast.literal_eval(assigned)
    except (ValueError, TypeError, SyntaxError):
        value = None
    lo, hi = CLOCK_RANGE_HZ
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise RewardError(f"{CLOCK_NAME} must be a number of Hz in [{lo}, {hi}] written as a "
                          f"literal, not {ast.get_source_segment(source, assigned) or '?'}",
                          where=name, fix=f"write e.g. {CLOCK_NAME} = 1.3 at the top of the program")
    return float(value)


def clock_assignments(tree: ast.Module) -> list[ast.Assign | ast.AnnAssign]:
    """The module-level statements of ``tree`` that assign ``GAIT_CLOCK_HZ`` a value, in order."""
    return [node for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            and any(isinstance(t, ast.Name) and t.id == CLOCK_NAME
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]


def policy_gait_clock(policy_dir: str | Path) -> float | None:
    """The gait clock a trained policy observes: its program's (``reward.py`` beside
    ``policy.zip``), else the one its ``metrics.json`` recorded; None when neither has one."""
    policy_dir = Path(policy_dir)
    program = policy_dir / "reward.py"
    if program.is_file():
        return declared_clock_hz(program.read_text(encoding="utf-8"), str(program))
    try:
        recorded = json.loads((policy_dir / "metrics.json").read_text()).get("gait_clock_hz")
    except (OSError, ValueError, AttributeError):
        return None
    return float(recorded) if isinstance(recorded, int | float) else None


class GaitClock(gym.Wrapper):
    """Appends the clock's ``(sin, cos)`` at the env's time since reset to each observation."""

    def __init__(self, env: gym.Env, hz: float) -> None:
        super().__init__(env)
        self.hz = float(hz)
        """The clock's frequency (Hz)."""
        self.dt = float(env.unwrapped.dt)  # type: ignore[attr-defined]  # a MujocoEnv
        inner = env.observation_space
        assert isinstance(inner, gym.spaces.Box) and len(inner.shape) == 1, inner
        self.observation_space = gym.spaces.Box(
            low=np.concatenate([inner.low, [-1.0, -1.0]]).astype(inner.dtype),
            high=np.concatenate([inner.high, [1.0, 1.0]]).astype(inner.dtype), dtype=inner.dtype)
        self.steps_since_reset = 0

    def _with_phase(self, obs: np.ndarray) -> np.ndarray:
        phase = 2 * math.pi * self.hz * self.steps_since_reset * self.dt
        return np.concatenate([obs, [math.sin(phase), math.cos(phase)]]).astype(obs.dtype)

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self.steps_since_reset = 0
        return self._with_phase(obs), info

    def step(self, action: np.ndarray):  # type: ignore[override]
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps_since_reset += 1  # s.time after this step: the reward sees this phase
        return self._with_phase(obs), reward, terminated, truncated, info
