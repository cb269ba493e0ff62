"""After a run: evaluate a policy, export a learned reward, list runs, TensorBoard curves, and
where `bench experts` writes. One tiny real training (512 PPO steps) stands in for a run's
best candidate."""

import json
import shutil
from pathlib import Path

import pytest

from vid2reward.agent.cli import build_parser, main
from vid2reward.agent.config import RunConfig
from vid2reward.agent.expert_bundle import experts_folder
from vid2reward.agent.run_log import IterationFinished, RunFinished, RunLog, RunStarted
from vid2reward.agent.run_record import TRAINED_FILES, RunRecord, candidate_id
from vid2reward.agent.runner import new_run_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_CLIP = EXAMPLES / "demo_expert_hopper.mp4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A `vid2reward train` output directory: Hopper-v5 on the env's own reward, 512 steps."""
    out = tmp_path_factory.mktemp("train") / "hopper"
    assert main(["train", "--env", "Hopper-v5", "--reward", str(EXAMPLES / "hopper_default.py"),
                 "--steps", "512", "--workers", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory) -> Path:
    """A finished one-iteration run whose best candidate is that training, on the demo clip
    (whose expert state metrics are bundled beside it)."""
    root = tmp_path_factory.mktemp("runs") / "hopper-run"
    config = RunConfig(env_id="Hopper-v5", video=str(DEMO_CLIP), iterations=1, candidates=1)
    record = new_run_dir(config, root)
    log = RunLog(root)
    log.write(RunStarted(run_id=root.name, env_id="Hopper-v5", engine="offline",
                         config=config.to_json()))
    cid = candidate_id(1, 0)
    record.write_program(cid, (EXAMPLES / "hopper_default.py").read_text(), None)
    for name in TRAINED_FILES[:3]:
        shutil.copy2(trained / name, record.candidate_dir(cid) / name)
    record.write_evaluation(cid, {"features": {}, "units": {}, "similarity": 0.41})
    history = [{"iteration": 1, "best_candidate_id": cid, "iteration_best_similarity": 0.41,
                "run_best_similarity": 0.41}]
    log.write(IterationFinished(iteration=1, best_candidate_id=cid, iteration_best_similarity=0.41,
                                run_best_similarity=0.41))
    record.write_best(cid, {"run_id": root.name, "iterations": 1, "history": history,
                            "best_candidate_id": cid, "best_similarity": 0.41})
    log.write(RunFinished(status="finished", reason="all 1 iterations done",
                          best_candidate_id=cid, best_similarity=0.41))
    return root


def test_evaluate_a_training_reports_both_returns(trained, capsys):
    assert main(["evaluate", "--policy", str(trained), "--episodes", "2", "--max-steps", "200",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    policy = report["policy"]
    assert policy["episodes"] == 2 and policy["env_id"] == "Hopper-v5" and report["expert"] is None
    assert policy["reward"] == str(trained / "reward.py")
    # hopper_default.py is Hopper-v5's own reward, computed here in the sandbox in lockstep
    # with the evaluation's env: the two returns agree to rounding.
    assert policy["program_return_mean"] == pytest.approx(policy["env_return_mean"], rel=1e-6)
    assert policy["program_return_std"] == pytest.approx(policy["env_return_std"], rel=1e-4, abs=1e-6)
    assert 0 <= policy["fall_rate"] <= 1 and 1 <= policy["length_mean"] <= 200
    # when each fall came: one time per episode that fell, inside the episode
    assert len(policy["fall_seconds"]) == round(policy["fall_rate"] * 2)
    assert all(0 < t <= 200 * 0.008 + 1e-9 for t in policy["fall_seconds"])
    assert {"forward_velocity", "cadence_hz", "torso_height_mean"} <= set(policy["metrics"])


def test_evaluate_a_run_shows_best_and_the_expert(run_dir, tmp_path, capsys):
    video = tmp_path / "first.mp4"
    assert main(["evaluate", "--policy", str(run_dir), "--episodes", "1", "--max-steps", "100",
                 "--video", str(video)]) == 0
    out = capsys.readouterr().out
    assert "best/" in out and "expert" in out and "env return" in out and "reward return" in out
    assert "+0.72 m/s" in out  # the demo expert's forward velocity, from its bundled metrics
    assert video.stat().st_size > 1000 and (tmp_path / "first_sheet.png").is_file()


def test_evaluate_mistakes_are_one_line(tmp_path, trained, capsys):
    assert main(["evaluate", "--policy", str(tmp_path / "nope")]) == 2
    evil = tmp_path / "evil.py"
    evil.write_text("import os\nWEIGHTS = {}\ndef compute_reward(s, a):\n    return 0.0, {}\n")
    assert main(["evaluate", "--policy", str(trained), "--reward", str(evil)]) == 2
    assert main(["evaluate", "--policy", str(trained), "--episodes", "0"]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "import" in err and "Traceback" not in err


def test_export_writes_everything_atomically_and_never_overwrites(run_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--out", str(out), "--episodes", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"reward.py", "policy.zip", "vecnormalize.pkl", "metrics.json", "evaluation.json",
            "README.md"} <= names
    readme = (out / "README.md").read_text()
    for fact in ("Hopper-v5", "shape (11,)", "shape (3,)", "`s.forward_velocity`", "m/s",
                 "`s.is_healthy`", "truncated after 1000 steps", "vid2reward.make_env",
                 "mujoco", "gymnasium"):
        assert fact in readme, fact
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["policy"]["reward"] == "reward.py" and evaluation["expert"] is not None
    # the export is itself a policy directory
    assert main(["evaluate", "--policy", str(out), "--episodes", "1", "--max-steps", "50"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in out.iterdir())
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
    assert sorted(p.name for p in out.iterdir()) == before
    assert not list(tmp_path.glob(".exported.partial-*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(run_dir), "--out", str(empty), "--episodes", "1"]) == 0
    assert (empty / "README.md").is_file()
    # a failure half-way leaves nothing: the evaluation refuses 0 episodes after the copies
    assert main(["export", str(run_dir), "--out", str(tmp_path / "x" / "y"), "--episodes", "0"]) == 2
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".*partial*"))


def test_runs_lists_good_half_written_and_old_runs(run_dir, capsys):
    folder = run_dir.parent
    (folder / "torn").mkdir()
    (folder / "torn" / "run.json").write_text('{"run_id": "torn", "con')
    (folder / "old").mkdir()  # an old-format run.json (LLM settings in 'extra'), no log
    (folder / "old" / "run.json").write_text(json.dumps(
        {"run_id": "old", "config": {"env_id": "Walker2d-v5", "video": "https://example.org/v.mp4",
                                     "extra": {"llm_timeout": 30}}}))
    (folder / "not-a-run").mkdir()
    assert main(["runs", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:4] == ["run", "env", "engine · video", "status"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(rows) == {"hopper-run", "torn", "old"}
    assert rows["hopper-run"][1:6] == ["Hopper-v5", "offline · demo_expert_hopper.mp4",
                                       "finished", "1", "0.410"]
    assert rows["torn"][3] == "unreadable" and "JSON" in rows["torn"][2]
    assert rows["old"][1] == "Walker2d-v5" and rows["old"][3] == "unfinished"
    assert main(["runs", str(folder), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["runs", str(folder / "missing")]) == 2


def test_run_curves_are_tensorboard_scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = RunRecord(run_dir)
    summary = record.best_summary()
    record.write_curves(summary["history"])  # as after a resume: rewritten, never doubled
    files = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert [(e.step, round(e.value, 2)) for e in events.Scalars("search/run_best_similarity")] \
        == [(1, 0.41)]


def test_bench_experts_writes_to_runs_by_default():
    args = build_parser("bench").parse_args(["bench", "experts"])
    assert args.out == Path("runs/experts") and args.work == Path("runs/experts/training")
    package = experts_folder().resolve()
    assert package not in args.out.resolve().parents and args.out.resolve() != package


def test_runs_says_how_often_the_final_policy_fell_with_its_interval(run_dir, tmp_path, capsys):
    from vid2reward.agent.run_record import write_json

    folder = tmp_path / "runs"
    shutil.copytree(run_dir, folder / "finished")
    summary = RunRecord(folder / "finished").best_summary()
    summary["final_training"] = {"steps": 4096, "evaluation": {
        "env_return_mean": 1000.0, "env_return_std": 5.0, "fall_rate": 0.0, "episodes": 20}}
    write_json(folder / "finished" / "best" / "summary.json", summary)
    assert main(["runs", str(folder)]) == 0
    # not "fell 0%": 0 of 20 bounds the fall rate at 16%
    assert "1000 ± 5, fell 0 of 20 (95% CI 0-16%)" in capsys.readouterr().out
