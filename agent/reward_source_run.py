"""``vid2reward run --reward-source vlm-rm|viper|car``: the papers' other ways to get a reward.

The bi-level search (``bilevel``, the default) is the graph in agent/graph.py. The other
sources each make one reward and train one policy on it with the same budget the search
would spend (iterations x candidates x steps env steps), then write the run directory as a
search does: run.json (with a ``reward_source`` entry), expert/ (clip and contact sheet) and
best/ (reward.py, policy.zip, vecnormalize.pkl, metrics.json, clip.mp4, summary.json):

- ``vlm-rm``: a CLIP reward from frames (tools/clip_reward.py), goal from ``--task`` or from the
  expert's frames; the program part of the reward is zero, as in the paper;
- ``viper``: a video model trained on the expert clip (tools/viper_model.py) scores the
  learner's frames, plus its exploration bonus (tools/viper_reward.py); program part zero;
- ``car``: an LLM decomposes the expert video into sub-tasks and writes a verified completion
  check per sub-task; together they are the reward program (agent/car.py); no frames scored.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vid2reward.agent.config import RunConfig
from vid2reward.agent.run_record import RunRecord, write_json
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward_sources import FrameSpec, RewardSource

REWARD_SOURCES = ("bilevel", "vlm-rm", "viper", "car")
"""``--reward-source`` values; ``bilevel`` is the graph, the others are this module."""

ZERO_PROGRAM = ("# The reward is the reward source's alone (see summary.json: reward_source).\n"
                "def compute_reward(s, a):\n"
                "    return 0.0, {}\n")
"""The program part of a vlm-rm or viper reward: nothing (the papers use the model alone)."""


@dataclass
class SourceOptions:
    """The reward source and its options (``run --reward-source`` and its flags)."""

    kind: str = "bilevel"
    """One of :data:`REWARD_SOURCES`."""
    weight: float = 1.0
    """Scale of the source's components in the reward."""
    every: int | None = None
    """Render a frame every k env steps (None: the source's default; VIPER: the expert clip's
    frame interval, VLM-RM: 4)."""
    clip_checkpoint: str | None = None
    """VLM-RM: a local Hugging Face-format CLIP directory."""
    clip_model: str | None = None
    """VLM-RM: a name for the checkpoint in records (default: the directory's name)."""
    clip_goal: str = "text"
    """VLM-RM: ``text`` (the goal prompt is --task) or ``image`` (the expert video's frames)."""
    clip_baseline: str = "a simulated robot"
    """VLM-RM text mode: the baseline prompt."""
    clip_alpha: float = 0.5
    """VLM-RM: projection strength (0: plain CLIP similarity, 1: only the goal direction)."""
    viper_explore: float = 0.1
    """VIPER: scale of the exploration bonus."""
    car_expert_run: str | None = None
    """CaR: a finished bi-level run on the same env and video whose best candidates give the
    expert-like rollouts a sub-task check must fire on."""
    car_rounds: int = 3
    """CaR: rounds of verification and repair."""

    def check(self, config: RunConfig) -> None:
        """Refuse bad combinations in one line, before any work."""
        if self.kind not in REWARD_SOURCES:
            raise UserError(f"unknown reward source '{self.kind}'", where="--reward-source",
                            fix=f"use one of {', '.join(REWARD_SOURCES)}")
        if self.weight <= 0 or (self.every is not None and self.every < 1):
            raise UserError("--source-weight must be positive and --source-every at least 1",
                            where=f"--source-weight {self.weight:g} --source-every {self.every}",
                            fix="give --source-weight a number above 0 and --source-every 1 or more")
        if self.kind == "vlm-rm":
            if not self.clip_checkpoint:
                from vid2reward.tools.clip_reward import GET_ONE

                raise UserError("VLM-RM needs a CLIP checkpoint and none was given",
                                where="--clip-checkpoint", fix=GET_ONE)
            if self.clip_goal == "text" and not config.task.strip():
                raise UserError("the text-goal VLM-RM takes its goal prompt from --task",
                                where="--task", fix='pass --task "a hopper robot hopping '
                                                    'forward", or --clip-goal image')
        if self.kind == "car":
            if config.engine != "llm" or not (config.critic or config.engineer):
                raise UserError("CaR asks a VLM to decompose the video", where="--reward-source car",
                                fix="pass --engine llm --critic MODEL (and --base-url URL)")
            if not self.car_expert_run:
                raise UserError("CaR verifies its checks on expert-like rollouts and has none",
                                where="--car-expert-run",
                                fix="run the bi-level search first and pass its run directory")


def budget_steps(config: RunConfig) -> int:
    """The env steps a bi-level run would train: iterations x candidates x steps."""
    return config.iterations * config.candidates * config.steps


def build_source(opts: SourceOptions, config: RunConfig, clip: Path, record: RunRecord,
                 log: Callable[[str], None]) -> RewardSource:
    """The VLM-RM or VIPER source for the run's expert clip."""
    if opts.kind == "viper":
        from vid2reward.tools.video_frames import probe_video
        from vid2reward.tools.viper_model import ViperConfig, frame_stride, video_model_for_clip
        from vid2reward.tools.viper_reward import ViperSource

        every = opts.every or frame_stride(config.env_id, probe_video(clip).fps)
        model = video_model_for_clip(clip, config.env_id, every, ViperConfig(), log=log)
        write_json(record.expert_dir / "viper_model.json", model.report)
        ll = model.report["log_likelihood_nats_per_frame"]
        log(f"VIPER video model: {model.report['train_seconds']} s to train; log-likelihood "
            f"per frame: held-out expert {ll['held_out']}, random actions {ll['random_actions']}")
        return ViperSource(model, every, weight=opts.weight, explore_scale=opts.viper_explore,
                           seed=config.seed)
    from vid2reward.tools.clip_reward import CLIP_FRAMES, ClipEmbedder, VlmRmSource

    embedder = ClipEmbedder(Path(str(opts.clip_checkpoint)), opts.clip_model)
    frames = FrameSpec(CLIP_FRAMES.width, CLIP_FRAMES.height, opts.every or CLIP_FRAMES.every)
    if opts.clip_goal == "image":
        from vid2reward.tools.video_frames import read_frames
        from vid2reward.tools.viper_model import random_action_frames, resize_frames

        size = (frames.width, frames.height)
        expert = resize_frames(read_frames(clip, count=32).frames, size)
        flailing = random_action_frames(config.env_id, frames.every, 3, seed=10_000, size=size)
        import numpy as np

        return VlmRmSource.image_goal(embedder, expert, np.concatenate(flailing),
                                      alpha=opts.clip_alpha, frames=frames, weight=opts.weight)
    return VlmRmSource.text_goal(embedder, [config.task], [opts.clip_baseline],
                                 alpha=opts.clip_alpha, frames=frames, weight=opts.weight)


def run_with_source(config: RunConfig, opts: SourceOptions, out: Path | None = None, *,
                    log: Callable[[str], None] = print,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Make the reward of ``opts.kind``, train one policy on it, write the run directory;
    return best/summary.json's contents."""
    from vid2reward.agent.runner import new_run_dir
    from vid2reward.sim.rollout import load_policy, run_episodes
    from vid2reward.sim.train import TrainConfig
    from vid2reward.tools.expert_video import prepare_expert
    from vid2reward.tools.reward_sandbox import sandboxed_program
    from vid2reward.tools.reward_training import train_sandboxed
    from vid2reward.tools.video_frames import read_frames, save_contact_sheet

    opts.check(config)
    started = time.monotonic()
    record = new_run_dir(config, out)
    info = record.read_info()
    info["reward_source"] = asdict(opts)
    record.write_info(info)
    try:
        clip = prepare_expert(config.video, record.expert_dir, start=config.video_start,
                              end=config.video_end)
        save_contact_sheet(read_frames(clip, count=12), record.expert_sheet)
        source: RewardSource | None = None
        extra: dict[str, Any] = {}
        if opts.kind == "car":
            from vid2reward.agent.car import car_reward_program

            program_source, extra = car_reward_program(config, opts, record, log=log)
        else:
            source = build_source(opts, config, clip, record, log)
            program_source = ZERO_PROGRAM
        overrides = {} if config.n_envs is None else {"n_envs": config.n_envs}
        train_config = TrainConfig.for_env(config.env_id, total_steps=budget_steps(config),
                                           seed=config.seed, n_workers=config.n_workers,
                                           **overrides)
        log(f"training {budget_steps(config):,} steps on the {opts.kind} reward"
            + (f" ({source.describe()})" if source else ""))
        result = train_sandboxed(train_config, sandboxed_program(program_source, "reward.py"),
                                 record.best_dir, reward_source=source, on_progress=progress,
                                 trust=config.trust_reward_code)
    except BaseException:
        if not record.best_dir.is_dir():  # nothing trained: leave no half-made run behind
            shutil.rmtree(record.root, ignore_errors=True)
        raise
    summary: dict[str, Any] = {"reward_source": opts.kind, "source_key": train_config.reward_source
                               if source is None else source.cache_key(),
                               "status": result.status, "failure": result.metrics.get("failure"),
                               "steps": result.metrics["steps"],
                               "wall_seconds": round(time.monotonic() - started, 1),
                               "run_dir": str(record.root), **extra}
    if result.status != "failed":
        from vid2reward.sim.envs import steps_for_seconds
        from vid2reward.sim.render import write_clip_and_sheet

        episode = run_episodes(config.env_id, load_policy(record.best_dir, config.env_id),
                               seed=config.seed, render_size=config.render_size,
                               max_steps=steps_for_seconds(config.env_id, config.clip_seconds))[0]
        write_clip_and_sheet(episode.frames, episode.fps, record.best_dir / "clip.mp4",
                             record.best_dir / "sheet.png")
    write_json(record.best_dir / "summary.json", summary)
    return summary
