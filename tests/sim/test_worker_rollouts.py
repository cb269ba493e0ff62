"""Rollouts collected inside the env workers train PPO as SB3's own loop does: the policy copy
acts and values as the policy, and with one-step chunks the buffer PPO learns from is the one
SB3's loop fills, step for step (observations, actions, rewards with truncation bootstraps,
returns, advantages, episode starts)."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from test_segment_reward import BufferCapture, LocalBatch

from vid2reward.sim import train as train_module
from vid2reward.sim import worker_rollouts
from vid2reward.sim.envs import make_env
from vid2reward.sim.reward import RewardProgram, load_reward_program
from vid2reward.sim.segment_reward import SegmentVecNormalize
from vid2reward.sim.train import TrainConfig, train
from vid2reward.sim.worker_rollouts import PolicySnapshot


class PolicyBufferCapture(BufferCapture):
    """The buffer, plus what the policy that collected it (it is updated after this) says of
    its observations and actions."""

    def _on_rollout_end(self) -> None:
        super()._on_rollout_end()
        buf = self.model.rollout_buffer
        rollout = self.rollouts[-1]
        rollout["values"], rollout["log_probs"] = buf.values.copy(), buf.log_probs.copy()
        with torch.no_grad():
            values, log_probs, _ = self.model.policy.evaluate_actions(
                torch.as_tensor(buf.observations.reshape(-1, buf.observations.shape[-1])),
                torch.as_tensor(buf.actions.reshape(-1, buf.actions.shape[-1])))
        rollout["policy_values"] = values.numpy().reshape(buf.values.shape)
        rollout["policy_log_probs"] = log_probs.numpy().reshape(buf.log_probs.shape)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_policy_copy_acts_and_values_as_the_policy(activation):
    venv = DummyVecEnv([lambda: make_env("Hopper-v5")])
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
    policy = PPO("MlpPolicy", venv, device="cpu", seed=0, policy_kwargs={
        "net_arch": [32, 16], "activation_fn": act, "log_std_init": -0.5}).policy
    snapshot = PolicySnapshot.of(policy)
    obs = np.random.default_rng(0).normal(size=(6, 11))
    actions, values, log_probs = snapshot.act(obs, np.random.default_rng(1))
    with torch.no_grad():
        their_values, their_log_probs, _ = policy.evaluate_actions(
            torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(actions))
        mean = policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32)).mode()
    np.testing.assert_allclose(values, their_values.numpy()[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_probs, their_log_probs.numpy(), rtol=1e-5, atol=1e-4)
    # The samples spread around the policy's mean by its standard deviation.
    many, _, _ = snapshot.act(np.repeat(obs[:1], 4000, axis=0), np.random.default_rng(2))
    np.testing.assert_allclose(many.mean(axis=0), mean.numpy()[0], atol=0.03)
    np.testing.assert_allclose(many.std(axis=0), np.exp(-0.5), rtol=0.05)


def _local_batch(src, name):
    """A loader whose programs score batches here (the segment path without the process)."""
    return RewardProgram(source=src, name=name,
                         compute=LocalBatch(load_reward_program(src, name=name)))


def _train(tmp_path, examples_dir, in_workers: bool, tag: str, log_std: float = -20.0):
    source = (examples_dir / "hopper_default.py").read_text()
    program = load_reward_program(source, name="hopper_default.py")
    # Short episodes (max 60 steps): terminations and truncations both happen. A policy with a
    # tiny standard deviation acts (nearly) on its mean, so both loops take the same actions.
    config = TrainConfig(env_id="Hopper-v5", total_steps=2 * 2 * 128, n_envs=2, n_steps=128,
                         batch_size=128, n_epochs=1, n_workers=2, seed=3, max_episode_steps=60,
                         log_std_init=log_std, collect_in_workers=in_workers)
    capture = PolicyBufferCapture()
    result = train(config, program, tmp_path / tag, loader=_local_batch, callbacks=[capture],
                   precheck=lambda program, env_id: None)
    return capture.rollouts, result


class RawObservations(SegmentVecNormalize):
    """Rewards normalised, observations not: what the policy sees no longer depends on when
    the statistics were updated."""

    def __init__(self, venv, **kwargs):
        super().__init__(venv, norm_obs=False, **kwargs)


@pytest.mark.parametrize("chunk, normalized", [(1, True), (8, False)])
def test_chunks_fill_the_buffer_as_sb3s_loop(tmp_path, examples_dir, monkeypatch, chunk,
                                             normalized):
    # One step per message: the observation statistics are updated after every step, as
    # VecNormalize does, so every number in the buffer must agree. Longer chunks freeze them
    # for the chunk, so they are compared on raw observations.
    if not normalized:
        monkeypatch.setattr(train_module, "SegmentVecNormalize", RawObservations)
    sb3, sb3_result = _train(tmp_path, examples_dir, in_workers=False, tag="sb3")
    monkeypatch.setattr(worker_rollouts, "MAX_CHUNK_STEPS", chunk)
    ours, our_result = _train(tmp_path, examples_dir, in_workers=True, tag="ours")
    assert our_result.status == sb3_result.status == "finished"
    assert len(ours) == len(sb3) == 2
    first, mine = sb3[0], ours[0]
    assert mine["episode_starts"].sum() >= 4  # episodes did end inside the rollout
    for key in ("observations", "actions", "rewards", "returns", "advantages", "values"):
        np.testing.assert_allclose(mine[key], first[key], rtol=1e-4, atol=1e-4, err_msg=key)
    np.testing.assert_array_equal(mine["episode_starts"], first["episode_starts"])
    # The log-probabilities depend on each loop's own noise draws, so the updates (and the
    # second rollouts) differ; each rollout must still be the current policy's own.
    for rollout in ours:
        np.testing.assert_allclose(rollout["values"], rollout["policy_values"], rtol=1e-4,
                                   atol=1e-4)


def test_default_chunks_train_and_count_every_step(tmp_path, examples_dir):
    ours, result = _train(tmp_path, examples_dir, in_workers=True, tag="ours", log_std=0.0)
    assert result.status == "finished"
    for rollout in ours:  # collected by the policy being trained, whose samples they are
        np.testing.assert_allclose(rollout["values"], rollout["policy_values"], rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(rollout["log_probs"], rollout["policy_log_probs"],
                                   rtol=1e-4, atol=1e-4)
    assert result.metrics["steps"] == 512
    assert len(ours) == 2 and result.metrics["episodes"] >= 8
    assert result.metrics["config"]["collect_in_workers"] is True


def test_a_stop_inside_a_chunk_ends_training_at_that_step(tmp_path, examples_dir):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 100

    program = load_reward_program(examples_dir / "hopper_default.py")
    config = TrainConfig(env_id="Hopper-v5", total_steps=4 * 2 * 128, n_envs=2, n_steps=128,
                         batch_size=128, n_epochs=1, n_workers=2, seed=3)
    result = train(config, program, tmp_path / "stopped", loader=_local_batch,
                   precheck=lambda program, env_id: None, should_stop=should_stop)
    assert result.status == "interrupted"
    assert result.metrics["steps"] == 101 * 2  # the step that saw the stop counts, as in SB3
    assert (tmp_path / "stopped" / "policy.zip").is_file()
