"""`bench nes --methods reference` trains an --experts DIR's reward_source, which is whatever
its JSON says: it runs in a reward process like any other program, never here."""

from pathlib import Path

import pytest

from vid2reward.agent.benchmark import BenchConfig, TaskGround, _train_once
from vid2reward.sim.errors import RewardError


def _ground(reference: str) -> TaskGround:
    return TaskGround(task="hostile", env_id="Hopper-v5", clip=Path("none.mp4"),
                      expert_metrics={}, random_metrics={}, max_steps=100,
                      reference_reward=reference)


def test_a_hostile_reference_reward_is_rejected_before_it_runs(tmp_path):
    marker = tmp_path / "escaped"
    source = (f"import os\nos.system('touch {marker}')\n"
              "def compute_reward(s, a):\n    return 0.0, {}\n")
    cfg = BenchConfig(tasks=["hostile"], steps=256, methods=["reference"], n_envs=2)
    with pytest.raises(RewardError, match="import"):
        _train_once("reference", _ground(source), cfg, 0, tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run" / "policy").exists()


def test_a_reference_reward_that_fails_at_run_time_fails_in_its_reward_process(tmp_path):
    source = "def compute_reward(s, a):\n    return 1.0 / (s.step - s.step), {}\n"
    cfg = BenchConfig(tasks=["hostile"], steps=256, methods=["reference"], n_envs=2)
    with pytest.raises(RewardError, match="ZeroDivisionError"):
        _train_once("reference", _ground(source), cfg, 0, tmp_path / "run")
