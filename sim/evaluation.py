"""Honest evaluation of a policy: N seeded episodes on the unmodified env, mean ± std.

One helper for every reader that asks "how good is this policy": the learning benchmark, the
search's candidate evaluation, ``render`` and ``evaluate``. Episodes are deterministic (the
policy's mean action) and seeded ``seed, seed + 1, ...``, so two policies evaluated with the
same seed face the same initial states. What a user is told about a policy (a run's final check,
``evaluate``, ``export``) is :data:`EVALUATION_EPISODES` full-length episodes from
``sim.seeds.EVALUATION_SEED`` (``tools/policy_evaluation.py`` adds the gait of a body with
human legs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from vid2reward.sim.falls import describe_falls, fall_rate, fall_seconds
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.reward import RewardFn
from vid2reward.sim.rollout import ActFn, Episode, LoadedPolicy, run_episodes
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.sim.state import StateView

EVALUATION_EPISODES = 20
"""Episodes of every evaluation a user is shown: 20 fall-free episodes bound the fall rate below
16% (95% Wilson interval), enough to say "never fell" (``sim.falls.NEVER_FALLS_BELOW``);
5 would leave 43%. 20 full-length episodes are 20,000 env steps, ~5 s on one core."""
EVALUATION_MAX_STEPS = 1000
"""Steps per evaluation episode: the envs' own time limit (an episode that reaches it did not
fall)."""


@dataclass(frozen=True)
class PolicyEvaluation:
    """A policy's performance over seeded episodes (means and standard deviations)."""

    env_id: str
    episodes: int
    seed: int
    """First episode seed."""
    max_steps: int
    """Cap on each episode's length (an episode that reaches it did not fall)."""
    env_return_mean: float
    """The env's own reward, summed per episode."""
    env_return_std: float
    length_mean: float
    """Episode length, steps."""
    length_std: float
    fall_rate: float
    """Fraction of episodes in which the body fell (sim/falls.py: the env ended the episode
    early, or the body turned upside down or lay on the floor, which some envs call healthy)."""
    metrics: dict[str, float]
    """Simulator-state behaviour metrics (sim/metrics.py) over all episodes."""
    program_return_mean: float | None = None
    """The reward program's return per episode, when one was given."""
    program_return_std: float | None = None
    fall_seconds: list[float] = field(default_factory=list)
    """When each episode that fell first fell, s of simulated time (in episode order)."""
    pose: dict[str, float] = field(default_factory=dict)
    """For a body with human legs, its gait measured from its joints over the same episodes the
    way a person's is measured from video (``tools/policy_evaluation.py``; the keys of
    ``tools.pose_features.POSE_FEATURE_DEFINITIONS``); empty otherwise."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line: return, length and falls, with their spread."""
        text = (f"env return {self.env_return_mean:.1f} ± {self.env_return_std:.1f}, "
                f"length {self.length_mean:.0f} ± {self.length_std:.0f} of {self.max_steps}, "
                + describe_falls(self.fall_rate, self.episodes, self.fall_seconds))
        if self.program_return_mean is not None:
            text = (f"reward return {self.program_return_mean:.1f} ± "
                    f"{self.program_return_std or 0.0:.1f}, " + text)
        return text


def summarise(episodes: list[Episode], seed: int, max_steps: int) -> PolicyEvaluation:
    """A :class:`PolicyEvaluation` of episodes already run (``run_episodes``)."""
    if not episodes:
        raise ValueError("no episodes to evaluate")
    env_returns = np.array([e.env_return for e in episodes])
    lengths = np.array([e.length for e in episodes], dtype=np.float64)
    program = [e.program_return for e in episodes if e.program_return is not None]
    return PolicyEvaluation(
        env_id=episodes[0].env_id, episodes=len(episodes), seed=seed, max_steps=max_steps,
        env_return_mean=float(env_returns.mean()), env_return_std=float(env_returns.std()),
        length_mean=float(lengths.mean()), length_std=float(lengths.std()),
        fall_rate=fall_rate(episodes),
        fall_seconds=[round(t, 3) for t in map(fall_seconds, episodes) if t is not None],
        metrics=behaviour_metrics(episodes).to_dict(),
        program_return_mean=float(np.mean(program)) if program else None,
        program_return_std=float(np.std(program)) if program else None)


def evaluate_policy(env_id: str, policy: LoadedPolicy | ActFn | None, *,
                    episodes: int = EVALUATION_EPISODES, seed: int = EVALUATION_SEED,
                    max_steps: int = EVALUATION_MAX_STEPS, reward: RewardFn | None = None,
                    on_step: Callable[[StateView], None] | None = None) -> PolicyEvaluation:
    """Run ``episodes`` seeded episodes of ``policy`` (None: uniform random actions); by
    default the evaluation every user-facing report shows.

    Args:
        env_id: a registered env id.
        policy: a loaded policy, any ``obs -> action`` function, or None for random actions.
        episodes: how many episodes (at least 1).
        seed: seed of the first episode; the others follow.
        max_steps: cap on each episode's length.
        reward: a trusted reward program's ``compute_reward`` whose return is reported too.
        on_step: called with every step's state view (``run_episodes``).
    """
    if episodes < 1:
        raise ValueError("evaluate at least one episode")
    runs = run_episodes(env_id, policy, episodes=episodes, seed=seed, max_steps=max_steps,
                        reward=reward, on_step=on_step)
    return summarise(runs, seed, max_steps)


Checkpoint = Callable[[int, float, PolicyEvaluation], None]
"""``(steps, training_seconds, evaluation)``, called at each checkpoint."""


class CheckpointEvaluation(BaseCallback):
    """Evaluates the policy being trained every ``every_steps`` env steps (SB3 callback).

    The clock it reports counts training only: the time spent evaluating is taken out, so a
    learning curve against wall-clock says what training alone costs. With ``time_limit`` it
    also stops training once that much training time is spent.
    """

    def __init__(self, env_id: str, every_steps: int, on_checkpoint: Checkpoint, *,
                 episodes: int = 5, seed: int = 0, max_steps: int = 1000,
                 reward: RewardFn | None = None, time_limit: float | None = None,
                 gait_clock_hz: float | None = None) -> None:
        super().__init__()
        self.gait_clock_hz = gait_clock_hz
        """The gait clock of the program being trained (its GAIT_CLOCK_HZ), if any."""
        self.env_id = env_id
        self.every_steps = every_steps
        self.on_checkpoint = on_checkpoint
        self.episodes, self.seed, self.max_steps, self.reward = episodes, seed, max_steps, reward
        self.time_limit = time_limit
        self.next_at = every_steps
        self.last_evaluated_at = -1
        self.started = 0.0
        self.evaluating = 0.0
        self.hit_time_limit = False

    def training_seconds(self) -> float:
        """Wall-clock seconds since training started, minus the time spent evaluating."""
        return time.monotonic() - self.started - self.evaluating

    def _on_training_start(self) -> None:
        self.started = time.monotonic()

    def _on_step(self) -> bool:
        if self.time_limit is not None and self.training_seconds() > self.time_limit:
            self.hit_time_limit = True
            return False
        return True

    def _on_rollout_start(self) -> None:
        # At a rollout's start the policy has been updated on every step counted so far; at its
        # end the update on the rollout just collected is still to come (one update behind).
        if self.num_timesteps >= self.next_at:
            self.next_at = (self.num_timesteps // self.every_steps + 1) * self.every_steps
            self.evaluate_now()

    def _on_training_end(self) -> None:
        # The final policy (the one saved) is always measured.
        if self.last_evaluated_at != self.num_timesteps:
            self.evaluate_now()

    def evaluate_now(self) -> None:
        """Evaluate the current policy and report it."""
        seconds = self.training_seconds()
        began = time.monotonic()
        policy = current_policy(self.model, self.env_id, self.gait_clock_hz)
        evaluation = evaluate_policy(self.env_id, policy, episodes=self.episodes, seed=self.seed,
                                     max_steps=self.max_steps, reward=self.reward)
        self.evaluating += time.monotonic() - began
        self.last_evaluated_at = self.num_timesteps
        self.on_checkpoint(int(self.num_timesteps), seconds, evaluation)


def current_policy(model: BaseAlgorithm, env_id: str,
                   gait_clock_hz: float | None = None) -> LoadedPolicy:
    """The policy being trained (on envs with ``gait_clock_hz``'s clock, if any), with a
    snapshot of its observation normalisation."""
    policy = LoadedPolicy(env_id=env_id, model=model,  # type: ignore[arg-type]
                          gait_clock_hz=gait_clock_hz)
    policy.take_normalisation(model.get_vec_normalize_env())
    return policy
