"""Throughput measurements: the physics limit, raw env steps/s and PPO training steps/s (for
``vid2reward bench throughput``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from vid2reward.sim.envs import make_env
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.train import TrainConfig, TrainResult, train

EXAMPLE_FOR_ENV = {
    "Hopper-v5": "hopper_default.py",
    "Walker2d-v5": "walker2d_default.py",
    "HalfCheetah-v5": "halfcheetah_default.py",
    "Ant-v5": "ant_default.py",
    "Humanoid-v5": "humanoid_default.py",
}
"""The bundled reward program that reproduces each env's own reward."""


def example_reward_path(env_id: str) -> Path:
    """Path of the bundled example reward program for ``env_id``."""
    import vid2reward.examples as examples

    return Path(examples.__file__).parent / EXAMPLE_FOR_ENV[env_id]


Trainer = Callable[..., TrainResult]
"""``train`` or a function with its signature (the sandboxed ``train_sandboxed``, which runs
the program the way ``vid2reward train`` does)."""


@dataclass(frozen=True)
class Throughput:
    """Steps per second of one env: the physics alone, raw stepping and training."""

    env_id: str
    physics_steps_per_second: float
    """The env's bare MuJoCo model stepped by ``mujoco.rollout`` on both cores (the limit)."""
    raw_steps_per_second: float
    """Random actions, one process, the env's own reward."""
    train_steps_per_second: float
    """PPO with the env's TrainConfig on the example reward program, after warm-up."""

    @property
    def ratio(self) -> float:
        """Training throughput as a fraction of the one-process raw step rate."""
        return self.train_steps_per_second / self.raw_steps_per_second

    @property
    def of_physics(self) -> float:
        """Training throughput as a fraction of the physics limit."""
        return self.train_steps_per_second / self.physics_steps_per_second


def raw_steps_per_second(env_id: str, steps: int = 20_000, seed: int = 0) -> float:
    """Env steps/s with random actions in this process (resets included)."""
    env = make_env(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(1000)]
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % 1000])
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def train_steps_per_second(env_id: str, steps: int = 60_000, config: TrainConfig | None = None,
                           trainer: Trainer = train) -> float:
    """PPO training steps/s, measured between the first and last progress reports so that
    process start-up and the first rollout's warm-up are not counted."""
    config = config or TrainConfig.for_env(env_id)
    config.env_id, config.total_steps = env_id, steps
    marks: list[tuple[float, int]] = []
    program = load_reward_program(example_reward_path(env_id))
    with TemporaryDirectory() as tmp:
        trainer(config, program, Path(tmp) / "out",
                on_progress=lambda done, total: marks.append((time.perf_counter(), done)))
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) / (t1 - t0)


def measure_throughput(env_id: str, raw_steps: int = 20_000, train_steps: int = 60_000,
                       trainer: Trainer = train) -> Throughput:
    """Physics, raw and training steps/s for one env, measured one after the other."""
    return Throughput(env_id, physics_steps_per_second(env_id),
                      raw_steps_per_second(env_id, raw_steps),
                      train_steps_per_second(env_id, train_steps, trainer=trainer))


TRAIN_VARIANTS: dict[str, dict[str, int]] = {
    "in-process, 8 envs (DummyVecEnv)": {"n_workers": 0},
    "in-process, 32 envs x 128 steps (DummyVecEnv)": {"n_envs": 32, "n_workers": 0, "n_steps": 128},
    "1 process per env, 8 envs (like SubprocVecEnv)": {"n_workers": 8},
    "2 workers x 4 envs (default)": {},
    "2 workers x 16 envs x 128 steps": {"n_envs": 32, "n_steps": 128},
    "2 workers x 4 envs, 2 torch threads": {"torch_threads": 2},
}
"""Training set-ups compared by ``vid2reward bench throughput --variants`` (TrainConfig fields;
every variant keeps 4096-sample rollouts so the PPO update costs the same)."""


def measure_train_variants(env_id: str = "Hopper-v5", steps: int = 60_000) -> dict[str, float]:
    """Training steps/s of each :data:`TRAIN_VARIANTS` set-up on ``env_id``."""
    return {name: train_steps_per_second(env_id, steps, TrainConfig.for_env(env_id, **overrides))
            for name, overrides in TRAIN_VARIANTS.items()}


def physics_steps_per_second(env_id: str, threads: int = 2, seconds: float = 3.0,
                             batch: int = 64) -> float:
    """The physical limit: env steps/s of the env's bare MuJoCo model stepped by
    ``mujoco.rollout`` on ``threads`` threads (random controls, no Python per step, no reward,
    no policy). One env step is ``frame_skip`` physics steps."""
    import mujoco
    import numpy as np
    from mujoco import rollout

    env = make_env(env_id)
    mj: Any = env.unwrapped
    model, frame_skip = mj.model, int(mj.frame_skip)
    env.reset(seed=0)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, mj.data, state, spec)
    env.close()
    rng = np.random.default_rng(0)
    nstep = 200 * frame_skip
    initial = np.tile(state, (batch, 1))
    control = rng.uniform(-1.0, 1.0, (batch, nstep, model.nu))
    datas = [mujoco.MjData(model) for _ in range(threads)]
    rollout.rollout([model] * batch, datas, initial, control, nstep=nstep)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        rollout.rollout([model] * batch, datas, initial, control, nstep=nstep)
        done += batch * nstep
    return done / (time.perf_counter() - started) / frame_skip
