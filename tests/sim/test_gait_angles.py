"""The simulator's gait angles mean what a video pose's angles mean: each sign is checked against
the bodies' own geometry, measured by the same code that measures a person in a video."""

import mujoco
import numpy as np
import pytest

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.state import StateTracker, env_context, gait_joints
from vid2reward.tools.pose_features import LegKeypoints, joint_angles

LEG_POINTS = {  # keypoint -> joint whose anchor it is, per env family and leg
    "Walker2d": {"right": ("thigh_joint", "leg_joint", "foot_joint", "foot_geom"),
                 "left": ("thigh_left_joint", "leg_left_joint", "foot_left_joint", "foot_left_geom")},
    "Humanoid": {"right": ("right_hip_y", "right_knee", None, None),
                 "left": ("left_hip_y", "left_knee", None, None)},
}


def _keypoints(m, d, family, ankle_of):
    """Side-view keypoints (x forward, z up) from joint anchors, like landmarks from a video."""
    def anchor(name):
        return d.xanchor[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)][[0, 2]][None]

    def body(name):
        return d.xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)][[0, 2]][None]

    nan = np.full((1, 2), np.nan)
    pts = {k: {} for k in ("hip", "knee", "ankle", "heel", "toe")}
    for leg, (hip, knee, ankle, foot) in LEG_POINTS[family].items():
        pts["hip"][leg], pts["knee"][leg] = anchor(hip), anchor(knee)
        pts["ankle"][leg] = anchor(ankle) if ankle else body(ankle_of[leg])
        pts["heel"][leg], pts["toe"][leg] = nan, nan
        if foot:
            g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, foot)
            axis = d.geom_xmat[g].reshape(3, 3)[:, 2] * m.geom_size[g, 1]
            ends = [d.geom_xpos[g] - axis, d.geom_xpos[g] + axis]
            at = d.xanchor[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, ankle)]
            ends.sort(key=lambda p: np.linalg.norm(p - at))  # the foot reaches forward from its ankle
            pts["heel"][leg], pts["toe"][leg] = ends[0][[0, 2]][None], ends[1][[0, 2]][None]
    hip_mid = (pts["hip"]["left"] + pts["hip"]["right"]) / 2
    torso = d.xmat[1].reshape(3, 3)[:, 2][[0, 2]]  # the torso's up axis
    return LegKeypoints(fps=1.0, shoulder=hip_mid + torso, **pts)


@pytest.mark.parametrize("env_id,ankle_of", [("Walker2d-v5", {}),
                                             ("Humanoid-v5", {"right": "right_foot",
                                                              "left": "left_foot"})])
def test_gait_angles_match_the_geometry_a_video_would_see(env_id, ankle_of):
    env = make_env(env_id)
    env.reset(seed=0)
    tracker = StateTracker(env, get_spec(env_id))
    m, d = env.unwrapped.model, env.unwrapped.data
    family = env_id.split("-v")[0]
    rng = np.random.default_rng(1)
    for _ in range(5):
        for joint, _sign in gait_joints(env_id).values():
            j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)
            lo, hi = m.jnt_range[j]
            d.qpos[m.jnt_qposadr[j]] = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
        mujoco.mj_forward(m, d)
        sim = tracker.view(np.zeros(m.nu)).gait_angles
        seen = joint_angles(_keypoints(m, d, family, ankle_of))
        for human, value in sim.items():
            # Humanoid's hips also roll and turn a little at rest: a few degrees apart
            assert np.degrees(value) == pytest.approx(seen[human][0], abs=4.0), human
    env.close()


def test_env_context_maps_human_joints_to_simulator_joints():
    text = env_context(get_spec("Walker2d-v5"))
    assert "| knee_left | `leg_left_joint` | -s.joint_angles['leg_left_joint'] |" in text
    assert "no ankle joint" in env_context(get_spec("Humanoid-v5"))
    assert "## Human joints" not in env_context(get_spec("Hopper-v5"))


def test_learner_pose_features_from_simulator_state_match_the_commanded_gait():
    """Joints driven kinematically at a known stride: the video's feature code reads it back."""
    from vid2reward.tools.pose_features import KeypointRecorder, gait_features

    env = make_env("Walker2d-v5")
    env.reset(seed=0)
    m, d = env.unwrapped.model, env.unwrapped.data
    tracker = StateTracker(env, get_spec("Walker2d-v5"))
    recorder = KeypointRecorder()
    adr = {name: m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)]
           for name in ("thigh_joint", "leg_joint", "thigh_left_joint", "leg_left_joint")}
    stride_hz, fps = 0.9, 50.0
    for i in range(int(4 * fps)):
        w = 2 * np.pi * stride_hz * i / fps
        for leg, phase in (("", 0.0), ("_left", np.pi)):
            d.qpos[adr[f"thigh{leg}_joint"]] = -0.4 + 0.35 * np.sin(w + phase)  # hip -0.75..-0.05
            d.qpos[adr[f"leg{leg}_joint"]] = -0.5 + 0.4 * np.sin(w + phase + 1.0)  # knee 0.1..0.9
        d.qpos[0] = 0.6 * i / fps  # walking forward at 0.6 m/s
        mujoco.mj_forward(m, d)
        recorder(tracker.view(np.zeros(m.nu)), np.zeros(m.nu))
    f = gait_features(recorder.keypoints(fps), smooth_seconds=0.0)
    assert f.pose_cadence_hz == pytest.approx(2 * stride_hz, rel=0.05)
    assert f.pose_lr_phase_deg == pytest.approx(180, abs=5)
    assert f.pose_knee_range_deg == pytest.approx(np.degrees(0.8) * 0.95, rel=0.05)
    assert f.pose_knee_max_deg == pytest.approx(np.degrees(0.9), abs=3)
    assert f.detection_rate == 1.0
    env.close()


@pytest.mark.parametrize("env_id", ["Walker2d-v5", "Humanoid-v5"])
def test_gait_rates_are_how_fast_the_gait_angles_change(env_id):
    """With random joint velocities, each rate is the change of its angle per second when
    MuJoCo moves the body along those velocities (same names, same signs)."""
    env = make_env(env_id)
    env.reset(seed=3)
    tracker = StateTracker(env, get_spec(env_id))
    m, d = env.unwrapped.model, env.unwrapped.data
    rng = np.random.default_rng(0)
    h = 1e-4
    for _ in range(5):
        d.qvel[:] = rng.uniform(-3, 3, m.nv)
        view = tracker.view(np.zeros(m.nu))
        angles, rates = view.gait_angles, view.gait_rates
        assert set(rates) == set(angles)
        mujoco.mj_integratePos(m, d.qpos, d.qvel, h)
        moved = tracker.view(np.zeros(m.nu)).gait_angles
        for name, rate in rates.items():
            assert (moved[name] - angles[name]) / h == pytest.approx(rate, abs=1e-6), name
    env.close()


def test_gait_accelerations_are_how_fast_the_gait_rates_changed_over_the_step():
    env = make_env("Walker2d-v5")
    env.reset(seed=4)
    tracker = StateTracker(env, get_spec("Walker2d-v5"))
    rng = np.random.default_rng(2)
    first = tracker.view(np.zeros(6))
    assert set(first.gait_accelerations) == set(first.gait_rates)
    tracker.reset()
    assert all(v == 0.0 for v in tracker._view.gait_accelerations.values())  # no step yet
    for _ in range(20):
        rates = dict(tracker._view.gait_rates)
        tracker.before_step()
        action = rng.uniform(-1, 1, 6)
        env.step(action)
        view = tracker.view(action)
        for name, acc in view.gait_accelerations.items():
            assert acc == pytest.approx((view.gait_rates[name] - rates[name]) / view.dt, abs=1e-9), name
    env.close()


def test_leg_length_is_thigh_plus_shank():
    from vid2reward.sim.state import leg_length

    assert leg_length("Walker2d-v5") == pytest.approx(0.45 + 0.5, abs=0.01)  # its MJCF segments
    assert 0.5 < leg_length("Humanoid-v5") < 1.0
    assert leg_length("Hopper-v5") is None  # one leg, not a human one
