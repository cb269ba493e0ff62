"""``vid2reward bench nes`` (does the learned reward reproduce the expert?) and
``vid2reward bench experts`` (make expert clips like the bundled ones)."""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console

from vid2reward.agent.benchmark import FAST, METHODS, BenchConfig, config_json, run_benchmark
from vid2reward.agent.benchmark_report import rich_table, summarise, write_outputs
from vid2reward.agent.commands.reward_sources import add_source_options, bench_source_settings
from vid2reward.agent.expert_bundle import build_experts, bundled_expert
from vid2reward.agent.expert_tasks import EXPERT_TASKS, check_task_names
from vid2reward.agent.source_bench import SOURCE_METHODS, check_source_methods
from vid2reward.agent.training_backend import RAY_HELP, chosen_ray_address
from vid2reward.sim.errors import UserError

FAST_TASK = "hopper-steady"
"""The one task of ``--fast`` (its clip is bundled: CI never trains an expert)."""
FULL_TASKS = ["hopper-steady", "cheetah-backward", "walker-slow"]
"""Default tasks of the full mode."""
EXPERTS_OUT = Path("runs/experts")
"""Where ``bench experts`` writes its clips unless told otherwise (never the package)."""


def register_kinds(kinds: argparse._SubParsersAction) -> None:
    """Add the ``nes`` and ``experts`` kinds to ``vid2reward bench``."""
    n = kinds.add_parser(
        "nes", help="Normalized Expert Score of the full method vs ablations, on expert tasks",
        description="Per expert task and seed: the full offline method, random reward search, "
                    "the Eureka-style ablation (--critic none) and the env's default reward, "
                    "all with the same training budget; scored by NES on simulator-state "
                    "metrics (docs/benchmark.md). Prints one table; writes results.json, "
                    "results.csv, summary.md and nes_curve.png to --out. Finished methods are "
                    "read back, so rerunning the same command resumes.")
    n.add_argument("--fast", action="store_true",
                   help=f"pipeline check: task {FAST_TASK}, iterations 2, candidates 2, "
                        "steps 2048, 4 envs (2-3 minutes on an idle machine)")
    n.add_argument("--tasks", nargs="+", metavar="TASK",
                   help=f"expert tasks (default {' '.join(FULL_TASKS)}; --fast: {FAST_TASK}); "
                        f"known: {', '.join(EXPERT_TASKS)}")
    n.add_argument("--methods", nargs="+", choices=METHODS,
                   help="methods (default all but reference, viper, vlm-rm and car; reference "
                        "trains the task's hidden reward from scratch for --final-steps; viper, "
                        "vlm-rm and car are the reward sources of run --reward-source)")
    n.add_argument("--seeds", type=int, default=None, help="seeds per method (default 1)")
    n.add_argument("--iterations", type=int, default=None, help="iterations (default 3)")
    n.add_argument("--candidates", type=int, default=None, help="candidates per iteration (default 4)")
    n.add_argument("--steps", type=int, default=None, help="PPO steps per candidate (default 60000)")
    n.add_argument("--final-steps", type=int, default=0, metavar="N",
                   help="also train each search method's winning reward again from scratch for N "
                        "steps and score that policy ('retrained NES'; default 0: off)")
    n.add_argument("--eval-episodes", type=int, default=None,
                   help="seeded episodes measured per policy (default 5)")
    n.add_argument("--experts", type=Path, default=None,
                   help="folder of expert clips and JSONs (default: the bundled examples/experts)")
    n.add_argument("--out", type=Path, default=None, help="output folder (default runs/bench-<time>)")
    add_source_options(n, bench=True)
    n.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)
    n.set_defaults(func=run_nes)

    e = kinds.add_parser(
        "experts", help="train, render and measure the expert of each task (the bundled clips)",
        description="For each expert task: train PPO on its hidden reference reward, render an "
                    "8 s clip (320x240) and measure its simulator-state behaviour metrics; "
                    "write <task>.mp4, <task>.png and <task>.json to --out.")
    e.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks (default all)")
    # Never into the installed package by default: a pip-installed copy may be read-only, and
    # a checkout's bundled clips change only when someone asks (--out examples/experts).
    e.add_argument("--out", type=Path, default=EXPERTS_OUT,
                   help=f"where the clips go (default {EXPERTS_OUT}; pass --out examples/experts "
                        "to replace the bundled clips; bench nes --experts DIR reads them)")
    e.add_argument("--work", type=Path, default=EXPERTS_OUT / "training",
                   help=f"training output (policies; default {EXPERTS_OUT / 'training'})")
    e.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    e.set_defaults(func=run_experts)


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The BenchConfig from the flags (``--fast`` budgets, then explicit flags over them)."""
    base = dict(FAST) if args.fast else {}
    tasks = args.tasks or ([FAST_TASK] if args.fast else list(FULL_TASKS))
    check_task_names(tasks)
    for task in tasks:  # a task without a clip (e.g. a held-out one not built yet): one line, no --out
        bundled_expert(task, args.experts)
    for flag, key in (("seeds", "seeds"), ("iterations", "iterations"),
                      ("candidates", "candidates"), ("steps", "steps"),
                      ("eval_episodes", "eval_episodes")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise UserError(f"--{flag.replace('_', '-')} must be at least 1", where=str(value),
                                fix=f"give --{flag.replace('_', '-')} a whole number of at least 1")
            base[key] = value
    if args.final_steps < 0:
        raise UserError("--final-steps must not be negative", where=str(args.final_steps),
                        fix="give --final-steps 0 (no final training) or a number of steps")
    methods = list(args.methods or [m for m in METHODS if m != "reference"
                                    and m not in SOURCE_METHODS])
    sources = bench_source_settings(args)
    check_source_methods(methods, sources)  # a missing checkpoint or model: one line, now
    ray_address = chosen_ray_address(args.ray)
    if ray_address is not None:
        from vid2reward.agent.ray_training import check_ray_address

        check_ray_address(ray_address)  # one line now, not after the first task's set-up
    return BenchConfig(tasks=tasks, methods=methods, experts=args.experts, sources=sources,
                       final_steps=args.final_steps, ray_address=ray_address,
                       **base)  # type: ignore[arg-type]


def run_nes(args: argparse.Namespace) -> int:
    """Run the NES benchmark and print its table."""
    cfg = bench_config(args)
    out = args.out or Path("runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    err = Console(stderr=True)
    err.print(f"[bold]vid2reward bench nes[/]: {len(cfg.tasks)} task(s) x {cfg.seeds} seed(s) x "
              f"{len(cfg.methods)} method(s); budget {cfg.iterations} x {cfg.candidates} x "
              f"{cfg.steps:,} = {cfg.budget_steps:,} env steps per method; output {out}")
    t0 = time.monotonic()
    results, grounds = run_benchmark(cfg, out, log=lambda line: err.print(line, highlight=False))
    meta = {**provenance(), "config": config_json(cfg),
            "wall_seconds": round(time.monotonic() - t0, 1),
            # this invocation's time is small when finished methods were read back:
            "wall_seconds_all_methods": round(sum(r.wall_seconds for r in results), 1)}
    paths = write_outputs(results, grounds, out, meta)
    title = "Normalized Expert Score (1 = the expert, 0 = no closer than random actions)"
    # At least 100 columns: a narrow (or piped) terminal would squeeze the task names to "…".
    Console(width=max(Console().width, 124)).print(rich_table(summarise(results, grounds), title))
    err.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def provenance() -> dict[str, str]:
    """What a benchmark's results record about how they were made: the exact command, when,
    and on what machine."""
    return {"command": "vid2reward " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "",
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python "
                       f"{platform.python_version()}"}


def run_experts(args: argparse.Namespace) -> int:
    """Make the expert clips and metrics."""
    tasks = args.tasks or list(EXPERT_TASKS)
    check_task_names(tasks)
    err = Console(stderr=True)
    build_experts(tasks, args.out, work=args.work, seed=args.seed,
                  log=lambda line: err.print(line, highlight=False))
    return 0
