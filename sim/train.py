"""PPO training on a reward program (stable-baselines3, CPU).

Read top to bottom: :class:`TrainConfig` (every knob, documented), the env factory, the
callbacks that log reward components and enforce the wall-clock budget, and :func:`train`,
which writes ``policy.zip``, ``vecnormalize.pkl``, ``metrics.json`` and a TensorBoard log into
the output directory, or nothing at all when the reward program is broken from the start.

Defaults are tuned for time to competence on a 2-core CPU (``vid2reward bench learning``): 8
envs stepped by 2 worker processes, rollouts of 8 x 512 steps, 10 epochs of 256-sample
minibatches, one torch thread; per-env presets live in sim/hyperparams.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.errors import WORKER_FIX, UserError
from vid2reward.sim.gait_clock import declared_clock_hz, policy_gait_clock
from vid2reward.sim.reward import (
    RewardError,
    RewardProgram,
    RewardWrapper,
    load_reward_program,
    one_line,
)
from vid2reward.sim.reward_sources import FrameSpec, FrameTap, RewardSource, SourceRewardVecEnv
from vid2reward.sim.segment_reward import (
    BatchReward,
    SegmentRewardVecEnv,
    SegmentVecNormalize,
    SettlingRolloutBuffer,
    StateRecorder,
)
from vid2reward.sim.vec_env import BatchedSubprocVecEnv, EnvWorkerError
from vid2reward.sim.worker_rollouts import WorkerRolloutPPO

RewardLoader = Callable[[str, str], RewardProgram]
"""``(source, name) -> RewardProgram``; the sandbox supplies a hardened one."""

Precheck = Callable[[RewardProgram, str], None]
"""``(program, env_id) -> None``: raises :class:`RewardError` for a program that is broken
from its first steps; the sandbox supplies one that runs the program in a child process."""


def default_loader(source: str, name: str) -> RewardProgram:
    """Load a reward program without a sandbox (trusted code: the bundled examples, tests)."""
    return load_reward_program(source, name=name)


@dataclass
class TrainConfig:
    """Everything that decides a training run. Results are cached by (reward, env, seed, steps)."""

    env_id: str = "Hopper-v5"
    """A registered Gymnasium MuJoCo id (see ``vid2reward.sim.envs.ENV_SPECS``)."""
    total_steps: int = 100_000
    """Env steps to train for (summed over all parallel envs)."""
    seed: int = 0
    """Seeds the envs, PPO and torch: the same config and reward give the same policy."""
    wall_clock_limit: float | None = None
    """Stop training after this many seconds (the policy so far is kept); None = no limit."""
    n_envs: int = 8
    """Parallel envs, spread over the workers."""
    n_workers: int = 2
    """Processes stepping the envs; 0 steps them in this process (DummyVecEnv)."""
    n_steps: int = 512
    """Steps per env per rollout: a rollout is n_envs * n_steps samples. Long rollouts of few
    envs give GAE whole gaits to look at (Hopper's stride is ~60 steps)."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    n_epochs: int = 10
    """Passes over each rollout: 10 x 4096 / 256 = 160 gradient steps per rollout. On this CPU
    the update is cheap next to the physics, so more learning per sample pays in wall-clock."""
    learning_rate: float = 3e-4
    learning_rate_schedule: str = "constant"
    """"constant", or "linear" (decays to 0 over ``total_steps``)."""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value networks."""
    activation: str = "tanh"
    """"tanh" or "relu"."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (0: std 1, wide exploration)."""
    ortho_init: bool = True
    """Orthogonal initialisation of the networks (SB3's default)."""
    torch_threads: int = 1
    """Torch threads for the update; 1 leaves the other core to the env workers."""
    normalize_reward: bool = True
    """Scale rewards by a running std (VecNormalize): LLM-written rewards vary wildly in scale."""
    max_episode_steps: int | None = None
    """Override the env's episode length (1000 for all registered envs)."""
    collect_in_workers: bool = True
    """With worker processes and a sandboxed program: the workers act with a copy of the policy
    and send whole chunks of steps (sim/worker_rollouts.py) instead of one round trip per step.
    False: SB3's own collection loop in this process."""
    step_timeout: float | None = None
    """Seconds one step of a worker's batch of envs (physics + reward) may take before training
    stops as "failed"; None = no bound. Applies to worker processes only (n_workers > 0)."""
    init_from: str | None = None
    """A training output directory (policy.zip + vecnormalize.pkl) to continue from instead of
    a fresh policy: warm start (``train --init``). Its network shape must match ``net_arch``."""
    reward_source: dict[str, Any] | None = None
    """The cache key of the :class:`~vid2reward.sim.reward_sources.RewardSource` whose
    components are added to the program's (None: the program alone); :func:`train` fills it
    from the source it is given, so a cached result is reused only with the same source."""

    def __post_init__(self) -> None:
        # Out-of-range PPO numbers fail deep inside SB3 or torch (an assertion, an index error);
        # here they fail in one line, whichever way they came (a preset, `--ppo`, Python).
        at_least = {"n_envs": 1, "n_steps": 1, "batch_size": 2, "n_epochs": 1, "n_workers": 0,
                    "torch_threads": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise UserError(f"{name} must be at least {low}", where=f"{name}={getattr(self, name)}",
                                fix=f"set {name} to {low} or more")
        for name in ("learning_rate", "clip_range", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be positive", where=f"{name}={getattr(self, name)}",
                                fix=f"set {name} to a number above 0")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be between 0 and 1",
                                where=f"{name}={getattr(self, name)}",
                                fix=f"set {name} to a number from 0 to 1, e.g. 0.99")
        if any(width < 1 for width in self.net_arch):
            raise UserError("net_arch's layer sizes must be at least 1",
                            where=f"net_arch={self.net_arch}", fix="e.g. net_arch=(64, 64)")

    @classmethod
    def for_env(cls, env_id: str, **overrides: Any) -> TrainConfig:
        """The config for ``env_id``: defaults, then the env's preset (sim/hyperparams.py),
        then ``overrides``."""
        from vid2reward.sim.hyperparams import PPO_PRESETS

        return cls(env_id=env_id, **{**PPO_PRESETS.get(env_id, {}), **overrides})

    def cache_key(self) -> dict[str, Any]:
        """The fields a finished training result depends on (not the speed knobs' effects);
        a warm start is keyed by the content of the policy it starts from."""
        key = asdict(self)
        if self.init_from is not None:
            policy = Path(self.init_from) / "policy.zip"
            key["init_from"] = (hashlib.sha256(policy.read_bytes()).hexdigest()
                                if policy.is_file() else self.init_from)
        return key


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    out_dir: Path
    """Directory holding policy.zip, vecnormalize.pkl, metrics.json and tb/."""
    metrics: dict[str, Any]
    """The contents of metrics.json."""

    @property
    def status(self) -> str:
        """"finished", "time_limit" (stopped by the wall-clock budget), "interrupted"
        (stopped by ``should_stop``: the policy so far is kept) or "failed"."""
        return str(self.metrics["status"])


ProgressFn = Callable[[int, int], None]
"""``(steps_done, total_steps)``, called about every rollout."""


# -- env factory ------------------------------------------------------------------------------

def _make_reward_env(env_id: str, source: str, name: str, loader: RewardLoader,
                     max_episode_steps: int | None, frames: FrameSpec | None = None,
                     gait_clock_hz: float | None = None) -> gym.Env:
    kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    env = make_env(env_id, gait_clock_hz, **kwargs)
    env = RewardWrapper(env, loader(source, name), env_id)
    if frames is not None:  # a reward source scores frames rendered here, in the worker
        env = FrameTap(env, env_id, frames)
    return Monitor(env)


def _make_recording_env(env_id: str, fields: list[str], max_episode_steps: int | None,
                        gait_clock_hz: float | None = None) -> gym.Env:
    kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    return StateRecorder(make_env(env_id, gait_clock_hz, **kwargs), fields, env_id)


def make_segment_env(config: TrainConfig, program: RewardProgram,
                     reward: BatchReward) -> SegmentRewardVecEnv:
    """Workers that step the physics and copy out the state fields ``reward`` reads; the
    program scores whole rollouts in the main process's reward process (sim/segment_reward.py)."""
    clock = declared_clock_hz(program.source, program.name)
    fns: list[Callable[[], gym.Env]] = [
        partial(_make_recording_env, config.env_id, list(reward.fields), config.max_episode_steps,
                clock) for _ in range(config.n_envs)]
    venv = BatchedSubprocVecEnv(fns, num_workers=max(1, config.n_workers),
                                step_timeout=config.step_timeout)
    venv.seed(config.seed)
    return SegmentRewardVecEnv(venv, reward, program.name)


def make_training_env(config: TrainConfig, program: RewardProgram,
                      loader: RewardLoader = default_loader,
                      worker_init: Callable[[], None] | None = None,
                      frames: FrameSpec | None = None) -> VecEnv:
    """The vectorised, reward-wrapped, Monitor-wrapped envs for ``config`` (not normalised).

    ``worker_init`` runs first in each worker process (the sandbox sets resource limits there);
    ``frames``, when given, makes every env render such frames for a reward source. A program
    that declares ``GAIT_CLOCK_HZ`` gets envs whose observation carries that clock.
    """
    clock = declared_clock_hz(program.source, program.name)
    fns: list[Callable[[], gym.Env]] = [partial(_make_reward_env, config.env_id, program.source, program.name, loader,
                   config.max_episode_steps, frames, clock) for _ in range(config.n_envs)]
    if config.n_workers > 0:
        venv: VecEnv = BatchedSubprocVecEnv(fns, num_workers=config.n_workers,
                                            worker_init=worker_init,
                                            step_timeout=config.step_timeout)
    else:
        venv = DummyVecEnv(fns)
    venv.seed(config.seed)
    return venv


# -- callbacks --------------------------------------------------------------------------------

class EpisodeStatsCallback(BaseCallback):
    """Collects per-episode statistics: length, the program's return, the env's own return and
    each reward component's sum; logs their means to TensorBoard after each rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[dict[str, Any]] = []
        self.curve: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info and "episode_components" in info:
                self.episodes.append({
                    "length": int(info["episode"]["l"]),
                    "return": float(info["episode"]["r"]),
                    "env_return": float(info["episode_env_return"]),
                    "components": info["episode_components"],
                })
        return True

    def _on_rollout_end(self) -> None:
        recent = self.episodes[-50:]
        if not recent:
            return
        point = {"steps": float(self.num_timesteps),
                 "return": float(np.mean([e["return"] for e in recent])),
                 "env_return": float(np.mean([e["env_return"] for e in recent])),
                 "length": float(np.mean([e["length"] for e in recent]))}
        self.curve.append(point)
        for key, value in point.items():
            if key != "steps":
                self.logger.record(f"vid2reward/{key}", value)
        for name, stats in component_stats(recent).items():
            self.logger.record(f"components/{name}", stats["per_step_mean"])


class BudgetCallback(BaseCallback):
    """Stops training when the wall-clock budget is spent or ``should_stop`` says so (a
    Ctrl-C), and reports progress."""

    def __init__(self, total_steps: int, wall_clock_limit: float | None,
                 on_progress: ProgressFn | None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.deadline = None if wall_clock_limit is None else time.monotonic() + wall_clock_limit
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.hit_time_limit = False
        self.stopped = False

    def _on_step(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.hit_time_limit = True
            return False
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            return False
        return True

    def _on_rollout_end(self) -> None:
        if self.on_progress is not None:
            self.on_progress(min(self.num_timesteps, self.total_steps), self.total_steps)


def component_stats(episodes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per component: mean per step and per episode, and its share of the total magnitude."""
    if not episodes:
        return {}
    steps = sum(e["length"] for e in episodes)
    names = sorted({name for e in episodes for name in e["components"]})
    sums = {n: np.array([e["components"].get(n, 0.0) for e in episodes]) for n in names}
    magnitude = sum(abs(float(v.sum())) for v in sums.values()) or 1.0
    return {n: {"per_step_mean": float(v.sum() / steps),
                "episode_mean": float(v.mean()),
                "episode_std": float(v.std()),
                "share": abs(float(v.sum())) / magnitude} for n, v in sums.items()}


# -- training ---------------------------------------------------------------------------------

def check_reward_on_env(program: RewardProgram, env_id: str, steps: int = 5) -> None:
    """Run the program for a few random steps in this process so that a reward that is broken
    from the start fails before any process starts or any file is written."""
    env = RewardWrapper(make_env(env_id), program, env_id)
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
    finally:
        env.close()


def train(config: TrainConfig, program: RewardProgram, out_dir: str | Path, *,
          loader: RewardLoader = default_loader, on_progress: ProgressFn | None = None,
          callbacks: list[BaseCallback] | None = None,
          worker_init: Callable[[], None] | None = None,
          precheck: Precheck = check_reward_on_env,
          reward_source: RewardSource | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train PPO on ``program`` and write the results into ``out_dir``.

    Files appear in ``out_dir`` only when training ends: they are written to a temporary
    sibling directory first and moved into place at the end (replacing an older result).

    Args:
        config: the training configuration.
        program: the reward program; its source is reloaded by ``loader`` in every worker.
        out_dir: where to write policy.zip, vecnormalize.pkl, metrics.json and tb/.
        loader: turns (source, name) into a RewardProgram inside each env worker.
        on_progress: called with (steps_done, total_steps) after each rollout.
        callbacks: extra SB3 callbacks (video recording, early stopping, ...).
        worker_init: runs first in each env worker process (must be picklable); the sandbox
            sets resource limits with it.
        precheck: runs the program for a few steps before anything starts; the default runs
            it in this process, the sandbox passes one that runs it in a child process.
        reward_source: a trusted model whose components are added to the program's reward
            (``total = program + weight x source``); it runs in this process, on frames the
            workers render. ``config.reward_source`` is set to its cache key.
        should_stop: asked after every env step; True ends the training there, keeping the
            policy so far (status "interrupted": ``train --init`` continues from it).

    Returns:
        A :class:`TrainResult`; ``status`` is "failed" when the reward program raised or
        returned a bad value mid-training, or an env worker overran ``step_timeout`` or died
        (metrics.json then records the one-line reason in ``failure`` and ``out_dir`` holds
        only metrics.json).

    Raises:
        UserError: unknown env, or a reward program broken from its first steps.
    """
    get_spec(config.env_id)
    if reward_source is not None:
        config = replace(config, reward_source=reward_source.cache_key())
    precheck(program, config.env_id)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        metrics = _train_into(config, program, work, loader, worker_init, on_progress,
                              callbacks or [], reward_source, should_stop)
        _replace_dir(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return TrainResult(out_dir=out_dir, metrics=metrics)


ACTIVATIONS: dict[str, type[torch.nn.Module]] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def make_ppo(config: TrainConfig, venv: VecEnv, tensorboard_log: str | None = None,
             rollout_buffer_class: type[RolloutBuffer] | None = None,
             algorithm: type[PPO] = PPO) -> PPO:
    """The PPO model ``config`` describes, on ``venv`` (CPU); ``algorithm``: PPO or a subclass
    that collects its rollouts another way (:class:`WorkerRolloutPPO`)."""
    if config.activation not in ACTIVATIONS:
        raise UserError(f"unknown activation {config.activation!r}",
                        fix=f"use one of {', '.join(ACTIVATIONS)}")
    learning_rate: float | Callable[[float], float] = config.learning_rate
    if config.learning_rate_schedule == "linear":
        learning_rate = partial(_linear, config.learning_rate)
    elif config.learning_rate_schedule != "constant":
        raise UserError(f"unknown learning-rate schedule {config.learning_rate_schedule!r}",
                        fix="use constant or linear")
    policy_kwargs = {"net_arch": list(config.net_arch),
                     "activation_fn": ACTIVATIONS[config.activation],
                     "log_std_init": config.log_std_init, "ortho_init": config.ortho_init}
    return algorithm("MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.batch_size,
               n_epochs=config.n_epochs, learning_rate=learning_rate, gamma=config.gamma,
               gae_lambda=config.gae_lambda, clip_range=config.clip_range,
               ent_coef=config.ent_coef, vf_coef=config.vf_coef,
               max_grad_norm=config.max_grad_norm, policy_kwargs=policy_kwargs,
               seed=config.seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log,
               rollout_buffer_class=rollout_buffer_class)


def _linear(initial: float, progress_remaining: float) -> float:
    # SB3 calls schedules with the fraction of training left (1 -> 0).
    return initial * progress_remaining


def warm_start(model: PPO, venv: VecNormalize, init_dir: str | Path,
               gait_clock_hz: float | None = None) -> None:
    """Load a previous training's policy (and optimiser) and observation/return statistics;
    ``gait_clock_hz`` is the clock the new training's observation carries.

    Raises:
        UserError: the directory lacks policy.zip, its policy observed another gait clock, or
            its network does not fit ``model``.
    """
    init_dir = Path(init_dir)
    theirs = policy_gait_clock(init_dir)
    if theirs != gait_clock_hz:
        def clock(hz: float | None) -> str:
            return f"a {hz:g} Hz gait clock" if hz else "no gait clock"
        raise UserError(f"the policy to continue from observes {clock(theirs)}, this program "
                        f"declares {clock(gait_clock_hz)}", where=str(init_dir),
                        fix="continue from a policy trained with the same GAIT_CLOCK_HZ, or "
                            "train from scratch")
    policy = init_dir / "policy.zip"
    if not policy.is_file():
        raise UserError("no policy.zip to start from", where=str(init_dir),
                        fix="pass the --out directory of a finished `vid2reward train` (or a "
                            "run's best/)")
    try:
        model.set_parameters(str(policy), exact_match=True, device="cpu")
    except Exception as exc:  # shape or key mismatch: another env or network size
        raise UserError(f"cannot continue from this policy: {one_line(str(exc))[:200]}",
                        where=str(policy),
                        fix="start from a policy trained on the same env with the same "
                            "network") from None
    norm = init_dir / "vecnormalize.pkl"
    if norm.is_file():
        with norm.open("rb") as f:
            saved = pickle.load(f)  # noqa: S301 - our own training output
        current: Any = venv.obs_rms
        if saved.obs_rms.mean.shape != current.mean.shape:
            raise UserError("the policy to continue from was trained on another env",
                            where=str(norm), fix="pass a policy of the same env")
        venv.obs_rms = saved.obs_rms
        venv.ret_rms = saved.ret_rms


def _train_into(config: TrainConfig, program: RewardProgram, work: Path, loader: RewardLoader,
                worker_init: Callable[[], None] | None, on_progress: ProgressFn | None,
                extra: list[BaseCallback],
                reward_source: RewardSource | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    torch.set_num_threads(config.torch_threads)
    started = time.monotonic()
    clock = declared_clock_hz(program.source, program.name)
    # A program that scores batches (a sandboxed one) scores whole rollouts off the
    # simulator's path; a reward source needs the step-by-step wrapper.
    batch = None
    if reward_source is None and config.n_workers > 0:
        compute = loader(program.source, program.name).compute
        batch = compute if isinstance(compute, BatchReward) else None
    segment: SegmentRewardVecEnv | None = None
    try:
        if batch is not None:
            segment = make_segment_env(config, program, batch)
            venv: VecNormalize = SegmentVecNormalize(segment, gamma=config.gamma,
                                                     norm_reward=config.normalize_reward)
        else:
            frames = None if reward_source is None else reward_source.frames
            envs = make_training_env(config, program, loader, worker_init, frames)
            if reward_source is not None:
                envs = SourceRewardVecEnv(envs, reward_source)
            venv = VecNormalize(envs, gamma=config.gamma, norm_reward=config.normalize_reward)
    except EnvWorkerError as exc:  # a worker died or hung while loading the program
        raise RewardError(one_line(str(exc)), where=program.name, fix=WORKER_FIX) from None
    stats = EpisodeStatsCallback()
    budget = BudgetCallback(config.total_steps, config.wall_clock_limit, on_progress, should_stop)
    model = make_ppo(config, venv, tensorboard_log=str(work / "tb"),
                     rollout_buffer_class=None if segment is None else SettlingRolloutBuffer,
                     algorithm=WorkerRolloutPPO if segment is not None and config.collect_in_workers
                     else PPO)
    if segment is not None:
        assert isinstance(venv, SegmentVecNormalize)
        model.rollout_buffer.settle = partial(_settle, segment, venv, stats, model)  # type: ignore[attr-defined]
    if config.init_from is not None:
        try:
            warm_start(model, venv, config.init_from, clock)
        except BaseException:
            venv.close()
            raise
    failure: str | None = None
    failure_fix: str | None = None
    try:
        model.learn(config.total_steps, callback=[stats, budget, *extra], progress_bar=False)
        if segment is not None:  # a rollout cut short by the budget: count its episodes
            segment.settle()
            stats.episodes.extend(segment.episodes)
            segment.episodes.clear()
    except (RewardError, EnvWorkerError) as exc:
        failure = one_line(str(exc))
        failure_fix = exc.fix if isinstance(exc, RewardError) else WORKER_FIX
    except Exception as exc:  # noqa: BLE001 - anything else a worker raised (MemoryError, ...)
        failure = one_line(f"{type(exc).__name__}: {exc}")  # is recorded, never a traceback
    finally:
        venv.close()
    wall = time.monotonic() - started
    steps = int(model.num_timesteps)
    recent = stats.episodes[-100:]
    status = "failed" if failure else ("time_limit" if budget.hit_time_limit else
                                       "interrupted" if budget.stopped else "finished")
    metrics: dict[str, Any] = {
        "status": status,
        "failure": failure,
        "failure_fix": failure_fix,
        "env_id": config.env_id,
        "reward_name": program.name,
        "reward_sha256": program.sha256,
        "weights": program.weights,
        "gait_clock_hz": clock,
        "steps": steps,
        "wall_seconds": round(wall, 3),
        "steps_per_second": round(steps / wall, 1) if wall > 0 else None,
        "episodes": len(stats.episodes),
        "episode_length_mean": _mean([e["length"] for e in recent]),
        "return_mean": _mean([e["return"] for e in recent]),
        "env_return_mean": _mean([e["env_return"] for e in recent]),
        "components": component_stats(recent),
        "curve": stats.curve,
        "config": asdict(config),
        "versions": {"torch": torch.__version__, "sb3": _sb3_version()},
    }
    if failure is None:
        model.save(work / "policy.zip")
        venv.save(str(work / "vecnormalize.pkl"))
        (work / "reward.py").write_text(program.source, encoding="utf-8")
    else:
        shutil.rmtree(work / "tb", ignore_errors=True)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def _settle(segment: SegmentRewardVecEnv, venv: SegmentVecNormalize,
            stats: EpisodeStatsCallback, model: PPO) -> np.ndarray:
    """Score the rollout just collected: its normalised rewards for the buffer; its finished
    episodes go to the statistics and SB3's episode log."""
    rewards, dones = segment.settle()
    assert model.ep_info_buffer is not None  # set up by learn() before the first rollout
    for episode in segment.episodes:
        model.ep_info_buffer.append({"r": episode["return"], "l": episode["length"], "t": 0.0})
    stats.episodes.extend(segment.episodes)
    segment.episodes.clear()
    return venv.normalize_segment(rewards, dones)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _sb3_version() -> str:
    import stable_baselines3
    return stable_baselines3.__version__


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is removed only after the move."""
    old = None
    if target.exists():
        if not target.is_dir():
            raise UserError("the output path exists and is not a directory", where=str(target),
                            fix="choose another --out")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
