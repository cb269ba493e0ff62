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
    assert ev["episodes"] == 20 and ev["max_steps"] == 1000 and 0.0 <= ev["fall_rate"] <= 1.0
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
    # `evaluate` of the run, with its defaults, rolls out the final check's episodes: the
    # numbers the run's summary and trace show
    capsys.readouterr()
    assert main(["evaluate", "--policy", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["policy"]
    for key in ("episodes", "seed", "max_steps", "env_return_mean", "env_return_std",
                "length_mean", "fall_rate", "fall_seconds", "metrics", "pose"):
        assert again[key] == ev[key], key


def test_negative_final_steps_is_one_line(tmp_path, expert_clip, capsys):
    assert main(["run", "--video", str(expert_clip), "--out", str(tmp_path / "r"),
                 "--final-steps", "-1", *TINY]) == 2
    assert "--final-steps must not be negative" in capsys.readouterr().err


def _force_an_update(monkeypatch):
    """The offline engineer updates every winner: its program with one weight changed."""
    from vid2reward.agent.engines.base import ProgramDraft
    from vid2reward.agent.engines.offline import OfflineEngineer

    def update(self, brief, winner, feedback):
        source = winner.source.replace('"""', '"""An update for the test. ', 1)
        return ProgramDraft(source=source + "\n# updated\n")
    monkeypatch.setattr(OfflineEngineer, "final_program", update)


def test_handed_out_is_the_policy_that_falls_less_and_the_update_on_a_tie():
    from vid2reward.agent.nodes.final import handed_out
    assert handed_out({"fall_rate": 0.6}, {"fall_rate": 0.2}) == "winner"
    assert handed_out({"fall_rate": 0.2}, {"fall_rate": 0.6}) == "update"
    assert handed_out({"fall_rate": 1.0}, {"fall_rate": 1.0}) == "update"


def test_an_update_that_falls_is_verified_against_the_winners_own_program(tmp_path, expert_clip,
                                                                          monkeypatch, capsys):
    _force_an_update(monkeypatch)
    out = tmp_path / "run"
    # 4096 steps: a hopper that falls in every episode, so the update is checked
    assert main(["run", "--video", str(expert_clip), "--out", str(out), "--final-steps", "4096",
                 *TINY]) == 0
    summary = json.loads((out / "best" / "summary.json").read_text())
    final = summary["final_training"]
    check = final["verification"]
    assert check["update"]["fall_rate"] > 0 and check["update"]["episodes"] == 20
    # the check says when the update's policy fell: one time per episode that fell
    assert len(check["update"]["fall_seconds"]) == round(check["update"]["fall_rate"] * 20)
    assert check["handed_out"] == ("winner" if check["winner"]["fall_rate"] < check["update"]["fall_rate"]
                                   else "update")
    winner_source = (out / summary["best_candidate_id"] / "reward.py").read_text()
    assert (out / "final" / "winner" / "reward.py").read_text() == winner_source
    handed = (out / "best" / "reward.py").read_text()
    assert handed == (winner_source if check["handed_out"] == "winner" else
                      (out / "final" / "reward.py").read_text())
    assert "verified: the updated program's policy fell in" in "\n".join(_final_lines(out))
    assert "verified: the updated program's policy fell in" in capsys.readouterr().out


def test_a_winner_that_falls_less_is_handed_out_and_the_update_kept_aside(tmp_path, expert_clip,
                                                                         monkeypatch):
    import vid2reward.agent.nodes.final as final_node
    _force_an_update(monkeypatch)
    monkeypatch.setattr(final_node, "handed_out", lambda update, winner: "winner")
    out = tmp_path / "run"
    assert main(["run", "--video", str(expert_clip), "--out", str(out), "--final-steps", "4096",
                 *TINY]) == 0
    summary = json.loads((out / "best" / "summary.json").read_text())
    final = summary["final_training"]
    assert "updated" not in final and final["verification"]["handed_out"] == "winner"
    winner = out / summary["best_candidate_id"]
    assert (out / "best" / "reward.py").read_text() == (winner / "reward.py").read_text()
    assert (out / "best" / "policy.zip").read_bytes() == \
        (out / "final" / "winner" / "policy.zip").read_bytes()
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["reward_sha256"] == json.loads((winner / "metrics.json").read_text())["reward_sha256"]
    # the update's policy and program stay beside it, for the user to look at
    assert "# updated" in (out / "final" / "update" / "reward.py").read_text()
    assert (out / "final" / "update" / "policy.zip").is_file()
    assert final["evaluation"]["fall_rate"] == final["verification"]["winner"]["fall_rate"]
    # resume after the end: nothing is trained again
    before = (out / "final" / "policy.zip").stat().st_mtime_ns
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / "final" / "policy.zip").stat().st_mtime_ns == before


def _final_lines(out):
    from vid2reward.agent.trace.load import load_trace
    from vid2reward.agent.trace.view import final_lines
    return final_lines(load_trace(out))
