"""Reward programs: loading one, and a Gymnasium wrapper that trains on it.

A reward program is one Python module with ``compute_reward(s, a) -> (total, components)``
and, optionally, ``WEIGHTS`` (named numbers). :func:`load_reward_program` is the single entry
point that turns source into a callable; the sandbox in ``vid2reward.tools`` hardens it by
checking the source first and passing restricted builtins (``exec_globals``).
"""

from __future__ import annotations

import zlib
from typing import Any

import gymnasium as gym
import numpy as np

from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import RAISED_FIX, RewardError
from vid2reward.sim.reward_program import (  # noqa: F401 - the public names of reward programs
    MAX_COMPONENT_NAME,
    MAX_COMPONENTS,
    RewardFn,
    RewardProgram,
    check_component_names,
    check_reward_output,
    describe_exception,
    load_reward_program,
    one_line,
    program_sha256,
    read_reward_source,
)
from vid2reward.sim.state import StateTracker

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
                              where=self.program.name, fix=RAISED_FIX) from None
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
