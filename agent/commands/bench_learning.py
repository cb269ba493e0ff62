"""``vid2reward bench learning``: how fast ``train`` reaches the expert's behaviour, against the
RL Zoo anchor (agent/learning_bench.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from vid2reward.agent.commands.bench_nes import provenance
from vid2reward.agent.commands.ppo_flag import add_ppo_argument, ppo_overrides
from vid2reward.agent.expert_tasks import EXPERT_TASKS, check_task_names
from vid2reward.agent.learning_bench import (
    FAST,
    LEARNING_METHODS,
    LearningBenchConfig,
    method_config,
    run_learning_bench,
)
from vid2reward.sim.errors import UserError

FULL_TASKS = ["hopper-steady", "cheetah-steady", "cheetah-backward"]
"""Default tasks of the full mode."""
FAST_TASK = "hopper-steady"


def register_learning(kinds: argparse._SubParsersAction) -> None:
    """Add the ``learning`` kind to ``vid2reward bench``."""
    p = kinds.add_parser(
        "learning", help="time for train to reach the expert's behaviour, vs RL Zoo's PPO",
        description="Per expert task and seed: train the task's reference reward with the "
                    "project's train and with SB3 PPO on RL Zoo's tuned hyperparameters (one "
                    "env, DummyVecEnv); evaluate at checkpoints (NES, env return, falls) and "
                    "report the training time to NES --target. Also prints the physics limit "
                    "(mujoco.rollout on both cores). Writes results.json, results.csv, "
                    "summary.md and learning_curve.png to --out; finished runs are read back, "
                    "so rerunning the same command resumes.")
    p.add_argument("--fast", action="store_true",
                   help=f"pipeline check: task {FAST_TASK}, 1 seed, {FAST['steps']} steps")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help=f"expert tasks (default {' '.join(FULL_TASKS)}); known: "
                        f"{', '.join(EXPERT_TASKS)}")
    p.add_argument("--methods", nargs="+", choices=LEARNING_METHODS,
                   help="set-ups (default both)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per set-up (default 3)")
    p.add_argument("--steps", type=int, default=None, help="env steps per training (default 500000)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="env steps between checkpoints (default 50000)")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help="episodes per checkpoint (default 5)")
    p.add_argument("--target", type=float, default=0.7, help="NES that counts as competent (default 0.7)")
    p.add_argument("--anchor-time-limit", type=float, default=None, metavar="SECONDS",
                   help="training seconds the RL Zoo anchor may use (default 600; 0 = no limit)")
    add_ppo_argument(p, "set train's PPO settings over the env's preset, to measure a "
                        "candidate preset")
    p.add_argument("--experts", type=Path, default=None,
                   help="folder of expert clips and JSONs (default: the bundled examples/experts)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/bench-learning-<time>)")
    p.set_defaults(func=run)


def learning_config(args: argparse.Namespace) -> LearningBenchConfig:
    """The config from the flags (``--fast`` budgets, then explicit flags over them)."""
    base: dict[str, object] = dict(FAST) if args.fast else {}
    tasks = args.tasks or ([FAST_TASK] if args.fast else list(FULL_TASKS))
    check_task_names(tasks)
    for flag in ("seeds", "steps", "eval_every", "eval_episodes"):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise UserError(f"--{flag.replace('_', '-')} must be at least 1", where=str(value),
                                fix=f"give --{flag.replace('_', '-')} a whole number of at least 1")
            base[flag] = value
    if not 0.0 < args.target <= 1.0:
        raise UserError("--target must be in (0, 1]", where=str(args.target),
                        fix="give --target a NES above 0 and at most 1, e.g. 0.7")
    if args.anchor_time_limit is not None:
        if args.anchor_time_limit < 0:
            raise UserError("--anchor-time-limit must not be negative",
                            where=str(args.anchor_time_limit),
                            fix="give --anchor-time-limit 0 (no limit) or a number of seconds")
        base["anchor_time_limit"] = args.anchor_time_limit or None
    cfg = LearningBenchConfig(tasks=tasks, methods=list(args.methods or LEARNING_METHODS),
                              target_nes=args.target, experts=args.experts,
                              train_overrides=ppo_overrides(args.ppo),
                              **base)  # type: ignore[arg-type]
    for task in tasks:  # out-of-range --ppo numbers fail here, before any training
        method_config("train", EXPERT_TASKS[task].env_id, cfg, seed=0)
    return cfg


def run(args: argparse.Namespace) -> int:
    """Run the learning benchmark and print its table."""
    from vid2reward.agent.learning_report import rich_table, speedups, summarise, write_outputs
    from vid2reward.sim.envs import get_spec
    from vid2reward.sim.throughput import physics_steps_per_second

    cfg = learning_config(args)
    out = args.out or Path("runs") / f"bench-learning-{time.strftime('%Y%m%d-%H%M%S')}"
    err = Console(stderr=True)
    err.print(f"[bold]vid2reward bench learning[/]: {len(cfg.tasks)} task(s) x {cfg.seeds} "
              f"seed(s) x {len(cfg.methods)} set-up(s); {cfg.steps:,} steps each, evaluated every "
              f"{cfg.eval_every:,}; output {out}")
    env_ids = sorted({EXPERT_TASKS[t].env_id for t in cfg.tasks})
    limits = {}
    for env_id in env_ids:
        get_spec(env_id)
        with err.status(f"physics limit of {env_id} (mujoco.rollout, 2 threads)"):
            limits[env_id] = physics_steps_per_second(env_id, threads=2,
                                                      seconds=1.0 if args.fast else 3.0)
    t0 = time.monotonic()
    results, _ = run_learning_bench(cfg, out, log=lambda line: err.print(line, highlight=False))
    rows = summarise(results, cfg)
    train_rates = {r["env_id"]: r["steps_per_second_mean"] for r in rows if r["method"] == "train"}
    limit_text = "; ".join(
        f"{env_id} {rate:,.0f} env steps/s" + (f", train at {train_rates[env_id] / rate:.0%} of it"
                                               if env_id in train_rates else "")
        for env_id, rate in limits.items())
    meta = {**provenance(),
            "config": {**cfg.__dict__, "experts": str(cfg.experts) if cfg.experts else None},
            "physics_limit": limit_text,
            "physics_steps_per_second": {k: round(v) for k, v in limits.items()},
            "wall_seconds": round(time.monotonic() - t0, 1)}
    out.mkdir(parents=True, exist_ok=True)
    paths = write_outputs(results, cfg, out, meta)
    Console(width=max(Console().width, 110)).print(rich_table(rows, cfg))
    for task, ratio in speedups(rows).items():
        print(f"{task}: time to NES {cfg.target_nes}, train / rl-zoo: {ratio}")
    print(f"physics limit (mujoco.rollout, 2 threads): {limit_text}")
    err.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
