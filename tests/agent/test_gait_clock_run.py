"""A run from real footage of a person drafts a rhythm on the gait clock, and every policy of the
run (candidates, their warm starts, the final policy) is trained and measured on the clocked
observation; a candidate whose program sees another clock does not continue the parent's
policy. The run's summary, its trace and `evaluate` of its policy give the same numbers, in
the same units, beside the person's."""

import contextlib
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from stable_baselines3 import PPO

from vid2reward.agent.cli import main
from vid2reward.agent.nodes.candidates import train_config
from vid2reward.sim.gait_clock import declared_clock_hz

WALKERS = Path(__file__).resolve().parents[1] / "data" / "people" / "vtest_walkers.mp4"


@pytest.fixture(scope="module")
def person_run(tmp_path_factory) -> tuple[Path, str]:
    """A tiny Walker2d run on the walkers clip, and the summary it printed."""
    out = tmp_path_factory.mktemp("person") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["run", "--env", "Walker2d-v5", "--video", str(WALKERS), "--subject",
                     "356,214,26,78", "--forward", "auto", "--iterations", "2", "--candidates",
                     "2", "--steps", "2048", "--envs", "4", "--final-steps", "2048", "--out",
                     str(out), "--quiet"])
    assert code == 0
    return out, printed.getvalue()


def test_a_run_from_a_person_walking_trains_every_policy_on_the_clock(person_run, tmp_path):
    out, _ = person_run
    person = json.loads((out / "expert" / "features.json").read_text())["features"]
    clock = declared_clock_hz((out / "iter-001" / "cand-00" / "reward.py").read_text())
    assert clock is not None and abs(clock - person["pose_cadence_hz"] / 2) < 1e-3
    for cand in ("iter-001/cand-00", "iter-002/cand-00"):
        metrics = json.loads((out / cand / "metrics.json").read_text())
        assert metrics["gait_clock_hz"] == clock
        assert PPO.load(out / cand / "policy.zip").observation_space.shape == (19,)  # 17 + clock
    # iteration 2 keeps the clock, so it continues the best policy of iteration 1
    second = json.loads((out / "iter-002" / "cand-00" / "metrics.json").read_text())
    assert "iter-001" in second["config"]["init_from"]
    summary = json.loads((out / "best" / "summary.json").read_text())
    final = summary["final_training"]["evaluation"]
    # the pose over the check's own episodes (a cadence only where an episode holds a stride:
    # this tiny budget's policy falls within a second)
    assert final["episodes"] == 20 and "pose_knee_range_deg" in final["pose"]
    assert PPO.load(out / "best" / "policy.zip").observation_space.shape == (19,)
    # what users do next: evaluate the best policy and export the reward with its contract
    assert main(["evaluate", "--policy", str(out / "best"), "--reward", str(out / "best" / "reward.py"),
                 "--episodes", "1", "--trust-reward-code"]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "exported"), "--episodes", "1"]) == 0
    readme = (tmp_path / "exported" / "README.md").read_text()
    assert f"`GAIT_CLOCK_HZ = {clock:g}`" in readme and "shape (19,) in all" in readme


def _flat(text: str) -> str:
    """Text with its line wrapping undone (rich wraps at the console's width)."""
    return " ".join(text.split())


def test_the_summary_the_trace_and_evaluate_give_the_same_numbers_in_the_same_units(person_run,
                                                                                 capsys):
    from vid2reward.agent.trace.load import load_trace
    from vid2reward.agent.trace.view import final_lines
    from vid2reward.sim.falls import describe_falls
    from vid2reward.tools.gait_comparison import comparison_lines

    out, summary = person_run
    final = json.loads((out / "best" / "summary.json").read_text())["final_training"]["evaluation"]
    person = final["person"]
    # every gait feature the video gives, each beside the person's, primary cadence in steps/s
    assert [r["feature"] for r in person] == ["cadence", "speed", "trunk lean", "flight",
                                              "double support", "step length"]
    cadence = person[0]
    assert cadence["unit"] == "steps/s" and cadence["method"] == "foot touchdowns"
    assert cadence["policy"] == final["metrics"]["cadence_steps_per_s"]
    features = json.loads((out / "expert" / "features.json").read_text())["features"]
    assert cadence["person"] == features["pose_cadence_hz"]
    trace = _flat("\n".join(final_lines(load_trace(out))))
    assert main(["evaluate", "--policy", str(out)]) == 0  # the defaults: the final check's
    shown = _flat(capsys.readouterr().out)
    summary = _flat(summary)
    # the comparison with the person: the same sentences in all three
    lines = comparison_lines(person)
    assert len(lines) == 1 + len(person) + (person[3]["person"] == 0 < (person[3]["policy"] or 0))
    for line in lines:
        assert _flat(line) in summary and _flat(line) in trace and _flat(line) in shown, line
    # the primary cadence: one figure, one unit, whichever report
    figure = re.search(r"cadence (\d+\.\d\d) steps/s by foot touchdowns", summary).group(1)
    assert f"cadence {figure} steps/s by foot touchdowns" in trace
    assert re.search(rf"cadence \(foot touchdowns\) │ {figure} steps/s │", shown), shown
    # the falls: the same episodes, the same count and interval
    assert main(["evaluate", "--policy", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    falls = describe_falls(again["policy"]["fall_rate"], again["policy"]["episodes"],
                           again["policy"]["fall_seconds"])
    assert falls in summary and falls in trace
    assert again["person"] == person


def test_a_candidate_on_another_clock_starts_fresh_instead_of_continuing_its_parent(tmp_path):
    def program(clock):
        return (f"GAIT_CLOCK_HZ = {clock}\n" if clock else "") + \
            "def compute_reward(s, a):\n    return 0.0, {}\n"

    dirs = {cid: tmp_path / cid for cid in ("parent", "same", "other", "none")}
    for cid, clock in (("parent", 1.3), ("same", 1.3), ("other", 0.9), ("none", None)):
        dirs[cid].mkdir()
        (dirs[cid] / "reward.py").write_text(program(clock))
    record = SimpleNamespace(candidate_dir=dirs.__getitem__,
                             program_path=lambda cid: dirs[cid] / "reward.py",
                             has_policy=lambda cid: cid == "parent")
    ctx = SimpleNamespace(record=record, config=SimpleNamespace(
        n_envs=None, warm_start=True, env_id="Walker2d-v5", steps=1000, seed=0, n_workers=1))
    assert train_config(ctx, "parent", "same").init_from == str(dirs["parent"])
    assert train_config(ctx, "parent", "other").init_from is None
    assert train_config(ctx, "parent", "none").init_from is None
