"""Falls: a body upside down or on the floor has fallen, whatever its env's health test says.

The states are scripted: qpos set by hand (a flipped Ant, a HalfCheetah on its back, a Humanoid
lying down), then left to settle under gravity with the motors off, and read through the same
state view a rollout records.
"""

import math

import mujoco
import numpy as np
import pytest

from vid2reward.sim.envs import ENV_SPECS, get_spec, make_env
from vid2reward.sim.evaluation import summarise
from vid2reward.sim.falls import FALL_RULES, fall_rate, fall_seconds, fallen_state, first_fall_step
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.rollout import SAMPLE_NAMES, Episode
from vid2reward.sim.state import StateTracker


def _turn(axis, angle):
    """A unit quaternion (w, x, y, z): ``angle`` rad about ``axis``."""
    return np.r_[math.cos(angle / 2), math.sin(angle / 2) * np.asarray(axis, dtype=float)]


def _scripted(env_id, pose, settle_steps=300):
    """(uprightness, torso height, the env's own health) of the body put in ``pose`` (a
    function editing qpos) and left to settle with the motors off."""
    env = make_env(env_id)
    env.reset(seed=0)
    base = env.unwrapped
    qpos = base.data.qpos.copy()
    pose(qpos)
    base.data.qpos[:] = qpos
    base.data.qvel[:] = 0.0
    mujoco.mj_forward(base.model, base.data)
    for _ in range(settle_steps):
        base.data.ctrl[:] = 0.0
        mujoco.mj_step(base.model, base.data, nstep=base.frame_skip)
    view = StateTracker(env, get_spec(env_id)).view(np.zeros(base.model.nu))
    state = view.uprightness, view.torso_height, bool(getattr(base, "is_healthy", True))
    env.close()
    return state


def _ant_on_its_back(q):
    q[2], q[3:7] = 0.6, _turn([1, 0, 0], math.pi)


def _ant_on_its_side(q):
    q[2], q[3:7] = 0.6, _turn([1, 0, 0], math.pi / 2)


def _cheetah_on_its_back(q):  # rootx, rootz (from its start height), rooty
    q[1], q[2] = -0.3, math.pi


def _humanoid_on_its_back(q):
    q[2], q[3:7] = 0.3, _turn([0, 1, 0], -math.pi / 2)


def _humanoid_on_its_front(q):
    q[2], q[3:7] = 0.3, _turn([0, 1, 0], math.pi / 2)


def _planar_lying(q):  # rootx, rootz (the torso's height), rooty
    q[1], q[2] = 0.1, math.pi / 2


FALLEN = [("Ant-v5", _ant_on_its_back), ("Ant-v5", _ant_on_its_side),
          ("HalfCheetah-v5", _cheetah_on_its_back), ("Humanoid-v5", _humanoid_on_its_back),
          ("Humanoid-v5", _humanoid_on_its_front), ("Hopper-v5", _planar_lying),
          ("Walker2d-v5", _planar_lying)]


@pytest.mark.parametrize(("env_id", "pose"), FALLEN, ids=lambda p: getattr(p, "__name__", p))
def test_a_body_upside_down_or_on_the_floor_has_fallen(env_id, pose):
    uprightness, height, _ = _scripted(env_id, pose)
    assert fallen_state(env_id, uprightness, height), (uprightness, height)


def test_the_flipped_ant_is_healthy_for_its_env_and_fallen_for_us():
    # issue 38: Ant-v5's health test is torso height only
    uprightness, height, healthy = _scripted("Ant-v5", _ant_on_its_back)
    assert healthy and uprightness < -0.8
    assert fallen_state("Ant-v5", uprightness, height)


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
def test_a_body_at_its_start_pose_has_not_fallen(env_id):
    uprightness, height, healthy = _scripted(env_id, lambda q: None, settle_steps=0)
    assert healthy and not fallen_state(env_id, uprightness, height)


@pytest.mark.parametrize("env_id", ["Ant-v5", "HalfCheetah-v5"])
def test_a_horizontal_body_standing_on_its_legs_has_not_fallen(env_id):
    # motors off, these two settle on their legs (the upright walkers fold)
    uprightness, height, _ = _scripted(env_id, lambda q: None)
    assert not fallen_state(env_id, uprightness, height), (uprightness, height)


def test_every_registered_env_has_a_fall_rule():
    assert {env_id.split("-v")[0] for env_id in ENV_SPECS} <= set(FALL_RULES)


def _episode(env_id, uprightness, height, terminated=False, dt=0.05):
    n = len(uprightness)
    samples = {name: np.zeros(n) for name in SAMPLE_NAMES}
    samples["uprightness"], samples["torso_height"] = np.asarray(uprightness), np.asarray(height)
    return Episode(env_id=env_id, dt=dt, length=n, terminated=terminated, env_return=0.0,
                   samples=samples)


def test_a_fall_is_dated_at_its_first_step():
    flips = _episode("Ant-v5", [0.95] * 100 + [-0.9] * 20 + [0.9] * 80, [0.55] * 200)
    assert first_fall_step(flips) == 101 and fall_seconds(flips) == pytest.approx(5.05)
    standing = _episode("Ant-v5", [0.95] * 200, [0.55] * 200)
    assert first_fall_step(standing) is None and fall_seconds(standing) is None
    ended = _episode("Hopper-v5", [0.99] * 30, [1.2] * 30, terminated=True)
    assert first_fall_step(ended) == 30  # the env's own test still counts
    lying = _episode("Humanoid-v5", [0.9] * 10 + [0.05] * 5, [1.3] * 10 + [0.1] * 5)
    assert first_fall_step(lying) == 11


def test_evaluation_and_metrics_count_a_flip_the_env_calls_healthy():
    episodes = [_episode("Ant-v5", [0.95] * 100 + [-0.9] * 100, [0.55] * 200),
                _episode("Ant-v5", [0.95] * 200, [0.55] * 200)]
    assert fall_rate(episodes) == 0.5
    evaluation = summarise(episodes, seed=0, max_steps=200)
    assert evaluation.fall_rate == 0.5 and evaluation.fall_seconds == [pytest.approx(5.05)]
    assert "fell in 1 of 2 episodes (50%, 95% CI 9-91%; at 5.0 s)" in evaluation.summary()
    assert behaviour_metrics(episodes).fall_rate == 0.5


def test_a_fall_rate_has_its_95_percent_wilson_interval():
    from vid2reward.sim.falls import wilson_interval

    # textbook values (Wilson 1927; e.g. Newcombe 1998, table I): 0/20 -> 0-16.1%,
    # 3/20 -> 5.2-36.0%, 0/5 -> 0-43.4%, 5/5 -> 56.6-100%
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=5e-4)
    assert wilson_interval(3, 20) == pytest.approx((0.0524, 0.3604), abs=5e-4)
    assert wilson_interval(0, 5) == pytest.approx((0.0, 0.4345), abs=5e-4)
    assert wilson_interval(5, 5) == pytest.approx((0.5655, 1.0), abs=5e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_never_falls_only_when_the_interval_allows_it():
    from vid2reward.sim.falls import describe_falls, never_falls

    # 0 of 5 is compatible with a fall rate of 43%: not "never"
    assert not never_falls(0, 5) and not never_falls(0, 15) and never_falls(0, 16)
    assert not never_falls(1, 100)
    assert describe_falls(0.0, 5) == "fell in 0 of 5 episodes (95% CI 0-43%: too few to say it never falls)"
    assert describe_falls(0.0, 20) == "never fell in 20 episodes (fall rate below 16%, 95% CI)"
    assert describe_falls(0.1, 20, [4.94, 5.2]) == "fell in 2 of 20 episodes (10%, 95% CI 3-30%; at 4.9, 5.2 s)"
    assert describe_falls(0.2, "-") == "fell in 20% of - episodes"  # a record without a count


def test_many_falls_are_dated_by_their_range_and_median():
    from vid2reward.sim.falls import describe_falls

    assert describe_falls(0.3, 20, [1.0, 1.2, 0.9, 3.0, 1.1, 1.0]) == (
        "fell in 6 of 20 episodes (30%, 95% CI 15-52%; at 0.9-3.0 s, median 1.1 s)")
