"""Presets, PPO settings, warm start, the evaluation helper and checkpoint evaluation: real
SB3 training and real MuJoCo rollouts on tiny budgets."""

import json

import numpy as np
import pytest
import torch

from vid2reward.sim.errors import UserError
from vid2reward.sim.evaluation import CheckpointEvaluation, evaluate_policy
from vid2reward.sim.hyperparams import PPO_PRESETS, RL_ZOO_PPO
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.rollout import load_policy
from vid2reward.sim.throughput import physics_steps_per_second
from vid2reward.sim.train import TrainConfig, make_ppo, make_training_env, train, warm_start

TINY = dict(total_steps=2048, n_envs=2, n_steps=512, batch_size=256, n_epochs=1, n_workers=0)


def test_for_env_applies_the_preset_then_overrides(monkeypatch):
    monkeypatch.setitem(PPO_PRESETS, "Hopper-v5", {"n_epochs": 3, "gamma": 0.995})
    config = TrainConfig.for_env("Hopper-v5", n_epochs=7, seed=4)
    assert (config.n_epochs, config.gamma, config.seed) == (7, 0.995, 4)
    assert TrainConfig.for_env("Walker2d-v5").n_epochs == TrainConfig().n_epochs


def test_every_preset_and_anchor_is_a_valid_config():
    for table in (PPO_PRESETS, RL_ZOO_PPO):
        for env_id, fields in table.items():
            TrainConfig(env_id=env_id, **fields)  # unknown field names raise TypeError


def test_make_ppo_builds_what_the_config_says(examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    config = TrainConfig(env_id="Hopper-v5", activation="relu", log_std_init=-1.5,
                         learning_rate_schedule="linear", learning_rate=1e-3, net_arch=(32, 16),
                         **{**TINY, "n_envs": 1})
    venv = make_training_env(config, program)
    try:
        model = make_ppo(config, venv)
        layers = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
        assert [layer.out_features for layer in layers] == [32, 16]
        assert any(isinstance(m, torch.nn.ReLU) for m in model.policy.mlp_extractor.policy_net)
        assert np.allclose(model.policy.log_std.detach().numpy(), -1.5)
        assert model.lr_schedule(1.0) == pytest.approx(1e-3)
        assert model.lr_schedule(0.25) == pytest.approx(2.5e-4)
        with pytest.raises(UserError, match="activation"):
            make_ppo(TrainConfig(env_id="Hopper-v5", activation="swish"), venv)
    finally:
        venv.close()


def test_warm_start_continues_from_the_saved_policy(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    first = train(TrainConfig(env_id="Hopper-v5", **TINY), program, tmp_path / "first")
    assert first.status == "finished"
    config = TrainConfig(env_id="Hopper-v5", init_from=str(tmp_path / "first"), **TINY)
    venv = make_training_env(config, program)
    from stable_baselines3.common.vec_env import VecNormalize
    venv = VecNormalize(venv)
    try:
        model = make_ppo(config, venv)
        saved = load_policy(tmp_path / "first")
        warm_start(model, venv, tmp_path / "first")
        for a, b in zip(model.policy.state_dict().values(),
                        saved.model.policy.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert np.array_equal(venv.obs_rms.mean, saved.obs_mean)
    finally:
        venv.close()
    # the cache key follows the content of the policy it starts from
    assert len(config.cache_key()["init_from"]) == 64
    second = train(config, program, tmp_path / "second")
    assert second.status == "finished" and second.metrics["config"]["init_from"]


def test_warm_start_refuses_another_env_or_a_missing_policy(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    train(TrainConfig(env_id="Hopper-v5", **TINY), program, tmp_path / "hopper")
    cheetah = load_reward_program(examples_dir / "halfcheetah_default.py")
    with pytest.raises(UserError, match="cannot continue|another env"):
        train(TrainConfig(env_id="HalfCheetah-v5", init_from=str(tmp_path / "hopper"), **TINY),
              cheetah, tmp_path / "cheetah")
    with pytest.raises(UserError, match="no policy.zip"):
        train(TrainConfig(env_id="Hopper-v5", init_from=str(tmp_path / "nothing"), **TINY),
              program, tmp_path / "x")
    assert not (tmp_path / "cheetah").exists() and not (tmp_path / "x").exists()


def test_evaluation_reports_spread_falls_and_the_program_return(examples_dir):
    # hopper_default.py reproduces Hopper's own reward: both returns must agree exactly.
    program = load_reward_program(examples_dir / "hopper_default.py")
    ev = evaluate_policy("Hopper-v5", None, episodes=3, seed=5, max_steps=200,
                         reward=program.compute)
    assert ev.episodes == 3 and ev.max_steps == 200
    assert ev.program_return_mean == pytest.approx(ev.env_return_mean)
    assert ev.fall_rate == 1.0  # random actions topple the hopper within 200 steps
    assert ev.length_mean < 200 and ev.length_std >= 0.0
    assert ev.metrics["fall_rate"] == ev.fall_rate
    assert "fell in 3 of 3 episodes (100%, 95% CI 44-100%; at" in ev.summary()
    again = evaluate_policy("Hopper-v5", None, episodes=3, seed=5, max_steps=200)
    assert again.env_return_mean == ev.env_return_mean  # seeded: the same episodes
    assert again.program_return_mean is None


def test_checkpoints_come_every_n_steps_and_at_the_end(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    seen = []
    callback = CheckpointEvaluation("Hopper-v5", 2048, lambda s, t, ev: seen.append((s, t, ev)),
                                    episodes=1, max_steps=50)
    config = TrainConfig(env_id="Hopper-v5", **{**TINY, "total_steps": 5000})
    train(config, program, tmp_path / "out", callbacks=[callback])
    steps = [s for s, _, _ in seen]
    assert steps == [2048, 4096, 5120]  # 1024-sample rollouts; the final policy once
    seconds = [t for _, t, _ in seen]
    assert seconds == sorted(seconds) and seconds[-1] <= callback.training_seconds()
    assert all(ev.episodes == 1 for _, _, ev in seen)


def test_the_last_checkpoint_is_the_saved_policy(tmp_path, examples_dir):
    """A checkpoint measures the policy after its update on the steps it counts: the last one
    is the policy train saves, not the one before the final PPO update."""
    program = load_reward_program(examples_dir / "hopper_default.py")
    seen = []
    callback = CheckpointEvaluation("Hopper-v5", 4096, lambda s, t, ev: seen.append((s, ev)),
                                    episodes=2, max_steps=200)
    train(TrainConfig(env_id="Hopper-v5", **{**TINY, "total_steps": 4096}), program,
          tmp_path / "out", callbacks=[callback])
    saved = evaluate_policy("Hopper-v5", load_policy(tmp_path / "out"), episodes=2, seed=0,
                            max_steps=200)
    assert [s for s, _ in seen] == [4096]
    assert seen[-1][1].metrics == saved.metrics


def test_checkpoint_time_limit_stops_training(tmp_path, examples_dir):
    program = load_reward_program(examples_dir / "hopper_default.py")
    callback = CheckpointEvaluation("Hopper-v5", 10**9, lambda *a: None, episodes=1,
                                    max_steps=10, time_limit=0.0)
    result = train(TrainConfig(env_id="Hopper-v5", **{**TINY, "total_steps": 50_000}), program,
                   tmp_path / "out", callbacks=[callback])
    assert callback.hit_time_limit and result.metrics["steps"] < 50_000
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["status"] == "finished"


def test_physics_limit_is_measured():
    assert physics_steps_per_second("Hopper-v5", threads=1, seconds=0.1, batch=4) > 100
