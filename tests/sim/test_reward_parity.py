"""The example reward programs reproduce each env's own reward, step by step."""

from pathlib import Path

import pytest

from vid2reward.sim.envs import ENV_SPECS, make_env
from vid2reward.sim.reward import RewardWrapper, load_reward_program
from vid2reward.sim.throughput import EXAMPLE_FOR_ENV

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_registered_env_has_an_example():
    assert set(EXAMPLE_FOR_ENV) == set(ENV_SPECS)


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
def test_wrapper_total_equals_env_reward(env_id):
    program = load_reward_program(EXAMPLES / EXAMPLE_FOR_ENV[env_id])
    env = RewardWrapper(make_env(env_id), program, env_id)
    env.reset(seed=1)
    env.action_space.seed(1)
    resets = 0
    for _ in range(400):
        _, total, terminated, truncated, info = env.step(env.action_space.sample())
        assert total == pytest.approx(info["env_reward"], rel=1e-6, abs=1e-6)
        assert sum(env.last_components.values()) == pytest.approx(total, rel=1e-9, abs=1e-9)
        if terminated or truncated:
            assert "episode_components" in info
            env.reset()
            resets += 1
    env.close()
    if env_id != "HalfCheetah-v5":  # random actions end most episodes early: both paths are tested
        assert resets > 0
