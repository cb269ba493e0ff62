"""What the reward sandbox costs in training: steps/s with the env's built-in reward, with a
reward program run directly, and with the same program sandboxed.

``python -m vid2reward.tools.reward_bench [STEPS]`` prints the three rates and the overhead;
:func:`bench_reward_overhead` returns them (``vid2reward bench`` may show them). All three use
the same :class:`TrainConfig` (the defaults: 32 envs on 2 workers) and the bundled example
reward that reproduces the env's own; rates are measured between the first and the last
rollout, so process start-up is not counted. The target: sandboxed >= 90 % of built-in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from vid2reward.sim.envs import make_env
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.train import TrainConfig, make_ppo, train
from vid2reward.sim.vec_env import BatchedSubprocVecEnv
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed


class _RolloutClock(BaseCallback):
    """Records wall time, CPU time (this process and the env workers) and steps at the end of
    each rollout. CPU time per step is what other load on the machine distorts least."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[float, float, int]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.marks.append((time.perf_counter(), self._cpu_seconds(), self.num_timesteps))

    def _cpu_seconds(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        total = usage.ru_utime + usage.ru_stime
        venv = self.training_env
        while not hasattr(venv, "processes") and hasattr(venv, "venv"):
            venv = venv.venv  # unwrap VecNormalize
        for proc in getattr(venv, "processes", []):
            with open(f"/proc/{proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rate(self) -> float:
        """Steps/s between the first and the last rollout."""
        (t0, _, s0), (t1, _, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0)

    def cpu_us_per_step(self) -> float:
        """CPU microseconds (all processes) per training step over the same window."""
        (_, c0, s0), (_, c1, s1) = self.marks[0], self.marks[-1]
        return (c1 - c0) / (s1 - s0) * 1e6


def _plain_env(env_id: str) -> gym.Env:
    return Monitor(make_env(env_id))


def _builtin_run(config: TrainConfig) -> _RolloutClock:
    """PPO on the unwrapped env: its own reward, no reward program at all."""
    torch.set_num_threads(config.torch_threads)  # as train() does: spare threads only spin
    fns = [partial(_plain_env, config.env_id) for _ in range(config.n_envs)]
    venv = VecNormalize(BatchedSubprocVecEnv(fns, num_workers=config.n_workers),
                        gamma=config.gamma, norm_reward=config.normalize_reward)
    venv.seed(config.seed)
    clock = _RolloutClock()
    try:
        make_ppo(config, venv).learn(config.total_steps, callback=clock)
    finally:
        venv.close()
    return clock


def _program_run(config: TrainConfig, reward: Path, sandboxed: bool) -> _RolloutClock:
    clock = _RolloutClock()
    with tempfile.TemporaryDirectory() as tmp:
        if sandboxed:
            train_sandboxed(config, sandboxed_program(reward), Path(tmp) / "out",
                            callbacks=[clock])
        else:
            train(config, load_reward_program(reward), Path(tmp) / "out", callbacks=[clock])
    return clock


def bench_reward_overhead(steps: int = 60_000, env_id: str = "Hopper-v5",
                          repeats: int = 1) -> dict[str, Any]:
    """Training steps/s three ways on ``env_id``, best of ``repeats`` (runs interleaved).

    Returns:
        ``builtin``, ``program`` and ``sandboxed`` steps/s; ``overhead_percent`` (sandboxed vs
        built-in: the cost of the whole reward-program path) and
        ``sandbox_overhead_percent`` (sandboxed vs the same program unsandboxed);
        ``cpu_us_per_step`` per way (best of ``repeats``) and ``cpu_overhead_percent``
        (sandboxed vs built-in), which other load on the machine distorts far less than
        steps/s; ``runs`` holds every measured rate (such load shows up as spread there).
    """
    from vid2reward.sim.throughput import example_reward_path

    config = dataclasses.replace(TrainConfig(), env_id=env_id, total_steps=steps)
    reward = example_reward_path(env_id)
    clocks: dict[str, list[_RolloutClock]] = {"builtin": [], "program": [], "sandboxed": []}
    for _ in range(repeats):
        clocks["builtin"].append(_builtin_run(config))
        clocks["program"].append(_program_run(config, reward, sandboxed=False))
        clocks["sandboxed"].append(_program_run(config, reward, sandboxed=True))
    best = {k: max(c.rate() for c in v) for k, v in clocks.items()}
    cpu = {k: min(c.cpu_us_per_step() for c in v) for k, v in clocks.items()}
    return {
        "env_id": env_id, "steps": steps, "repeats": repeats,
        **{k: round(v, 1) for k, v in best.items()},
        "overhead_percent": round(100 * (1 - best["sandboxed"] / best["builtin"]), 1),
        "sandbox_overhead_percent": round(100 * (1 - best["sandboxed"] / best["program"]), 1),
        "cpu_us_per_step": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_overhead_percent": round(100 * (cpu["sandboxed"] / cpu["builtin"] - 1), 1),
        "runs": {k: [round(c.rate(), 1) for c in v] for k, v in clocks.items()},
    }


def bench_source_overhead(steps: int = 60_000, env_id: str = "Hopper-v5", repeats: int = 1,
                          clip: Path | None = None) -> dict[str, Any]:
    """Training steps/s of the sandboxed example program alone and with the VIPER source added
    (its video model trained on ``clip``, default the bundled hopper-steady expert; frames every
    the clip's frame interval), best of ``repeats``, runs interleaved. Target: with VIPER at
    least 25 % of the program-only rate."""
    from vid2reward.sim.throughput import example_reward_path
    from vid2reward.tools.video_frames import probe_video
    from vid2reward.tools.viper_model import frame_stride, video_model_for_clip
    from vid2reward.tools.viper_reward import ViperSource

    if clip is None:
        from vid2reward import examples

        clip = Path(examples.__file__).parent / "experts" / "hopper-steady.mp4"
    config = dataclasses.replace(TrainConfig.for_env(env_id), total_steps=steps)
    every = frame_stride(env_id, probe_video(clip).fps)
    model = video_model_for_clip(clip, env_id, every)
    reward = example_reward_path(env_id)
    clocks: dict[str, list[_RolloutClock]] = {"program": [], "viper": []}
    for _ in range(repeats):
        clocks["program"].append(_program_run(config, reward, sandboxed=True))
        clock = _RolloutClock()
        with tempfile.TemporaryDirectory() as tmp:
            train_sandboxed(config, sandboxed_program(reward), Path(tmp) / "out", callbacks=[clock],
                            reward_source=ViperSource(model, every))
        clocks["viper"].append(clock)
    best = {k: max(c.rate() for c in v) for k, v in clocks.items()}
    cpu = {k: min(c.cpu_us_per_step() for c in v) for k, v in clocks.items()}
    return {"env_id": env_id, "steps": steps, "repeats": repeats, "every": every,
            "n_envs": config.n_envs, **{k: round(v, 1) for k, v in best.items()},
            "viper_share_percent": round(100 * best["viper"] / best["program"], 1),
            "cpu_us_per_step": {k: round(v, 1) for k, v in cpu.items()},
            "runs": {k: [round(c.rate(), 1) for c in v] for k, v in clocks.items()}}


def main(argv: list[str] | None = None) -> int:
    """``python -m vid2reward.tools.reward_bench [STEPS [REPEATS]]``: print the numbers."""
    args = sys.argv[1:] if argv is None else argv
    steps = int(args[0]) if args else 60_000
    repeats = int(args[1]) if len(args) > 1 else 1
    result = bench_reward_overhead(steps, repeats=repeats)
    print(f"{result['env_id']}, {steps} training steps, best of {repeats}:")
    print(f"  built-in reward      {result['builtin']:>9,.0f} steps/s")
    print(f"  reward program       {result['program']:>9,.0f} steps/s")
    print(f"  sandboxed program    {result['sandboxed']:>9,.0f} steps/s")
    print(f"  overhead vs built-in {result['overhead_percent']:>8.1f} %  (target <= 10 %)")
    print(f"  sandbox alone        {result['sandbox_overhead_percent']:>8.1f} %")
    cpu = result["cpu_us_per_step"]
    print(f"  CPU per step (us)    built-in {cpu['builtin']:.0f}, program {cpu['program']:.0f}, "
          f"sandboxed {cpu['sandboxed']:.0f}: overhead {result['cpu_overhead_percent']:.1f} %")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
