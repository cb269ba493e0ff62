"""The evaluation a user is shown: a body's gait measured from its joints over the evaluation
episodes, each episode on its own, averaged by length."""

import numpy as np
import pytest

from tests.tools.test_pose_features import synthetic_walker
from vid2reward.sim.rollout import Episode
from vid2reward.tools.policy_evaluation import episodes_pose, evaluate_for_user
from vid2reward.tools.pose_features import LEGS, KeypointRecorder, gait_features


def _recorded(*walkers):
    """A recorder holding the walkers' keypoints one episode after another, and the episodes."""
    recorder, episodes = KeypointRecorder(), []
    for k in walkers:
        n = k.shoulder.shape[0]
        for i in range(n):
            step = {"shoulder": k.shoulder[i]}
            for g in LEGS:
                for part in ("hip", "knee", "ankle", "heel", "toe"):
                    step[f"{part}_{g}"] = getattr(k, part)[g][i]
            recorder.steps.append(step)
        episodes.append(Episode(env_id="Walker2d-v5", dt=1.0 / k.fps, length=n, terminated=False,
                                env_return=0.0, samples={}))
    return recorder, episodes


def test_each_episodes_gait_is_measured_alone_then_averaged_by_length():
    slow, _ = synthetic_walker(stride_hz=0.9, seconds=6.0)   # 1.8 steps/s for 180 frames
    fast, _ = synthetic_walker(stride_hz=1.2, seconds=3.0)   # 2.4 steps/s for 90 frames
    recorder, episodes = _recorded(slow, fast)
    pose = episodes_pose(recorder, episodes)
    each = [gait_features(k, smooth_seconds=0.0).vector() for k in (slow, fast)]
    assert pose["pose_cadence_hz"] == pytest.approx(
        (180 * each[0]["pose_cadence_hz"] + 90 * each[1]["pose_cadence_hz"]) / 270)
    assert pose["pose_cadence_hz"] == pytest.approx(2.0, rel=0.05)
    assert set(pose) <= set(each[0])


def test_the_evaluation_of_a_body_with_legs_carries_its_pose_and_a_hopper_none():
    walker = evaluate_for_user("Walker2d-v5", None, episodes=2, max_steps=60)
    assert walker.episodes == 2 and walker.seed == 7000 and walker.max_steps == 60
    assert "pose_trunk_lean_deg" in walker.pose and np.isfinite(walker.pose["pose_trunk_lean_deg"])
    assert evaluate_for_user("Hopper-v5", None, episodes=1, max_steps=60).pose == {}
