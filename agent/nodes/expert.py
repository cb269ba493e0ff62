"""Ingest the expert video and have the critic describe it."""

from __future__ import annotations

from typing import Any

from vid2reward.agent.clip_checks import check_clip_length
from vid2reward.agent.context import RunContext
from vid2reward.agent.engines.base import ExpertView
from vid2reward.agent.run_dir import read_json, write_json
from vid2reward.agent.state import RunState
from vid2reward.tools.expert_video import measure_video, prepare_expert


def ingest_expert(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Fetch (or copy) and trim the expert clip, sample frames, measure its pixel features."""
    cfg = ctx.config
    if not cfg.video_critic:
        ctx.note("no video critic (ablation): the expert video is not used")
        return {}
    expert_dir = ctx.paths.expert
    if not (expert_dir / "features.json").is_file():
        clip = prepare_expert(cfg.video, expert_dir, start=cfg.video_start, end=cfg.video_end)
        check_clip_length(clip, "the expert clip")
        measured = measure_video(clip, sheet=expert_dir / "sheet.png", forward=cfg.expert_forward)
        write_json(expert_dir / "features.json", measured)
    features = read_json(expert_dir / "features.json")["features"]
    ctx.note("expert features: " + ", ".join(f"{k}={v:.3g}" for k, v in features.items()))
    return {}


def load_expert(ctx: RunContext) -> ExpertView | None:
    """The expert as agents see it (None in the no-video ablation)."""
    expert_dir = ctx.paths.expert
    if not ctx.config.video_critic or not (expert_dir / "features.json").is_file():
        return None
    measured = read_json(expert_dir / "features.json")
    description = expert_dir / "description.txt"
    return ExpertView(clip=expert_dir / "clip.mp4", sheet=expert_dir / "sheet.png",
                      features=measured["features"], units=measured.get("units", {}),
                      description=description.read_text() if description.is_file() else "")


def describe_expert(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The critic's words on how the expert moves (expert/description.txt)."""
    expert = load_expert(ctx)
    if expert is None:
        return {"expert_described": True}
    path = ctx.paths.expert / "description.txt"
    if not path.is_file():
        path.write_text(ctx.critic.describe_expert(expert), encoding="utf-8")
    ctx.note(path.read_text(encoding="utf-8").splitlines()[0][:160])
    return {"expert_described": True}
