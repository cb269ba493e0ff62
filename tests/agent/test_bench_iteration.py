"""`bench iteration RUN`: a run's time per iteration by phase, read from its log alone; `bench
throughput`: training against the physics limit."""

import json

from vid2reward.agent.cli import main
from vid2reward.agent.run_log import NodeFinished, NodeStarted, RunLog, RunStarted

NODES = [  # (node, iteration, seconds) as a two-iteration run logs them
    ("ingest_expert", 0, 1.0), ("draft_reward", 1, 0.5), ("test_rewards", 1, 2.0),
    ("train_candidates", 1, 60.0), ("evaluate_candidates", 1, 20.0), ("critique", 1, 0.2),
    ("audit", 1, 0.1), ("keep_best", 1, 0.1), ("engineer", 2, 0.3), ("test_rewards", 2, 1.7),
    ("train_candidates", 2, 70.0), ("evaluate_candidates", 2, 10.0), ("critique", 2, 0.4),
    ("keep_best", 2, 0.2), ("train_final", 2, 100.0),
]


def test_time_is_summed_by_phase_per_iteration(tmp_path, capsys):
    log = RunLog(tmp_path)
    log.write(RunStarted(run_id="r", env_id="Hopper-v5", engine="offline", config={}))
    for node, iteration, seconds in NODES:
        start = NodeStarted(node=node, iteration=iteration)
        log.write(start)
        log.write(NodeFinished(node=node, iteration=iteration, seconds=seconds, parent=start.id))
    assert main(["bench", "iteration", str(tmp_path), "--json"]) == 0
    rows = {r["iteration"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[1]["seconds"] == {"engineer": 2.5, "train": 60.0, "judge": 20.0, "critic": 0.3,
                                  "other": 0.1}
    assert rows[1]["judge_share"] == round(20.0 / 82.9, 3)
    assert rows[2]["seconds"]["final"] == 100.0
    assert rows[2]["judge_share"] == round(10.0 / 82.6, 3)  # the final training left out
    assert main(["bench", "iteration", str(tmp_path)]) == 0
    assert "judge %" in capsys.readouterr().out


def test_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["bench", "iteration", str(tmp_path)]) == 2
    assert "not a vid2reward run directory" in capsys.readouterr().err


def test_bench_throughput_measures_train_against_the_physics_limit(capsys):
    assert main(["bench", "throughput", "--env", "HalfCheetah-v5", "--raw-steps", "1000",
                 "--train-steps", "8192", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["envs"]
    assert row["env_id"] == "HalfCheetah-v5"
    assert row["physics_steps_per_second"] > row["train_steps_per_second"] > 0
    ratio = row["train_steps_per_second"] / row["physics_steps_per_second"]
    assert abs(row["of_physics"] - ratio) < 0.002  # the rates are printed rounded
    assert main(["bench", "throughput", "--train-steps", "100"]) == 2
    assert "too few steps" in capsys.readouterr().err
