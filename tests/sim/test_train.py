"""Real SB3 PPO training on a reward program, on tiny budgets."""

import json

import pytest
from stable_baselines3 import PPO

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.train import TrainConfig, train

TINY = dict(total_steps=2048, n_envs=4, n_steps=256, batch_size=256, n_epochs=1)


def test_train_writes_policy_and_metrics(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    progress = []
    result = train(TrainConfig(env_id="Hopper-v5", **TINY), program, tmp_path / "out",
                   on_progress=lambda done, total: progress.append((done, total)))
    out = tmp_path / "out"
    assert result.status == "finished"
    for name in ("policy.zip", "vecnormalize.pkl", "metrics.json", "reward.py"):
        assert (out / name).is_file(), name
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] >= 2048 and metrics["steps_per_second"] > 0
    assert set(metrics["components"]) == {"forward", "healthy", "ctrl"}
    assert metrics["episodes"] > 0 and metrics["env_return_mean"] is not None
    assert progress and progress[-1] == (2048, 2048)
    model = PPO.load(out / "policy.zip", device="cpu")
    assert model.observation_space.shape == (11,)  # the unmodified Hopper observation
    assert not list(tmp_path.glob(".out.partial-*"))


def test_same_seed_same_result(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    config = TrainConfig(env_id="Hopper-v5", n_workers=0, **TINY)
    a = train(config, program, tmp_path / "a").metrics
    b = train(config, program, tmp_path / "b").metrics
    assert a["return_mean"] == b["return_mean"] and a["episodes"] == b["episodes"]


def test_reward_broken_from_the_start_writes_nothing(tmp_path):
    program = load_reward_program("def compute_reward(s, a):\n    return 'high', {}\n")
    with pytest.raises(UserError, match="not a number"):
        train(TrainConfig(env_id="Hopper-v5", **TINY), program, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_reward_failing_mid_training_is_recorded(tmp_path):
    source = ("def compute_reward(s, a):\n"
              "    if s.step > 20:\n"
              "        raise ValueError('boom')\n"
              "    return 1.0, {'alive': 1.0}\n")
    program = load_reward_program(source, name="late_failure.py")
    result = train(TrainConfig(env_id="HalfCheetah-v5", **TINY), program, tmp_path / "out")
    assert result.status == "failed"
    assert "ValueError" in result.metrics["failure"] and "boom" in result.metrics["failure"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json"]


def test_wall_clock_limit_stops_early(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    config = TrainConfig(env_id="Hopper-v5", wall_clock_limit=0.0,
                         **{**TINY, "total_steps": 100_000})
    result = train(config, program, tmp_path / "out")
    assert result.status == "time_limit"
    assert result.metrics["steps"] < 100_000
