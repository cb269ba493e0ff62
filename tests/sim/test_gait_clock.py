"""The gait clock: a reward program declares GAIT_CLOCK_HZ, training and every rollout of its
policy append the clock's phase to the observation, and the program reads the same phase from
s.time."""

import json
import math

import numpy as np
import pytest
from stable_baselines3 import PPO

from vid2reward.sim.envs import make_env
from vid2reward.sim.errors import RewardError, UserError
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.sim.train import TrainConfig, train
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed

TINY = dict(total_steps=1024, n_envs=2, n_steps=512, batch_size=256, n_epochs=1)

# Pays when the thighs' difference follows the clock: the phase comes from s.time alone.
CLOCKED = '''
import numpy as np

GAIT_CLOCK_HZ = 1.25

def compute_reward(s, a):
    d = s.gait_angles.get("hip_left", 0.0) - s.gait_angles.get("hip_right", 0.0)
    follow = float(np.exp(-abs(d - 0.5 * np.sin(2 * np.pi * GAIT_CLOCK_HZ * s.time))))
    return follow + float(s.is_healthy), {"follow": follow, "alive": float(s.is_healthy)}
'''


@pytest.mark.parametrize("source, hz", [
    ("GAIT_CLOCK_HZ = 1.3\n", 1.3),
    ("GAIT_CLOCK_HZ: float = 2\n", 2.0),
    ("GAIT_CLOCK_HZ = 9.0\nGAIT_CLOCK_HZ = 0.8\n", 0.8),  # the last assignment, as when run
    ("X = 1\ndef f():\n    GAIT_CLOCK_HZ = 3.0\n", None),  # not at module level
    ("def compute_reward(s, a):\n    return 0.0, {}\n", None),
    ("this is not python", None),  # loading the program reports the syntax error
])
def test_the_clock_is_read_from_the_programs_syntax_tree(source, hz):
    assert declared_clock_hz(source) == hz


@pytest.mark.parametrize("value", ["0", "-1.0", "1e9", "float('nan')", "'fast'", "True", "F * 2",
                                   "[1.0]"])
def test_a_clock_that_is_not_a_literal_frequency_is_refused_in_one_line(value):
    with pytest.raises(RewardError, match="GAIT_CLOCK_HZ must be a number of Hz") as err:
        declared_clock_hz(f"F = 1.0\nGAIT_CLOCK_HZ = {value}\n", name="r.py")
    assert err.value.where == "r.py" and "\n" not in str(err.value)


def test_the_observation_carries_the_clocks_phase_from_each_reset():
    plain, clocked = make_env("Walker2d-v5"), make_env("Walker2d-v5", 1.25)
    assert clocked.observation_space.shape == (plain.observation_space.shape[0] + 2,)
    dt = float(clocked.unwrapped.dt)
    for _ in range(2):  # the clock restarts with every episode
        obs, _ = clocked.reset(seed=3)
        assert obs[-2:] == pytest.approx([0.0, 1.0])
        assert clocked.observation_space.contains(obs)
        for n in range(1, 40):
            obs, *_ = clocked.step(np.zeros(6))
            phase = 2 * math.pi * 1.25 * n * dt
            assert obs[-2:] == pytest.approx([math.sin(phase), math.cos(phase)], abs=1e-6)
    ref, _ = plain.reset(seed=3)
    again, _ = clocked.reset(seed=3)
    assert again[:-2] == pytest.approx(ref)  # the env's own observation is untouched


def test_a_clocked_program_trains_a_policy_whose_rollouts_see_the_clock(tmp_path):
    result = train_sandboxed(TrainConfig(env_id="Walker2d-v5", n_workers=1, **TINY),
                             sandboxed_program(CLOCKED, "clocked.py"), tmp_path / "p")
    assert result.status == "finished", result.metrics["failure"]
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["gait_clock_hz"] == 1.25
    assert set(metrics["components"]) == {"follow", "alive"}
    assert PPO.load(tmp_path / "p" / "policy.zip").observation_space.shape == (19,)  # 17 + 2
    policy = load_policy(tmp_path / "p")
    assert policy.gait_clock_hz == 1.25
    seen = []
    policy.act = lambda obs: (seen.append(obs), np.zeros(6))[1]  # what its network is given
    run_episodes("Walker2d-v5", policy, episodes=1, seed=0, max_steps=30)
    assert len(seen[5]) == 19 and seen[5][-2] == pytest.approx(math.sin(2 * math.pi * 1.25 * 5 * 0.008))

    # a clocked policy's evaluation during training sees the clock too (bench learning)
    from vid2reward.sim.evaluation import CheckpointEvaluation

    done = []
    evaluation = CheckpointEvaluation("Walker2d-v5", 512, lambda *a: done.append(a), episodes=1,
                                      max_steps=20, gait_clock_hz=1.25)
    train_sandboxed(TrainConfig(env_id="Walker2d-v5", n_workers=1, **TINY),
                    sandboxed_program(CLOCKED, "clocked.py"), tmp_path / "q", callbacks=[evaluation])
    assert done and done[-1][2].episodes == 1

    # the policy's clock is part of what it observes: continuing it needs the same clock,
    # and without its reward.py, metrics.json still says which clock it saw
    other = CLOCKED.replace("GAIT_CLOCK_HZ = 1.25", "GAIT_CLOCK_HZ = 2.0")
    with pytest.raises(UserError, match="observes a 1.25 Hz gait clock, this program declares a 2 Hz"):
        train_sandboxed(TrainConfig(env_id="Walker2d-v5", n_workers=1, init_from=str(tmp_path / "p"),
                                    **TINY), sandboxed_program(other, "other.py"), tmp_path / "r")
    (tmp_path / "p" / "reward.py").unlink()
    assert load_policy(tmp_path / "p").gait_clock_hz == 1.25
    (tmp_path / "p" / "metrics.json").unlink()
    with pytest.raises(UserError, match=r"observes \(19,\) values, the env \(17,\)"):
        load_policy(tmp_path / "p", "Walker2d-v5")


def test_the_rewards_phase_is_the_observations_across_automatic_resets():
    """In a vectorised env the next episode starts inside step(): the program's s.time and the
    observation's clock restart together."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from vid2reward.sim.reward import RewardWrapper, load_reward_program

    source = CLOCKED.replace("return follow + float(s.is_healthy)",
                             "return float(np.sin(2 * np.pi * GAIT_CLOCK_HZ * s.time))")
    program = load_reward_program(source, name="phase")
    venv = DummyVecEnv([lambda: RewardWrapper(make_env("Walker2d-v5", 1.25, max_episode_steps=30),
                                              program, "Walker2d-v5")])
    venv.reset()
    for _ in range(100):  # three automatic resets
        obs, reward, done, info = venv.step(np.zeros((1, 6)))
        last = info[0]["terminal_observation"] if done[0] else obs[0]
        assert reward[0] == pytest.approx(last[-2], abs=1e-6)
    venv.close()


def test_a_program_without_a_clock_trains_on_the_envs_own_observation(tmp_path, examples_dir):
    from vid2reward.sim.reward import load_reward_program

    program = load_reward_program(examples_dir / "hopper_default.py")
    train(TrainConfig(env_id="Hopper-v5", n_workers=0, **TINY), program, tmp_path / "h")
    assert json.loads((tmp_path / "h" / "metrics.json").read_text())["gait_clock_hz"] is None
    assert load_policy(tmp_path / "h").gait_clock_hz is None
