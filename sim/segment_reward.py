"""The reward of a whole rollout segment at once, computed off the simulator's path.

A reward does not change the dynamics, so training need not know it step by step: the env
workers step the physics and copy out, per step, the state fields the program reads
(:class:`StateRecorder`: one float64 row, :mod:`vid2reward.sim.state_record`); the main process
collects the rows of a rollout (:class:`SegmentRewardVecEnv`) and, when PPO's rollout buffer is
full, sends them to the reward process in one batch (:class:`BatchReward`, e.g.
``tools.reward_client.RemoteCompute``): one round trip per rollout instead of one per step.
The rewards then go into the buffer (:class:`SettlingRolloutBuffer`) before returns and
advantages are computed, normalised exactly as ``VecNormalize`` would have normalised them
step by step (:class:`SegmentVecNormalize`), with the bootstrap PPO adds at truncations kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import BUG_FIX, RewardError
from vid2reward.sim.reward_wire import RewardBatch
from vid2reward.sim.state import StateTracker
from vid2reward.sim.state_record import StateSchema, encode, schema_for


@runtime_checkable
class BatchReward(Protocol):
    """A reward program that scores many states in one call (its ``compute`` attribute)."""

    fields: list[str]
    """The state fields the program reads: what each row carries."""

    def compute_rows(self, schema: StateSchema, rows: np.ndarray,
                     actions: np.ndarray) -> RewardBatch:
        """The program's outputs on ``rows`` (laid out by ``schema``) and their actions.

        Raises:
            RewardError: the program failed on a row (the message names it) or could not run.
        """
        ...


@runtime_checkable
class RowFailure(Protocol):
    """A :class:`BatchReward`'s error that knows the row it failed on, and can say it at
    that state's episode step instead (what a step-by-step failure says)."""

    row: int | None

    def at_step(self, step: int) -> RewardError:
        """The same failure, named by episode step."""
        ...


class StateRecorder(gym.Wrapper):
    """In an env worker: the env unchanged, plus ``info["reward_row"]``, the state fields a
    program reads after each step (and ``info["reward_schema"]`` with the first one), and
    ``info["env_reward"]``. The reward it returns is 0: the program's comes later."""

    def __init__(self, env: gym.Env, fields: list[str], env_id: str) -> None:
        super().__init__(env)
        self.fields = fields
        self.tracker = StateTracker(env, get_spec(env_id))
        self.schema: StateSchema | None = None

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self.tracker.reset()
        return obs, info

    def step(self, action: np.ndarray):  # type: ignore[override]
        self.tracker.before_step()
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        view = self.tracker.view(action, terminated)
        values = {name: getattr(view, name) for name in self.fields}
        if self.schema is None:
            self.schema = schema_for(values, action)
            info["reward_schema"] = self.schema.to_json()
        row = np.empty(self.schema.width)
        encode(values, self.schema, row)
        info["reward_row"] = row
        info["env_reward"] = float(env_reward)
        return obs, 0.0, terminated, truncated, info


class SegmentRewardVecEnv(VecEnvWrapper):
    """In the main process, over workers whose envs are :class:`StateRecorder` s: keeps each
    step's rows, actions and dones until :meth:`settle` scores them all.

    Step rewards are 0 (placeholders). Finished episodes (length, the program's return, the
    env's own return, each component's sum) are listed in :attr:`episodes` as they settle.
    """

    def __init__(self, venv: VecEnv, reward: BatchReward, name: str) -> None:
        super().__init__(venv)
        self.reward = reward
        self.name = name
        self.schema: StateSchema | None = None
        self.episodes: list[dict[str, Any]] = []
        self._clear_segment()
        self._new_episodes(np.ones(self.num_envs, dtype=bool))

    def _clear_segment(self) -> None:
        self._rows: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._dones: list[np.ndarray] = []
        self._env_rewards: list[np.ndarray] = []

    def _new_episodes(self, which: np.ndarray) -> None:
        n = self.num_envs
        if not hasattr(self, "_length"):
            self._length = np.zeros(n, dtype=int)
            self._return = np.zeros(n)
            self._env_return = np.zeros(n)
            self._components: list[dict[str, float]] = [{} for _ in range(n)]
        for i in np.flatnonzero(which):
            self._length[i], self._return[i], self._env_return[i] = 0, 0.0, 0.0
            self._components[i] = {}

    def reset(self) -> np.ndarray:  # type: ignore[override]
        self._clear_segment()
        self._new_episodes(np.ones(self.num_envs, dtype=bool))
        observations = self.venv.reset()
        assert isinstance(observations, np.ndarray)  # the MuJoCo tasks have Box observations
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions.append(np.array(actions, dtype=np.float64).reshape(self.num_envs, -1))
        self.venv.step_async(actions)

    def step_wait(self):  # type: ignore[override]
        obs, _, dones, infos = self.venv.step_wait()
        rows = []
        for info in infos:
            if self.schema is None and "reward_schema" in info:
                self.schema = StateSchema.from_json(info["reward_schema"])
            info.pop("reward_schema", None)
            rows.append(info.pop("reward_row"))
        self._rows.append(np.stack(rows))
        self._dones.append(np.asarray(dones, dtype=bool).copy())
        self._env_rewards.append(np.array([info.get("env_reward", 0.0) for info in infos]))
        return obs, np.zeros(self.num_envs, dtype=np.float32), dones, infos

    def record(self, rows: np.ndarray, actions: np.ndarray, dones: np.ndarray,
               env_rewards: np.ndarray, schema: dict[str, Any] | None = None) -> None:
        """Keep steps the env workers collected themselves (sim/worker_rollouts.py), as
        :meth:`step_wait` keeps them one by one: arrays of (steps, n_envs, ...); the actions
        as the envs were given them. ``schema``: the rows' layout, if it came with them."""
        if self.schema is None and schema is not None:
            self.schema = StateSchema.from_json(schema)
        for t in range(rows.shape[0]):
            self._rows.append(rows[t])
            self._actions.append(np.asarray(actions[t], dtype=np.float64).reshape(self.num_envs, -1))
            self._dones.append(np.asarray(dones[t], dtype=bool).copy())
            self._env_rewards.append(np.asarray(env_rewards[t], dtype=np.float64))

    def settle(self) -> tuple[np.ndarray, np.ndarray]:
        """Score the steps since the last call: ``(rewards, dones)``, each (steps, n_envs).

        Raises:
            RewardError: the program failed on some state, or returned NaN or inf.
        """
        if not self._rows:
            empty = np.zeros((0, self.num_envs))
            return empty, empty.astype(bool)
        if self.schema is None:
            raise RewardError("no state layout arrived from the env workers", where=self.name,
                              fix=BUG_FIX)
        steps, n = len(self._rows), self.num_envs
        rows = np.concatenate(self._rows)
        actions = np.concatenate(self._actions)[: rows.shape[0]]
        dones = np.stack(self._dones)
        env_rewards = np.stack(self._env_rewards)
        self._clear_segment()
        try:
            batch = self.reward.compute_rows(self.schema, rows, actions)
        except RewardError as exc:
            if isinstance(exc, RowFailure) and exc.row is not None:
                t, i = divmod(exc.row, n)
                raise exc.at_step(self._episode_step(t, i, dones)) from None
            raise
        totals = batch.totals.reshape(steps, n)
        _check_finite(batch, self.name)
        self._count_episodes(batch, totals, env_rewards, dones)
        return totals, dones

    def _episode_step(self, t: int, i: int, dones: np.ndarray) -> int:
        """The episode step (1 = the first) of env ``i``'s state ``t`` of this segment."""
        step = int(self._length[i])
        for k in range(t):
            step = 0 if dones[k, i] else step + 1
        return step + 1

    def _count_episodes(self, batch: RewardBatch, totals: np.ndarray, env_rewards: np.ndarray,
                        dones: np.ndarray) -> None:
        steps, n = totals.shape
        values = batch.values.reshape(steps, n, -1)
        present = batch.present.reshape(steps, n, -1)
        for t in range(steps):
            for i in range(n):
                self._length[i] += 1
                self._return[i] += totals[t, i]
                self._env_return[i] += env_rewards[t, i]
                sums = self._components[i]
                for j in np.flatnonzero(present[t, i]):
                    key = batch.names[j]
                    sums[key] = sums.get(key, 0.0) + float(values[t, i, j])
                if dones[t, i]:
                    self.episodes.append({"length": int(self._length[i]),
                                          "return": float(self._return[i]),
                                          "env_return": float(self._env_return[i]),
                                          "components": dict(sums)})
                    self._new_episodes(np.arange(n) == i)


def _check_finite(batch: RewardBatch, name: str) -> None:
    # Training stops at the first non-finite reward, as the step-by-step wrapper does.
    bad = ~np.isfinite(batch.totals)
    if bad.any():
        value = batch.totals[int(np.flatnonzero(bad)[0])]
        raise RewardError(f"the total is {value}", where=name,
                          fix="guard divisions and exponentials so the reward stays finite")
    bad_values = batch.present & ~np.isfinite(batch.values)
    if bad_values.any():
        row, col = (int(k[0]) for k in np.nonzero(bad_values))
        value = batch.values[row, col]
        raise RewardError(f"component '{batch.names[col]}' is {value}", where=name,
                          fix="guard divisions and exponentials so every term stays finite")


class SegmentVecNormalize(VecNormalize):
    """``VecNormalize`` whose reward statistics wait for the segment's real rewards.

    At step time the rewards are placeholders, so they update nothing and pass through;
    :meth:`normalize_segment` then replays ``VecNormalize.step_wait``'s reward steps (returns,
    their running variance, clipping, reset at episode ends) on the real rewards, in order.
    """

    def _update_reward(self, reward: np.ndarray) -> None:
        pass  # placeholders: see normalize_segment

    def normalize_reward(self, reward: np.ndarray) -> np.ndarray:
        return reward  # placeholders pass through unchanged

    def normalize_segment(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """The rewards of a segment (steps, n_envs), normalised as step by step."""
        if not hasattr(self, "segment_returns"):
            self.segment_returns = np.zeros(self.num_envs)
        out = np.empty_like(rewards, dtype=np.float64)
        for t in range(rewards.shape[0]):
            if self.training:
                self.segment_returns = self.segment_returns * self.gamma + rewards[t]
                self.ret_rms.update(self.segment_returns)
            out[t] = VecNormalize.normalize_reward(self, rewards[t])
            self.segment_returns[dones[t]] = 0
        return out

    def save(self, save_path: Any) -> None:
        """Saved as a plain ``VecNormalize`` (what SB3 and ``evaluate`` load)."""
        self.__class__ = VecNormalize  # type: ignore[assignment]
        try:
            VecNormalize.save(self, save_path)
        finally:
            self.__class__ = SegmentVecNormalize


class SettlingRolloutBuffer(RolloutBuffer):
    """PPO's rollout buffer that adds each segment's rewards (from :attr:`settle`) before it
    computes returns and advantages; the bootstrap PPO added at truncations stays."""

    settle: Callable[[], np.ndarray] | None = None

    def compute_returns_and_advantage(self, last_values: Any, dones: np.ndarray) -> None:
        if self.settle is not None:
            rewards = self.settle()
            if rewards.shape != self.rewards.shape:
                raise RewardError(f"a rollout of {rewards.shape[0]} steps was scored for a "
                                  f"buffer of {self.rewards.shape[0]}", fix=BUG_FIX)
            self.rewards += rewards.astype(self.rewards.dtype)
        super().compute_returns_and_advantage(last_values, dones)

