"""A learned reward as a plain Gymnasium env, sandboxed as in training (``vid2reward.make_env``).

:class:`SandboxedRewardEnv` is a ``gymnasium.Env`` whose reward is a reward program's total.
The physics and the program run in one worker process, isolated by the OS before the
program's first line and limited in memory, exactly like a training worker
(:mod:`vid2reward.tools.reward_training`); this process only sends actions and receives
observations, rewards and infos, read with the safe unpickler. So any RL code (SB3, a
CleanRL-style loop) can train on an untrusted reward program without running it.

:class:`LockstepReward` serves evaluations: it steps such an env beside an unmodified local
env with the same seed and actions (MuJoCo is deterministic), so ``run_episodes`` measures
the policy on the local env and reads the program's return from the sandbox.

Worker processes start from a clean forkserver: a script that creates these envs at its top
level needs the usual ``if __name__ == "__main__":`` guard, as with SB3's SubprocVecEnv.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from vid2reward.sim.envs import get_spec
from vid2reward.sim.envs import make_env as make_plain_env
from vid2reward.sim.errors import BUG_FIX
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.reward import RewardError, RewardWrapper
from vid2reward.sim.state import StateView
from vid2reward.sim.vec_env import BatchedSubprocVecEnv
from vid2reward.tools.reward_isolation import require_isolation, trusted_by_user
from vid2reward.tools.reward_sandbox import (
    DEFAULT_LIMITS,
    SandboxLimits,
    apply_limits,
    forkserver_context,
    load_deferred,
    sandboxed_program,
)

ENV_LIMITS = dataclasses.replace(DEFAULT_LIMITS, cpu_seconds=None)
"""The limits of an env's worker: as training's, but no total CPU-time budget (a training's
budget scales with its steps; an env's lifetime is the caller's). Each step stays bounded by
``step_seconds`` and memory by ``memory_mb``."""


def _make_worker_env(env_id: str, source: str, name: str, trust: bool, load_seconds: float,
                     max_episode_steps: int | None, gait_clock_hz: float | None) -> gym.Env:
    # Runs in the worker: build the env (reads model files), then the program loads and the
    # process is isolated at the first step, as in a training worker.
    kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    program = load_deferred(source, name, load_seconds=load_seconds, trust=trust)
    return RewardWrapper(make_plain_env(env_id, gait_clock_hz, **kwargs), program, env_id)


class SandboxedRewardEnv(gym.Env):
    """A Gymnasium env whose reward is a reward program's total, run in a sandboxed worker.

    Observations, actions, termination and truncation are the unmodified env's (observations
    with the program's gait clock appended when it declares ``GAIT_CLOCK_HZ``, as in
    training); ``reward`` is the program's total; ``info["env_reward"]`` is the env's own
    reward, and at the end of an episode ``info["episode_components"]`` and
    ``info["episode_env_return"]`` hold the sums.
    ``render`` is not supported (``vid2reward render`` renders a trained policy).
    ``gait_clock_hz`` overrides the observation's clock (None: none) where the policy acting
    was trained on another program than the one that scores it.

    Raises (from the constructor):
        UserError: unknown env, a missing or statically rejected program, or an OS that cannot
            isolate reward code without ``trust_reward_code``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env_id: str, reward: str | Path, *, max_episode_steps: int | None = None,
                 trust_reward_code: bool | None = None, limits: SandboxLimits = ENV_LIMITS,
                 gait_clock_hz: float | None | Literal["program"] = "program") -> None:
        get_spec(env_id)
        trust = trusted_by_user() if trust_reward_code is None else trust_reward_code
        require_isolation(trust)
        self.program = sandboxed_program(reward)  # static check; it never runs here
        self.env_id = env_id
        self.spec = gym.spec(env_id)
        if max_episode_steps is not None:
            self.spec = dataclasses.replace(self.spec, max_episode_steps=max_episode_steps)
        self.gait_clock_hz = (declared_clock_hz(self.program.source, self.program.name)
                              if gait_clock_hz == "program" else gait_clock_hz)
        factory = partial(_make_worker_env, env_id, self.program.source, self.program.name, trust,
                          limits.load_seconds, max_episode_steps, self.gait_clock_hz)
        forkserver_context()  # the clean, preloaded forkserver the sandbox's jobs use
        self._venv = BatchedSubprocVecEnv([factory], num_workers=1, start_method="forkserver",
                                          worker_init=partial(apply_limits, limits),
                                          step_timeout=limits.step_seconds)
        self.observation_space = self._venv.observation_space
        self.action_space = self._venv.action_space

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (``seed`` seeds the env, as ``gymnasium.Env.reset`` does)."""
        super().reset(seed=seed)
        if seed is not None:
            self._venv.seed(seed)
        if options:
            self._venv.set_options(options)
        obs = self._venv.reset()
        return np.asarray(obs)[0], dict(self._venv.reset_infos[0])

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One env step; the reward is the program's total.

        Raises:
            RewardError: the program raised or returned a bad value.
            EnvWorkerError: the worker overran the step timeout, died or was killed.
        """
        obs, rewards, dones, infos = self._venv.step(np.asarray([action]))
        first = np.asarray(obs)[0]  # a Box-observation env: one array, not a dict of them
        info = dict(infos[0])
        truncated = bool(info.pop("TimeLimit.truncated", False))
        terminal = info.pop("terminal_observation", None)
        terminated = bool(dones[0]) and not truncated
        # The worker starts the next episode at once (vectorised envs do); the caller still
        # gets this episode's last observation, and its next reset() starts a fresh episode.
        return (terminal if terminal is not None else first), float(rewards[0]), terminated, \
            truncated, info

    def close(self) -> None:
        """Stop the worker process."""
        self._venv.close()


class LockstepReward:
    """A reward program's return for ``run_episodes``, computed in a sandboxed env that takes
    the same seeds and actions as the evaluation's own env.

    ``reset(seed)`` starts an episode; each call steps the sandboxed env with the action and
    returns the program's (total, components). An episode that ends at a different step in the
    two envs raises: the two did not move alike, so the return would belong to another episode.
    """

    def __init__(self, env_id: str, reward: str | Path, *, max_steps: int,
                 trust_reward_code: bool | None = None) -> None:
        self.env = SandboxedRewardEnv(env_id, reward, max_episode_steps=max_steps,
                                      trust_reward_code=trust_reward_code)
        self.ended_at: int | None = None
        self.steps = 0

    def reset(self, seed: int) -> None:
        """Start the episode seeded ``seed`` (the evaluation's env was reset with it too)."""
        self.finish()
        self.env.reset(seed=seed)
        self.ended_at, self.steps = None, 0

    def __call__(self, view: StateView, action: np.ndarray) -> tuple[float, dict[str, float]]:
        if self.ended_at is not None:
            raise self._diverged(f"the sandboxed env ended its episode at step {self.ended_at}, "
                                 f"the evaluation did not")
        _, total, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if terminated or truncated:
            self.ended_at = self.steps
        return total, {}

    def finish(self) -> None:
        """Check that the episode just run ended in the sandboxed env too.

        Raises:
            RewardError: it did not (the two envs diverged).
        """
        if self.steps and self.ended_at is None:
            raise self._diverged(f"the evaluation ended its episode at step {self.steps}, the "
                                 f"sandboxed env did not")

    def close(self) -> None:
        """Stop the sandboxed env's worker."""
        self.env.close()

    def _diverged(self, what: str) -> RewardError:
        return RewardError(f"the reward's env and the evaluation's env diverged: {what}",
                           where=self.env.program.name, fix=BUG_FIX)


def make_reward_env(env_id: str, reward: str | Path | None = None, *,
                    max_episode_steps: int | None = None,
                    trust_reward_code: bool | None = None) -> gym.Env:
    """``env_id`` with a learned reward (a :class:`SandboxedRewardEnv`), or the plain env when
    ``reward`` is None. See :func:`vid2reward.make_env`."""
    if reward is None:
        kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
        return make_plain_env(env_id, **kwargs)
    return SandboxedRewardEnv(env_id, reward, max_episode_steps=max_episode_steps,
                              trust_reward_code=trust_reward_code)
