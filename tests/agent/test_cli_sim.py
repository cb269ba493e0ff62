"""The train and render verbs end to end, and their one-line errors."""

import json

from vid2reward.agent.cli import main


def test_train_then_render(tmp_path, examples_dir, capsys):
    out = tmp_path / "x"
    code = main(["train", "--env", "Hopper-v5", "--reward", str(examples_dir / "hopper_default.py"),
                 "--steps", "2048", "--envs", "4", "--ppo", "n_epochs=2", "net_arch=(32, 32)",
                 "--out", str(out)])
    assert code == 0 and (out / "policy.zip").is_file()
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["n_envs"], config["n_epochs"], config["net_arch"]) == (4, 2, [32, 32])
    code = main(["render", "--policy", str(out), "--out", str(out / "clip.mp4"), "--seconds", "1",
                 "--size", "160x128"])
    assert code == 0
    assert (out / "clip.mp4").stat().st_size > 1000
    assert (out / "clip_sheet.png").is_file()
    metrics = json.loads((out / "clip_metrics.json").read_text())
    assert {"forward_velocity", "cadence_hz", "fall_rate"} <= set(metrics)
    assert "fell in" in capsys.readouterr().err  # the honest evaluation line


def test_unknown_env_is_one_line_exit_2(tmp_path, examples_dir, capsys):
    code = main(["train", "--env", "Nope-v1", "--reward", str(examples_dir / "hopper_default.py"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "error: unknown env 'Nope-v1'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_ppo_settings_are_one_line_exit_2(tmp_path, examples_dir, capsys):
    base = ["train", "--env", "Hopper-v5", "--reward", str(examples_dir / "hopper_default.py"),
            "--out", str(tmp_path / "o")]
    for extra, says in [(["--ppo", "n_workers=0"], "FIELD one of"),
                        (["--ppo", "batch_size=lots"], "must be an integer"),
                        (["--envs", "4", "--ppo", "n_envs=8"], "--envs or --ppo n_envs"),
                        (["--ppo", "n_epochs=0"], "n_epochs must be at least 1"),
                        (["--ppo", "gamma=1.5"], "gamma must be between 0 and 1")]:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_reward_without_compute_reward(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("WEIGHTS = {}\n")
    code = main(["train", "--env", "Hopper-v5", "--reward", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "no compute_reward" in err and str(bad) in err
    assert not (tmp_path / "o").exists()


def test_render_bad_size(tmp_path, capsys):
    code = main(["render", "--policy", str(tmp_path), "--out", str(tmp_path / "c.mp4"), "--size", "big"])
    assert code == 2 and "bad frame size" in capsys.readouterr().err


def test_ctrl_c_during_train_keeps_a_policy_to_continue_from(tmp_path, examples_dir):
    """The first Ctrl-C stops the training at the next step: policy.zip, vecnormalize.pkl and
    metrics.json ("interrupted") stay in --out, and the message says where and how to go on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    reward, out = str(examples_dir / "hopper_default.py"), tmp_path / "policy"
    proc = subprocess.Popen([sys.executable, "-m", "vid2reward.agent.cli", "train", "--env", "Hopper-v5",
                             "--reward", reward, "--steps", "1000000", "--envs", "2", "--out", str(out)],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("**/tb/*")):  # the training's log: PPO is learning
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the training never started"
        time.sleep(0.1)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "keeping the policy so far" in err
    assert f"the policy so far is in {out}" in err and f"--init {out}" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and 0 < metrics["steps"] < 1_000_000
    assert (out / "policy.zip").is_file() and (out / "vecnormalize.pkl").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]  # no work directory left behind
    more = tmp_path / "more"
    assert main(["train", "--env", "Hopper-v5", "--reward", reward, "--steps", "512", "--envs", "2",
                 "--ppo", "n_steps=256", "--init", str(out), "--out", str(more)]) == 0
    assert json.loads((more / "metrics.json").read_text())["config"]["init_from"] == str(out)


LATE_NAN = """import math

WEIGHTS = {"forward": 1.0}


def compute_reward(s, a):
    forward = math.nan if s.time > 0.3 else WEIGHTS["forward"] * s.forward_velocity
    return forward, {"forward": forward}
"""


def test_a_reward_that_turns_nan_mid_training_stops_with_a_fix_line(tmp_path, capsys):
    """The reason reached the user, its fix (known to the error) did not: no `fix:` line."""
    reward = tmp_path / "late_nan.py"
    reward.write_text(LATE_NAN)
    out = tmp_path / "o"
    code = main(["train", "--env", "Hopper-v5", "--reward", str(reward), "--steps", "2048",
                 "--envs", "2", "--out", str(out)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert lines[-2].startswith("error: training stopped: the total is nan")
    assert lines[-1] == "fix: guard divisions and exponentials so the reward stays finite"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["failure_fix"] == lines[-1][len("fix: "):]


def test_a_numeric_warning_while_training_goes_on_is_one_warning_line(tmp_path, capsys):
    """A reward too large for the running reward statistics: numpy's overflow warning came out
    raw (a file path, a source line), for a training that goes on; it is one `warning:` line
    with the remedy, and the training finishes."""
    reward = tmp_path / "huge.py"
    reward.write_text('WEIGHTS = {"forward": 1e300}\n\n\ndef compute_reward(s, a):\n'
                      '    forward = WEIGHTS["forward"] * s.forward_velocity\n'
                      '    return forward, {"forward": forward}\n')
    code = main(["train", "--env", "Hopper-v5", "--reward", str(reward), "--steps", "2048",
                 "--envs", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert code == 0 and "finished: 2048 steps" in err
    assert len(warned) == 1 and "overflow" in warned[0] and "keep its terms of order 1" in warned[0]
    assert f"reward test {reward} --env Hopper-v5" in warned[0]
    assert "error:" not in err and "RuntimeWarning" not in err and ".py:" not in err
