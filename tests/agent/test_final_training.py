"""The final training: the winner's reward trains again from scratch, best/ holds that policy
with an honest evaluation, and resume never trains it twice."""

import json
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

import vid2reward.examples as examples
from vid2reward.agent.cli import main
from vid2reward.sim.reward import program_sha256

TINY = ["--env", "Hopper-v5", "--candidates", "2", "--steps", "2048", "--envs", "4", "--quiet",
        "--iterations", "1"]


@pytest.fixture(scope="module")
def expert_clip():
    return Path(examples.__file__).parent / "demo_expert_hopper.mp4"


def test_final_training_retrains_the_winning_reward_and_fills_best(tmp_path, expert_clip, capsys):
    out = tmp_path / "run"
    assert main(["run", "--video", str(expert_clip), "--out", str(out), "--final-steps", "4096",
                 *TINY]) == 0
    summary = json.loads((out / "best" / "summary.json").read_text())
    final = summary["final_training"]
    assert final["candidate"] == summary["best_candidate_id"]
    assert final["steps"] >= 4096
    ev = final["evaluation"]
    assert ev["episodes"] == 5 and ev["max_steps"] == 1000 and 0.0 <= ev["fall_rate"] <= 1.0
    assert (out / "best" / "policy.zip").read_bytes() == (out / "final" / "policy.zip").read_bytes()
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    candidate = json.loads((out / summary["best_candidate_id"] / "metrics.json").read_text())
    # the winner's reward (or the engineer's update of it), from scratch, handed out with its
    # policy: no warm start, a policy of its own
    handed_out = (out / "best" / "reward.py").read_text()
    assert handed_out == (out / "final" / "reward.py").read_text()
    assert metrics["reward_sha256"] == program_sha256(handed_out)
    if "updated" in final:
        assert "the run's last calibration" in final["updated"]
        assert metrics["reward_sha256"] != candidate["reward_sha256"]
    else:
        assert metrics["reward_sha256"] == candidate["reward_sha256"]
    assert metrics["config"]["init_from"] is None
    cand = PPO.load(out / summary["best_candidate_id"] / "policy.zip", device="cpu")
    best = PPO.load(out / "best" / "policy.zip", device="cpu")
    pairs = list(zip(cand.policy.state_dict().values(), best.policy.state_dict().values(), strict=True))
    assert all(a.shape == b.shape for a, b in pairs)
    assert not all(torch.equal(a, b) for a, b in pairs)
    assert "final policy" in capsys.readouterr().out
    # resume after the end: nothing is trained again
    before = (out / "final" / "policy.zip").stat().st_mtime_ns
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / "final" / "policy.zip").stat().st_mtime_ns == before


def test_negative_final_steps_is_one_line(tmp_path, expert_clip, capsys):
    assert main(["run", "--video", str(expert_clip), "--out", str(tmp_path / "r"),
                 "--final-steps", "-1", *TINY]) == 2
    assert "--final-steps must not be negative" in capsys.readouterr().err
