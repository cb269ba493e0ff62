"""``vid2reward train``: PPO on a reward program, with a progress bar.

The reward file is untrusted code: it is checked statically here and runs only in the
sandboxed env workers (``vid2reward.tools.reward_training.train_sandboxed``), so ``--workers``
is at least 1. A reward that fails mid-training ends the run with exit code 2 and a one-line
reason on stderr; metrics.json in the output directory records it. The first Ctrl-C (or
SIGTERM) stops the training at the next step and keeps the policy so far in the output
directory (status "interrupted", exit 130; ``--init`` continues from it); a second aborts.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vid2reward.agent.commands.ppo_flag import add_ppo_argument, ppo_overrides
from vid2reward.agent.context import StopFlag
from vid2reward.agent.interrupts import stop_on_signals
from vid2reward.agent.output_dir import check_train_out, train_into
from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import CHECK_FIX, SEED_FIX, UserError
from vid2reward.sim.reward import one_line
from vid2reward.sim.train import TrainConfig
from vid2reward.tools.reward_isolation import require_isolation, set_trust
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("train", help="train a PPO policy on a reward program",
                         description="Train a PPO policy on a reward program and write policy.zip, "
                                     "vecnormalize.pkl, metrics.json and a TensorBoard log.")
    p.add_argument("--env", required=True, help="Gymnasium MuJoCo id, e.g. Hopper-v5")
    p.add_argument("--reward", required=True, type=Path, help="reward program (.py)")
    p.add_argument("--steps", type=int, default=100_000, help="env steps to train (default 100000)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds, keeping the policy so far")
    p.add_argument("--envs", type=int, default=None,
                   help=f"parallel envs (default: the env's preset, {TrainConfig.n_envs} for most; "
                        "see sim/hyperparams.py)")
    p.add_argument("--init", type=Path, default=None, metavar="DIR",
                   help="continue from a previous training's policy.zip and vecnormalize.pkl "
                        "(a train --out directory, or a run's best/) instead of a fresh policy")
    p.add_argument("--workers", type=int, default=TrainConfig.n_workers,
                   help="env worker processes, at least 1: reward code runs only in these "
                        "sandboxed processes (default 2)")
    add_ppo_argument(p, "set PPO settings over the env's preset (sim/hyperparams.py)")
    p.add_argument("--trust-reward-code", action="store_true",
                   help="run reward programs even where the OS cannot isolate them (no "
                        "seccomp: macOS, some containers); only for code you trust")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.steps <= 0:
        raise UserError("--steps must be positive", where=f"--steps {args.steps}",
                        fix="give --steps a whole number of at least 1")
    if args.workers < 1:
        raise UserError("--workers must be at least 1: reward code runs only in sandboxed "
                        "worker processes", where=f"--workers {args.workers}",
                        fix="use --workers 1 or more")
    check_train_args(args)
    overrides = ppo_overrides(args.ppo)
    if args.envs is not None:
        if "n_envs" in overrides:
            raise UserError("give the number of envs once: --envs or --ppo n_envs=",
                            where=f"--envs {args.envs}", fix="drop one of the two")
        overrides["n_envs"] = args.envs
    get_spec(args.env)  # fail on a bad id before drawing a progress bar
    set_trust(args.trust_reward_code)
    require_isolation()  # one line where the OS cannot isolate reward code
    program = sandboxed_program(args.reward)  # static check; the code never runs here
    if args.init is not None and not (args.init / "policy.zip").is_file():
        raise UserError("no policy.zip to continue from", where=str(args.init),
                        fix="pass a train --out directory or a run's best/ to --init")
    config = TrainConfig.for_env(args.env, total_steps=args.steps, seed=args.seed,
                                 wall_clock_limit=args.time_limit, n_workers=args.workers,
                                 init_from=None if args.init is None else str(args.init),
                                 **overrides)
    created = check_train_out(args.out)  # before any work: never clobber what train did not make
    console = Console(stderr=True)
    stop = StopFlag()  # the first Ctrl-C: stop at the next step and keep the policy so far

    def say(_: str) -> None:
        console.print("stopping at the next step, keeping the policy so far; Ctrl-C again to abort")

    progress = Progress(TextColumn("[bold]train[/] {task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                        transient=False)
    with stop_on_signals(stop, say=say), warnings_as_lines(console, args), progress:
        task = progress.add_task(f"{args.env} on {args.reward.name}", total=args.steps)
        result = train_into(args.out, lambda work: train_sandboxed(
            config, program, work,
            on_progress=lambda done, total: progress.update(task, completed=done),
            should_stop=lambda: stop.requested), created)
    m = result.metrics
    if result.status == "failed":  # one line: the reason and where the record is; the fix
        console.print(f"[bold red]error:[/] training stopped: {escape(m['failure'])}; see "
                      f"{escape(str(args.out / 'metrics.json'))}", soft_wrap=True)
        fix = m.get("failure_fix") or CHECK_FIX
        fix = fix.replace("FILE", str(args.reward)).replace("--env ENV", f"--env {args.env}")
        console.print(f"[bold]fix:[/] {escape(fix)}", soft_wrap=True)
        return 2
    if result.status == "interrupted":
        console.print(f"interrupted after {m['steps']} of {args.steps} steps; the policy so far is "
                      f"in {escape(str(args.out))}", soft_wrap=True)
        console.print(f"continue: vid2reward train --env {args.env} --reward {escape(str(args.reward))} "
                      f"--init {escape(str(args.out))} --out DIR", soft_wrap=True)
        return 130
    env_ret = m["env_return_mean"]
    console.print(f"{result.status}: {m['steps']} steps in {m['wall_seconds']:.1f}s "
                  f"({m['steps_per_second']:.0f} steps/s); episode length {m['episode_length_mean']:.0f}, "
                  f"env return {env_ret:.1f}" if env_ret is not None else f"{result.status}")
    print(args.out)
    return 0


NUMERIC_WARNING = ("; most often a reward too large for training's running statistics (once "
                   "they overflow, the policy learns from no reward): keep its terms of order 1 "
                   "(`vid2reward reward test {reward} --env {env}` shows their sizes)")
"""What a numeric warning (overflow, NaN) during training most likely means, and the remedy."""


@contextmanager
def warnings_as_lines(console: Console, args: argparse.Namespace) -> Iterator[None]:
    """While inside: a Python warning of this process (numpy overflowing in the reward's
    running statistics, say) is one ``warning:`` line, once per message, with its remedy; the
    training goes on, so it is never ``error:``, and never a file path and a source line."""
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = one_line(str(message))
        if text in seen:
            return
        seen.add(text)
        numeric = any(w in text for w in ("overflow", "invalid value", "divide by zero", "NaN"))
        remedy = NUMERIC_WARNING.format(reward=args.reward, env=args.env) if numeric else ""
        console.print(f"[yellow]warning:[/] {escape(text)}{escape(remedy)}", soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def check_train_args(args: argparse.Namespace) -> None:
    """Numbers that would fail deep inside training (a traceback) fail here, in one line."""
    if args.envs is not None and args.envs < 1:
        raise UserError("--envs must be at least 1", where=f"--envs {args.envs}",
                        fix="give --envs a whole number of at least 1")
    if args.time_limit is not None and not args.time_limit > 0:
        raise UserError("--time-limit must be a positive number of seconds",
                        where=f"--time-limit {args.time_limit:g}",
                        fix="give --time-limit a number of seconds above 0, or leave it out")
    if not 0 <= args.seed < 2**32:
        raise UserError("--seed must be between 0 and 2**32 - 1", where=f"--seed {args.seed}", fix=SEED_FIX)
