"""Train every tested candidate and render and measure what it learned.

Both steps are cached by content: a candidate directory whose ``train_key.json`` matches the
training it would get (reward sha, env, seed, steps, PPO settings) is not trained again, and
one with an ``evaluation.json`` is not rendered again. So a resumed run (after kill -9) picks
up at the first unfinished candidate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vid2reward.agent.context import RunContext
from vid2reward.agent.nodes.expert import learner_pose
from vid2reward.agent.run_log import TrainingSummary
from vid2reward.agent.state import CandidateRecord, RunState
from vid2reward.agent.training_backend import TrainingJob
from vid2reward.sim.envs import steps_for_seconds
from vid2reward.sim.errors import UserError
from vid2reward.sim.falls import fall_seconds, first_fall_step
from vid2reward.sim.gait_clock import policy_gait_clock
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.render import write_clip_and_sheet, write_mp4
from vid2reward.sim.rollout import Episode, load_policy, run_episodes
from vid2reward.sim.seeds import clip_seeds
from vid2reward.sim.train import TrainConfig
from vid2reward.tools.calibration import CalibrationPairs, episode_pairs
from vid2reward.tools.expert_video import measure_video
from vid2reward.tools.feature_definitions import SURVIVAL


def train_config(ctx: RunContext, parent: str | None = None, cid: str | None = None) -> TrainConfig:
    """The PPO settings every candidate of the run is trained with; with ``warm_start`` and a
    ``parent`` candidate (the run's best so far), its policy is the starting point, unless
    candidate ``cid``'s program sees another gait clock (another observation) than the
    parent's."""
    cfg = ctx.config
    overrides: dict[str, Any] = {} if cfg.n_envs is None else {"n_envs": cfg.n_envs}
    if cfg.warm_start and parent is not None and ctx.record.has_policy(parent) \
            and (cid is None or policy_gait_clock(ctx.record.candidate_dir(cid))
                 == policy_gait_clock(ctx.record.candidate_dir(parent))):
        overrides["init_from"] = str(ctx.record.candidate_dir(parent))
    return TrainConfig.for_env(cfg.env_id, total_steps=cfg.steps, seed=cfg.seed,
                               n_workers=cfg.n_workers, **overrides)


def train_key(ctx: RunContext, reward_sha: str, parent: str | None = None,
              cid: str | None = None) -> dict[str, Any]:
    """What a finished training result depends on (in its JSON form, as stored)."""
    config = train_config(ctx, parent, cid)
    return json.loads(json.dumps({"reward_sha256": reward_sha, **config.cache_key()}))


def train_candidates(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Train each tested candidate (or reuse an identical finished training) on the run's
    training backend: this machine, or Ray tasks (agent/training_backend.py)."""
    iteration = state["iteration"]
    records = [CandidateRecord(**rec) for rec in state["candidates"]]
    counts = {"trained": 0, "cached": 0, "failed": 0}
    # Budget where it pays: every candidate continues the run's best policy so far (its
    # reward's final training, from scratch, verifies that the reward alone teaches it).
    parent = (state.get("best") or {}).get("id")

    def summarise(rec: CandidateRecord, metrics: dict[str, Any], was_cached: bool) -> None:
        ok = metrics["status"] != "failed"
        rec["status"] = "trained" if ok else "failed"
        if not ok:
            rec["problem"] = metrics.get("failure") or "training failed"
        counts["failed" if not ok else "cached" if was_cached else "trained"] += 1
        ctx.emit(TrainingSummary(
            iteration=iteration, candidate_id=rec["id"], reward_sha256=rec["reward_sha256"],
            status=metrics["status"], steps=metrics["steps"], wall_seconds=metrics["wall_seconds"],
            steps_per_second=metrics.get("steps_per_second"),
            env_return_mean=metrics.get("env_return_mean"),
            episode_length_mean=metrics.get("episode_length_mean"),
            components=metrics.get("components", {}), cached=was_cached,
            failure=metrics.get("failure")))

    jobs: list[TrainingJob] = []
    twins: dict[str, TrainingJob] = {}  # an identical program trains once, for both
    for rec in records:
        if rec["status"] != "tested":
            continue
        key = train_key(ctx, rec["reward_sha256"], parent, rec["id"])
        if not ctx.record.is_trained(rec["id"], key):
            ctx.record.reuse_training(rec["id"], key)
        if ctx.record.is_trained(rec["id"], key):
            summarise(rec, ctx.record.metrics(rec["id"]), was_cached=True)
            continue
        job = next((j for j in jobs if j.key == key), None)
        if job is None:
            jobs.append(TrainingJob(rec["id"], train_config(ctx, parent, rec["id"]), key))
        else:
            twins[rec["id"]] = job
    by_id = {rec["id"]: rec for rec in records}
    fresh = dict(zip([j.candidate_id for j in jobs], ctx.training.train(
        jobs, ctx.record, ctx.stop, progress=ctx.progress,
        landed=lambda job, metrics: summarise(by_id[job.candidate_id], metrics, was_cached=False)),
        strict=True))
    for cid, job in twins.items():
        copied = ctx.record.reuse_training(cid, job.key)
        summarise(by_id[cid], ctx.record.metrics(cid) if copied else fresh[job.candidate_id],
                  was_cached=True)
    ctx.note(f"trained {counts['trained']}, from cache {counts['cached']}, failed {counts['failed']}")
    return {"candidates": records}


def evaluate_candidates(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Render each trained candidate's evaluation episodes and measure them: pixel features for
    the critic (the median over episodes, plus how much of each clip it survived), calibration
    points (its pixels against its own simulator state), and simulator-state behaviour metrics
    kept aside for benchmarks (never shown to agents)."""
    cfg = ctx.config
    records = []
    render_s = features_s = 0.0
    for rec in state["candidates"]:
        rec = CandidateRecord(**rec)
        cid = rec["id"]
        if rec["status"] == "trained" and not ctx.record.is_evaluated(cid):
            ctx.stop.check()  # a safe point: finished evaluations are cached on disk
            seconds = evaluate_candidate(ctx, cid)
            render_s += seconds[0]
            features_s += seconds[1]
        if rec["status"] == "trained":
            rec["status"] = "evaluated"
        records.append(rec)
    ctx.note(f"{sum(r['status'] == 'evaluated' for r in records)} candidates rendered and "
             f"measured over {cfg.eval_episodes} episodes each "
             f"(rendering {render_s:.1f}s, pixel features {features_s:.1f}s)")
    return {"candidates": records}


def evaluate_candidate(ctx: RunContext, cid: str) -> tuple[float, float]:
    """Write one candidate's clips, state metrics and evaluation.json; (render, measure) seconds."""
    cfg = ctx.config
    clip_steps = steps_for_seconds(cfg.env_id, cfg.clip_seconds)
    started = time.monotonic()
    policy = load_policy(ctx.record.candidate_dir(cid), cfg.env_id)
    episodes = run_episodes(cfg.env_id, policy, episodes=max(1, cfg.eval_episodes),
                            seed=clip_seeds(cfg.seed, 1)[0], max_steps=clip_steps,
                            render_size=cfg.render_size)
    clips = []
    for index, ep in enumerate(episodes):
        if index == 0:
            clip, _ = write_clip_and_sheet(ep.frames, ep.fps, ctx.record.clip(cid), ctx.record.sheet(cid))
        else:
            clip = write_mp4(ep.frames, ctx.record.episode_clip(cid, index), ep.fps)
        clips.append(clip)
    ctx.record.write_state_metrics(cid, behaviour_metrics(episodes).to_dict())
    ctx.record.write_rollouts(cid, clip_seeds(cfg.seed, len(episodes)),
                              [ep.actions for ep in episodes])
    rendered = time.monotonic()
    per_episode, pairs = [], CalibrationPairs()
    units: dict[str, str] = {}
    for ep, clip in zip(episodes, clips, strict=True):
        features, measured = measure_episode(clip, survival_steps(ep), clip_steps)
        per_episode.append(features)
        if measured is None:
            continue
        units.update(measured["units"])
        pairs.extend(episode_pairs(measured, ep.samples, ep.dt))
    fell = [t for t in map(fall_seconds, episodes) if t is not None]
    # a person's pose in the expert clip is compared with the body's own joints (sim state)
    pose, pose_units = learner_pose(ctx, policy, clip_seeds(cfg.seed, 1)[0], clip_steps)
    ctx.record.write_evaluation(cid, {
        "features": {**median_features(per_episode), **pose},
        "units": {**units, SURVIVAL.name: SURVIVAL.unit, **pose_units},
        "episode_features": per_episode,
        "falls": {"episodes": len(episodes), "fell": len(fell),
                  "fall_seconds": [round(t, 2) for t in fell], "clip_seconds": cfg.clip_seconds},
        "calibration_pairs": pairs.to_dict(),
    })
    return rendered - started, time.monotonic() - rendered


def survival_steps(episode: Episode) -> int:
    """The steps an evaluation episode's body kept going: to its first fall (sim/falls.py),
    which need not end the episode (an Ant on its back carries on), else all of them."""
    return first_fall_step(episode) or episode.length


def measure_episode(clip: Path, stood: int, clip_steps: int) -> tuple[dict[str, float], dict[str, Any] | None]:
    """An evaluation episode's features (its pixel features, and survival: the ``stood`` steps
    before its first fall, or its length, of ``clip_steps``) and the measurement (None when
    the clip is too short to measure: a body that fell at once shows only that)."""
    survival = {SURVIVAL.name: min(1.0, stood / clip_steps)}
    try:
        measured = measure_video(clip, series=True)
    except (UserError, ValueError):
        return survival, None
    return {**measured["features"], **survival}, measured


def median_features(per_episode: list[dict[str, float]]) -> dict[str, float]:
    """The median of each feature over the episodes that measured it: one bad clip (a lost
    track, a fall mid-stride) does not move the verdict."""
    names = sorted({k for f in per_episode for k in f})
    return {k: round(float(np.median([f[k] for f in per_episode if k in f])), 6) for k in names}
