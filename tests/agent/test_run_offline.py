"""The whole bi-level search, offline, on tiny budgets: real training, rendering, pixel features,
SQLite checkpoints; then kill -9 in the middle of training and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from stable_baselines3 import PPO

import vid2reward.examples as examples
from vid2reward.agent.cli import main
from vid2reward.agent.run_log import read_events
from vid2reward.agent.trace.load import load_trace
from vid2reward.agent.trace.view import render_trace

TINY = ["--env", "Hopper-v5", "--candidates", "2", "--steps", "2048", "--envs", "4", "--quiet",
        "--final-steps", "0"]


@pytest.fixture(scope="module")
def expert_clip():
    """The bundled demo expert (8 s of a hopping hopper; clips under a second are refused)."""
    return Path(examples.__file__).parent / "demo_expert_hopper.mp4"


def test_offline_run_end_to_end(tmp_path, expert_clip):
    out = tmp_path / "run"
    code = main(["run", "--video", str(expert_clip), "--iterations", "2", "--out", str(out), *TINY])
    assert code == 0
    for rel in ["run.json", "checkpoints.sqlite", "events.jsonl", "expert/clip.mp4", "expert/sheet.png",
                "expert/features.json", "iter-001/edits.json", "iter-001/feedback.json",
                "iter-001/cand-00/reward.py", "iter-001/cand-00/policy.zip",
                "iter-001/cand-00/metrics.json", "iter-001/cand-00/clip.mp4",
                "iter-001/cand-01/evaluation.json", "iter-002/edits.json", "iter-002/audit.json",
                "best/reward.py", "best/policy.zip", "best/vecnormalize.pkl", "best/clip.mp4",
                "best/summary.json"]:
        assert (out / rel).is_file(), rel
    PPO.load(out / "best" / "policy.zip", device="cpu")
    events = read_events(out)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    messages = {e.message.kind for e in events if e.kind == "message"}
    assert {"visual_feedback", "reward_feedback"} <= messages
    assert sum(k == "iteration_finished" for k in kinds) == 2
    assert sum(k == "training_summary" for k in kinds) == 4
    finished = [e for e in events if e.kind == "run_finished"][-1]
    assert finished.status == "finished" and finished.best_similarity is not None
    # the critic judges several episodes and sees falls; calibration and agreement are logged
    evaluation = json.loads((out / "iter-001" / "cand-00" / "evaluation.json").read_text())
    assert len(evaluation["episode_features"]) == 3 and (out / "iter-001/cand-00/clip-2.mp4").is_file()
    falls = evaluation["falls"]
    assert falls["episodes"] == 3 and len(falls["fall_seconds"]) == falls["fell"]
    assert 0.0 < evaluation["features"]["survival"] <= 1.0
    assert evaluation["similarity_spread"] is not None
    if falls["fell"]:  # 2048 steps of PPO: a hopper falls, and the critic says so first
        feedback = json.loads((out / "iter-001" / "cand-00" / "feedback.json").read_text())
        assert feedback["problems"][0].startswith("1. It falls: in ")
    assert (out / "iter-001" / "calibration.json").is_file()
    assert sum(k == "calibrated" for k in kinds) == 2
    checked = [e for e in events if e.kind == "reward_checked"]
    assert {e.iteration for e in checked} == {2} and len(checked) == 2
    assert all(e.rollouts == 2 * 3 + 4 for e in checked)
    # iteration 2 continues the run's best policy of iteration 1 (warm start)
    trained = json.loads((out / "iter-002" / "cand-00" / "metrics.json").read_text())
    assert "iter-001" in trained["config"]["init_from"]
    first = json.loads((out / "iter-001" / "cand-00" / "metrics.json").read_text())
    assert first["config"]["init_from"] is None
    tests = json.loads((out / "iter-002" / "cand-00" / "test.json").read_text())
    assert tests["agreement"]["verdict"] in ("agrees", "disagrees", "unknown")
    # the trace shows falls, the critic's noise, the calibration and the agreement check
    trace = load_trace(out)
    first, second = trace.iteration(1), trace.iteration(2)
    assert first is not None and second is not None and first.calibration
    assert first.candidates[0].episodes == 3 and second.candidates[0].agreement_verdict
    console = Console(record=True, width=200, file=StringIO())
    console.print(render_trace(trace))
    shown = console.export_text()
    assert "calibration after iteration 1" in shown and "falls" in shown and "agrees" in shown
    narrow = Console(record=True, width=80, file=StringIO())  # a real run's tables at 80 columns
    narrow.print(render_trace(trace))
    below_timeline = narrow.export_text().split("expert ─", 1)[1]
    assert "…" not in below_timeline  # no header or value cut to "le…"
    assert "iter-001/cand-00" in below_timeline and "calibration after iteration 1" in below_timeline


def test_kill_during_training_then_resume(tmp_path, expert_clip):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vid2reward.agent.cli", "run", "--video", str(expert_clip),
           "--iterations", "1", "--out", str(out),
           *[a if a != "2048" else "12288" for a in TINY]]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    first = out / "iter-001" / "cand-00" / "train_key.json"
    while not first.exists():  # cand-00 finished; cand-01 is training now
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "best").exists()
    code = main(["resume", str(out), "--quiet"])
    assert code == 0 and (out / "best" / "policy.zip").is_file()
    trainings = [e for e in read_events(out) if e.kind == "training_summary"]
    fresh = [e.candidate_id for e in trainings if not e.cached]
    assert sorted(fresh) == ["iter-001/cand-00", "iter-001/cand-01"]  # each trained once
    assert any(e.cached and e.candidate_id == "iter-001/cand-00" for e in trainings)


def test_bad_video_is_one_line_and_leaves_no_run(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--video", str(tmp_path / "missing.mp4"), "--out", str(out), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "expert video not found" in err and "Traceback" not in err
    assert not out.exists()


def test_an_episode_too_short_to_measure_still_counts_its_fall(tmp_path):
    """A body that falls at once leaves a one-frame clip: it is judged by its survival alone."""
    import numpy as np

    from vid2reward.agent.nodes.candidates import measure_episode, median_features
    from vid2reward.sim.render import write_mp4

    clip = write_mp4([np.zeros((240, 320, 3), np.uint8)], tmp_path / "clip.mp4", 30.0)
    features, measured = measure_episode(clip, stood=4, clip_steps=1000)
    assert measured is None and features == {"survival": 0.004}
    assert median_features([features, {"survival": 1.0, "forward_speed": 0.5}]) == {
        "survival": 0.502, "forward_speed": 0.5}


def test_survival_runs_to_the_first_fall_not_to_the_envs_end(tmp_path):
    """An Ant that flips at 5 s and lies on its back until the clip ends (Ant-v5 calls it
    healthy, the episode goes on) kept going for half of a 10 s clip, not all of it."""
    import numpy as np

    from vid2reward.agent.nodes.candidates import measure_episode, survival_steps
    from vid2reward.sim.render import write_mp4
    from vid2reward.sim.rollout import SAMPLE_NAMES, Episode

    samples = {k: np.zeros(200) for k in SAMPLE_NAMES}
    samples["uprightness"] = np.r_[np.full(100, 0.95), np.full(100, -0.9)]
    samples["torso_height"] = np.full(200, 0.5)
    flipped = Episode(env_id="Ant-v5", dt=0.05, length=200, terminated=False, env_return=0.0,
                      samples=samples)
    assert survival_steps(flipped) == 101
    clip = write_mp4([np.zeros((240, 320, 3), np.uint8)], tmp_path / "clip.mp4", 30.0)
    features, _ = measure_episode(clip, survival_steps(flipped), clip_steps=200)
    assert features["survival"] == pytest.approx(0.505)


def test_a_sideways_walker_gets_a_sideways_reward(tmp_path):
    """The bundled ant-sideways expert walks away from the camera: the run reads that as
    motion in depth, calibrates it to sideways speed with the probe clips, and its programs
    reward sideways speed near the expert's; the trace shows the direction features and fits."""
    clip = Path(examples.__file__).parent / "experts" / "ant-sideways.mp4"
    truth = json.loads(clip.with_suffix(".json").read_text())["state_metrics"]["lateral_velocity"]
    out = tmp_path / "ant"
    code = main(["run", "--video", str(clip), "--iterations", "2", "--out", str(out),
                 "--env", "Ant-v5", "--candidates", "2", "--steps", "2048", "--envs", "4", "--quiet",
                 "--final-steps", "0"])
    assert code == 0
    probe = json.loads((out / "expert" / "direction_probe.json").read_text())
    assert len(probe["readings"]) == 5 and probe["points"]["lateral_velocity"]
    # the calibration after iteration 1 sets iteration 2's targets
    fits = json.loads((out / "iter-001" / "calibration.json").read_text())["fits"]
    lateral = fits["lateral_velocity"]
    assert lateral["usable"] and abs(lateral["expert_value"] - truth) < 0.2 * truth
    program = (out / "iter-002" / "cand-00" / "reward.py").read_text()
    assert '"sideways"' in program and "s.lateral_velocity" in program
    target = float(program.split('"lateral_target":')[1].split(",")[0])
    assert target == pytest.approx(lateral["expert_value"], abs=1e-3)
    text = StringIO()
    Console(file=text, width=200).print(render_trace(load_trace(out)))
    shown = text.getvalue()
    assert "depth_speed" in shown and "lateral_velocity" in shown and "probe clips" in shown
