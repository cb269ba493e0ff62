"""A person's pose in the expert video reaches the critic and the offline engineer: expert pose
features from real footage, learner pose features from simulator state, deltas with the pose
vocabulary's scales, and library terms that move them."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import NumericEngineer
from vid2reward.agent.engines.reward_terms import default_params, write_program
from vid2reward.agent.nodes.expert import _with_pose
from vid2reward.sim.envs import get_spec
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.rollout import run_episodes
from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS, learner_pose_features

PERSON = Path(__file__).resolve().parents[1] / "data" / "people" / "cyclist_g1.avi"
"""Real footage; auto finds no moving person and measures the most prominent one (88 %)."""


def _ctx(env_id, tmp_path):
    notes = []
    record = SimpleNamespace(expert_dir=tmp_path)
    return SimpleNamespace(config=SimpleNamespace(env_id=env_id, subject=None, subject_time=0.0), record=record,
                           note=notes.append), notes


def test_expert_pose_joins_the_pixel_features_only_for_bodies_with_human_legs(tmp_path):
    pixels = {"features": {"forward_speed": 1.0, "tilt_deg": 30.0},
              "units": {"forward_speed": "body lengths/s", "tilt_deg": "degrees"}}
    ctx, notes = _ctx("Walker2d-v5", tmp_path)
    ctx.config.expert_forward = "auto"
    measured = _with_pose(ctx, PERSON, pixels)
    assert measured["features"]["forward_speed"] == 1.0
    assert {"pose_knee_max_deg", "pose_trunk_lean_deg"} <= set(measured["features"])
    assert measured["units"]["pose_knee_max_deg"] == "degrees"
    assert "pose_cadence_hz" not in measured["features"]  # 0.64 s holds no stride: left out
    assert "tilt_deg" not in measured["features"]  # the trunk lean of the pose replaces it
    assert "pose found" in notes[0] and (tmp_path / "pose_sheet.png").is_file()
    hopper, notes = _ctx("Hopper-v5", tmp_path)
    assert _with_pose(hopper, PERSON, pixels) == pixels and not notes  # one leg: no pose


def test_pose_deltas_reach_the_feedback_and_the_engineer_adds_terms_that_move_them():
    rng = np.random.default_rng(0)
    learner = learner_pose_features("Walker2d-v5", lambda obs: rng.uniform(-1, 1, 6), seed=0,
                                    max_steps=300)
    assert "pose_knee_max_deg" in learner
    expert = {**learner, "pose_knee_max_deg": learner["pose_knee_max_deg"] + 40.0,
              "pose_lr_phase_deg": 175.0}
    learner["pose_lr_phase_deg"] = 20.0
    fb = FeatureCritic().critique(expert, learner, feedback_id="fb", iteration=1, candidate_id="c")
    knee = next(d for d in fb.deltas if d.feature == "pose_knee_max_deg")
    assert knee.direction == "increase" and knee.scale == POSE_FEATURE_DEFINITIONS[knee.feature].scale
    assert any("bends its knees too little" in p for p in fb.problems)
    added = NumericEngineer(get_spec("Walker2d-v5"), seed=0)._missing_terms(fb, ["speed", "alive"])
    assert {"knee_bend", "stride"} <= set(added)


def test_pose_terms_are_valid_reward_code_that_reads_the_joints():
    source = write_program(["alive", "knee_bend", "stride"],
                           default_params(["alive", "knee_bend", "stride"]), "pose terms")
    program = load_reward_program(source, name="pose")
    ep = run_episodes("Walker2d-v5", lambda obs: np.zeros(6), episodes=1, seed=0, max_steps=20,
                      reward=program.compute)[0]
    assert ep.program_return is not None and ep.program_return > 20 * 1.0  # alive + pose terms
    hopper = run_episodes("Hopper-v5", lambda obs: np.zeros(3), episodes=1, seed=0, max_steps=5,
                          reward=program.compute)[0]
    assert hopper.length == 5  # no gait joints: the pose terms read 0, nothing breaks


def _mean_rhythm_reward(compute, stride_hz, amplitude, seconds=2.0, phase=0.0):
    """The gait_rhythm term's mean over a thigh swing d(t) = amplitude sin(2 pi stride_hz t)."""
    values = []
    for t in np.arange(0.0, seconds, 0.008):
        d = amplitude * math.sin(2 * math.pi * stride_hz * t + phase)
        rate = amplitude * 2 * math.pi * stride_hz * math.cos(2 * math.pi * stride_hz * t + phase)
        acc = -((2 * math.pi * stride_hz) ** 2) * d
        s = SimpleNamespace(gait_angles={"hip_left": d / 2, "hip_right": -d / 2},
                            gait_rates={"hip_left": rate / 2, "hip_right": -rate / 2},
                            gait_accelerations={"hip_left": acc / 2, "hip_right": -acc / 2})
        values.append(compute(s, np.zeros(6))[1]["gait_rhythm"])
    return float(np.mean(values))


def test_gait_rhythm_pays_for_the_persons_stride_frequency_and_swing():
    weights = {**default_params(["gait_rhythm"]), "stride_hz": 1.29, "rhythm_amplitude": 0.6}
    compute = load_reward_program(write_program(["gait_rhythm"], weights, "rhythm"), name="r").compute
    at_target = _mean_rhythm_reward(compute, 1.29, 0.6)
    assert at_target > 0.99  # on the circle, at the frequency, at every instant
    # slower, faster, smaller, larger, standing still, a split held still, a small fast jitter
    for other in [(0.5, 0.6), (2.6, 0.6), (1.29, 0.2), (1.29, 1.2), (0.0, 0.0), (5.16, 0.15)]:
        assert _mean_rhythm_reward(compute, *other) < 0.5, other
    assert _mean_rhythm_reward(compute, 0.0, 0.6, phase=math.pi / 2) < 0.2  # a held split


def test_the_draft_swings_the_thighs_at_the_persons_rhythm():
    person = {"forward_speed": 0.6, "pose_cadence_hz": 2.58, "pose_hip_range_deg": 34.3}
    plan = NumericEngineer(get_spec("Walker2d-v5"), seed=0).draft(person, 3).candidates[0]
    assert "gait_rhythm" in plan.terms
    assert plan.weights["stride_hz"] == pytest.approx(1.29)  # two steps per stride
    assert plan.weights["rhythm_amplitude"] == pytest.approx(math.radians(34.3))
    robot = NumericEngineer(get_spec("Walker2d-v5"), seed=0).draft({"forward_speed": 0.6}, 1)
    assert "gait_rhythm" not in robot.candidates[0].terms  # no person seen: no human rhythm
