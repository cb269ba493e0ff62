"""Reward sources: reward components computed by our own models from rendered frames.

A reward program (sim/reward.py) is untrusted code that reads the state view inside a sandboxed
env worker. A :class:`RewardSource` is the other kind of reward: a trusted model (a CLIP reward,
a video-prediction likelihood) that scores what the body *looks like*. It is split across the
two processes a training uses:

- in each env worker, :class:`FrameTap` renders the env at low resolution every ``every``
  steps of the vectorised env's clock (all envs on the same steps, so the training process
  scores one batch every ``every`` steps, not a few frames on every step) (an off-screen renderer built before the worker is isolated, so rendering needs no
  file or device access afterwards) and ships the frame in ``info["source_frame"]``;
- in the training process, :class:`SourceRewardVecEnv` collects the frames of a step from all
  workers, scores them in one batched call to :meth:`RewardSource.components`, holds each
  env's values until its next frame, and adds them to the program's reward::

      total = program_total + source.weight * sum(source components)

  Each source component is logged per episode beside the program's (``episode_components``),
  and the episode return Monitor reported is raised by the source's share.

The model never runs inside the sandbox, and the reward code never sees the model. A source's
:meth:`~RewardSource.cache_key` goes into ``TrainConfig.reward_source``, so a cached training
is reused only with the same source.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from vid2reward.sim.envs import EnvSpec, get_spec
from vid2reward.sim.errors import UserError


@dataclass(frozen=True)
class FrameSpec:
    """The frames a source needs from every env worker."""

    width: int = 64
    """Frame width in pixels (small: a software renderer pays per pixel and per frame)."""
    height: int = 64
    """Frame height in pixels."""
    every: int = 1
    """Render every k-th env step (of the training's clock, the same step in every env); the
    source's value is held for the k-1 steps in between (zero in a new episode until its first
    frame, at most k-1 steps)."""

    def __post_init__(self) -> None:
        if self.every < 1 or self.width < 8 or self.height < 8:
            raise UserError(f"bad frame request {self.width}x{self.height} every {self.every}",
                            fix="frames of at least 8x8 pixels, rendered every 1 or more steps")


class RewardSource(ABC):
    """A reward component computed from rendered frames by a trusted model.

    Subclasses set :attr:`name`, :attr:`frames` and :attr:`weight`, and implement
    :meth:`components` and :meth:`cache_key`. One instance serves all envs of a training:
    per-env memory (a video model's past frames) is indexed by ``env_indices``.
    """

    name: str = "source"
    """Short name; prefixes the logged components."""
    frames: FrameSpec = FrameSpec()
    """Which frames, how large and how often."""
    weight: float = 1.0
    """Scale of the source's sum of components in the total reward."""

    @abstractmethod
    def components(self, frames: np.ndarray, env_indices: np.ndarray,
                   episode_starts: np.ndarray) -> dict[str, np.ndarray]:
        """Score one batch of frames.

        Args:
            frames: uint8 array (n, height, width, 3), one frame per row.
            env_indices: (n,) which env each row comes from.
            episode_starts: (n,) bool, True where the row is the first frame of an episode
                (forget that env's past frames).

        Returns:
            Named components, each a float array of shape (n,); the reward adds
            ``weight * sum`` of them.
        """

    @abstractmethod
    def cache_key(self) -> dict[str, Any]:
        """What a training result depends on: the model's content hash, the options, the
        weight and the frame request (JSON-serialisable)."""

    def describe(self) -> str:
        """One line for logs: the source and its frame request."""
        f = self.frames
        return f"{self.name} (x{self.weight:g}, {f.width}x{f.height} frames every {f.every} steps)"


# -- worker side --------------------------------------------------------------------------------

def source_renderer(model: mujoco.MjModel, data: mujoco.MjData, spec: EnvSpec, width: int,
                    height: int) -> Any:
    """A low-resolution off-screen renderer with the clip camera (torso-tracking, side view)
    and without multisampling: at 64 px it buys nothing and costs 3x the frame time on a
    software renderer."""
    from vid2reward.sim.render import ClipRenderer

    # llvmpipe's own render threads fight the other worker for the 2 cores; one is faster here.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    model.vis.quality.offsamples = 0
    return ClipRenderer(model, data, spec, width=width, height=height)


class FrameTap(gym.Wrapper):
    """Adds ``info["source_frame"]`` (uint8 H x W x 3) every ``frames.every`` steps of this
    env's life (the vectorised envs step together, so all render on the same steps).

    Wraps the reward-wrapped env inside a worker. The renderer is built here, in the worker's
    trusted setup, before reward code isolates the process.
    """

    def __init__(self, env: gym.Env, env_id: str, frames: FrameSpec) -> None:
        super().__init__(env)
        self.frames = frames
        base: Any = env.unwrapped
        self._renderer = source_renderer(base.model, base.data, get_spec(env_id), frames.width,
                                         frames.height)
        self._clock = 0  # steps since construction, not since reset: see the class docstring

    def step(self, action: np.ndarray):  # type: ignore[override]
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._clock % self.frames.every == 0:
            info["source_frame"] = self._renderer.frame()
        self._clock += 1
        return obs, reward, terminated, truncated, info


# -- training-process side ------------------------------------------------------------------------

class SourceRewardVecEnv(VecEnvWrapper):
    """Adds a :class:`RewardSource`'s components to the rewards of a vectorised env.

    Sits between the workers' envs (which must carry :class:`FrameTap`) and VecNormalize. Each
    step's frames are scored in one batch; an env without a frame this step keeps the values
    of its last one (zero before the first frame of an episode).
    """

    def __init__(self, venv: VecEnv, source: RewardSource) -> None:
        super().__init__(venv)
        self.source = source
        n = venv.num_envs
        self._held: dict[str, np.ndarray] = {}
        self._sums: dict[str, np.ndarray] = {}
        self._episode_start = np.ones(n, dtype=bool)
        self._source_return = np.zeros(n)

    def reset(self) -> np.ndarray:  # type: ignore[override]
        obs = self.venv.reset()
        self._episode_start[:] = True
        self._source_return[:] = 0.0
        for arrays in (self._held, self._sums):
            for values in arrays.values():
                values[:] = 0.0
        return obs  # type: ignore[return-value]

    def step_wait(self):  # type: ignore[override]
        obs, rewards, dones, infos = self.venv.step_wait()
        rows = [i for i, info in enumerate(infos) if "source_frame" in info]
        if rows:
            frames = np.stack([infos[i].pop("source_frame") for i in rows])
            index = np.asarray(rows)
            scored = self.source.components(frames, index, self._episode_start[index].copy())
            self._episode_start[index] = False
            for name, values in scored.items():
                values = np.asarray(values, dtype=np.float64).reshape(len(rows))
                if not np.all(np.isfinite(values)):
                    raise RuntimeError(f"reward source {self.source.name} returned a "
                                       f"non-finite {name}")
                if name not in self._held:
                    self._held[name] = np.zeros(self.num_envs)
                    self._sums[name] = np.zeros(self.num_envs)
                self._held[name][index] = values
        source_total = np.zeros(self.num_envs)
        for name, held in self._held.items():
            source_total += held
            self._sums[name] += held
        added = self.source.weight * source_total
        self._source_return += added
        rewards = np.asarray(rewards, dtype=np.float64) + added
        for i in np.flatnonzero(dones):
            info = infos[i]
            if "episode_components" in info:
                info["episode_components"] = {**info["episode_components"],
                                              **{k: float(v[i]) for k, v in self._sums.items()}}
            if "episode" in info:  # Monitor's return counted the program's reward only
                info["episode"] = {**info["episode"],
                                   "r": float(info["episode"]["r"] + self._source_return[i])}
            self._episode_start[i] = True
            self._source_return[i] = 0.0
            for arrays in (self._held, self._sums):
                for values in arrays.values():
                    values[i] = 0.0
        return obs, rewards.astype(np.float32), dones, infos
