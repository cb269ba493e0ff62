"""``vid2reward run --replay RUN_DIR``: re-run a recorded LLM run with no key and no network.

The run's own options come from RUN_DIR/run.json and its expert from RUN_DIR/expert/clip.mp4
(already fetched and trimmed: no URL is fetched again); every model call is answered from
RUN_DIR/events.jsonl (:mod:`vid2reward.agent.engines.llm_replay`). Training, rendering and
measuring run for real, so the replay checks that the recorded run's programs come out of the
same answers again, and anyone can re-run a shared run without the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from vid2reward.agent.dashboard import Dashboard
from vid2reward.agent.engines.llm import make_llm_engines
from vid2reward.agent.engines.llm_replay import ReplayLog
from vid2reward.agent.runner import execute, load_run, new_run_dir
from vid2reward.sim.errors import UserError
from vid2reward.tools.reward_isolation import require_isolation, set_trust


def replay_run(args: argparse.Namespace) -> int:
    """Replay ``args.replay`` into ``args.out`` (or a new runs/ directory); the exit code is the
    replayed run's (a divergence from the log is a user error: exit 2)."""
    source, config, _ = load_run(args.replay)
    if config.engine != "llm":
        raise UserError(f"only an --engine llm run can be replayed (this one is {config.engine})",
                        where=str(args.replay),
                        fix="an offline run needs no model: run it again with the same options")
    log = ReplayLog(source.root)
    if config.video_critic:
        clip = source.expert_clip
        if not clip.is_file():
            raise UserError("the recorded run has no expert clip to replay with",
                            where=str(clip), fix="copy the run directory whole, expert/ included")
        config.video, config.video_start, config.video_end = str(clip.resolve()), None, None
    config.base_url = None  # nothing is sent anywhere: answers come from the log
    set_trust(config.trust_reward_code)
    require_isolation()
    engines = make_llm_engines(config, replay=log)
    words = source.read_info().get("feedback")  # run --feedback of the recorded run
    paths = new_run_dir(config, args.out)
    paths.write_info({**paths.read_info(), "replay_of": str(source.root.resolve()),
                      **({"feedback": words} if words else {})})
    with Dashboard(config, paths.root, quiet=args.quiet) as board:
        outcome = execute(paths, config, paths.root.name, listeners=[board.on_event],
                          progress=board.on_progress, engines=engines, human_feedback=words)
    board.print_summary(outcome)
    left = log.remaining()
    if left:  # e.g. chat questions, or a recorded run that went on longer (a budget raised)
        Console(stderr=True).print(f"note: {sum(left.values())} logged model calls were not asked "
                                   f"({json.dumps(left)})", highlight=False)
    return outcome.exit_code


def check_replay_args(args: argparse.Namespace) -> None:
    """``--replay`` takes the run's own options: refuse the new-run ones, in one line."""
    given = [flag for flag, value in (("--env", args.env), ("--video", args.video),
                                      ("--feedback", getattr(args, "feedback", None)))
             if value is not None]
    if given:
        raise UserError(f"--replay takes the recorded run's options; {', '.join(given)} cannot change them",
                        where=f"--replay {args.replay}", fix="drop " + " and ".join(given))
    if not Path(args.replay).is_dir():
        raise UserError("no such run directory", where=f"--replay {args.replay}",
                        fix="give a run directory made by `vid2reward run --engine llm`")
