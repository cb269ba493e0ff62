"""vid2reward: learn a reinforcement-learning reward as code from a video of an expert.

The code lives in the repository's top-level folders, installed as subpackages:
``vid2reward.sim`` (simulation), ``vid2reward.tools`` (what agents can do) and
``vid2reward.agent`` (the LangGraph state machine and the CLI). :func:`make_env` is the
public way to use a learned reward with any RL code.
"""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gymnasium as _gym

__version__ = "0.1.0"

# MuJoCo picks its GL backend when it is first imported, so the headless default must be set
# before any submodule imports mujoco: Mesa's EGL renders on the CPU with no display.
_os.environ.setdefault("MUJOCO_GL", "egl")


def make_env(env_id: str, reward: str | _os.PathLike[str] | None = None, *,
             max_episode_steps: int | None = None,
             trust_reward_code: bool | None = None) -> _gym.Env:
    """A Gymnasium env whose reward is a learned reward program (e.g. a run's best/reward.py).

    The physics and the program run in one worker process that the OS isolates before the
    program's first line, as in training: reward code is untrusted input. Observations,
    actions, termination and truncation are the unmodified env's; the reward is the program's
    total, ``info["env_reward"]`` the env's own. A program that declares a gait clock
    (``GAIT_CLOCK_HZ = f``) gets its phase appended to the observation, ``(sin, cos)`` of
    ``2 pi f t``, as in training. Without ``reward``, the plain env.

    Create it under ``if __name__ == "__main__":`` in a script (its worker starts from a
    forkserver, as SB3's SubprocVecEnv does), and ``close()`` it when done.

    Args:
        env_id: a supported Gymnasium MuJoCo id, e.g. ``"Hopper-v5"``.
        reward: a reward program (``compute_reward(s, a)``): the path of its .py file, or its
            source text; None for the env's own reward.
        max_episode_steps: a shorter (or longer) time limit than the env's 1000 steps.
        trust_reward_code: run the program unisolated where the OS cannot isolate (macOS, some
            containers); only for code you trust. Where it can, the code is always isolated.

    Raises:
        vid2reward.sim.errors.UserError: unknown env, a missing or rejected program, or no OS
            isolation without ``trust_reward_code``.
    """
    from vid2reward.tools.reward_env import make_reward_env

    return make_reward_env(env_id, reward if reward is None or isinstance(reward, str)
                           else _Path(reward),
                           max_episode_steps=max_episode_steps,
                           trust_reward_code=trust_reward_code)
