"""The reward verbs, and the train verb on a reward that fails mid-training."""

import json

import pytest

from vid2reward.agent.cli import main

ENVS = {"hopper": "Hopper-v5", "walker2d": "Walker2d-v5", "halfcheetah": "HalfCheetah-v5",
        "ant": "Ant-v5", "humanoid": "Humanoid-v5"}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_reward_test_passes_on_every_example(name, examples_dir, capsys):
    path = examples_dir / f"{name}_default.py"
    assert main(["reward", "test", str(path), "--env", ENVS[name], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["calls"] == 300 and report["sums_to_total"]
    assert report["total_finite"] and report["components_finite"]
    assert 0 < report["us_per_call"] < report["env_us_per_step"]


def test_every_example_has_an_env_here(examples_dir):
    assert {p.name.removesuffix("_default.py") for p in examples_dir.glob("*_default.py")} \
        == set(ENVS)


def test_reward_test_prints_a_table(examples_dir, capsys):
    assert main(["reward", "test", str(examples_dir / "hopper_default.py"), "--env",
                 "Hopper-v5", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert "reward test" in out and "ok" in out
    for text in ("forward", "healthy", "ctrl", "total", "components add up to the total",
                 "time per call"):
        assert text in out, text


def test_reward_test_of_a_failing_program_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def compute_reward(s, a):\n    return 1.0 / 0.0, {}\n")
    assert main(["reward", "test", str(bad), "--env", "Hopper-v5", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert captured.err.count("\n") == 1 and "ZeroDivisionError on line 2" in captured.err


def test_reward_test_of_a_rejected_program_lists_violations(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef compute_reward(s, a):\n    return eval('1'), {}\n")
    assert main(["reward", "test", str(bad), "--env", "Hopper-v5"]) == 2
    captured = capsys.readouterr()
    assert "line 1" in captured.out and "line 3" in captured.out and "FAILED" in captured.out
    assert "error:" in captured.err and "rule import" in captured.err


def test_reward_test_user_mistakes(tmp_path, examples_dir, capsys):
    assert main(["reward", "test", str(tmp_path / "missing.py"), "--env", "Hopper-v5"]) == 2
    assert "reward file not found" in capsys.readouterr().err
    assert main(["reward", "test", str(examples_dir / "hopper_default.py"), "--env", "No-v1"]) == 2
    assert "unknown env" in capsys.readouterr().err


def test_reward_check_and_diff(tmp_path, examples_dir, capsys):
    good = examples_dir / "hopper_default.py"
    assert main(["reward", "check", str(good)]) == 0
    assert "passes the static check" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text(good.read_text().replace("import numpy as np", "import numpy as np, os"))
    assert main(["reward", "check", str(bad)]) == 2
    assert "line 3: import of 'os' is not allowed" in capsys.readouterr().err
    assert main(["reward", "diff", str(good), str(bad)]) == 0
    out = capsys.readouterr().out
    assert "-import numpy as np\n+import numpy as np, os\n" in out


def test_train_on_a_reward_failing_mid_training(tmp_path, capsys):
    reward = tmp_path / "late.py"
    reward.write_text("def compute_reward(s, a):\n"
                      "    if s.step > 20:\n"
                      "        raise ValueError('boom\\nsecond line')\n"
                      "    return 1.0, {'alive': 1.0}\n")
    out = tmp_path / "out"
    code = main(["train", "--env", "HalfCheetah-v5", "--reward", str(reward), "--steps", "2048",
                 "--envs", "4", "--workers", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "training stopped: compute_reward raised ValueError at episode step 21 (line 3): " \
           "boom second line" in lines[0]
    assert str(out / "metrics.json") in lines[0] and "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "boom second line" in metrics["failure"]


def test_train_refuses_in_process_reward_code(tmp_path, examples_dir, capsys):
    code = main(["train", "--env", "Hopper-v5", "--reward", str(examples_dir / "hopper_default.py"),
                 "--workers", "0", "--out", str(tmp_path / "o")])
    assert code == 2 and "--workers must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
