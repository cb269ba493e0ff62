"""Motion in depth and turning read from pixels, against the simulator: probe clips of real
MuJoCo bodies carried at known velocities (sim/probe.py), measured like any clip."""

import math

import pytest

from vid2reward.sim.errors import UserError
from vid2reward.sim.probe import ProbeMotion, probe_episode
from vid2reward.tools.calibration import clip_pairs, fit_calibration, length_to_size
from vid2reward.tools.pixel_features import measure_features


def _read(env_id, motion, seconds=4.0):
    episode = probe_episode(env_id, motion, seconds=seconds)
    return episode, measure_features(episode.frames, episode.fps)


def test_an_ant_carried_away_from_the_camera_reads_depth_not_forward_speed():
    _, away = _read("Ant-v5", ProbeMotion(0.6, math.pi / 2))
    _, toward = _read("Ant-v5", ProbeMotion(0.6, -math.pi / 2))
    _, forward = _read("Ant-v5", ProbeMotion(0.6, 0.0))
    assert away.depth_speed > 0.2 and toward.depth_speed < -0.2
    assert abs(away.forward_speed) < 0.5 * away.depth_speed
    assert forward.forward_speed > 0.2 and abs(forward.depth_speed) < 0.3 * forward.forward_speed
    # the same speed reads about the same number of body lengths/s across and in depth
    assert away.depth_speed == pytest.approx(forward.forward_speed, rel=0.5)


def test_a_turn_reads_its_direction_and_rate():
    _, left = _read("Ant-v5", ProbeMotion(0.6, 0.0, 0.6), seconds=5.0)
    _, right = _read("Ant-v5", ProbeMotion(0.6, math.pi, -0.6), seconds=5.0)
    assert 0.3 < left.turning_rate < 0.9
    assert -0.9 < right.turning_rate < -0.3
    direction = [d for d in left.series["travel_direction"] if d is not None]
    assert len(direction) > 0.5 * len(left.series["t"])


def test_a_planar_body_moving_forward_reads_no_depth_and_cannot_be_carried_sideways():
    _, hopper = _read("Hopper-v5", ProbeMotion(0.6, 0.0))
    assert hopper.forward_speed > 0.2 and abs(hopper.depth_speed) < 0.15 * hopper.forward_speed
    with pytest.raises(UserError, match="plane"):
        probe_episode("Hopper-v5", ProbeMotion(0.6, math.pi / 2))


def test_probe_clips_calibrate_sideways_speed():
    """Depth pairs with the centre of mass's y velocity per window; the fit reads an expert."""
    pairs = None
    for heading in (math.pi / 2, -math.pi / 2, math.pi / 4):
        episode, measured = _read("Ant-v5", ProbeMotion(0.6, heading))
        found = clip_pairs(measured.series, measured.vector(), episode.samples, episode.dt, 0.0,
                           length_to_size(measured.body_length_px, measured.body_size_px))
        assert len(found.points["lateral_velocity"]) >= 2
        if pairs is None:
            pairs = found
        else:
            pairs.extend(found)
    cal = fit_calibration(pairs, {"depth_speed": 0.3}, 2.8, clips=3)
    fit = cal.fits["lateral_velocity"]
    assert fit.usable and fit.r2 > 0.9 and fit.slope > 0
    assert 0.2 < fit.expert_value < 0.9
