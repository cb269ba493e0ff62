"""`bench calibration`: the run's calibration code, fitted on named policies' and random clips,
reads a bundled expert and is compared with its truth."""

import json

from vid2reward.agent.cli import main


def test_bench_calibration_reads_the_expert_and_compares_with_its_truth(capsys):
    assert main(["bench", "calibration", "--task", "cheetah-steady", "--random-episodes", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == "HalfCheetah-v5" and result["clips"] == 1
    readings = {r["quantity"]: r for r in result["readings"]}
    assert set(readings) == {"forward_velocity", "torso_height", "cadence_hz", "torso_pitch",
                             "torso_height_std"}
    speed = readings["forward_velocity"]
    assert speed["truth"] > 1.0 and speed["points"] > 0  # the expert runs forward at 1.3 m/s
    cadence = readings["cadence_hz"]  # too few clips to fit: read as the pixels give it
    assert cadence["used"] and cadence["note"] == "identity" and cadence["read"] > 0


def test_bench_calibration_refuses_a_directory_without_a_policy(tmp_path, capsys):
    assert main(["bench", "calibration", "--task", "hopper-steady", "--policy", str(tmp_path)]) == 2
    assert "no policy.zip" in capsys.readouterr().err


def test_bench_calibration_reads_a_sideways_walker_through_the_probe_clips(capsys):
    """The ant-sideways expert walks away from the camera: with no learner policy at all, the
    probe clips calibrate depth to sideways speed, within 20 % of its truth."""
    assert main(["bench", "calibration", "--task", "ant-sideways", "--random-episodes", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["probe_clips"] == 5
    sideways = {r["quantity"]: r for r in result["readings"]}["lateral_velocity"]
    assert sideways["used"] and sideways["truth"] > 0.3 and sideways["relative_error"] < 0.2


def test_bench_directions_compares_pixels_with_the_simulator(capsys):
    assert main(["bench", "directions", "--env", "HalfCheetah-v5", "--seconds", "3", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)["bodies"][0]
    assert [r["heading_deg"] for r in body["readings"]] == [0.0, 180.0]
    forward, backward = body["readings"]
    assert forward["forward_speed"] > 0.2 and backward["forward_speed"] < -0.2
    assert body["summary"]["planar_depth"] < 0.2  # moving forward is not read as sideways


def test_bench_directions_refuses_a_clip_too_short_to_measure(capsys):
    assert main(["bench", "directions", "--seconds", "1"]) == 2
    assert "more than 2 seconds" in capsys.readouterr().err
