"""The ``--reward-source`` options of ``vid2reward run`` and ``bench nes``, and the run of a
non-bilevel source (agent/reward_source_run.py)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from vid2reward.agent.config import RunConfig
from vid2reward.agent.reward_source_run import REWARD_SOURCES, SourceOptions, run_with_source

_D = SourceOptions()


def add_source_options(p: argparse.ArgumentParser, *, bench: bool = False) -> None:
    """The reward-source flags (``bench``: without --reward-source, which --methods replaces,
    and with the CaR model flags the bench has no other way to get)."""
    g = p.add_argument_group("reward sources (VLM-RM, VIPER, VLM-CaR; docs/design.md)")
    if not bench:
        g.add_argument("--reward-source", choices=REWARD_SOURCES, default="bilevel",
                       help="where the reward comes from: bilevel (default: the bi-level search), "
                            "vlm-rm (a CLIP reward from frames), viper (a video model of the "
                            "expert clip), car (VLM-written, verified sub-task checks; --engine "
                            "llm)")
    g.add_argument("--source-weight", type=float, default=_D.weight,
                   help="scale of the vlm-rm/viper reward (default 1)")
    g.add_argument("--source-every", type=int, default=None, metavar="K",
                   help="render a frame for the source every K env steps, holding its value in "
                        "between (default: viper the expert clip's frame interval, vlm-rm 4)")
    g.add_argument("--clip-checkpoint", default=None, metavar="DIR",
                   help="vlm-rm: a local Hugging Face-format CLIP directory (config.json, "
                        "weights, tokenizer files); nothing is downloaded")
    g.add_argument("--clip-model", default=None, metavar="NAME",
                   help="vlm-rm: the checkpoint's name in records (default: the directory name)")
    g.add_argument("--clip-goal", choices=["text", "image"], default=_D.clip_goal,
                   help="vlm-rm: text (the goal prompt is --task; default) or image (the expert "
                        "video's frames, against random-action frames)")
    g.add_argument("--clip-baseline", default=_D.clip_baseline, metavar="TEXT",
                   help=f"vlm-rm text goal: the baseline prompt (default '{_D.clip_baseline}')")
    g.add_argument("--clip-alpha", type=float, default=_D.clip_alpha,
                   help="vlm-rm: projection onto the baseline->goal direction, 0..1 (default 0.5)")
    g.add_argument("--viper-explore", type=float, default=_D.viper_explore,
                   help="viper: scale of the exploration bonus (default 0.1)")
    if not bench:
        g.add_argument("--car-expert-run", default=None, metavar="DIR",
                       help="car: a finished bi-level run (or a policy directory) of the same env "
                            "and video; its best candidates are the expert-like rollouts the "
                            "sub-task checks are verified on")
    g.add_argument("--car-rounds", type=int, default=_D.car_rounds,
                   help="car: verification and repair rounds (default 3)")
    if bench:
        g.add_argument("--car-model", default=None, metavar="MODEL",
                       help="car: the VLM (an OpenAI-compatible endpoint: --base-url)")
        g.add_argument("--base-url", default=None, help="car: the endpoint (env OPENAI_BASE_URL)")


def options_from_args(args: argparse.Namespace, kind: str | None = None) -> SourceOptions:
    """SourceOptions from the flags (``kind`` overrides --reward-source)."""
    return SourceOptions(kind=kind or args.reward_source, weight=args.source_weight,
                         every=args.source_every, clip_checkpoint=args.clip_checkpoint,
                         clip_model=args.clip_model, clip_goal=args.clip_goal,
                         clip_baseline=args.clip_baseline, clip_alpha=args.clip_alpha,
                         viper_explore=args.viper_explore,
                         car_expert_run=getattr(args, "car_expert_run", None),
                         car_rounds=args.car_rounds)


def bench_source_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What ``bench nes`` keeps of these flags (BenchConfig.sources)."""
    from dataclasses import asdict

    return {**asdict(options_from_args(args, kind="bilevel")), "car_model": args.car_model,
            "base_url": args.base_url}


def run_source(args: argparse.Namespace, config: RunConfig) -> int:
    """``run --reward-source vlm-rm|viper|car``: make the reward, train, report."""
    opts = options_from_args(args)
    opts.check(config)
    err = Console(stderr=True)
    summary = run_with_source(config, opts, args.out,
                              log=lambda line: err.print(line, highlight=False))
    if summary["status"] == "failed":
        err.print(f"[red]training failed[/]: {summary['failure']}")
        return 1
    err.print(f"{opts.kind}: trained {summary['steps']:,} steps in {summary['wall_seconds']:.0f} s; "
              f"policy, clip and summary in {summary['run_dir']}/best")
    return 0
