"""``vid2reward render``: roll out a trained policy, write an mp4, a contact sheet and metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import cast

from rich.console import Console

from vid2reward.sim.errors import UserError
from vid2reward.sim.evaluation import summarise
from vid2reward.sim.render import write_clip_and_sheet
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.tools.gait_comparison import cadence_text


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "render", help="render a trained policy to an mp4 with a contact sheet",
        description="Roll out a trained policy deterministically and write an H.264 mp4, a "
                    "contact-sheet PNG (<stem>_sheet.png) and behaviour metrics from the "
                    "simulator state (<stem>_metrics.json) beside it.")
    p.add_argument("--policy", required=True, type=Path, help="a `vid2reward train` output directory")
    p.add_argument("--out", required=True, type=Path, help="the mp4 to write")
    p.add_argument("--seconds", type=float, default=10.0, help="longest clip, seconds (default 10)")
    p.add_argument("--episodes", type=int, default=1,
                   help="episodes to measure; the clip shows the first (default 1)")
    p.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT (default 320x240)")
    p.add_argument("--seed", type=int, default=EVALUATION_SEED,
                   help=f"seed of the first episode (default {EVALUATION_SEED}: the first "
                        "episode of `evaluate` and of a run's final check)")
    p.add_argument("--env", default=None, help="env id, when the policy directory has no metrics.json")
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """``"320x240"`` -> (320, 240); a bad size is a user error."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"bad frame size '{text}'", where="--size", fix="write WIDTHxHEIGHT, e.g. 320x240") from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise UserError(f"frame size {text} out of range", where="--size", fix="use 16..4096 pixels per side")
    return width, height


def run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    if args.out.suffix.lower() != ".mp4":
        raise UserError("the output must be an .mp4 file", where=str(args.out),
                        fix="give --out a file name ending in .mp4")
    if args.seconds <= 0 or args.episodes <= 0:
        raise UserError("--seconds and --episodes must be positive", where="render",
                        fix="give --seconds a number above 0 and --episodes 1 or more")
    policy = load_policy(args.policy, args.env)
    from vid2reward.sim.envs import make_env

    probe = make_env(policy.env_id)
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    max_steps = max(1, int(args.seconds / cast(MujocoEnv, probe.unwrapped).dt))
    probe.close()
    console = Console(stderr=True)
    with console.status(f"rolling out {policy.env_id} and rendering"):
        episodes = run_episodes(policy.env_id, policy, episodes=args.episodes, seed=args.seed,
                                max_steps=max_steps, render_size=size)
    first = episodes[0]
    clip, sheet = write_clip_and_sheet(first.frames, first.fps, args.out,
                                       args.out.with_name(f"{args.out.stem}_sheet.png"))
    evaluation = summarise(episodes, args.seed, max_steps)
    metrics = evaluation.metrics
    metrics_path = args.out.with_name(f"{args.out.stem}_metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    console.print(f"{len(first.frames)} frames at {first.fps:.1f} fps; forward "
                  f"{metrics['forward_velocity']:.2f} m/s, height {metrics['torso_height_mean']:.2f} m, "
                  f"{cadence_text(metrics)}, torso bob frequency {metrics['cadence_hz']:.2f} Hz; "
                  f"sheet {sheet}; metrics {metrics_path}", highlight=False)
    console.print(evaluation.summary(), highlight=False)
    print(clip)
    return 0
