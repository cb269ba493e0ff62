"""Scoring whole rollouts after they are collected trains exactly as scoring step by step:
the same rewards, returns and advantages in PPO's buffer, the same normalisation statistics,
the same episode statistics."""

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from vid2reward.sim import segment_reward
from vid2reward.sim.reward import RewardProgram, load_reward_program
from vid2reward.sim.reward_wire import RewardBatch
from vid2reward.sim.state import STATE_FIELDS
from vid2reward.sim.state_record import StateCopy, decode, encode, fields_read, schema_for
from vid2reward.sim.train import TrainConfig, train


class LocalBatch:
    """A BatchReward that runs a trusted program here, row by row (the reward process's loop
    without the process): what the segment path needs to be compared with the step path."""

    def __init__(self, program: RewardProgram) -> None:
        self.program = program
        self.fields = fields_read(program.source, [f.name for f in STATE_FIELDS])

    def __call__(self, s, a):
        return self.program.compute(s, a)

    def compute_rows(self, schema, rows, actions) -> RewardBatch:
        outputs = [self.program.compute(StateCopy(decode(row, schema)), action)
                   for row, action in zip(rows, actions, strict=True)]
        names = sorted({k for _, components in outputs for k in components})
        values = np.array([[c.get(k, 0.0) for k in names] for _, c in outputs])
        present = np.array([[k in c for k in names] for _, c in outputs], dtype=bool)
        return RewardBatch(np.array([float(t) for t, _ in outputs]), tuple(names),
                           values.reshape(len(rows), len(names)),
                           present.reshape(len(rows), len(names)), np.zeros(len(rows)))


class BufferCapture(BaseCallback):
    """Copies PPO's buffer at the end of each rollout (after returns and advantages)."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict[str, np.ndarray]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        self.rollouts.append({k: getattr(buf, k).copy()
                              for k in ("observations", "actions", "rewards", "returns",
                                        "advantages", "episode_starts")})


def _train(tmp_path, examples_dir, segment: bool, tag: str):
    source = (examples_dir / "hopper_default.py").read_text()
    program = load_reward_program(source, name="hopper_default.py")

    def loader(src, name):
        loaded = load_reward_program(src, name=name)
        if not segment:
            return loaded
        return RewardProgram(source=src, name=name, compute=LocalBatch(loaded))

    # Short episodes (max 60 steps) so that both terminations and truncations happen.
    config = TrainConfig(env_id="Hopper-v5", total_steps=2 * 2 * 128, n_envs=2, n_steps=128,
                         batch_size=128, n_epochs=1, n_workers=1, seed=3, max_episode_steps=60,
                         collect_in_workers=False)
    capture = BufferCapture()
    result = train(config, program, tmp_path / tag, loader=loader, callbacks=[capture],
                   precheck=lambda program, env_id: None)
    assert result.status == "finished", result.metrics.get("failure")
    return capture.rollouts, result.metrics


def test_segment_scoring_fills_the_buffer_as_step_by_step(tmp_path, examples_dir):
    stepwise, step_metrics = _train(tmp_path, examples_dir, segment=False, tag="step")
    batched, batch_metrics = _train(tmp_path, examples_dir, segment=True, tag="segment")
    assert len(stepwise) == len(batched) == 2
    for a, b in zip(stepwise, batched, strict=True):
        np.testing.assert_allclose(b["observations"], a["observations"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b["actions"], a["actions"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b["rewards"], a["rewards"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b["returns"], a["returns"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b["advantages"], a["advantages"], rtol=1e-4, atol=1e-5)
    for key in ("return_mean", "env_return_mean", "episode_length_mean"):
        assert batch_metrics[key] == pytest.approx(step_metrics[key], rel=1e-6), key


def test_a_segment_normalised_wrongly_is_seen(tmp_path, examples_dir, monkeypatch):
    # The plant: skip the running return's reset at episode ends.
    stepwise, _ = _train(tmp_path, examples_dir, segment=False, tag="step")
    original = segment_reward.SegmentVecNormalize.normalize_segment

    def no_reset(self, rewards, dones):
        return original(self, rewards, np.zeros_like(dones))

    monkeypatch.setattr(segment_reward.SegmentVecNormalize, "normalize_segment", no_reset)
    batched, _ = _train(tmp_path, examples_dir, segment=True, tag="segment")
    assert not np.allclose(batched[1]["rewards"], stepwise[1]["rewards"], rtol=1e-5, atol=1e-6)


def test_a_state_row_reads_back_as_the_view_gave_it():
    values = {"x_velocity": 0.25, "step": 7, "terminated": False,
              "foot_contacts": {"left": True, "right": False},
              "qpos": np.arange(4.0), "site_pos": {"a": np.ones(3), "b": np.zeros(3)}}
    schema = schema_for(values, np.zeros(3, dtype=np.float32))
    row = np.empty(schema.width)
    encode(values, schema, row)
    back = decode(row, schema)
    assert back["x_velocity"] == 0.25 and back["step"] == 7 and back["terminated"] is False
    assert back["foot_contacts"] == {"left": True, "right": False}
    np.testing.assert_array_equal(back["qpos"], np.arange(4.0))
    assert not back["qpos"].flags.writeable
    np.testing.assert_array_equal(back["site_pos"]["a"], np.ones(3))
    assert type(back["step"]) is int and type(back["terminated"]) is bool
