"""PPO training on an untrusted reward program: the sandbox wired into ``sim.train.train``.

:func:`train_sandboxed` is what ``vid2reward train`` and the agents call. Reward code then runs
only in env worker processes (never in the caller, so ``n_workers`` must be at least 1), each
loaded with :func:`~vid2reward.tools.reward_sandbox.load_sandboxed` under memory and CPU-time
limits, with every step bounded by ``step_timeout``. The few pre-check steps that catch a
program broken from the start run in a limited child process too. A program that raises,
returns NaN, hangs, or exhausts its memory mid-training ends the run with status "failed" and
a one-line reason in metrics.json; the caller survives.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError, RewardProgram
from vid2reward.sim.train import ProgressFn, TrainConfig, TrainResult, check_reward_on_env, train
from vid2reward.tools.reward_check import check_reward_source
from vid2reward.tools.reward_sandbox import (
    DEFAULT_LIMITS,
    SandboxLimits,
    SandboxTimeout,
    apply_limits,
    load_sandboxed,
    program_line,
    run_in_sandbox,
    time_limit,
)

PRECHECK_STEPS = 5
"""Env steps the pre-check runs (as ``sim.train.check_reward_on_env`` does in-process)."""

CPU_SECONDS_PER_STEP = 0.005
"""Training CPU-time budget of a worker per env step it runs: 10x more than the costliest env
(Humanoid) needs with a reasonable reward; a backstop behind the step timeout."""


def training_limits(config: TrainConfig, limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxLimits:
    """The limits for one training worker: ``limits`` with a CPU-time budget scaled to the
    steps that worker will run (a fixed budget would end long runs)."""
    if limits.cpu_seconds is None:
        return limits
    steps = config.total_steps / max(1, config.n_workers)
    return dataclasses.replace(limits, cpu_seconds=limits.cpu_seconds + CPU_SECONDS_PER_STEP * steps)


def sandboxed_precheck(program: RewardProgram, env_id: str,
                       limits: SandboxLimits = DEFAULT_LIMITS) -> None:
    """Run the program for a few steps in a limited child process (a ``train`` precheck).

    Raises:
        RewardError: the program breaks a static rule, raises, returns a bad value, runs too
            long or dies in its first steps.
    """
    run_in_sandbox(_precheck_in_child, program.source, program.name, env_id,
                   limits.load_seconds, limits.call_seconds, limits=limits)


def _precheck_in_child(source: str, name: str, env_id: str, load_seconds: float,
                       call_seconds: float) -> None:
    program = load_sandboxed(source, name, load_seconds)
    budget = call_seconds * PRECHECK_STEPS + 5.0  # the env steps themselves take milliseconds
    try:
        with time_limit(budget):
            check_reward_on_env(program, env_id, steps=PRECHECK_STEPS)
    except SandboxTimeout as exc:
        line = program_line(exc, name)
        at = f" (interrupted on line {line})" if line else ""
        raise RewardError(f"compute_reward ran longer than {budget:g} s over the first "
                          f"{PRECHECK_STEPS} steps{at}", where=name,
                          fix="look for loops that never end or loops over huge ranges") from None


def train_sandboxed(config: TrainConfig, program: RewardProgram, out_dir: str | Path, *,
                    limits: SandboxLimits = DEFAULT_LIMITS, on_progress: ProgressFn | None = None,
                    callbacks: list[BaseCallback] | None = None) -> TrainResult:
    """Train PPO on an untrusted reward program (see :func:`vid2reward.sim.train.train`).

    Args:
        config: the training configuration; ``n_workers`` must be at least 1, and a
            ``step_timeout`` of None becomes ``limits.step_seconds``.
        program: the program; only its source and name are used to run it (get one that never
            runs here with :func:`~vid2reward.tools.reward_sandbox.sandboxed_program`).
        out_dir: where to write the results.
        limits: memory, CPU and time limits for the workers and the pre-check.
        on_progress: called with (steps_done, total_steps) after each rollout.
        callbacks: extra SB3 callbacks.

    Returns:
        The :class:`TrainResult`; status "failed" with a one-line ``metrics["failure"]`` when the
        program raised, returned a bad value, overran the step timeout or killed its worker.

    Raises:
        UserError: ``n_workers`` is 0, unknown env, or a program that is rejected statically or
            broken from its first steps (nothing is written then).
    """
    if config.n_workers < 1:
        raise UserError("untrusted reward code runs only in env worker processes, and n_workers "
                        "is 0", where="n_workers", fix="use 1 or more workers (--workers 1)")
    check_reward_source(program.source, program.name)
    if config.step_timeout is None:
        config = dataclasses.replace(config, step_timeout=limits.step_seconds)
    return train(config, program, out_dir, loader=load_sandboxed,
                 worker_init=partial(apply_limits, training_limits(config, limits)),
                 precheck=partial(sandboxed_precheck, limits=limits),
                 on_progress=on_progress, callbacks=callbacks)
