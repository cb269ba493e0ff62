"""Calibration: pixel features -> physical units, fitted on learner clips whose state is known."""

import numpy as np
import pytest

from vid2reward.tools.calibration import (
    MIN_POINTS,
    CalibrationPairs,
    clip_pairs,
    fit_calibration,
    length_to_size,
)


def _clip(seconds=8.0, fps=30.0, dt=0.008, speed_l=0.5, metres_per_size=0.4, to_size=4.0):
    """A clip moving at ``speed_l`` L/s whose state moves at the matching m/s."""
    n = int(seconds * fps)
    t = np.arange(n) / fps
    steps = int(seconds / dt)
    series = {"t": t.tolist(), "forward_velocity": [0.0] + [speed_l] * (n - 1),
              "height_ratio": [0.9] * n, "tilt_deg": [5.0] * n}
    state = {"forward_velocity": np.full(steps, speed_l * to_size * metres_per_size),
             "torso_height": 1.2 + 0.01 * np.sin(np.arange(steps) * dt * 2 * np.pi),
             "torso_pitch": np.full(steps, 0.1)}
    return series, state, dt


def test_clip_pairs_window_the_clip_and_convert_lengths_to_body_sizes():
    series, state, dt = _clip()
    pairs = clip_pairs(series, {"vertical_oscillation": 0.02, "cadence_hz": 1.0}, state, dt,
                       state_cadence_hz=1.0, to_size=4.0)
    speed = np.array(pairs.points["forward_velocity"])
    assert len(speed) == 4  # 2 s windows over 8 s (the last one ends with the clip)
    np.testing.assert_allclose(speed[:, 0], 0.5 * 4.0)  # L/s -> body sizes/s
    np.testing.assert_allclose(speed[:, 1], 0.8)
    assert len(pairs.points["torso_height"]) >= 15  # half-second windows
    assert pairs.points["torso_height_std"][0][0] == pytest.approx(0.08)
    assert pairs.points["cadence_hz"] == [[1.0, 1.0]]


def test_a_fall_gives_its_windows_but_no_rhythm():
    series, state, dt = _clip(seconds=1.3)
    pairs = clip_pairs(series, {"vertical_oscillation": 0.02, "cadence_hz": 1.0}, state, dt,
                       state_cadence_hz=1.0, to_size=4.0)
    assert len(pairs.points["forward_velocity"]) == 1  # the part of a 2 s window it lasted
    assert "cadence_hz" not in pairs.points and "torso_height_std" not in pairs.points


def test_fit_reads_the_expert_through_the_learners_fit():
    pairs = CalibrationPairs()
    for speed in (0.0, 0.2, 0.5, 1.0):
        series, state, dt = _clip(speed_l=speed)
        pairs.extend(clip_pairs(series, {}, state, dt, 0.0, to_size=4.0))
    # the expert's clip is measured with another L (another pose): 3 body sizes per L
    cal = fit_calibration(pairs, {"forward_speed": 0.6}, expert_to_size=3.0, clips=4)
    fit = cal.fits["forward_velocity"]
    assert fit.usable and fit.points >= MIN_POINTS
    assert fit.slope == pytest.approx(0.4)
    assert fit.expert_value == pytest.approx(0.6 * 3.0 * 0.4)
    assert cal.expert_values()["forward_velocity"] == pytest.approx(0.72)


def test_a_fit_with_too_few_points_or_no_signal_is_not_used():
    pairs = CalibrationPairs(points={"forward_velocity": [[1.0, 0.4], [2.0, 0.8]],
                                     "torso_height": [[0.9, 1.0], [0.8, 1.3], [0.7, 0.9],
                                                      [0.9, 1.25], [0.8, 0.95], [0.7, 1.2]]})
    cal = fit_calibration(pairs, {"forward_speed": 1.0, "height_ratio": 0.8}, 1.0, clips=2)
    assert not cal.fits["forward_velocity"].usable  # 2 points < MIN_POINTS
    assert not cal.fits["torso_height"].usable  # heights unrelated to the pixels: R² ~ 0
    assert cal.expert_values() == {}
    assert any("[not used]" in line for line in cal.table())


def test_a_well_correlated_but_scattered_lean_fit_is_not_used():
    # HalfCheetah's case: the tilt follows the pitch (R² 0.9) but scatters by ~0.1 rad, too
    # coarse to set a lean target from; the same line with 0.01 rad of scatter is used
    rng = np.random.default_rng(0)
    tilt = np.linspace(-60.0, 60.0, 40)
    for scatter, used in ((0.12, False), (0.01, True)):
        pitch = 0.6 - 0.01 * tilt + rng.normal(0.0, scatter, tilt.size)
        pairs = CalibrationPairs(points={"torso_pitch": np.c_[tilt, pitch].tolist()})
        fit = fit_calibration(pairs, {"tilt_deg": -2.5}, 1.0, clips=18).fits["torso_pitch"]
        assert fit.r2 > 0.8 and fit.usable is used
        assert ("residual above 0.05 rad" in fit.note) is not used


def test_a_line_with_an_intercept_does_not_read_an_expert_far_outside_its_points():
    # barely moving HalfCheetahs: tilts within 2 degrees, a clean line that says nothing
    # about an expert 78 degrees away; one within the points' range is read
    tilt = np.linspace(75.0, 77.0, 40)
    pairs = CalibrationPairs(points={"torso_pitch": np.c_[tilt, 0.0126 * tilt - 0.965].tolist()})
    far = fit_calibration(pairs, {"tilt_deg": -2.5}, 1.0, clips=6).fits["torso_pitch"]
    assert far.r2 > 0.99 and not far.usable and "outside the learners'" in far.note
    near = fit_calibration(pairs, {"tilt_deg": 77.2}, 1.0, clips=6).fits["torso_pitch"]
    assert near.usable
    # a speed line passes through the origin, so reading beyond the learners' speeds is kept
    speed = CalibrationPairs(points={"forward_velocity": [[x, 0.4 * x] for x in np.linspace(0, 0.3, 8)]})
    assert fit_calibration(speed, {"forward_speed": 3.0}, 1.0, clips=6).fits["forward_velocity"].usable


def test_a_horizontal_bodys_tilt_does_not_read_its_pitch():
    tilt = np.linspace(-10.0, 10.0, 20)
    pairs = CalibrationPairs(points={"torso_pitch": np.c_[tilt, 0.017 * tilt + 0.1].tolist()})
    assert fit_calibration(pairs, {"tilt_deg": 2.0}, 1.0, clips=6).fits["torso_pitch"].usable
    lying = fit_calibration(pairs, {"tilt_deg": 2.0}, 1.0, clips=6, upright=False).fits["torso_pitch"]
    assert not lying.usable and "upright body's lean" in lying.note
    assert lying.expert_value == pytest.approx(0.134)  # kept for the record


def test_calibration_round_trips_through_json():
    pairs = CalibrationPairs(points={"torso_pitch": [[x, 0.02 * x + 0.01] for x in range(8)]})
    cal = fit_calibration(pairs, {"tilt_deg": 4.0}, 1.0, clips=1)
    again = type(cal).from_dict(cal.to_dict())
    assert again.fits["torso_pitch"].expert_value == pytest.approx(0.09)
    assert again.fits["torso_pitch"].r2 == pytest.approx(1.0)


def test_length_to_size_has_a_safe_default():
    assert length_to_size(100.0, 25.0) == 4.0
    assert length_to_size(100.0, 0.0) == 1.0


def test_cadence_is_read_as_it_is_and_the_fit_is_only_a_check():
    """Hz are Hz: the expert's pixel cadence is taken as it is; the learners' fit is shown (with
    enough clips) but not applied: on falling or shuffling learners it does not carry over."""
    few = CalibrationPairs(points={"cadence_hz": [[1.0, 1.25], [2.0, 2.5]]})
    cal = fit_calibration(few, {"cadence_hz": 0.8}, 1.0, clips=2)
    assert cal.fits["cadence_hz"].note == "identity" and cal.expert_values()["cadence_hz"] == 0.8
    none = fit_calibration(CalibrationPairs(), {"cadence_hz": 0.8}, 1.0, clips=0)
    assert none.expert_values() == {"cadence_hz": 0.8}
    many = CalibrationPairs(points={"cadence_hz": [[x, 1.25 * x] for x in (0.5, 1.0, 1.5, 2.0)]})
    fitted = fit_calibration(many, {"cadence_hz": 0.8}, 1.0, clips=4)
    assert fitted.fits["cadence_hz"].note == "identity; the learners' fit: x 1.25"
    assert fitted.expert_values()["cadence_hz"] == 0.8


def test_depth_pairs_with_sideways_speed_and_turning_with_yaw_rate():
    """Motion in depth is paired per window with the centre of mass's y velocity (converted to
    body sizes like forward speed); turning once per clip with the mean yaw rate."""
    series, state, dt = _clip(speed_l=0.0)
    series["depth_velocity"] = [0.0] + [0.3] * (len(series["t"]) - 1)
    steps = len(state["torso_height"])
    state["mass_center_y"] = np.arange(steps) * dt * 0.48  # 0.48 m/s
    state["lateral_velocity"] = np.zeros(steps)  # the env's point: the pair uses the COM's
    state["yaw_rate"] = np.full(steps, 0.25)
    pairs = clip_pairs(series, {"turning_rate": 0.2}, state, dt, 0.0, to_size=4.0)
    lateral = np.array(pairs.points["lateral_velocity"])
    np.testing.assert_allclose(lateral[:, 0], 0.3 * 4.0)
    np.testing.assert_allclose(lateral[:, 1], 0.48, rtol=1e-6)
    assert pairs.points["yaw_rate"] == [[0.2, 0.25]]
    cal = fit_calibration(pairs, {"depth_speed": 0.25, "turning_rate": -0.3}, 4.0, clips=1)
    assert cal.fits["lateral_velocity"].expert_value == pytest.approx(0.25 * 4.0 * 0.48 / 1.2)
    assert cal.expert_values()["yaw_rate"] == -0.3  # rad/s are rad/s: read as it is


def test_a_planar_body_gives_no_usable_sideways_fit():
    """Every learner clip of a planar body has zero sideways speed: no fit, no target."""
    pairs = CalibrationPairs(points={"lateral_velocity": [[x, 0.0] for x in (0.01, -0.02, 0.0, 0.03,
                                                                              0.01, -0.01)]})
    cal = fit_calibration(pairs, {"depth_speed": 0.05}, 1.0, clips=3)
    assert not cal.fits["lateral_velocity"].usable
    assert "lateral_velocity" not in cal.expert_values()
