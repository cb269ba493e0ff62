"""Ingest the expert video and have the critic describe it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vid2reward.agent.clip_checks import check_clip_length
from vid2reward.agent.context import RunContext
from vid2reward.agent.engines.base import ExpertView
from vid2reward.agent.state import RunState
from vid2reward.sim.envs import get_spec
from vid2reward.sim.state import gait_joints, leg_length
from vid2reward.tools.expert_video import measure_video, prepare_expert, subject_in_clip
from vid2reward.tools.pose_features import airborne_fraction
from vid2reward.tools.video_frames import CropBox


def ingest_expert(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Fetch (or copy) and trim the expert clip, sample frames, measure its pixel features."""
    cfg = ctx.config
    if not cfg.video_critic:
        ctx.note("no video critic (ablation): the expert video is not used")
        return {}
    record = ctx.record
    measured = record.expert_measured()
    if measured is None:
        clip = prepare_expert(cfg.video, record.expert_dir, start=cfg.video_start, end=cfg.video_end)
        check_clip_length(clip, "the expert clip")
        subject = None if cfg.subject is None else subject_in_clip(cfg.subject, cfg.video, clip)
        measured = measure_video(clip, sheet=record.expert_sheet, forward=cfg.expert_forward,
                                 crop=_subject_crop(ctx, clip, subject))
        measured = _with_pose(ctx, clip, measured, subject)
        measured = _within_the_plane(ctx, measured)
        record.write_expert_measured(measured)
    features = measured["features"]
    ctx.note("expert features: " + ", ".join(f"{k}={v:.3g}" for k, v in features.items()))
    return {}


OUT_OF_PLANE = ("depth_speed", "turning_rate")
"""Pixel features of motion a planar body (Hopper, Walker2d, HalfCheetah) cannot make."""


def _within_the_plane(ctx: RunContext, measured: dict[str, Any]) -> dict[str, Any]:
    """For a planar learner, the expert's motion in depth and its turning are left out: the
    learner cannot match them, and a person walking across a campus towards the camera would
    otherwise cost every candidate the same unreachable difference."""
    if not get_spec(ctx.config.env_id).planar:
        return measured
    dropped = {k: v for k, v in measured["features"].items() if k in OUT_OF_PLANE}
    if not dropped:
        return measured
    ctx.note("expert " + ", ".join(f"{k}={v:.3g}" for k, v in dropped.items())
             + f" left out: {ctx.config.env_id} moves in a plane")
    return {**measured,
            "features": {k: v for k, v in measured["features"].items() if k not in dropped},
            "units": {k: v for k, v in measured.get("units", {}).items() if k not in dropped}}


def _subject_crop(ctx: RunContext, clip: Path, subject: str | None) -> CropBox | None:
    """The region of the subject chosen by ``--subject`` (``subject``: that choice in the stored
    clip's pixels; None: the whole frame), said in a note."""
    if subject is None:
        return None
    from vid2reward.tools.person_tracking import subject_region
    from vid2reward.tools.video_frames import read_frames

    frames = read_frames(clip)
    crop, chosen = subject_region(frames.frames, subject,
                                  int(round(ctx.config.subject_time * frames.fps)))
    scaled = "" if subject == ctx.config.subject else f", {subject} in the stored clip"
    ctx.note(f"expert subject ({ctx.config.subject}{scaled}): {chosen}")
    return crop


SUPERSEDED_BY_POSE = {"cadence_hz": "pose_cadence_hz", "tilt_deg": "pose_trunk_lean_deg"}
"""Pixel feature -> the pose feature that measures the same thing on a person, better."""


POSE_READINGS = {"forward_speed": "hips' travel (in leg lengths, carried to this body's legs)",
                 "flight_fraction": "duty factor"}
"""Pixel features that a person's pose reads better, in a busy frame, and from what: the
silhouette of a region holding passers-by moves with them, the hips move with the person."""


def person_speed(pose: dict[str, Any], env_id: str) -> dict[str, float] | None:
    """The person's walking speed carried over to the learner's legs: their speed in *leg*
    lengths/s (hips' travel over hip-knee-ankle) times the body's leg length in metres. Gaits of
    different bodies compare by leg length (a Walker2d's legs are 0.65 of its height, a
    person's 0.47): the walkers clip's 0.60 heights/s is 1.2 m/s for a Walker2d, not 0.9.
    None without a measured travel or without human legs."""
    legs = pose["details"].get("travel_leg_lengths")
    leg_m = leg_length(env_id) if legs is not None else None
    if legs is None or leg_m is None:
        return None
    return {"leg_lengths_per_s": float(legs), "leg_m": leg_m, "m_per_s": float(legs) * leg_m}


def pose_readings(pose: dict[str, Any], carried: dict[str, float] | None = None,
                  body_length: float = 1.0) -> dict[str, float]:
    """Values of :data:`POSE_READINGS`' pixel features, from a pose measurement.

    ``forward_speed``: the hips' travel under a still camera, in body lengths/s; with
    ``carried`` (:func:`person_speed`), that speed in m/s over the learner's ``body_length``
    (metres per body length). ``flight_fraction``
    from the duty factor d (stance share of one foot): an alternating gait (left/right phase
    >= 90 degrees) is airborne 1 - 2d of the time (0 for a walk, d >= 0.5), a hop 1 - d.
    """
    read: dict[str, float] = {}
    travel = pose["details"].get("travel_speed")
    if carried is not None:
        read["forward_speed"] = carried["m_per_s"] / body_length
    elif travel is not None:
        read["forward_speed"] = float(travel)
    duty = pose["features"].get("pose_duty_factor")
    if duty is not None:
        read["flight_fraction"] = airborne_fraction(duty, pose["features"].get("pose_lr_phase_deg"))
    return read


def _with_pose(ctx: RunContext, clip: Path, measured: dict[str, Any],
               subject: str | None = None) -> dict[str, Any]:
    """Add the pose features of the person in the expert clip when the learner's body has
    human legs (Walker2d, Humanoid) and a person is found; otherwise say why not. ``subject``:
    ``--subject`` in the stored clip's pixels (None: auto)."""
    if not gait_joints(ctx.config.env_id):
        return measured
    from vid2reward.tools.pose_estimation import expert_pose_measurement

    pose, why = expert_pose_measurement(clip, sheet=ctx.record.expert_dir / "pose_sheet.png",
                                        subject=subject or "auto",
                                        subject_time=ctx.config.subject_time,
                                        forward=ctx.config.expert_forward)
    ctx.note(f"expert pose: {why}")
    if pose is None:
        return measured
    crop = pose["details"]["subject_crop"]
    if crop is not None:  # a busy frame: the pixel features of the person's region, not the crowd's
        measured = measure_video(clip, forward=ctx.config.expert_forward, crop=CropBox(*crop))
        ctx.note("expert pixel features re-measured on the person's region "
                 + ",".join(f"{v:.2f}" for v in crop))
    # where the pose measures a quantity directly, the silhouette's estimate of it is dropped
    # (a walker's bobbing is a few pixels at this size; its steps are not)
    superseded = [pixel for pixel, posed in SUPERSEDED_BY_POSE.items() if posed in pose["features"]]
    if superseded:
        ctx.note(f"expert pixel {', '.join(superseded)} left out: the pose measures them")
    features = {k: v for k, v in measured["features"].items() if k not in superseded}
    carried = person_speed(pose, ctx.config.env_id)  # builds the body once for its leg length
    read = pose_readings(pose, carried, get_spec(ctx.config.env_id).body_length)
    if read:
        ctx.note("expert " + ", ".join(
            f"{k} from the person's {POSE_READINGS[k]}: {v:.3g} (its pixels read "
            f"{measured['features'].get(k, float('nan')):.3g})" for k, v in read.items()))
        features.update(read)
    units = {k: v for k, v in measured.get("units", {}).items() if k not in superseded}
    return {**measured, "features": {**features, **pose["features"]},
            "units": {**units, **pose["units"]}, "pose": pose["details"],
            **({"person_speed": carried} if carried is not None else {})}


def learner_pose(ctx: RunContext, policy: Any, seed: int, max_steps: int
                 ) -> tuple[dict[str, float], dict[str, str]]:
    """The learner's pose features and units, measured from simulator state, when the expert's
    pose was measured (empty dicts otherwise: nothing to compare them with)."""
    expert = ctx.record.expert_measured() or {}
    if not any(k.startswith("pose_") for k in expert.get("features", {})):
        return {}, {}
    from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS, learner_pose_features

    values = learner_pose_features(ctx.config.env_id, policy, seed=seed, max_steps=max_steps)
    return values, {k: POSE_FEATURE_DEFINITIONS[k].unit for k in values}


def load_expert(ctx: RunContext) -> ExpertView | None:
    """The expert as agents see it (None in the no-video ablation)."""
    return ctx.record.expert_view() if ctx.config.video_critic else None


def describe_expert(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The critic's words on how the expert moves (expert/description.txt)."""
    expert = load_expert(ctx)
    if expert is None:
        return {"expert_described": True}
    description = ctx.record.expert_description()
    if description is None:
        description = ctx.critic.describe_expert(expert)
        ctx.record.write_expert_description(description)
    ctx.note(description.splitlines()[0][:160] if description.strip() else "(no description)")
    return {"expert_described": True}
