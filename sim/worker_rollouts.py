"""PPO rollouts collected inside the env workers: one message per chunk of steps, not per step.

With the policy in the main process, every env step is a round trip: the main process computes
8 actions and waits while the workers step, the workers wait while it computes the next ones,
and each hand-over wakes a process. On 2 cores that costs more than the physics (Hopper: 0.97 ms
a step of 8 envs against 0.35 ms of stepping). Here each worker gets a numpy copy of the policy
(:class:`PolicySnapshot`) and of the observation normalisation (:class:`ObsNormalization`),
steps its own envs for a whole chunk of steps, acting with that copy, and sends back arrays
(:class:`WorkerSegment`): the normalised observations, actions, values and log-probabilities
PPO's buffer holds, the final observations of truncated episodes (the main process bootstraps
their values), and the state rows the reward program scores later (sim/segment_reward.py). Both workers step at the same time, each on its
own core; the main process only fills the buffer.

What differs from SB3's own loop, and why it is the same algorithm:
- the policy acts from a snapshot taken at the rollout's start; SB3's does too (it is not
  updated during collection);
- actions are sampled by numpy from the same Gaussian (another random stream, seeded);
- the observation statistics are frozen for a chunk and then updated with all of its
  observations (the same running mean and variance, merged by Chan's rule); chunks start at
  one step and double up to :data:`MAX_CHUNK_STEPS`, so the first steps of a training, when
  the statistics move fastest, see them updated as often as SB3 does.

:class:`WorkerRolloutPPO` is PPO with this collection; ``TrainConfig.collect_in_workers``
chooses it (sim/train.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from vid2reward.sim.segment_reward import SegmentRewardVecEnv, SegmentVecNormalize
from vid2reward.sim.vec_env import BatchedSubprocVecEnv

MAX_CHUNK_STEPS = 64
"""Steps per env a worker collects per message once the training has warmed up: 8 messages per
512-step rollout instead of 512, and the observation statistics updated 8 times."""

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def _layers(module: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(m.weight.detach().cpu().numpy().copy(), m.bias.detach().cpu().numpy().copy())
            for m in module.modules() if isinstance(m, torch.nn.Linear)]


@dataclass(frozen=True)
class PolicySnapshot:
    """An SB3 ``MlpPolicy`` (Gaussian actions, no shared layers) as numpy arrays: what a worker
    needs to act and to value observations, in float32 as torch computes them."""

    policy_layers: list[tuple[np.ndarray, np.ndarray]]
    """(weight, bias) of each hidden layer of the actor, in order."""
    value_layers: list[tuple[np.ndarray, np.ndarray]]
    """(weight, bias) of each hidden layer of the critic."""
    action_layer: tuple[np.ndarray, np.ndarray]
    value_layer: tuple[np.ndarray, np.ndarray]
    log_std: np.ndarray
    activation: str
    """"tanh" or "relu"."""

    @classmethod
    def of(cls, policy: ActorCriticPolicy) -> PolicySnapshot:
        """The snapshot of ``policy``'s current weights."""
        extractor = policy.mlp_extractor
        activations = {type(m).__name__ for m in extractor.modules()} & {"Tanh", "ReLU"}
        if len(activations) != 1 or policy.squash_output or policy.use_sde:
            raise ValueError("only MlpPolicy with tanh or relu, no gSDE, no squashing")
        (action,), (value,) = _layers(policy.action_net), _layers(policy.value_net)
        return cls(_layers(extractor.policy_net), _layers(extractor.value_net), action, value,
                   policy.log_std.detach().cpu().numpy().copy(), activations.pop().lower())

    def _hidden(self, x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        for weight, bias in layers:
            x = x @ weight.T + bias
            x = np.tanh(x) if self.activation == "tanh" else np.maximum(x, 0)
        return x

    def values(self, obs: np.ndarray) -> np.ndarray:
        """The critic's values of (normalised) observations, shape (n,)."""
        weight, bias = self.value_layer
        return (self._hidden(obs.astype(np.float32), self.value_layers) @ weight.T + bias)[:, 0]

    def act(self, obs: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sampled actions, their values and log-probabilities for (normalised) observations,
        as SB3's ``policy(obs)`` returns them."""
        obs = obs.astype(np.float32)
        weight, bias = self.action_layer
        mean = self._hidden(obs, self.policy_layers) @ weight.T + bias
        std = np.exp(self.log_std)
        actions = mean + std * rng.standard_normal(mean.shape, dtype=np.float32)
        log_prob = (-((actions - mean) ** 2) / (2 * std ** 2) - self.log_std
                    - _LOG_SQRT_2PI).sum(axis=1)
        return actions, self.values(obs), log_prob


@dataclass(frozen=True)
class ObsNormalization:
    """``VecNormalize``'s observation normalisation at one moment (its statistics copied)."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    clip: float

    @classmethod
    def of(cls, venv: SegmentVecNormalize) -> ObsNormalization | None:
        """The normalisation ``venv`` applies now (None when it does not normalise
        observations)."""
        if not venv.norm_obs:
            return None
        rms: Any = venv.obs_rms
        return cls(rms.mean.copy(), rms.var.copy(), float(venv.epsilon), float(venv.clip_obs))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip,
                       self.clip)


@dataclass(frozen=True)
class WorkerSegment:
    """What one worker collected: ``steps`` steps of its ``n`` envs (arrays are steps x n x ...)."""

    observations: np.ndarray
    """The normalised observations the policy acted on (what PPO's buffer stores)."""
    actions: np.ndarray
    """The sampled actions (before clipping to the action space, as SB3 stores them)."""
    values: np.ndarray
    log_probs: np.ndarray
    truncated: np.ndarray
    """Where an episode was cut by its time limit (PPO bootstraps its value there)."""
    finals: np.ndarray
    """The raw final observation of each truncated episode (zeros elsewhere)."""
    dones: np.ndarray
    next_observations: np.ndarray
    """The raw observations each step returned (a new episode's first, after a done)."""
    rows: np.ndarray
    """The state fields the reward program reads (sim/segment_reward.py)."""
    env_rewards: np.ndarray
    schema: dict[str, Any] | None
    """The rows' layout, when this segment holds a worker's first step."""


def collect_segment(envs: DummyVecEnv, policy: PolicySnapshot, normalize: ObsNormalization | None,
                    last_obs: np.ndarray, steps: int, seed: int) -> dict[str, Any]:
    """In an env worker: step ``envs`` (StateRecorders) ``steps`` times from ``last_obs`` (their
    raw observations now), acting with ``policy``. Returns a :class:`WorkerSegment` as a dict
    (the main process unpickles replies with an allowlist of plain data)."""
    rng = np.random.default_rng(seed)
    space: Any = envs.action_space
    n = envs.num_envs
    keep: dict[str, list[np.ndarray]] = {k: [] for k in (
        "observations", "actions", "values", "log_probs", "truncated", "finals", "dones",
        "next_observations", "rows", "env_rewards")}
    schema = None
    obs = last_obs
    for _ in range(steps):
        seen = obs if normalize is None else normalize(obs)
        actions, values, log_probs = policy.act(seen, rng)
        envs.step_async(np.clip(actions, space.low, space.high))
        step_obs, _, dones, infos = envs.step_wait()
        obs = np.asarray(step_obs)  # a Box space: one array
        truncated = np.zeros(n, dtype=bool)
        finals = np.zeros_like(obs)
        for i, info in enumerate(infos):
            final = info.get("terminal_observation")
            if dones[i] and final is not None and info.get("TimeLimit.truncated", False):
                truncated[i], finals[i] = True, final
            schema = schema or info.get("reward_schema")
        for key, value in (("observations", seen), ("actions", actions), ("values", values),
                           ("log_probs", log_probs), ("truncated", truncated), ("finals", finals),
                           ("dones", dones), ("next_observations", obs),
                           ("rows", np.stack([info["reward_row"] for info in infos])),
                           ("env_rewards", np.array([info["env_reward"] for info in infos]))):
            keep[key].append(np.asarray(value))
    return {**{k: np.stack(v) for k, v in keep.items()}, "schema": schema}


class WorkerRolloutPPO(PPO):
    """PPO whose rollouts the env workers collect (:func:`collect_segment`), chunk by chunk.

    Its env must be a :class:`SegmentVecNormalize` over a :class:`SegmentRewardVecEnv` over a
    :class:`BatchedSubprocVecEnv`: rewards come later, from the reward process, exactly as in the
    step-by-step segment path. Callbacks see every step (``on_step`` once per step, with
    ``num_timesteps`` counted), after the chunk that holds it was collected.
    """

    chunk_seed = 0
    """Counts the chunks collected, so each worker's random stream is new for every chunk."""

    def _stack(self, env: VecEnv) -> tuple[SegmentVecNormalize, SegmentRewardVecEnv,
                                           BatchedSubprocVecEnv]:
        norm = env
        if not isinstance(norm, SegmentVecNormalize):
            raise TypeError("WorkerRolloutPPO needs a SegmentVecNormalize env")
        segment = norm.venv
        if not isinstance(segment, SegmentRewardVecEnv) or not isinstance(
                segment.venv, BatchedSubprocVecEnv):
            raise TypeError("WorkerRolloutPPO needs segment scoring over env workers")
        return norm, segment, segment.venv

    def _chunk(self, workers: BatchedSubprocVecEnv, norm: SegmentVecNormalize,
               snapshot: PolicySnapshot, steps: int) -> WorkerSegment:
        normalize = ObsNormalization.of(norm)
        raw = np.asarray(norm.get_original_obs())
        base = (int(self.seed or 0) * 1_000_003 + self.chunk_seed) * len(workers.slices)
        self.chunk_seed += 1
        parts = workers.run_in_workers(collect_segment, [
            (snapshot, normalize, raw[sl], steps, base + w)
            for w, sl in enumerate(workers.slices)], steps=steps)
        merged = {k: np.concatenate([p[k] for p in parts], axis=1)
                  for k in parts[0] if k != "schema"}
        schema = next((p["schema"] for p in parts if p["schema"] is not None), None)
        return WorkerSegment(**merged, schema=schema)

    def _bootstraps(self, norm: SegmentVecNormalize, part: WorkerSegment) -> np.ndarray:
        """gamma x the value of each truncated episode's final observation, normalised with the
        statistics that include the chunk (as VecNormalize normalises it), else 0 (SB3's
        timeout handling)."""
        bootstraps = np.zeros(part.truncated.shape, dtype=np.float32)
        if part.truncated.any():
            finals = norm.normalize_obs(part.finals[part.truncated])
            with torch.no_grad():
                values = self.policy.predict_values(obs_as_tensor(finals, self.device))  # type: ignore[arg-type]
            bootstraps[part.truncated] = self.gamma * values.numpy()[:, 0]
        return bootstraps

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback,
                         rollout_buffer: RolloutBuffer, n_rollout_steps: int) -> bool:
        """Fill ``rollout_buffer`` with ``n_rollout_steps`` steps of every env (SB3's
        contract: False when a callback stopped the training)."""
        norm, segment, workers = self._stack(env)
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        assert self._last_episode_starts is not None  # set by learn() before the first rollout
        episode_starts = self._last_episode_starts
        snapshot = PolicySnapshot.of(self.policy)  # the policy does not change during a rollout
        space: Any = self.action_space
        done = 0
        infos: list[dict[str, Any]] = [{} for _ in range(env.num_envs)]  # for callbacks' locals
        while done < n_rollout_steps:
            warm = self.num_timesteps // env.num_envs
            steps = min(n_rollout_steps - done, MAX_CHUNK_STEPS, max(1, warm))
            part = self._chunk(workers, norm, snapshot, steps)
            kept = steps
            for t in range(steps):
                self.num_timesteps += env.num_envs
                dones = part.dones[t]  # noqa: F841 - in the locals callbacks read, as in SB3's loop
                callback.update_locals(locals())
                if not callback.on_step():
                    kept = t + 1
                    break
            segment.record(part.rows[:kept], np.clip(part.actions[:kept], space.low, space.high),
                           part.dones[:kept], part.env_rewards[:kept], part.schema)
            if norm.training and norm.norm_obs:
                norm.obs_rms.update(part.next_observations[:kept].reshape(  # type: ignore[union-attr]
                    -1, part.next_observations.shape[-1]))
            norm.old_obs = part.next_observations[kept - 1]
            if kept < steps:
                return False
            bootstraps = self._bootstraps(norm, part)
            for t in range(steps):
                rollout_buffer.add(part.observations[t], part.actions[t], bootstraps[t],
                                   episode_starts, torch.as_tensor(part.values[t]),
                                   torch.as_tensor(part.log_probs[t]))
                episode_starts = part.dones[t]
            done += steps
        self._last_episode_starts = episode_starts
        self._last_obs = norm.normalize_obs(norm.old_obs)
        with torch.no_grad():
            values = self.policy.predict_values(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=episode_starts)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True
