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
