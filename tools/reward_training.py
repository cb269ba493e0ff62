"""PPO training on an untrusted reward program: the sandbox wired into ``sim.train.train``.

:func:`train_sandboxed` is what ``vid2reward train`` and the agents call. Reward code then runs
only in env worker processes (never in the caller, so ``n_workers`` must be at least 1), each
loaded with :func:`~vid2reward.tools.reward_sandbox.load_deferred` under memory and CPU-time
limits (isolated by the OS before the program's first line runs, once the worker's envs are
built), with every step bounded by ``step_timeout``. The few pre-check steps that catch a
program broken from the start run in a limited child process too. A program that raises,
returns NaN, hangs, or exhausts its memory mid-training ends the run with status "failed" and
a one-line reason in metrics.json; the caller survives.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from vid2reward.sim.envs import make_env
from vid2reward.sim.errors import CHECK_FIX, WORKER_FIX, UserError
from vid2reward.sim.reward import (
    MAX_COMPONENT_NAME,
    MAX_COMPONENTS,
    RewardError,
    RewardProgram,
    RewardWrapper,
    one_line,
)
from vid2reward.sim.reward_sources import RewardSource
from vid2reward.sim.train import ProgressFn, TrainConfig, TrainResult, train
from vid2reward.sim.vec_env import EnvWorkerError
from vid2reward.tools.reward_check import check_reward_source
from vid2reward.tools.reward_client import close_process, close_processes, process_isolation
from vid2reward.tools.reward_isolation import (
    require_isolation,
    trusted_by_user,
)
from vid2reward.tools.reward_sandbox import (
    DEFAULT_LIMITS,
    SandboxLimits,
    SandboxTimeout,
    apply_limits,
    load_deferred,
    load_sandboxed,
    program_line,
    sandboxed_program,
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


def reward_process_limits(config: TrainConfig,
                          limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxLimits:
    """The limits for a training's reward process: one scores every step of the training
    (whole rollouts), so its CPU-time budget scales with all of them."""
    if limits.cpu_seconds is None:
        return limits
    return dataclasses.replace(limits, cpu_seconds=limits.cpu_seconds
                               + CPU_SECONDS_PER_STEP * config.total_steps)


def sandboxed_precheck(program: RewardProgram, env_id: str,
                       limits: SandboxLimits = DEFAULT_LIMITS,
                       trust: bool = False) -> dict[str, Any]:
    """Run the program for a few steps in a limited, isolated child process (a ``train``
    precheck); return the isolation the child got (see
    :func:`~vid2reward.tools.reward_isolation.enter_isolation`).

    Raises:
        RewardError: the program breaks a static rule, raises, returns a bad value, runs too
            long or dies in its first steps, or the child could not be isolated.
    """
    # The physics runs here (trusted); the program runs in its own reward process.
    report = _precheck_here(program.source, program.name, env_id, limits.load_seconds,
                                limits.call_seconds, trust)
    if not isinstance(report, dict):
        raise RewardError("the pre-check sent a malformed reply", where=program.name, fix=CHECK_FIX)
    return {str(k): v for k, v in report.items() if isinstance(v, bool | int | str | None)}


def _precheck_here(source: str, name: str, env_id: str, load_seconds: float,
                       call_seconds: float, trust: bool) -> dict[str, Any] | None:
    env = RewardWrapper(make_env(env_id), sandboxed_program(source, name), env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    env.program = load_sandboxed(source, name, load_seconds, trust=trust,
                                 call_seconds=call_seconds)  # its own reward process
    budget = call_seconds * PRECHECK_STEPS + 5.0  # the env steps themselves take milliseconds
    try:
        with time_limit(budget):
            for _ in range(PRECHECK_STEPS):  # as sim.train.check_reward_on_env does
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                if terminated or truncated:
                    env.reset()
    except SandboxTimeout as exc:
        line = program_line(exc, name)
        at = f" (interrupted on line {line})" if line else ""
        raise RewardError(f"compute_reward ran longer than {budget:g} s over the first "
                          f"{PRECHECK_STEPS} steps{at}", where=name,
                          fix="look for loops that never end or loops over huge ranges") from None
    finally:
        env.close()
        report = process_isolation(env.program)
        close_process(env.program)
    return report


def train_sandboxed(config: TrainConfig, program: RewardProgram, out_dir: str | Path, *,
                    limits: SandboxLimits = DEFAULT_LIMITS, on_progress: ProgressFn | None = None,
                    callbacks: list[BaseCallback] | None = None,
                    trust: bool | None = None,
                    reward_source: RewardSource | None = None,
                    should_stop: Callable[[], bool] | None = None) -> TrainResult:
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
        trust: run without OS isolation where the OS cannot isolate (default: the
            ``--trust-reward-code`` setting); where it can, the code is always isolated.
        reward_source: a trusted frame-scoring model added to the program's reward (it runs
            in this process, never in the sandbox; see sim/reward_sources.py).
        should_stop: ends the training early, keeping the policy so far (a Ctrl-C).

    Returns:
        The :class:`TrainResult`; status "failed" with a one-line ``metrics["failure"]`` when the
        program raised, returned a bad value, overran the step timeout or killed its worker.

    Raises:
        UserError: ``n_workers`` is 0, unknown env, an OS that cannot isolate reward code
            (without ``trust``), or a program that is rejected statically or broken from its
            first steps (nothing is written then).
    """
    if config.n_workers < 1:
        raise UserError("untrusted reward code runs only in env worker processes, and n_workers "
                        "is 0", where="n_workers", fix="use 1 or more workers (--workers 1)")
    check_reward_source(program.source, program.name)
    trust = trusted_by_user() if trust is None else trust
    require_isolation(trust)
    if config.step_timeout is None:
        config = dataclasses.replace(config, step_timeout=limits.step_seconds)
    isolation: dict[str, Any] = {}

    def precheck(checked: RewardProgram, env_id: str) -> None:
        isolation.update(sandboxed_precheck(checked, env_id, limits, trust))

    try:
        result = train(config, program, out_dir,
                       loader=partial(load_deferred, load_seconds=limits.load_seconds,
                                      trust=trust, limits=reward_process_limits(config, limits),
                                      call_seconds=config.step_timeout),
                       worker_init=partial(apply_limits, training_limits(config, limits)),
                       precheck=precheck, on_progress=on_progress, callbacks=callbacks,
                       reward_source=reward_source, should_stop=should_stop)
    except EnvWorkerError as exc:  # a worker died or hung before training began
        raise RewardError(one_line(str(exc)), where=program.name, fix=WORKER_FIX) from None
    finally:  # the reward process that scored the rollouts: a run trains many candidates
        close_processes(program.source, program.name)
    # What isolated the reward code (as the pre-check's child measured it), and whether the
    # user waived isolation: part of the record of every training.
    result.metrics["sandbox"] = {**isolation, "trust_reward_code": trust}
    # Component names came from the workers: a worker whose code escaped Python could have
    # skipped their check there, so bound and clean them again before anyone shows them.
    components = list(result.metrics.get("components", {}).items())[:MAX_COMPONENTS]
    result.metrics["components"] = {one_line(str(k), MAX_COMPONENT_NAME): v
                                    for k, v in components}
    metrics_file = Path(result.out_dir) / "metrics.json"
    metrics_file.write_text(json.dumps(result.metrics, indent=2), encoding="utf-8")
    return result
