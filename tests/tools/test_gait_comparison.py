"""A policy's gait beside the person's: each feature with the person's value and a verdict on
the critic's scale, the cadence judged by the method the person was measured with."""

import pytest

from vid2reward.tools.feature_definitions import feature_scale
from vid2reward.tools.gait_comparison import (
    cadence_text,
    compare_with_person,
    comparison_lines,
    row_line,
)

PERSON = {"features": {"pose_cadence_hz": 1.64, "pose_trunk_lean_deg": -2.0,
                       "pose_duty_factor": 0.62, "pose_lr_phase_deg": 167.0,
                       "pose_step_length": 0.7},
          "person_speed": {"m_per_s": 1.21, "leg_m": 0.95, "leg_lengths_per_s": 1.27}}
POLICY = {"metrics": {"cadence_steps_per_s": 2.2, "forward_velocity": 1.34, "flight_fraction": 0.26,
                      "double_support_fraction": 0.05},
          "pose": {"pose_cadence_hz": 1.65, "pose_trunk_lean_deg": 9.1, "pose_step_length": 0.8}}


def test_every_gait_feature_the_video_gives_is_beside_the_persons():
    rows = {r.feature: r for r in compare_with_person(POLICY, PERSON, body_length_m=1.5)}
    assert list(rows) == ["cadence", "speed", "trunk lean", "flight", "double support", "step length"]
    cadence = rows["cadence"]
    assert (cadence.policy, cadence.compared, cadence.person) == (2.2, 1.65, 1.64)
    assert cadence.unit == "steps/s" and cadence.scale == feature_scale("pose_cadence_hz")
    # judged as the person was measured (pose): within; by touchdowns it would be 1.4 apart
    assert cadence.visible_differences == pytest.approx(0.01 / 0.4)
    line = row_line(cadence)
    assert line.startswith("cadence: 2.20 steps/s by foot touchdowns (1.65 by pose of its "
                           "joints, as the person's: 0.55 steps/s apart); the person 1.64 steps/s")
    assert line.endswith("within a visible difference (0.4 steps/s)")
    # speed on forward_speed's scale (0.5 body lengths/s) in the body's metres
    assert rows["speed"].scale == pytest.approx(0.75) and rows["speed"].person == 1.21
    assert row_line(rows["trunk lean"]).endswith("1.4 visible differences more (one is 8 deg)")
    # a walk (duty factor 0.62): never airborne, both feet down 2 x 0.62 - 1 of the time
    assert rows["flight"].person == 0.0
    assert rows["double support"].person == pytest.approx(0.24) and rows["double support"].scale == 0.2
    assert rows["step length"].scale == feature_scale("pose_step_length")


def test_a_walk_has_no_flight_phase_and_the_comparison_says_so():
    lines = comparison_lines([r.to_dict() for r in compare_with_person(POLICY, PERSON, 1.5)])
    assert lines[-1] == ("  the person walks, and a walk has no flight phase: the policy has no "
                         "foot on the floor 26% of the time")
    running = {**PERSON, "features": {**PERSON["features"], "pose_duty_factor": 0.4}}
    rows = {r.feature: r for r in compare_with_person(POLICY, running, 1.5)}
    assert rows["flight"].person == pytest.approx(0.2) and rows["double support"].person == 0.0
    assert "a walk has no flight phase" not in "\n".join(comparison_lines(list(rows.values())))
    hopping = {**PERSON, "features": {**PERSON["features"], "pose_lr_phase_deg": 10.0}}
    assert "double support" not in [r.feature for r in compare_with_person(POLICY, hopping, 1.5)]


def test_no_person_no_comparison_and_unmeasured_figures_say_so():
    assert compare_with_person(POLICY, {"features": {"forward_speed": 0.5}}, 1.5) == []
    assert compare_with_person(POLICY, None, 1.5) == [] and comparison_lines([]) == []
    fell = compare_with_person({"metrics": {"cadence_steps_per_s": 0.0}}, PERSON, 1.5)
    assert row_line(fell[0]).startswith("cadence: 0.00 steps/s by foot touchdowns (by pose of its "
                                        "joints, as the person's: not measured)")
    assert row_line(fell[2]).endswith("the person -2 deg by pose: no verdict")
    assert cadence_text(POLICY["metrics"]) == "cadence 2.20 steps/s by foot touchdowns"
    assert cadence_text({}) == ""
