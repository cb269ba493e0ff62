"""``vid2reward run`` and ``vid2reward resume``: the bi-level search, start to finish."""

from __future__ import annotations

import argparse
from pathlib import Path

from vid2reward.agent.commands.reward_sources import add_source_options, run_source
from vid2reward.agent.config import RunConfig
from vid2reward.agent.dashboard import Dashboard
from vid2reward.agent.runner import execute, load_run, make_engines, new_run_dir
from vid2reward.agent.training_backend import RAY_HELP, chosen_ray_address, open_training_backend
from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import SEED_FIX, UserError
from vid2reward.tools.person_tracking import parse_subject
from vid2reward.tools.reward_isolation import require_isolation, set_trust


def add_run_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    """The options of a new run (shared with ``chat``)."""
    d = RunConfig()
    p.add_argument("--env", required=required, help="Gymnasium MuJoCo id, e.g. Hopper-v5")
    p.add_argument("--video", required=required, help="expert video: a URL yt-dlp understands, or a file")
    p.add_argument("--start", type=float, default=None, help="trim the video from this second")
    p.add_argument("--end", type=float, default=None, help="trim the video up to this second")
    p.add_argument("--forward", choices=["right", "left", "auto"], default="right",
                   help="which way the expert moves forward in its video: right (default, as in "
                        "MuJoCo renders), left, or auto (the way it moves; for real footage)")
    p.add_argument("--subject", default=None, metavar="auto|X,Y,W,H",
                   help="who the expert is in a busy frame: auto = the most persistent, largest "
                        "mover, or a box in pixels of the video file (a URL: of the fetched clip) "
                        "at --subject-time; its region is measured "
                        "(default: the whole frame; a person's pose is found automatically)")
    p.add_argument("--subject-time", type=float, default=0.0, metavar="SECONDS",
                   help="time of the --subject box in the trimmed clip (default 0)")
    p.add_argument("--task", default="", help="words about the task, for LLM agents")
    p.add_argument("--iterations", type=int, default=d.iterations, help=f"critique/edit rounds (default {d.iterations})")
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help=f"reward programs trained per iteration (default {d.candidates})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"PPO steps per candidate (default {d.steps})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--engine", choices=["offline", "llm"], default="offline",
                   help="offline (default: no key, no network) or llm (OpenAI-compatible API)")
    p.add_argument("--critic", default=None, help="critic model (a VLM); 'none' = no video (ablation)")
    p.add_argument("--engineer", default=None, help="engineer model")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (env OPENAI_BASE_URL)")
    p.add_argument("--api-key", default=None, help="API key (env OPENAI_API_KEY); never stored")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget of the run's work")
    p.add_argument("--token-budget", type=int, default=None, help="stop after this many LLM tokens")
    p.add_argument("--money-budget", type=float, default=None, metavar="USD", help="stop after this much LLM spend")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"stop after this many iterations without improvement (default {d.patience})")
    p.add_argument("--envs", type=int, default=d.n_envs,
                   help="parallel envs per training (default: the env's preset, see sim/hyperparams.py)")
    p.add_argument("--final-steps", type=int, default=d.final_steps, metavar="N",
                   help="after the search, train the best reward again from scratch for N steps; "
                        f"best/ then holds that policy (default {d.final_steps:,}; 0: off, best/ "
                        "keeps the winning candidate's)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<time>-<env>)")
    p.add_argument("--trust-reward-code", action="store_true",
                   help="run reward programs even where the OS cannot isolate them (no "
                        "seccomp: macOS, some containers); only for code you trust (recorded in "
                        "run.json)")


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("run", help="learn a reward from an expert video (the bi-level search)",
                         description="Learn a reward program from an expert video: critique -> "
                                     "edit -> retrain, for a number of iterations. Exit codes: 0 "
                                     "finished, 3 stopped by a budget, 1 failed, 130 interrupted "
                                     "(resume with `vid2reward resume RUN_DIR`).")
    add_run_options(p, required=False)  # --env and --video: required unless --replay
    p.add_argument("--quiet", action="store_true", help="no live dashboard, only the summary")
    p.add_argument("--feedback", default=None, metavar="TEXT",
                   help="your words on the behaviour for the first edit step, e.g. 'hop higher, "
                        "a bit slower' (read as behaviour deltas; README 'Chat' lists the words)")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.add_argument("--replay", type=Path, default=None, metavar="RUN_DIR",
                   help="re-run a recorded --engine llm run with no key and no network: every "
                        "model call is answered from RUN_DIR/events.jsonl (its options are used)")
    add_source_options(p)
    p.set_defaults(func=run)
    r = verbs.add_parser("resume", help="continue a run after a crash, kill or stop",
                         description="Continue a run from its last finished step (no finished "
                                     "candidate is trained again).")
    r.add_argument("run_dir", type=Path, help="the run directory")
    r.add_argument("--api-key", default=None, help="API key for an llm run (never stored)")
    r.add_argument("--quiet", action="store_true", help="no live dashboard, only the summary")
    r.add_argument("--ray", default=None, metavar="ADDRESS",
                   help=RAY_HELP.replace("(default;", "(default: where the run was started;"))
    r.set_defaults(func=resume)


def check_search_sizes(args: argparse.Namespace) -> None:
    """The sizes of a search (--iterations, --candidates, --steps, --envs: at least 1;
    --final-steps: 0 or more), checked before any work; one check for run, chat and demo (an
    option a verb lacks is skipped). ``demo --steps 0`` trained for minutes and exited 0."""
    for name in ("iterations", "candidates", "steps", "envs"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be positive", where=f"--{name} {value}",
                            fix=f"give --{name} a whole number of at least 1")
    final = getattr(args, "final_steps", None)
    if final is not None and final < 0:
        raise UserError("--final-steps must not be negative", where=f"--final-steps {final}",
                        fix="give --final-steps 0 (no final training) or a number of steps")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A RunConfig from the run options, checking what can be checked before any work."""
    get_spec(args.env)
    check_search_sizes(args)
    for name in ("time_limit", "money_budget"):
        value = getattr(args, name)
        if value is not None and not value > 0:  # also refuses nan
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be positive", where=f"{flag} {value:g}",
                            fix=f"give {flag} a number above 0, or leave it out (no limit)")
    if args.token_budget is not None and args.token_budget <= 0:
        raise UserError("--token-budget must be positive", where=f"--token-budget {args.token_budget}",
                        fix="give --token-budget a whole number of tokens, or leave it out (no limit)")
    if args.patience is not None and args.patience <= 0:
        raise UserError("--patience must be positive", where=f"--patience {args.patience}",
                        fix="give --patience a whole number of iterations of at least 1")
    if not 0 <= args.seed < 2**32:
        raise UserError("--seed must be between 0 and 2**32 - 1", where=f"--seed {args.seed}", fix=SEED_FIX)
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError("--end must come after --start", where=f"--start {args.start:g} --end {args.end:g}",
                        fix="give --end a later second of the video than --start")
    if args.subject is not None:
        parse_subject(args.subject)  # a malformed box is refused before any work
    if not args.subject_time >= 0:
        raise UserError("--subject-time must not be negative", where=f"--subject-time {args.subject_time:g}",
                        fix="give --subject-time 0 or more seconds into the trimmed clip")
    if args.engine == "llm" and not (args.critic or "").strip() and not args.engineer:
        raise UserError("the llm engine needs models", where="--engine llm",
                        fix="pass --critic MODEL and --engineer MODEL (and --base-url for a local server)")
    if (args.critic or "").lower() != "none":
        _check_video(args.video)
    set_trust(args.trust_reward_code)
    require_isolation()  # one line, before any work, where the OS cannot isolate reward code
    if args.api_key:
        import os

        os.environ["OPENAI_API_KEY"] = args.api_key  # this process only; never written to run.json
    return RunConfig(env_id=args.env, video=args.video, video_start=args.start, video_end=args.end,
                     expert_forward=args.forward, subject=args.subject,
                     subject_time=args.subject_time, task=args.task,
                     iterations=args.iterations, candidates=args.candidates,
                     steps=args.steps, seed=args.seed, engine=args.engine, critic=args.critic,
                     engineer=args.engineer, base_url=args.base_url,
                     wall_clock_limit=args.time_limit, token_budget=args.token_budget,
                     money_budget=args.money_budget, patience=args.patience, n_envs=args.envs,
                     final_steps=args.final_steps,
                     trust_reward_code=args.trust_reward_code)


def _check_video(video: str) -> None:
    if "://" in video:
        return  # URLs are checked when fetched
    if not Path(video).is_file():
        raise UserError("expert video not found", where=video, fix="give a video file or a URL")


def run(args: argparse.Namespace) -> int:
    if args.replay is not None:
        from vid2reward.agent.commands.replay import check_replay_args, replay_run

        check_replay_args(args)
        return replay_run(args)
    if not args.env or not args.video:
        missing = " and ".join(f for f, v in (("--env", args.env), ("--video", args.video)) if not v)
        raise UserError(f"run needs {missing}", where="vid2reward run",
                        fix="vid2reward run --env Hopper-v5 --video clip.mp4 (or --replay RUN_DIR)")
    config = config_from_args(args)
    if args.reward_source != "bilevel":  # VLM-RM, VIPER or CaR: one reward, one training
        return run_source(args, config)
    if args.feedback is not None:
        _say_feedback(args.feedback, config.engine)
    engines = make_engines(config)  # a missing model or key fails here, before any directory
    config.ray_address = chosen_ray_address(args.ray)
    training = open_training_backend(config.ray_address)  # so does an unreachable cluster
    try:
        paths = new_run_dir(config, args.out)
        if args.feedback is not None:  # kept with the run, so --replay gives the same words
            paths.write_info({**paths.read_info(), "feedback": args.feedback})
        with Dashboard(config, paths.root, quiet=args.quiet) as board:
            outcome = execute(paths, config, paths.root.name, listeners=[board.on_event],
                              progress=board.on_progress, engines=engines,
                              human_feedback=args.feedback, training=training)
    finally:
        training.close()
    board.print_summary(outcome)
    return outcome.exit_code


def _say_feedback(text: str, engine: str) -> None:
    """Say how --feedback was read; words the offline engineer cannot act on at all are an
    error (they would be dropped), never silently ignored."""
    from vid2reward.agent.human_feedback import known_words, parse_feedback

    parsed = parse_feedback(text)
    if not parsed.requests and engine != "llm":
        raise UserError(f"--feedback: none of '{text}' is in the vocabulary", where="--feedback",
                        fix=f"use words such as: {known_words()}")
    import sys

    print(f"feedback: {parsed.summary()}", file=sys.stderr)


def resume(args: argparse.Namespace) -> int:
    paths, config, run_id = load_run(args.run_dir)
    source = (paths.read_info().get("reward_source") or {}).get("kind", "bilevel")
    if source != "bilevel":
        raise UserError(f"a --reward-source {source} run cannot be resumed", where=str(args.run_dir),
                        fix="start it again (its video model and checks are cached or quick)")
    set_trust(config.trust_reward_code)  # as the run was started
    require_isolation()
    if args.api_key:
        import os

        os.environ["OPENAI_API_KEY"] = args.api_key
    config.ray_address = chosen_ray_address(args.ray, config.ray_address)
    training = open_training_backend(config.ray_address)
    try:
        with Dashboard(config, paths.root, quiet=args.quiet) as board:
            outcome = execute(paths, config, run_id, resume=True, listeners=[board.on_event],
                              progress=board.on_progress, training=training)
    finally:
        training.close()
    board.print_summary(outcome)
    return outcome.exit_code
