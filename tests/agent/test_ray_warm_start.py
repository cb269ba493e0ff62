"""A warm-started candidate trained on another node: the policy it continues travels with the
task (a worker cannot read the driver's disk). The task body runs here, without Ray."""

import dataclasses
from pathlib import Path

import pytest

import vid2reward.examples as examples
from vid2reward.agent.ray_training import train_on_worker, warm_start_files
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.train import TrainConfig, train

REWARD = Path(examples.__file__).parent / "hopper_default.py"


def test_the_policy_a_warm_start_continues_travels_with_the_task(tmp_path):
    parent = tmp_path / "parent"
    config = TrainConfig.for_env("Hopper-v5", total_steps=512, n_envs=2, n_workers=1)
    train(config, load_reward_program(REWARD.read_text(), name="hopper_default.py"), parent)
    warm = dataclasses.replace(config, init_from=str(parent))
    files = warm_start_files(warm)
    assert set(files) == {"policy.zip", "vecnormalize.pkl", "reward.py"}
    assert warm_start_files(config) == {}
    # on the worker the driver's directory does not exist; the shipped files stand in for it
    elsewhere = dataclasses.replace(warm, init_from=str(tmp_path / "not-on-this-node"))
    result = train_on_worker(elsewhere, REWARD.read_text(), "hopper_default.py", True, files)
    assert result.metrics["status"] != "failed", result.metrics.get("failure")
    assert "policy.zip" in result.files
    # without them the same task fails: nothing to continue from
    with pytest.raises(UserError, match="no policy.zip to start from"):
        train_on_worker(elsewhere, REWARD.read_text(), "hopper_default.py", True, None)


def test_a_clocked_policy_is_continued_on_a_worker_with_its_clock(tmp_path):
    """The worker must know what the policy observed: its program travels with it."""
    clocked = "GAIT_CLOCK_HZ = 1.5\n" + REWARD.read_text()
    parent = tmp_path / "parent"
    config = TrainConfig.for_env("Hopper-v5", total_steps=512, n_envs=2, n_workers=1)
    train(config, load_reward_program(clocked, name="clocked.py"), parent)
    files = warm_start_files(dataclasses.replace(config, init_from=str(parent)))
    elsewhere = dataclasses.replace(config, init_from=str(tmp_path / "not-on-this-node"))
    result = train_on_worker(elsewhere, clocked, "clocked.py", True, files)
    assert result.metrics["status"] != "failed", result.metrics.get("failure")
    assert result.metrics["gait_clock_hz"] == 1.5
