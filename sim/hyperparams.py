"""PPO hyperparameters in one readable table: ours per env, and RL Zoo's as the anchor.

:data:`PPO_PRESETS` holds what ``vid2reward train`` uses: the fields of
:class:`~vid2reward.sim.train.TrainConfig` that differ from its defaults, per env. They were
chosen with ``vid2reward bench learning`` (time to reach the expert's behaviour on this 2-core
CPU, not steps/s); docs/performance.md has the table of what was tried and what it gave.

:data:`RL_ZOO_PPO` is rl-baselines3-zoo's tuned PPO for the same bodies (hyperparams/ppo.yml,
their ``-v3`` entries; the ``-v5`` envs have the same bodies and rewards). ``bench learning``
trains it beside ours as the anchor: SB3 PPO, one env in a plain DummyVecEnv, VecNormalize.
"""

from __future__ import annotations

from typing import Any

PPO_PRESETS: dict[str, dict[str, Any]] = {
    # Every env starts from TrainConfig's defaults (8 envs x 512 steps, 10 epochs of 256-sample
    # minibatches: 160 gradient steps per 4096 samples). Entries here override them.
    # Measured and not kept (docs/performance.md): 32 envs x 128 steps with 5 epochs of 512 for
    # Walker2d and HalfCheetah learns about as much per sample and runs 1.5-2.4x faster in a
    # long `train` (`train --ppo` gives it), but starves the search's 30k-step candidates.
    "Hopper-v5": {},
    "Walker2d-v5": {},
    "HalfCheetah-v5": {},
    "Ant-v5": {},
    "Humanoid-v5": {},
}
"""Per-env overrides of :class:`~vid2reward.sim.train.TrainConfig`'s PPO fields."""


_ZOO_NET = {"net_arch": (256, 256), "activation": "relu", "log_std_init": -2.0,
            "ortho_init": False}

RL_ZOO_PPO: dict[str, dict[str, Any]] = {
    "Hopper-v5": {"n_envs": 1, "n_steps": 512, "batch_size": 32, "n_epochs": 5,
                  "gamma": 0.999, "gae_lambda": 0.99, "learning_rate": 9.80828e-05,
                  "ent_coef": 0.00229519, "clip_range": 0.2, "max_grad_norm": 0.7,
                  "vf_coef": 0.835671, **_ZOO_NET},
    "Walker2d-v5": {"n_envs": 1, "n_steps": 512, "batch_size": 32, "n_epochs": 20,
                    "gamma": 0.99, "gae_lambda": 0.95, "learning_rate": 5.05041e-05,
                    "ent_coef": 0.000585045, "clip_range": 0.1, "max_grad_norm": 1.0,
                    "vf_coef": 0.871923},
    "HalfCheetah-v5": {"n_envs": 1, "n_steps": 512, "batch_size": 64, "n_epochs": 20,
                       "gamma": 0.98, "gae_lambda": 0.92, "learning_rate": 2.0633e-05,
                       "ent_coef": 0.000401762, "clip_range": 0.1, "max_grad_norm": 0.8,
                       "vf_coef": 0.58096, **_ZOO_NET},
}
"""RL Zoo's tuned PPO (hyperparams/ppo.yml) as TrainConfig fields; all use ``normalize: true``
(VecNormalize of observations and rewards). Walker2d's entry sets no policy_kwargs there, so
it keeps SB3's default network (64 x 64, tanh)."""
