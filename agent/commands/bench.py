"""``vid2reward bench``: benchmarks that print numbers (throughput here; ``nes`` and ``experts``
in bench_nes.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vid2reward.agent.commands.bench_learning import register_learning
from vid2reward.agent.commands.bench_nes import register_kinds as register_nes_kinds
from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import UserError
from vid2reward.sim.throughput import measure_throughput, measure_train_variants


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("bench", help="run benchmarks and print their numbers",
                         description="Benchmarks that print numbers.")
    kinds = p.add_subparsers(dest="bench_kind", metavar="KIND")
    kinds.required = True
    t = kinds.add_parser("throughput", help="training steps/s against the physics limit, per env",
                         description="Per env: the physics limit (its bare MuJoCo model stepped "
                                     "by mujoco.rollout on both cores), raw env steps/s (random "
                                     "actions, one process) and `vid2reward train` steps/s on "
                                     "the env's example reward program (sandboxed, the env's "
                                     "preset), measured one after the other in this run.")
    t.add_argument("--env", action="append", dest="envs", metavar="ENV",
                   help="env to measure (repeatable; default Hopper, Walker2d, HalfCheetah, "
                        "Ant and Humanoid)")
    t.add_argument("--raw-steps", type=int, default=20_000, help="steps for the raw rate (default 20000)")
    t.add_argument("--train-steps", type=int, default=40_960,
                   help="steps for the training rate (default 40960: ten 4096-step rollouts)")
    t.add_argument("--variants", action="store_true",
                   help="also compare training set-ups on the first env: in-process vs worker "
                        "processes, envs per worker, torch threads")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    t.set_defaults(func=run_throughput)
    i = kinds.add_parser("iteration", help="where a run's time went, per iteration",
                         description="Each iteration's wall-clock seconds by phase - training "
                                     "the candidates, judging them (rendering and measuring "
                                     "their clips), the critic, the engineer (and testing its "
                                     "programs) - and judging's share of the search, read from "
                                     "the run's log.")
    i.add_argument("run", type=Path, help="a run directory")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=run_iteration)
    o = kinds.add_parser("reward-overhead", help="cost of the sandboxed reward path in training",
                         description="Hopper-v5 training steps/s with the env's built-in reward, "
                                     "with the example reward program, and with the same program "
                                     "sandboxed (target: sandboxed within 10 % of built-in).")
    o.add_argument("--steps", type=int, default=60_000, help="training steps per run (default 60000)")
    o.add_argument("--repeats", type=int, default=3, help="runs per way, best kept (default 3)")
    o.set_defaults(func=run_reward_overhead)
    so = kinds.add_parser("source-overhead", help="cost of the VIPER reward source in training",
                          description="Hopper-v5 training steps/s with the sandboxed example "
                                      "program alone and with the VIPER source added (frames "
                                      "rendered in the workers, scored here; target: at least "
                                      "25 % of the program-only rate). Trains (and caches) the "
                                      "video model of the bundled hopper-steady clip first.")
    so.add_argument("--steps", type=int, default=60_000, help="training steps per run (default 60000)")
    so.add_argument("--repeats", type=int, default=1, help="runs per way, best kept (default 1)")
    so.add_argument("--json", action="store_true", help="print JSON instead of lines")
    so.set_defaults(func=run_source_overhead)
    c = kinds.add_parser("calibration", help="how well pixels are read in physical units",
                         description="Fit the pixel -> physical calibration (as a run does on its "
                                     "learner clips) on the clips of the given policies and of "
                                     "random actions, read a bundled expert clip through it, and "
                                     "compare its speed, torso height, lean, bob and cadence with "
                                     "the expert's simulator truth.")
    c.add_argument("--task", required=True, metavar="TASK", help="a bundled expert task, e.g. hopper-steady")
    c.add_argument("--policy", action="append", dest="policies", type=Path, default=[], metavar="DIR",
                   help="a trained policy of the task's env (policy.zip; repeatable), e.g. a run's "
                        "candidate directory or a bench learning anchor's policy/")
    c.add_argument("--random-episodes", type=int, default=3,
                   help="random-action clips added to the fit (default 3)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.set_defaults(func=run_calibration)
    d = kinds.add_parser("directions", help="how well pixels read sideways motion and turning",
                         description="Render probe clips (each body carried at a known velocity "
                                     "and turned at a known rate), measure them like any clip "
                                     "and compare depth_speed and turning_rate with the "
                                     "simulator's sideways speed and yaw rate; planar bodies "
                                     "must read no motion in depth.")
    d.add_argument("--env", action="append", dest="envs", metavar="ENV",
                   help="body to probe (repeatable; default Ant, Humanoid, Hopper, Walker2d, "
                        "HalfCheetah)")
    d.add_argument("--seconds", type=float, default=6.0, help="length of each probe clip (default 6)")
    d.add_argument("--json", action="store_true", help="print JSON instead of tables")
    d.set_defaults(func=run_directions)
    register_learning(kinds)
    register_nes_kinds(kinds)


def run_directions(args: argparse.Namespace) -> int:
    """Print how well pixels read sideways motion and turning, per body."""
    from vid2reward.agent.direction_bench import BODIES, direction_agreement

    envs = tuple(args.envs or BODIES)
    for env_id in envs:
        get_spec(env_id)
    if not args.seconds > 2.0:
        raise UserError("a probe clip needs more than 2 seconds", where="--seconds",
                        fix="pass e.g. --seconds 6")
    result = direction_agreement(envs, seconds=args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    console = Console()
    table = Table(title="Probe clips: simulator truth vs pixels")
    for col in ("body", "carried: m/s, heading°, turn rad/s", "truth: vx, vy m/s", "yaw rad/s",
                "pixels: forward, depth L/s", "turning rad/s"):
        table.add_column(col)
    for body in result["bodies"]:
        for r in body["readings"]:
            table.add_row(get_spec(body["env_id"]).short_name,
                          f"{r['speed']:.1f}, {r['heading_deg']:+.0f}, {r['turn_rate']:+.1f}",
                          f"{r['forward_velocity']:+.2f}, {r['lateral_velocity']:+.2f}",
                          f"{r['yaw_rate']:+.2f}",
                          f"{r['forward_speed']:+.3f}, {r['depth_speed']:+.3f}",
                          f"{r['turning_rate']:+.2f}")
    console.print(table)
    summary = Table(title="Agreement per body")
    for col in ("body", "sideways m/s per depth L/s", "sideways error (leave one out)",
                "turning error", "planar: |depth| / |forward|"):
        summary.add_column(col)

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.0f} %"

    for body in result["bodies"]:
        s = body["summary"]
        summary.add_row(get_spec(s["env_id"]).short_name, "-" if s["lateral_slope"] is None else f"{s['lateral_slope']:.3f}",
                        pct(s["lateral_error"]), pct(s["turning_error"]), pct(s["planar_depth"]))
    console.print(summary)
    return 0


def run_calibration(args: argparse.Namespace) -> int:
    """Print how far the calibration's reading of the expert is from its truth."""
    from vid2reward.agent.calibration_bench import calibration_accuracy
    from vid2reward.agent.expert_tasks import check_task_names

    check_task_names([args.task])
    if args.random_episodes < 0:
        raise UserError("--random-episodes must not be negative", where=str(args.random_episodes),
                        fix="give --random-episodes 0 or more")
    for policy in args.policies:
        if not (policy / "policy.zip").is_file():
            raise UserError("no policy.zip in this directory", where=str(policy),
                            fix="pass directories that hold a policy.zip (a train --out or a run's best/)")
    result = calibration_accuracy(args.task, args.policies, random_episodes=args.random_episodes)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"calibration on {result['clips']} clips: the {args.task} expert read "
                        "from its pixels vs its simulator truth")
    for col in ("quantity", "read", "truth", "error", "points", "R²", "used"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    for r in result["readings"]:
        read = "-" if r["read"] is None else f"{r['read']:.3g} {r['unit']}"
        error = "-" if r["relative_error"] is None else f"{r['relative_error']:.0%}"
        used = ("identity" if r["note"] == "identity" else "yes") if r["used"] else "no"
        table.add_row(r["quantity"], read, f"{r['truth']:.3g}", error, str(r["points"]),
                      "-" if r["r2"] is None else f"{r['r2']:.2f}", used)
    Console().print(table)
    return 0


def run_reward_overhead(args: argparse.Namespace) -> int:
    from vid2reward.tools.reward_bench import main as reward_bench_main

    return reward_bench_main([str(args.steps), str(args.repeats)])


def run_source_overhead(args: argparse.Namespace) -> int:
    """Print program-only vs program + VIPER training steps/s on Hopper."""
    from vid2reward.tools.reward_bench import bench_source_overhead

    with Console(stderr=True).status("measuring Hopper-v5 training with and without VIPER"):
        result = bench_source_overhead(args.steps, repeats=args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    cpu = result["cpu_us_per_step"]
    print(f"{result['env_id']}, {result['steps']:,} training steps, {result['n_envs']} envs, best "
          f"of {result['repeats']}; VIPER frames every {result['every']} steps")
    print(f"  program only      {result['program']:>9,.0f} steps/s  ({cpu['program']:.0f} CPU us/step)")
    print(f"  program + VIPER   {result['viper']:>9,.0f} steps/s  ({cpu['viper']:.0f} CPU us/step)")
    print(f"  VIPER share       {result['viper_share_percent']:>8.1f} %  (target >= 25 %)")
    return 0


def run_throughput(args: argparse.Namespace) -> int:
    """Print physics-limit, raw and training steps/s per env."""
    from vid2reward.tools.reward_training import train_sandboxed

    envs = args.envs or ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5"]
    for env_id in envs:
        get_spec(env_id)
    if args.raw_steps < 1000 or args.train_steps < 8192:
        raise UserError("too few steps to measure a rate", where="--raw-steps/--train-steps",
                        fix="pass at least --raw-steps 1000 and --train-steps 8192 (two rollouts)")
    console = Console(stderr=True)
    results = []
    for env_id in envs:
        with console.status(f"measuring {env_id}"):
            results.append(measure_throughput(env_id, args.raw_steps, args.train_steps,
                                              trainer=train_sandboxed))
    variants: dict[str, float] = {}
    if args.variants:
        with console.status(f"measuring training set-ups on {envs[0]}"):
            variants = measure_train_variants(envs[0], args.train_steps)
    if args.json:
        print(json.dumps({"envs": [{"env_id": r.env_id,
                                    "physics_steps_per_second": round(r.physics_steps_per_second),
                                    "raw_steps_per_second": round(r.raw_steps_per_second),
                                    "train_steps_per_second": round(r.train_steps_per_second),
                                    "of_physics": round(r.of_physics, 3),
                                    "of_raw": round(r.ratio, 3)} for r in results],
                          "variants": {k: round(v) for k, v in variants.items()}}, indent=2))
        return 0
    table = Table(title="throughput (env steps/s)",
                  caption="physics: the bare model on mujoco.rollout, 2 cores; raw: random "
                          "actions, 1 process; train: `vid2reward train`")
    for col in ("env", "physics", "raw", "train", "train/physics", "train/raw"):  # 80 columns
        table.add_column(col, justify="right" if col != "env" else "left", no_wrap=True)
    for r in results:
        table.add_row(r.env_id, f"{r.physics_steps_per_second:,.0f}",
                      f"{r.raw_steps_per_second:,.0f}", f"{r.train_steps_per_second:,.0f}",
                      f"{r.of_physics:.2f}", f"{r.ratio:.2f}")
    Console().print(table)
    if variants:
        raw = results[0].raw_steps_per_second
        vt = Table(title=f"training set-ups on {envs[0]} (steps/s; same 4096-sample rollouts)")
        for col in ("set-up", "PPO training", "x raw"):
            vt.add_column(col, justify="left" if col == "set-up" else "right")
        for name, rate in variants.items():
            vt.add_row(name, f"{rate:,.0f}", f"{rate / raw:.2f}")
        Console().print(vt)
    return 0


def run_iteration(args: argparse.Namespace) -> int:
    """Print a run's time per iteration by phase, from its log."""
    from vid2reward.agent.trace.load import load_trace
    from vid2reward.agent.trace.timing import PHASES, iteration_times

    times = iteration_times(load_trace(args.run))
    phases = [*PHASES, "other"]
    if args.json:
        print(json.dumps([{"iteration": t.iteration, "seconds": {k: round(v, 1) for k, v in t.seconds.items()},
                           "judge_share": None if t.judge_share is None else round(t.judge_share, 3)}
                          for t in times], indent=2))
        return 0
    table = Table(title=f"time per iteration (s): {args.run}",
                  caption="judge % = judging's share of the iteration's search work (final "
                          "training left out)")
    for col in ("iter", *phases, "total", "judge %"):  # fits 80 columns
        table.add_column(col, justify="right", no_wrap=True)
    for t in times:
        share = t.judge_share
        table.add_row("set-up" if t.iteration == 0 else str(t.iteration),
                      *(f"{t.seconds[p]:.1f}" if p in t.seconds else "-" for p in phases),
                      f"{t.total:.1f}", "-" if share is None or t.iteration == 0 else f"{100 * share:.0f}")
    Console().print(table)
    return 0
