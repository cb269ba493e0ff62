"""vid2reward.make_env: a learned reward as a Gymnasium env, sandboxed; the README's SB3 and
CleanRL-style examples run as written (with tiny budgets)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vid2reward
from vid2reward.sim.envs import make_env as make_plain_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError
from vid2reward.tools.reward_env import SandboxedRewardEnv

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CONSTANT = """
WEIGHTS = {"alive": 2.0}

def compute_reward(s, a):
    return WEIGHTS["alive"], {"alive": WEIGHTS["alive"]}
"""


def test_reward_is_the_programs_and_the_rest_is_the_env(tmp_path):
    program = tmp_path / "constant.py"
    program.write_text(CONSTANT)
    env = vid2reward.make_env("Hopper-v5", reward=program, max_episode_steps=300)
    plain = make_plain_env("Hopper-v5", max_episode_steps=300)
    try:
        assert isinstance(env, SandboxedRewardEnv)
        obs, _ = env.reset(seed=3)
        plain_obs, _ = plain.reset(seed=3)
        np.testing.assert_array_equal(obs, plain_obs)  # same seed, same start
        env.action_space.seed(0)
        steps, ended = 0, False
        while not ended:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            plain_obs, plain_reward, plain_term, plain_trunc, _ = plain.step(action)
            steps += 1
            assert reward == 2.0 and info["env_reward"] == pytest.approx(plain_reward)
            # the episode's own last observation, not the next episode's first
            np.testing.assert_allclose(obs, plain_obs, rtol=0, atol=1e-12)
            assert (terminated, truncated) == (plain_term, plain_trunc)
            ended = terminated or truncated
        assert info["episode_components"] == {"alive": 2.0 * steps}
        again, _ = env.reset(seed=3)
        np.testing.assert_array_equal(again, plain.reset(seed=3)[0])
    finally:
        env.close()
        plain.close()


def test_a_program_with_a_gait_clock_gives_the_clocked_observation_as_in_training(tmp_path):
    program = tmp_path / "clocked.py"
    program.write_text("GAIT_CLOCK_HZ = 2.0\n" + CONSTANT)
    env = vid2reward.make_env("Hopper-v5", reward=program)
    clocked = make_plain_env("Hopper-v5", 2.0)
    try:
        assert env.observation_space.shape == (13,)  # Hopper's 11 + sin, cos
        np.testing.assert_array_equal(env.reset(seed=1)[0], clocked.reset(seed=1)[0])
        action = np.zeros(3)
        for _ in range(5):
            np.testing.assert_allclose(env.step(action)[0], clocked.step(action)[0], atol=1e-12)
    finally:
        env.close()
        clocked.close()


def test_hostile_or_broken_programs_fail_in_one_line(tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text("import os\nWEIGHTS = {}\ndef compute_reward(s, a):\n    return 0.0, {}\n")
    with pytest.raises(UserError, match="import"):
        vid2reward.make_env("Hopper-v5", reward=evil)
    with pytest.raises(UserError, match="unknown env"):
        vid2reward.make_env("Nope-v1", reward=EXAMPLES / "hopper_default.py")
    raising = tmp_path / "raising.py"
    raising.write_text("WEIGHTS = {}\ndef compute_reward(s, a):\n    return 1.0 / 0.0, {}\n")
    env = vid2reward.make_env("Hopper-v5", reward=raising)
    try:
        env.reset(seed=0)
        with pytest.raises(RewardError, match="ZeroDivisionError"):
            env.step(env.action_space.sample())
    finally:
        env.close()
    assert not isinstance(vid2reward.make_env("Hopper-v5"), SandboxedRewardEnv)


def _readme_examples() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
              if "vid2reward.make_env" in b]
    assert len(blocks) == 2, "the README shows an SB3 and a CleanRL-style example"
    return blocks


def test_readme_examples_run(tmp_path, capsys):
    sb3, loop = _readme_examples()
    program = str(EXAMPLES / "hopper_default.py")
    # The examples as written, with budgets cut to a few steps and paths that exist here.
    sb3 = (sb3.replace("runs/<id>/best/reward.py", program)
           .replace('PPO("MlpPolicy", env, verbose=1)',
                    'PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, verbose=0)')
           .replace("total_timesteps=300_000", "total_timesteps=64")
           .replace('"hopper_learned_reward"', repr(str(tmp_path / "model"))))
    assert "n_steps=64" in sb3 and "total_timesteps=64" in sb3
    exec(compile(sb3, "README.md (SB3 example)", "exec"), {"__name__": "__main__"})
    assert (tmp_path / "model.zip").is_file()
    loop = loop.replace("runs/<id>/best/reward.py", program).replace("range(10_000)", "range(250)")
    assert "range(250)" in loop
    exec(compile(loop, "README.md (loop example)", "exec"), {"__name__": "__main__"})
    # Random actions make the hopper fall within ~20-40 steps: episodes finished and their
    # returns (of the learned reward) were printed.
    assert re.search(r"^\d+ \[\d", capsys.readouterr().out, re.M)


def test_a_script_that_never_closes_the_env_still_exits(tmp_path):
    script = tmp_path / "forgetful.py"
    script.write_text(
        "import vid2reward\n"
        "if __name__ == '__main__':\n"
        f"    env = vid2reward.make_env('Hopper-v5', reward={str(EXAMPLES / 'hopper_default.py')!r})\n"
        "    env.reset(seed=0)\n"
        "    env.step(env.action_space.sample())\n"
        "    raise SystemExit('left without close()')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "left without close()" in done.stderr
