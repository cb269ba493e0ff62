"""The evaluation a user is shown of a policy: ``sim.evaluation``'s (seeded full-length
episodes, falls with their interval, behaviour from simulator state, the cadence by foot
touchdowns) plus, for a body with human legs (Walker2d, Humanoid), its gait measured from its
joints the way a person's is measured from video (``tools/pose_features.py``), over the same
episodes: each figure has one source.

A run's final check (agent/nodes/final.py), ``evaluate`` and ``export`` call
:func:`evaluate_for_user` with the same defaults (sim/seeds.py, sim/evaluation.py), so a run's
summary, its trace and ``evaluate`` of its policy show the same numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vid2reward.sim.evaluation import (
    EVALUATION_EPISODES,
    EVALUATION_MAX_STEPS,
    PolicyEvaluation,
    summarise,
)
from vid2reward.sim.reward import RewardFn
from vid2reward.sim.rollout import ActFn, Episode, LoadedPolicy, run_episodes
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.sim.state import gait_joints
from vid2reward.tools.pose_features import KeypointRecorder, gait_features


def episodes_pose(recorder: KeypointRecorder, episodes: list[Episode]) -> dict[str, float]:
    """The pose features of ``episodes`` (recorded one after another by ``recorder``): each
    episode measured on its own, then averaged over the episodes weighted by their length. An
    episode too short to show a feature (a stride needs 1.5 periods) is left out of its mean.
    Empty for a body without human legs."""
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    start = 0
    for episode in episodes:
        keypoints = recorder.keypoints(1.0 / episode.dt, start, start + episode.length)
        start += episode.length
        if keypoints is None:
            continue
        for name, value in gait_features(keypoints, smooth_seconds=0.0).vector().items():
            if value is not None and np.isfinite(value):
                sums[name] = sums.get(name, 0.0) + float(value) * episode.length
                weights[name] = weights.get(name, 0.0) + episode.length
    return {name: sums[name] / weights[name] for name in sums}


def evaluate_for_user(env_id: str, policy: LoadedPolicy | ActFn | None, *,
                      episodes: int = EVALUATION_EPISODES, seed: int = EVALUATION_SEED,
                      max_steps: int = EVALUATION_MAX_STEPS,
                      reward: RewardFn | None = None) -> PolicyEvaluation:
    """Evaluate ``policy`` over ``episodes`` deterministic episodes seeded ``seed, seed + 1,
    ...`` (by default the evaluation every report shows), with the gait of a body with human
    legs measured from its joints over the same episodes (``PolicyEvaluation.pose``).

    Args:
        env_id: a registered env id.
        policy: a loaded policy, any ``obs -> action`` function, or None for random actions.
        episodes: how many episodes (at least 1).
        seed: seed of the first episode.
        max_steps: cap on each episode's length.
        reward: a reward program (``compute_reward``, or a sandboxed ``LockstepReward``) whose
            return is reported too.
    """
    if episodes < 1:
        raise ValueError("evaluate at least one episode")
    recorder = KeypointRecorder() if gait_joints(env_id) else None
    runs = run_episodes(env_id, policy, episodes=episodes, seed=seed, max_steps=max_steps,
                        reward=reward, on_step=None if recorder is None else recorder.record)
    evaluation = summarise(runs, seed, max_steps)
    if recorder is None:
        return evaluation
    return dataclasses.replace(evaluation, pose=episodes_pose(recorder, runs))
