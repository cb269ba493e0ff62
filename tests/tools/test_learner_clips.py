"""Judging candidates' clips in worker processes: the same clips and features as in one
process, every job judged once even when a worker dies."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest

from vid2reward.examples import __file__ as examples_file
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.train import TrainConfig, train
from vid2reward.tools import learner_clips
from vid2reward.tools.learner_clips import ClipJob, judge_clips


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    program = load_reward_program(Path(examples_file).parent / "hopper_default.py")
    out = tmp_path_factory.mktemp("policy") / "out"
    train(TrainConfig(env_id="Hopper-v5", total_steps=1024, n_envs=2, n_steps=512,
                      n_workers=0), program, out)
    return out


def jobs(policy_dir: Path, out: Path, count: int, expected_steps: int) -> list[ClipJob]:
    return [ClipJob(key=f"c{k}", policy_dir=policy_dir, env_id="Hopper-v5", first_seed=10 * k,
                    episodes=2, clip_steps=60, render_size=(64, 48),
                    clips=(out / f"c{k}" / "clip.mp4", out / f"c{k}" / "episode-1.mp4"),
                    sheet=out / f"c{k}" / "sheet.png", expected_steps=expected_steps)
            for k in range(count)]


def test_workers_give_the_clips_and_features_of_one_process(policy_dir, tmp_path, monkeypatch):
    inline = {j.key: j for j in judge_clips(jobs(policy_dir, tmp_path / "a", 3, 0))}
    assert not mp.active_children()  # too little to render: no pool was started
    started = []
    real_pool = learner_clips.ProcessPoolExecutor
    monkeypatch.setattr(learner_clips, "ProcessPoolExecutor",
                        lambda **kw: started.append(kw) or real_pool(**kw))
    pooled = {j.key: j for j in judge_clips(jobs(policy_dir, tmp_path / "b", 3, 10_000),
                                            workers=2)}
    assert started and started[0]["max_workers"] == 2
    assert sorted(pooled) == sorted(inline) == ["c0", "c1", "c2"]
    for key, judged in pooled.items():
        assert judged.features == inline[key].features  # deterministic physics and pixels
        assert [ep.length for ep in judged.episodes] == [ep.length for ep in inline[key].episodes]
        assert all(not ep.frames for ep in judged.episodes)  # frames stay in the clips
        for name in ("clip.mp4", "episode-1.mp4", "sheet.png"):
            assert (tmp_path / "b" / key / name).stat().st_size > 0
    assert not mp.active_children()  # the pool is shut down


def test_a_worker_that_dies_leaves_its_jobs_to_this_process(policy_dir, tmp_path):
    seen = []
    for judged in judge_clips(jobs(policy_dir, tmp_path, 4, 10_000), workers=2):
        if not seen:  # kill the pool's workers mid-way (a crash in the GL driver, say)
            for child in mp.active_children():
                os.kill(child.pid, signal.SIGKILL)
        seen.append(judged.key)
    assert sorted(seen) == ["c0", "c1", "c2", "c3"]  # each judged, once
    assert not mp.active_children()


def test_stopping_early_ends_the_workers(policy_dir, tmp_path):
    results = judge_clips(jobs(policy_dir, tmp_path, 4, 10_000), workers=2)
    next(results)
    assert mp.active_children()
    results.close()  # what a stop request between candidates does
    assert not [p for p in mp.active_children() if p.is_alive()]
