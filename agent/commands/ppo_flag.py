"""``--ppo FIELD=VALUE``: PPO settings over the env's preset, for ``train`` and ``bench learning``."""

from __future__ import annotations

import argparse
import ast
from typing import Any

from vid2reward.sim.errors import UserError
from vid2reward.sim.train import TrainConfig

PPO_FIELDS = ("n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate",
              "learning_rate_schedule", "gamma", "gae_lambda", "clip_range", "ent_coef", "vf_coef",
              "max_grad_norm", "net_arch", "activation", "log_std_init", "ortho_init",
              "normalize_reward", "torch_threads", "collect_in_workers")
"""TrainConfig fields ``--ppo`` may set (the learning knobs, not the budget, seed or reward)."""


def add_ppo_argument(parser: argparse.ArgumentParser, purpose: str) -> None:
    """Add ``--ppo FIELD=VALUE ...`` to ``parser``; ``purpose`` starts its help line."""
    parser.add_argument("--ppo", nargs="+", metavar="FIELD=VALUE", default=[],
                        help=f"{purpose} (e.g. --ppo n_envs=32 n_steps=128 batch_size=512 "
                             f"n_epochs=5); fields: {', '.join(PPO_FIELDS)}")


def ppo_overrides(items: list[str]) -> dict[str, Any]:
    """``["n_epochs=5", "net_arch=(256, 256)", "activation=relu"]`` as TrainConfig fields, each
    value checked against the type of the field's default."""
    defaults = TrainConfig()
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in PPO_FIELDS:
            raise UserError(f"--ppo takes FIELD=VALUE with FIELD one of {', '.join(PPO_FIELDS)}",
                            where=item, fix="e.g. --ppo n_epochs=5 batch_size=512")
        default = getattr(defaults, name)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word: activation=relu
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(default, tuple) and isinstance(value, list | tuple):
            value = tuple(value)
        if type(value) is not type(default) or (isinstance(value, tuple)
                                                and not all(type(v) is int for v in value)):
            kind = {"int": "an integer", "float": "a number", "str": "a word", "bool": "True or False",
                    "tuple": "a tuple of integers"}[type(default).__name__]
            raise UserError(f"--ppo {name} must be {kind}, like {name}={default!r}", where=item,
                            fix=f"e.g. --ppo {name}={default!r} (the preset's value)")
        overrides[name] = value
    return overrides
