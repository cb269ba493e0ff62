"""Simulation: env registry, state view, reward programs, PPO training, rendering, metrics.

Nothing here imports ``vid2reward.tools`` or ``vid2reward.agent``.
"""

from vid2reward.sim.envs import ENV_SPECS, EnvSpec, get_spec, make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import (
    RewardError,
    RewardProgram,
    RewardWrapper,
    check_reward_output,
    load_reward_program,
)
from vid2reward.sim.state import STATE_FIELDS, StateTracker, StateView
from vid2reward.sim.state import env_context as _env_context_for_spec
from vid2reward.sim.train import TrainConfig, TrainResult, train


def env_context(env_id: str) -> str:
    """The env context text (state-view names, units, typical values) for a registered env."""
    return _env_context_for_spec(get_spec(env_id))


__all__ = [
    "ENV_SPECS", "EnvSpec", "get_spec", "make_env", "UserError", "RewardError", "RewardProgram",
    "RewardWrapper", "check_reward_output", "load_reward_program", "STATE_FIELDS", "StateTracker",
    "StateView", "TrainConfig", "TrainResult", "train", "env_context",
]
