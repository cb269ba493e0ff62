"""Simulation: env registry, state view, reward programs, PPO training, rendering, metrics.

Nothing here imports ``vid2reward.tools`` or ``vid2reward.agent``. The public names below load
their module on first use (PEP 562), so importing one light module of the package (the error
type, the env registry) does not pull in torch and stable-baselines3.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ENV_SPECS": "envs", "EnvSpec": "envs", "get_spec": "envs", "make_env": "envs",
    "UserError": "errors",
    "RewardError": "reward", "RewardProgram": "reward", "RewardWrapper": "reward",
    "check_reward_output": "reward", "load_reward_program": "reward",
    "STATE_FIELDS": "state", "StateTracker": "state", "StateView": "state",
    "TrainConfig": "train", "TrainResult": "train", "train": "train",
}
__all__ = [*_PUBLIC, "env_context"]


def env_context(env_id: str) -> str:
    """The env context text (state-view names, units, typical values) for a registered env."""
    from vid2reward.sim.envs import get_spec
    from vid2reward.sim.state import env_context as context_for_spec

    return context_for_spec(get_spec(env_id))


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"vid2reward.sim.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'vid2reward.sim' has no attribute '{name}'")
