"""VIPER: the video model trained on a real expert clip (tiny budgets), cached per clip, its
held-out report, and the reward source's density and exploration bonus."""

import json
from pathlib import Path

import numpy as np
import pytest

from vid2reward.sim.errors import UserError
from vid2reward.tools.viper_model import (
    FRAME_H,
    FRAME_W,
    ViperConfig,
    frame_stride,
    random_action_frames,
    resize_frames,
    train_video_model,
    video_model_for_clip,
)
from vid2reward.tools.viper_reward import ViperSource

SMALL = ViperConfig(ae_steps=300, dyn_steps=400, random_episodes=2)


@pytest.fixture(scope="module")
def hopper_model(tmp_path_factory, examples_dir_module):
    clip = examples_dir_module / "experts" / "hopper-steady.mp4"
    cache = tmp_path_factory.mktemp("viper")
    every = frame_stride("Hopper-v5", 31.25)
    return clip, cache, every, video_model_for_clip(clip, "Hopper-v5", every, SMALL, cache=cache)


@pytest.fixture(scope="module")
def examples_dir_module():
    return Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as train() runs the source
    yield
    torch.set_num_threads(threads)


def test_model_is_trained_reported_and_cached_per_clip(hopper_model):
    clip, cache, every, model = hopper_model
    assert every == 4  # 31.25 fps clip, Hopper's dt 0.008 s
    report = model.report
    assert report["frames"]["train"] + report["frames"]["held_out"] == 251
    ll = report["log_likelihood_nats_per_frame"]
    assert set(ll) == {"train", "held_out", "random_actions"}
    assert report["train_seconds"] > 0 and model.hi > model.lo
    folder = cache / report["key"]
    assert json.loads((folder / "report.json").read_text())["key"] == report["key"]
    again = video_model_for_clip(clip, "Hopper-v5", every, SMALL, cache=cache)
    assert again.report == report  # read back, not trained again
    assert [p.name for p in cache.iterdir()] == [report["key"]]


def test_source_scores_expert_frames_above_random_ones(hopper_model):
    from vid2reward.tools.video_frames import read_frames

    clip, _, every, model = hopper_model
    expert = resize_frames(read_frames(clip).frames)[-40:]  # held-out part of the clip
    flailing = random_action_frames("Hopper-v5", every, 1, seed=99)[0]
    source = ViperSource(model, every)
    assert source.frames.width == FRAME_W and source.frames.height == FRAME_H

    def episode(frames, env):
        values = [source.components(f[None], np.array([env]), np.array([i == 0]))
                  for i, f in enumerate(frames)]
        return np.array([v["viper_density"][0] for v in values]), \
            np.array([v["viper_explore"][0] for v in values])

    expert_density, _ = episode(expert, 0)
    random_density, _ = episode(flailing, 1)
    assert 0 <= expert_density.min() and expert_density.max() <= 1
    assert expert_density.mean() > random_density.mean()


def test_exploration_bonus_decays_on_familiar_transitions(hopper_model, one_torch_thread):
    _, _, every, model = hopper_model
    frames = random_action_frames("Hopper-v5", every, 1, seed=5)[0]
    source = ViperSource(model, every, explore_scale=1.0)
    batch = np.stack([frames] * 8, axis=1)  # 8 envs replaying the same episode

    def sweep():
        bonus = []
        for t, row in enumerate(batch):
            out = source.components(row, np.arange(8), np.full(8, t == 0))
            bonus.append(out["viper_explore"].mean())
        return float(np.mean(bonus))

    first = sweep()
    for _ in range(12):
        last = sweep()
    assert last < 0.5 * first


def test_a_model_that_cannot_tell_expert_from_random_is_refused():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, size=(40, FRAME_H, FRAME_W, 3), dtype=np.uint8)
    flat = np.full((1, 10, FRAME_H, FRAME_W, 3), 120, np.uint8)[0]  # the random episode: static
    with pytest.raises(UserError, match="no higher likelihood"):
        train_video_model(noise, [flat], ViperConfig(ae_steps=20, dyn_steps=50))


def test_training_with_viper_logs_both_components(tmp_path, hopper_model):
    from vid2reward.sim.reward import load_reward_program
    from vid2reward.sim.train import TrainConfig, train

    _, _, every, model = hopper_model
    source = ViperSource(model, every)
    config = TrainConfig(env_id="Hopper-v5", total_steps=512, n_envs=2, n_workers=1,
                         n_steps=256, batch_size=128, n_epochs=1)
    program = load_reward_program("def compute_reward(s, a):\n    return 0.0, {}\n")
    result = train(config, program, tmp_path / "out", reward_source=source)
    assert result.status == "finished", result.metrics["failure"]
    comps = result.metrics["components"]
    assert {"viper_density", "viper_explore"} <= set(comps)
    assert result.metrics["config"]["reward_source"]["model"] == model.report["key"]
