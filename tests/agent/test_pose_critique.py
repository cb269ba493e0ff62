"""A person's pose in the expert video reaches the critic and the offline engineer: expert pose
features from real footage, learner pose features from simulator state, deltas with the pose
vocabulary's scales, and library terms that move them."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import NumericEngineer, Observation
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


def _mean_clock_reward(compute, stride_hz, amplitude, phase=0.0, seconds=2.0):
    """The gait_clock term's mean over a thigh swing d(t) = amplitude sin(2 pi stride_hz t + phase)."""
    values = []
    for t in np.arange(0.0, seconds, 0.008):
        d = amplitude * math.sin(2 * math.pi * stride_hz * t + phase)
        s = SimpleNamespace(time=t, gait_angles={"hip_left": d / 2, "hip_right": -d / 2})
        values.append(compute(s, np.zeros(6))[1]["gait_clock"])
    return float(np.mean(values))


def test_gait_clock_pays_for_swinging_in_step_with_the_clock():
    weights = {**default_params(["gait_clock"]), "gait_clock_hz": 1.29, "clock_amplitude": 0.6}
    source = write_program(["gait_clock"], weights, "clock")
    assert "GAIT_CLOCK_HZ = 1.29" in source and '"gait_clock_hz"' not in source
    compute = load_reward_program(source, name="c").compute
    assert _mean_clock_reward(compute, 1.29, 0.6) > 0.99
    # out of phase, slower, faster, smaller, standing still, a small fast jitter
    for other in [(1.29, 0.6, math.pi), (0.8, 0.6), (2.6, 0.6), (1.29, 0.15), (0.0, 0.0),
                  (5.16, 0.15)]:
        assert _mean_clock_reward(compute, *other) < 0.5, other


def test_the_draft_swings_the_thighs_at_the_persons_rhythm_on_a_clock_the_search_keeps():
    person = {"forward_speed": 0.6, "pose_cadence_hz": 2.58, "pose_hip_range_deg": 34.3}
    engineer = NumericEngineer(get_spec("Walker2d-v5"), seed=0)
    plans = engineer.draft(person, 3).candidates
    assert "gait_clock" in plans[0].terms
    assert all(p.weights["gait_clock_hz"] == pytest.approx(1.29) for p in plans)  # 2 steps/stride
    assert plans[0].weights["clock_amplitude"] == pytest.approx(math.radians(34.3))
    assert plans[1].weights["clock_amplitude"] != plans[0].weights["clock_amplitude"]  # searched
    robot = NumericEngineer(get_spec("Walker2d-v5"), seed=0).draft({"forward_speed": 0.6}, 1)
    assert "gait_clock" not in robot.candidates[0].terms  # no person seen: no human rhythm


def test_the_engineers_steps_leave_the_clock_as_drafted():
    """The clock is the policy's input, not a searched number: no step or perturbation moves
    it, and a cadence delta does not bring in a second rhythm term (the clock sets it)."""
    person = {"forward_speed": 0.6, "pose_cadence_hz": 2.58, "pose_hip_range_deg": 34.3}
    engineer = NumericEngineer(get_spec("Walker2d-v5"), seed=0)
    draft = engineer.draft(person, 3).candidates
    learner = {"forward_speed": 0.3, "pose_cadence_hz": 4.0, "pose_hip_range_deg": 8.0}
    observations = [Observation(f"iter-001/cand-0{i}", 1, plan, learner, 0.2 + 0.01 * i)
                    for i, plan in enumerate(draft)]
    fb = FeatureCritic().critique(person, learner, feedback_id="fb", iteration=1,
                                  candidate_id="iter-001/cand-02")
    assert any(d.feature == "pose_cadence_hz" for d in fb.deltas)
    step = engineer.propose(observations, fb, 2, 3, [0.22])
    assert all(c.weights["gait_clock_hz"] == pytest.approx(1.29) for c in step.candidates)
    assert "gait_clock_hz" not in step.notes["gradient"]
    assert all("gait_rhythm" not in c.terms for c in step.candidates)
    assert any(c.weights["clock_amplitude"] != draft[2].weights["clock_amplitude"]
               for c in step.candidates)  # the amplitude is searched
