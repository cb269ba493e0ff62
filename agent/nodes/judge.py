"""The critic's nodes: critique each clip, audit the last edits, keep the best candidate.

The audit closes the chain rule: each edit of the previous RewardFeedback predicted which way
some features would move; comparing the features of the candidate it was applied to (the base)
with those of this iteration's centre candidate (the edit applied) says whether they did.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, cast

import numpy as np
from pydantic import JsonValue

from vid2reward.agent.config import RunConfig
from vid2reward.agent.context import RunContext
from vid2reward.agent.engines.base import ExpertView
from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.messages import (
    EditAudit,
    RewardFeedback,
    VisualFeedback,
    audit_outcome,
    moved_closer,
)
from vid2reward.agent.nodes.expert import load_expert
from vid2reward.agent.run_log import Calibrated, CandidateEvaluated, IterationFinished, MessageEvent
from vid2reward.agent.run_record import candidate_id
from vid2reward.agent.state import CandidateRecord, HistoryPoint, RunState
from vid2reward.sim.envs import get_spec
from vid2reward.tools.calibration import Calibration, CalibrationPairs, fit_calibration
from vid2reward.tools.direction_probe import probe_pairs, readings_table
from vid2reward.tools.feature_definitions import feature_scale

AUDIT_TOLERANCE = 0.05
"""A feature moving less than this fraction of its scale (the delta's) counts as unchanged."""


def critique(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """VisualFeedback for every evaluated candidate; the iteration's best one is also recorded
    as the iteration's feedback."""
    iteration = state["iteration"]
    expert = load_expert(ctx)
    records = []
    for index, rec in enumerate(state["candidates"]):
        rec = CandidateRecord(**rec)
        if rec["status"] == "evaluated":
            view = ctx.record.candidate_view(rec["id"])
            if expert is not None:
                feedback = ctx.critic.critique(expert, view, feedback_id=f"fb-{iteration:03d}-{index:02d}",
                                               iteration=iteration)
                ctx.record.write_feedback(rec["id"], feedback)
                ctx.emit(MessageEvent(sender="critic", message=feedback))
                rec["similarity"] = feedback.similarity
                rec["feedback_id"] = feedback.id
            else:  # no video critic: rank by the program's own training return (Eureka-style)
                rec["similarity"] = None
            evaluation = ctx.record.evaluation(rec["id"]) or {}
            spread = similarity_spread(expert, evaluation.get("episode_features", []))
            ctx.record.write_evaluation(rec["id"], {**evaluation, "similarity": rec.get("similarity"),
                                                    "similarity_spread": spread})
            falls = evaluation.get("falls") or {}
            ctx.emit(CandidateEvaluated(iteration=iteration, candidate_id=rec["id"],
                                        similarity=rec.get("similarity"),
                                        clip=str(ctx.record.clip(rec["id"])), features=view.features,
                                        episodes=falls.get("episodes"), fell=falls.get("fell"),
                                        fall_seconds=falls.get("fall_seconds", []),
                                        similarity_spread=spread))
        records.append(rec)
    if expert is not None:
        calibrate(ctx, iteration, expert)
    best = _iteration_best(ctx, records)
    judged = ctx.record.feedback(best["id"]) if best is not None and best.get("feedback_id") else None
    if judged is not None:
        ctx.record.write_iteration_feedback(iteration, judged)
    ctx.note(", ".join(f"{r['id'][-7:]}: {r['similarity']:.3f}" for r in records
                       if r.get("similarity") is not None) or "no similarities")
    return {"candidates": records}


def similarity_spread(expert: ExpertView | None, episodes: list[dict[str, float]]) -> float | None:
    """The standard deviation of the feature critic's similarity over a candidate's evaluation
    episodes: how much the verdict on one policy moves from one seeded episode to the next (the
    engineer's steps must move it by more than this to be seen)."""
    if expert is None or len(episodes) < 2:
        return None
    critic = FeatureCritic()
    return round(float(np.std([critic.similarity(expert.features, ep) for ep in episodes])), 4)


def calibrate(ctx: RunContext, iteration: int, expert: ExpertView) -> Calibration:
    """Fit pixels -> physical units on every learner clip so far, read the expert through the
    fit, and record it (calibration.json of the iteration, a ``calibrated`` event)."""
    pairs = CalibrationPairs()
    clips = 0
    for cid in ctx.record.candidate_ids(iteration):
        evaluation = ctx.record.evaluation(cid) or {}
        if evaluation.get("calibration_pairs"):
            pairs.extend(CalibrationPairs(points=evaluation["calibration_pairs"]))
            clips += (evaluation.get("falls") or {}).get("episodes", 1)
    probe = direction_probe(ctx)
    if probe is not None:
        pairs.extend(CalibrationPairs(points=probe["points"]))
    fitted = fit_calibration(pairs, expert.features, expert.body_to_size, clips,
                             upright=get_spec(ctx.config.env_id).upright)
    calibration = with_person_speed(fitted, ctx.record.expert_measured() or {}, ctx.config.env_id)
    ctx.record.write_calibration(iteration, calibration.to_dict())
    ctx.emit(Calibrated(iteration=iteration, clips=clips,
                        probe_clips=len(probe["readings"]) if probe is not None else 0,
                        fits=[cast(dict[str, JsonValue], asdict(f)) for f in calibration.fits.values()]))
    read = ", ".join(f"{q} {v:.3g}" for q, v in calibration.expert_values().items())
    ctx.note(f"calibrated on {clips} clips: expert {read or 'not readable yet'}")
    return calibration


def with_person_speed(calibration: Calibration, measured: dict[str, Any], env_id: str) -> Calibration:
    """A person's speed is read by leg length (expert/features.json "person_speed"), not through
    the fit: the fit maps the learner's pixels to metres by its own body's size, and a person
    is shaped otherwise (the walkers clip read 0.54 m/s through it, 1.2 by leg length)."""
    person = measured.get("person_speed")
    fit = calibration.fits.get("forward_velocity")
    if person is None or fit is None:
        return calibration
    calibration.fits["forward_velocity"] = replace(
        fit, expert_value=round(float(person["m_per_s"]), 5), usable=True,
        note=f"the person's {person['leg_lengths_per_s']:.2f} leg lengths/s at {env_id}'s "
             f"{person['leg_m']:.2f} m legs (not through the fit)")
    return calibration


def direction_probe(ctx: RunContext) -> dict[str, Any] | None:
    """The probe clips' points for sideways motion and turning (3D bodies only), rendered
    and measured on the run's first calibration and kept in the run directory."""
    if get_spec(ctx.config.env_id).planar:
        return None
    probe = ctx.record.direction_probe()
    if probe is None:
        pairs, readings = probe_pairs(ctx.config.env_id, seed=ctx.config.seed)
        probe = {"points": pairs.to_dict(), "readings": readings_table(readings)}
        ctx.record.write_direction_probe(probe)
        ctx.note(f"direction probe: {len(readings)} clips of {ctx.config.env_id} carried "
                 "sideways and turning, for the calibration of depth and turning")
    return probe


def _score(ctx: RunContext, rec: CandidateRecord) -> float:
    return ctx.record.score(rec["id"], rec.get("similarity"))


def _iteration_best(ctx: RunContext, records: list[CandidateRecord]) -> CandidateRecord | None:
    scored = [r for r in records if r["status"] == "evaluated"]
    return max(scored, key=lambda r: _score(ctx, r)) if scored else None


def audit(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """EditAudit for every (edit, addressed feature) of the RewardFeedback that made this
    iteration's programs; recorded as the iteration's audits."""
    iteration = state["iteration"]
    centre = ctx.record.evaluation(candidate_id(iteration, 0))
    feedback = ctx.record.reward_feedback(iteration) if iteration >= 2 else None
    if centre is None or feedback is None or feedback.base_candidate_id is None:
        return {}
    base = ctx.record.evaluation(feedback.base_candidate_id)
    if base is None:
        return {}
    before, after = base["features"], centre["features"]
    answered = _answered_feedback(ctx, feedback)
    deltas = {d.feature: d for d in answered.deltas} if answered else {}
    expert = load_expert(ctx)
    audits = []
    for index, edit in enumerate(feedback.edits):
        for feature, expected in edit.expected.items():
            if feature not in before or feature not in after:
                continue
            delta = deltas.get(feature)
            target = delta.expert if delta is not None else (
                expert.features.get(feature) if expert is not None else None)
            # The tolerance is in the unit the critic measured the difference in (the delta's
            # scale), so "unchanged" means "too small for the critic to see".
            scale = delta.scale if delta is not None and delta.scale is not None else (
                feature_scale(feature, target))
            audits.append(EditAudit(
                iteration=iteration, reward_feedback_id=feedback.id, edit_index=index,
                component=edit.component, feature=feature, expected=expected,
                before=before[feature], after=after[feature], expert=target,
                outcome=audit_outcome(expected, before[feature], after[feature], AUDIT_TOLERANCE * scale),
                closer_to_expert=moved_closer(before[feature], after[feature], target)))
    ctx.record.write_audits(iteration, audits)
    for a in audits:
        ctx.emit(MessageEvent(sender="auditor", message=a))
    moved = sum(a.outcome == "moved_as_expected" for a in audits)
    closer = sum(a.closer_to_expert is True for a in audits)
    ctx.note(f"{moved}/{len(audits)} predictions held; {closer}/{len(audits)} moved closer to the expert")
    return {}


def _answered_feedback(ctx: RunContext, feedback: RewardFeedback) -> VisualFeedback | None:
    """The VisualFeedback the RewardFeedback answered (its deltas carry the scales)."""
    if feedback.base_candidate_id is None or feedback.feedback_id is None:
        return None
    judged = ctx.record.feedback(feedback.base_candidate_id)
    return judged if judged is not None and judged.id == feedback.feedback_id else None


def keep_best(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Update the run's best candidate and history; decide whether the run should stop."""
    iteration = state["iteration"]
    records = [CandidateRecord(**r) for r in state["candidates"]]
    it_best = _iteration_best(ctx, records)
    best = state.get("best")
    if it_best is not None and (best is None or _score(ctx, it_best) > _score(ctx, best)):
        best = it_best
    history = list(state.get("history", []))
    history.append(HistoryPoint(
        iteration=iteration, best_candidate_id=it_best["id"] if it_best else None,
        iteration_best_similarity=it_best.get("similarity") if it_best else None,
        run_best_similarity=best.get("similarity") if best else None))
    ctx.emit(IterationFinished(iteration=iteration, best_candidate_id=best["id"] if best else None,
                               iteration_best_similarity=history[-1]["iteration_best_similarity"],
                               run_best_similarity=history[-1]["run_best_similarity"]))
    ctx.record.write_curves(history)  # tensorboard --logdir runs/ shows them live
    update: dict[str, Any] = {"best": best, "history": history}
    reason = stop_reason(ctx.config, cast(RunState, {**state, **update}), ctx.usage)
    update["stop_reason"] = reason
    ctx.note(f"best {best['id'] if best else None}" + (f"; stopping: {reason}" if reason else ""))
    return update


def stop_reason(config: RunConfig, state: RunState, pending_usage: dict[str, float]) -> str | None:
    """Why the run should stop after this iteration, or None to go on."""
    history = state.get("history", [])
    usage = state.get("usage", {})  # type: ignore[call-overload]
    tokens = usage.get("tokens", 0) + pending_usage.get("tokens", 0)
    cost = usage.get("cost", 0.0) + pending_usage.get("cost", 0.0)
    if not any(r.get("status") == "evaluated" for r in state.get("candidates", [])) and not state.get("best"):
        return "no candidate could be trained"
    if state["iteration"] >= config.iterations:
        return f"all {config.iterations} iterations done"
    if config.wall_clock_limit is not None and state.get("elapsed", 0.0) >= config.wall_clock_limit:
        return f"wall-clock budget of {config.wall_clock_limit:.0f}s spent"
    if config.token_budget is not None and tokens >= config.token_budget:
        return f"token budget of {config.token_budget} spent"
    if config.money_budget is not None and cost >= config.money_budget:
        return f"money budget of ${config.money_budget:.2f} spent"
    bests = [h["run_best_similarity"] for h in history if h["run_best_similarity"] is not None]
    if len(bests) > config.patience and bests[-1] <= bests[-1 - config.patience] + 1e-9:
        return f"similarity has not improved for {config.patience} iterations"
    return None
