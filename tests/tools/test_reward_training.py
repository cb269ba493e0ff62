"""Sandboxed training: a reward that fails mid-training ends the run with a recorded reason."""

import json
import os

import pytest

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError
from vid2reward.sim.train import TrainConfig
from vid2reward.tools.reward_isolation import isolation_problem
from vid2reward.tools.reward_sandbox import SandboxLimits, sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed, training_limits

TINY = dict(total_steps=2048, n_envs=4, n_steps=256, batch_size=256, n_epochs=1, n_workers=1)
LIMITS = SandboxLimits(memory_mb=1024, call_seconds=0.5, load_seconds=2.0)


def late(body: str, after: int = 20) -> str:
    """A program that runs ``body`` once the episode is past ``after`` steps."""
    return ("import numpy as np\n"
            "def compute_reward(s, a):\n"
            f"    if s.step > {after}:\n"
            f"        {body}\n"
            "    return 1.0, {'alive': 1.0}\n")


def run(tmp_path, source, name="late.py", **config):
    program = sandboxed_program(source, name=name)
    cfg = TrainConfig(env_id="HalfCheetah-v5", **{**TINY, **config})
    return train_sandboxed(cfg, program, tmp_path / "out", limits=LIMITS)


def assert_failed_with(result, tmp_path, *texts):
    assert result.status == "failed"
    failure = result.metrics["failure"]
    assert "\n" not in failure
    for text in texts:
        assert text in failure, failure
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json"]
    recorded = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert recorded["status"] == "failed" and recorded["failure"] == failure


def test_sandboxed_training_of_an_example_finishes(tmp_path, examples_dir):
    program = sandboxed_program(examples_dir / "hopper_default.py")
    result = train_sandboxed(TrainConfig(env_id="Hopper-v5", **TINY), program,
                             tmp_path / "out", limits=LIMITS)
    assert result.status == "finished" and result.metrics["steps"] >= 2048
    assert set(result.metrics["components"]) == {"forward", "healthy", "ctrl"}
    assert result.metrics["config"]["step_timeout"] == LIMITS.step_seconds
    assert (tmp_path / "out" / "reward.py").read_text() == program.source
    recorded = json.loads((tmp_path / "out" / "metrics.json").read_text())["sandbox"]
    assert recorded == result.metrics["sandbox"] and recorded["trust_reward_code"] is False
    if isolation_problem() is None:  # what the pre-check's child got from the OS
        assert recorded["isolated"] and recorded["seccomp"] and recorded["no_new_privs"]
    assert _reward_processes() == [], "a finished training leaves no reward process behind"


def _reward_processes() -> list[str]:
    """This process's children that are reward processes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            parent = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if b"reward_worker" in cmdline and parent == str(os.getpid()):
            found.append(pid)
    return found


def test_reward_raising_mid_training(tmp_path):
    result = run(tmp_path, late("raise ValueError('boom')"))
    assert_failed_with(result, tmp_path, "ValueError", "boom", "line 4", "late.py")


def test_reward_hanging_mid_training(tmp_path):
    result = run(tmp_path, late("while True: pass"), step_timeout=1.0)
    assert_failed_with(result, tmp_path, "ran longer than 1 s at episode step 21 "
                                         "(interrupted on line 4)")


def test_reward_stuck_in_a_c_call_mid_training_is_killed(tmp_path):
    # One C call the per-call alarm cannot interrupt: the reward process's CPU budget ends it.
    result = run(tmp_path, late("np.convolve(np.ones(10**6), np.ones(10**6))"), step_timeout=1.0)
    assert_failed_with(result, tmp_path, "reward process ended", "CPU-time limit")


def test_reward_exhausting_memory_mid_training(tmp_path):
    result = run(tmp_path, late("x = np.ones(3 * 10**8)"))
    assert_failed_with(result, tmp_path, "MemoryError", "line 4")


def test_reward_overflowing_mid_training(tmp_path):
    # OverflowError is not a RewardError: it must still be a recorded one-line failure.
    result = run(tmp_path, late("return 10**400, {}"))
    assert_failed_with(result, tmp_path, "too large for a float")


def test_reward_returning_nan_mid_training(tmp_path):
    result = run(tmp_path, late("return float('nan'), {}"))
    assert_failed_with(result, tmp_path, "nan")


def test_reward_broken_from_the_start_writes_nothing(tmp_path):
    with pytest.raises(RewardError, match="ZeroDivisionError"):
        run(tmp_path, late("x = 1 / 0", after=0))
    with pytest.raises(RewardError, match="ran longer than"):
        run(tmp_path, late("while True: pass", after=0))
    assert list(tmp_path.iterdir()) == []


def test_rejected_source_and_in_process_training_are_refused(tmp_path):
    with pytest.raises(RewardError, match="rule import"):
        run(tmp_path, "import os\n" + late("pass"))
    with pytest.raises(UserError, match="worker processes"):
        run(tmp_path, late("pass"), n_workers=0)
    assert list(tmp_path.iterdir()) == []


def test_cpu_budget_grows_with_the_steps_a_worker_runs():
    small = training_limits(TrainConfig(total_steps=1000, n_workers=2), LIMITS)
    large = training_limits(TrainConfig(total_steps=1_000_000, n_workers=2), LIMITS)
    assert LIMITS.cpu_seconds < small.cpu_seconds < large.cpu_seconds
    assert large.memory_mb == LIMITS.memory_mb
