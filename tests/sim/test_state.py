"""The state view: names match the documentation, values are physical and read-only."""

import math

import numpy as np
import pytest

from vid2reward.sim.envs import ENV_SPECS, get_spec, make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.state import STATE_FIELDS, StateTracker, StateView, env_context


def _step_views(env_id, n=30, seed=0):
    env = make_env(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    tracker = StateTracker(env, get_spec(env_id))
    views = []
    for _ in range(n):
        a = env.action_space.sample()
        tracker.before_step()
        _, _, term, trunc, info = env.step(a)
        view = tracker.view(a, term)
        # A view reads the live simulator: read it before the next step, as rewards do.
        values = {f.name: getattr(view, f.name) for f in STATE_FIELDS}
        values["env_is_healthy"] = bool(getattr(env.unwrapped, "is_healthy", True))
        views.append((view, values, info))
        if term or trunc:
            break
    return env, views


def test_every_documented_field_exists_on_the_view():
    public = {n for n in dir(StateView) if not n.startswith("_")}
    assert {f.name for f in STATE_FIELDS} == public


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
def test_view_values(env_id):
    env, views = _step_views(env_id)
    for _, v, info in views:
        assert v["forward_velocity"] == pytest.approx(info["x_velocity"], rel=1e-9, abs=1e-9)
        assert -1.0 <= v["uprightness"] <= 1.0
        assert 0.0 < v["torso_height"] < 3.0
        assert set(v["foot_contacts"]) == set(get_spec(env_id).foot_geoms)
        assert v["dt"] == pytest.approx(env.unwrapped.dt)
        if get_spec(env_id).planar:
            assert v["lateral_velocity"] == 0.0 and v["torso_roll"] == pytest.approx(0.0, abs=1e-9)
        assert math.isfinite(v["pitch_rate"])
        assert v["is_healthy"] == v["env_is_healthy"]
        assert v["vertical_velocity"] == pytest.approx(
            (v["torso_height"] - v["prev_torso_height"]) / v["dt"])
    for (_, before, _), (_, after, _) in zip(views[:-1], views[1:], strict=True):
        turned = (after["torso_yaw"] - before["torso_yaw"] + math.pi) % (2 * math.pi) - math.pi
        assert after["yaw_rate"] == pytest.approx(turned / after["dt"], abs=1e-6)
    env.close()


def test_view_is_read_only():
    env, views = _step_views("Hopper-v5", n=2)
    view, _, _ = views[-1]
    with pytest.raises(AttributeError):
        view.torso_height = 3.0
    with pytest.raises(ValueError):
        view.qpos[0] = 10.0
    before = env.unwrapped.data.qpos.copy()
    q = view.qpos
    assert not q.flags.writeable
    np.testing.assert_array_equal(env.unwrapped.data.qpos, before)
    env.close()


def test_hopper_feet_touch_the_floor_when_standing():
    env, views = _step_views("Hopper-v5", n=60)
    assert any(v["foot_contacts"]["foot"] for _, v, _ in views)
    env.close()


def test_unknown_env_is_a_user_error():
    with pytest.raises(UserError, match="unknown env"):
        get_spec("Nope-v0")


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
def test_env_context_documents_every_name(env_id):
    text = env_context(get_spec(env_id))
    for field in STATE_FIELDS:
        assert f"`s.{field.name}`" in text
    assert env_id in text and "compute_reward" in text
