"""The NES benchmark: the score's arithmetic, the random-search engineer's programs, and the
whole pipeline in fast mode on the bundled expert clip (no expert is trained here)."""

import json
from pathlib import Path

import pytest

from vid2reward.agent.cli import main
from vid2reward.agent.engines.base import EngineerBrief
from vid2reward.agent.engines.random_search import RandomSearchEngineer
from vid2reward.agent.expert_bundle import bundled_expert
from vid2reward.sim.expert_score import (
    NES_METRICS,
    behaviour_distance,
    metric_scales,
    normalized_expert_score,
)
from vid2reward.sim.reward import load_reward_program

EXPERT = {"forward_velocity": 0.8, "lateral_velocity": 0.0, "torso_height_mean": 1.2,
          "torso_height_std": 0.1, "cadence_hz": 1.0, "uprightness": 1.0, "torso_pitch": 0.1,
          "flight_fraction": 0.4, "fall_rate": 0.0}
RANDOM = {**EXPERT, "forward_velocity": 0.0, "torso_height_mean": 0.9, "torso_height_std": 0.2,
          "cadence_hz": 0.0, "uprightness": 0.7, "flight_fraction": 0.0, "fall_rate": 1.0}


def test_nes_is_one_at_the_expert_zero_at_random_and_clipped():
    assert normalized_expert_score(EXPERT, EXPERT, RANDOM) == 1.0
    assert normalized_expert_score(RANDOM, EXPERT, RANDOM) == 0.0
    worse = {**RANDOM, "forward_velocity": -3.0}
    assert normalized_expert_score(worse, EXPERT, RANDOM) == 0.0  # clipped, not negative
    halfway = {m: (EXPERT[m] + RANDOM[m]) / 2 for m in NES_METRICS}
    assert normalized_expert_score(halfway, EXPERT, RANDOM) == pytest.approx(0.5)


def test_scales_have_floors_so_a_still_expert_is_not_divided_by_zero():
    still = {**EXPERT, "forward_velocity": 0.0, "cadence_hz": 0.0}
    scales = metric_scales(still)
    assert scales["forward_velocity"] == 0.5 and scales["cadence_hz"] == 0.5
    assert behaviour_distance({**still, "forward_velocity": 0.5}, still) == pytest.approx(
        (1 / len(NES_METRICS)) ** 0.5)


def test_random_search_writes_valid_varied_programs():
    engineer = RandomSearchEngineer("Hopper-v5", seed=0)
    brief = EngineerBrief(env_id="Hopper-v5", env_context="", task="", candidates=4, iteration=1,
                          expert=None)
    first = engineer.draft(brief)
    later = engineer.propose(brief, None, [])
    sources = [p.source for p in first.programs + later.programs]
    assert len(set(sources)) == 8 and not first.edits
    for p in first.programs + later.programs:
        assert "alive" in p.plan["terms"] and "ctrl" in p.plan["terms"]
        load_reward_program(p.source, name="random.py")  # compiles and passes the static checks


def test_bundled_experts_cover_three_envs():
    envs = set()
    for task in ("hopper-steady", "cheetah-backward", "walker-slow"):
        clip, info = bundled_expert(task)
        assert clip.stat().st_size < 600_000
        assert info["state_metrics"]["fall_rate"] == 0.0
        envs.add(info["env_id"])
    assert len(envs) == 3


def test_bench_nes_fast_pipeline(tmp_path, capsys):
    """`bench nes --fast`, trimmed to one candidate per iteration to stay quick."""
    out = tmp_path / "bench"
    code = main(["bench", "nes", "--fast", "--candidates", "1", "--eval-episodes", "1",
                 "--out", str(out)])
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in data["results"]}
    assert methods == {"full", "random", "eureka", "default"}
    for r in data["results"]:
        assert 0.0 <= r["nes"] <= 1.0 and r["env_steps"] > 0
        assert len(r["nes_per_iteration"]) == (1 if r["method"] == "default" else 2)
    assert (out / "results.csv").read_text().count("\n") == 5
    assert (out / "nes_curve.png").stat().st_size > 1000
    assert "hopper-steady" in capsys.readouterr().out
    # Rerunning reads the finished methods back instead of training again.
    assert main(["bench", "nes", "--fast", "--candidates", "1", "--eval-episodes", "1",
                 "--out", str(out)]) == 0


def test_bench_nes_retrains_the_winner_and_trains_the_reference(tmp_path):
    """--final-steps: each search method's winning reward is trained again from scratch and
    scored ('retrained NES'); the reference method trains the task's hidden reward for as long."""
    out = tmp_path / "bench"
    assert main(["bench", "nes", "--fast", "--candidates", "1", "--iterations", "1",
                 "--eval-episodes", "1", "--methods", "full", "random", "reference",
                 "--final-steps", "2048", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    by_method = {r["method"]: r for r in data["results"]}
    full, reference = by_method["full"], by_method["reference"]
    for searched in (full, by_method["random"]):  # equal retraining for every search method
        assert 0.0 <= searched["final_nes"] <= 1.0 and searched["final_metrics"]["episodes"] == 1
        assert (Path(searched["run_dir"]) / "final" / "policy.zip").is_file()
    assert isinstance(full["calibration"], dict)  # iteration 1's reading of the expert, vs truth
    assert all(0.0 <= e for e in full["calibration"].values())
    assert reference["final_nes"] is None and reference["env_steps"] >= 2048
    policy_metrics = json.loads((Path(reference["run_dir"]) / "policy" / "metrics.json").read_text())
    assert policy_metrics["reward_name"] == "hopper-steady_reference.py"
    assert "retrained NES" in (out / "summary.md").read_text()


def test_an_interrupted_search_stops_the_bench_and_records_nothing(tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM stops the run at a step boundary: the bench must stop too, without
    writing result.json (which a rerun would read back as finished instead of resuming)."""
    from vid2reward.agent import benchmark, runner

    calls = []

    def interrupted(paths, config, run_id, **kwargs):
        calls.append(run_id)
        return runner.RunOutcome("interrupted", "SIGTERM: stopped after the running step",
                                 paths.root)

    monkeypatch.setattr(runner, "execute", interrupted)
    monkeypatch.setattr(benchmark, "measure_policy", lambda *a, **k: pytest.fail("scored"))
    out = tmp_path / "bench"
    assert main(["bench", "nes", "--fast", "--methods", "full", "random", "--seeds", "2",
                 "--out", str(out)]) == 130
    assert calls == ["full-s0"]  # neither the next method nor the next seed started
    assert not (out / "runs" / "hopper-steady" / "full-s0" / "result.json").exists()



def test_a_task_without_a_clip_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "bench"
    # hopper-slow is a held-out task whose expert is not shipped (it fell in every episode)
    assert main(["bench", "nes", "--tasks", "hopper-slow", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no bundled expert for 'hopper-slow'" in err and "Traceback" not in err
    assert not out.exists()
