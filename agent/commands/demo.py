"""``vid2reward demo``: the offline bi-level search end to end on the bundled expert clip."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from vid2reward.agent.commands.evaluate import BEHAVIOUR_ROWS
from vid2reward.agent.commands.run import check_search_sizes
from vid2reward.agent.config import RunConfig
from vid2reward.agent.dashboard import Dashboard
from vid2reward.agent.runner import execute, new_run_dir

DEMO_CLIP = "demo_expert_hopper.mp4"
DEMO_INFO = "demo_expert_hopper.json"


def demo_files() -> tuple[Path, dict]:
    """The bundled expert clip and what is known about it (task, hidden reward, state metrics)."""
    import vid2reward.examples as examples

    folder = Path(examples.__file__).parent
    return folder / DEMO_CLIP, json.loads((folder / DEMO_INFO).read_text(encoding="utf-8"))


DEMO_FINAL_STEPS = 300_000
"""Enough, with the trained defaults, for a hopper to stop falling (docs/performance.md)."""
DEMO_DURATION = ("It takes about 8 minutes on an idle 2-core laptop (docs/performance.md), "
                 "20-25 on a busy one; the dashboard's ETA counts every training.")
"""What ``demo --help`` promises: measured, 7 min 27 s with the 2 cores alone, 19-25 min with
other work on them (the search, the final training and its check)."""


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "demo", help="run the offline demo end to end on the bundled expert clip",
        description="Learn a reward for Hopper-v5 from the bundled expert clip (a hopper trained "
                    "on a reward the run never sees), offline; then print the summary and the "
                    f"command to inspect the run. {DEMO_DURATION}")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/demo-<time>)")
    p.add_argument("--iterations", type=int, default=3, help="iterations (default 3)")
    p.add_argument("--candidates", type=int, default=4, help="candidates per iteration (default 4)")
    p.add_argument("--steps", type=int, default=60_000, help="PPO steps per candidate (default 60000)")
    p.add_argument("--final-steps", type=int, default=DEMO_FINAL_STEPS,
                   help="steps the winning reward trains again from scratch, so the policy in "
                        f"best/ has learned the behaviour (default {DEMO_FINAL_STEPS})")
    p.add_argument("--quiet", action="store_true", help="no live dashboard")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_search_sizes(args)  # the same check as run's, before any directory or training
    clip, info = demo_files()
    out = args.out or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    config = RunConfig(env_id=info["env_id"], video=str(clip), iterations=args.iterations,
                       candidates=args.candidates, steps=args.steps, patience=args.iterations,
                       final_steps=args.final_steps)
    console = Console(stderr=True)
    expert = info["state_metrics"]  # measured in the simulator; the run sees only the video
    console.print(f"[bold]vid2reward demo[/]: learning a reward for {config.env_id} from "
                  f"{clip.name} (the expert: a hopper trained on a reward the run never sees, "
                  f"hopping forward at {metric('forward_velocity', expert)})", soft_wrap=True)
    paths = new_run_dir(config, out)
    with Dashboard(config, paths.root, quiet=args.quiet) as board:
        outcome = execute(paths, config, paths.root.name, listeners=[board.on_event],
                          progress=board.on_progress)
    board.print_summary(outcome)
    learned = (paths.best_summary() or {}).get("best_state_metrics")
    if learned:
        Console().print(
            "ground truth (simulator state, hidden from the run): forward speed "
            f"{metric('forward_velocity', learned)} vs the expert's "
            f"{metric('forward_velocity', expert)}; torso height "
            f"{metric('torso_height_mean', learned)} vs the expert's "
            f"{metric('torso_height_mean', expert)}", soft_wrap=True)
    return outcome.exit_code


def metric(key: str, metrics: dict) -> str:
    """A state metric with its unit, as ``evaluate`` shows it ("+0.72 m/s", "1.24 m"): the
    demo said the expert hops at "0.8 m/s" (its hidden reward's target) and then "0.72"."""
    return {k: fmt for k, _, fmt in BEHAVIOUR_ROWS}[key].format(metrics[key])
