"""The engineer's nodes: draft the first programs, test them, repair failures, propose edits.

Each program the engineer writes becomes a candidate of the run record (its program, and its
plan when the engine keeps one); the iteration's RewardFeedback is recorded beside them.
"""

from __future__ import annotations

from typing import Any

from vid2reward.agent.context import RunContext, StopRequested
from vid2reward.agent.engines.base import EngineerAnswer, EngineerBrief
from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.human_feedback import human_critique
from vid2reward.agent.messages import RewardFeedback
from vid2reward.agent.nodes.expert import load_expert
from vid2reward.agent.run_log import MessageEvent, RewardChecked
from vid2reward.agent.run_record import candidate_id
from vid2reward.agent.state import CandidateRecord, RunState
from vid2reward.sim import env_context
from vid2reward.tools.calibration import Calibration
from vid2reward.tools.reward_agreement import (
    AgreementReport,
    Rollout,
    check_agreement,
    random_rollouts,
)
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_versions import sha256_of


def brief(state: RunState, ctx: RunContext, iteration: int) -> EngineerBrief:
    """What the engineer is told: env, task, expert, and every evaluated candidate so far."""
    return EngineerBrief(env_id=ctx.config.env_id, env_context=env_context(ctx.config.env_id),
                         task=ctx.config.task, candidates=ctx.config.candidates,
                         iteration=iteration, expert=load_expert(ctx),
                         history=ctx.record.evaluated_candidates(upto=iteration),
                         calibrated=calibrated_expert(ctx, iteration))


def calibrated_expert(ctx: RunContext, iteration: int) -> dict[str, dict[str, Any]]:
    """The usable fits of the latest calibration up to ``iteration`` (see EngineerBrief)."""
    data = ctx.record.latest_calibration(iteration)
    if data is None:
        return {}
    return {f.quantity: {"value": f.expert_value, "unit": f.unit, "feature": f.feature,
                         "points": f.points, "r2": f.r2, "residual": f.residual}
            for f in Calibration.from_dict(data).fits.values()
            if f.usable and f.expert_value is not None}


def write_candidates(ctx: RunContext, iteration: int, answer: EngineerAnswer,
                     feedback_id: str | None, base: CandidateRecord | None) -> list[CandidateRecord]:
    """Write the answer's programs as candidates and its RewardFeedback as the iteration's
    edits (``base``: the candidate edited, which the next audit compares against)."""
    records: list[CandidateRecord] = []
    for index, program in enumerate(answer.programs):
        cid = candidate_id(iteration, index)
        ctx.record.write_program(cid, program.source, program.plan)
        records.append(CandidateRecord(id=cid, reward_sha256=sha256_of(program.source), status="pending"))
    centre = answer.programs[0].source
    feedback = RewardFeedback(id=f"rf-{iteration:03d}", iteration=iteration - 1,
                              feedback_id=feedback_id,
                              base_sha256=base.get("reward_sha256") if base else None,
                              base_candidate_id=base["id"] if base else None,
                              edits=answer.edits, source=centre, sha256=sha256_of(centre),
                              notes=answer.notes)
    ctx.record.write_reward_feedback(iteration, feedback)
    ctx.emit(MessageEvent(sender="engineer", message=feedback))
    return records


def draft_reward(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The engineer drafts iteration 1's programs."""
    answer = ctx.engineer.draft(brief(state, ctx, 1))
    records = write_candidates(ctx, 1, answer, None, None)
    ctx.note(f"{len(records)} programs with terms " + ", ".join(e.component for e in answer.edits))
    return {"iteration": 1, "candidates": records, "repairs": 0}


def test_rewards(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Sandbox-test every pending program; a failure records its one-line reason. A program
    that passes is then scored on the rollouts the run already has (:func:`known_rollouts`):
    with the LLM engine, one whose return ranks them against the critic goes back to the
    engineer with the numbers; the offline engine's agreement is logged."""
    records = []
    rollouts: list[Rollout] | None = None
    for rec in state["candidates"]:
        rec = CandidateRecord(**rec)
        if rec["status"] in ("pending", "rejected"):
            report = run_reward_test(ctx.record.program_path(rec["id"]), ctx.config.env_id)
            if not report.ok and ctx.stop.requested:
                # Ctrl-C reached the test's child process too: not the program's fault.
                raise StopRequested(f"{ctx.stop.reason} ({rec['id']} not tested)")
            result = report.to_dict()
            rec["status"] = "tested" if report.ok else "rejected"
            if report.ok:
                rec.pop("problem", None)
                rollouts = known_rollouts(ctx, state["iteration"]) if rollouts is None else rollouts
                agreement = _check_agreement(ctx, state["iteration"], rec["id"], rollouts)
                if agreement is not None:
                    result["agreement"] = agreement.to_dict()
                    if agreement.verdict == "disagrees" and ctx.config.engine == "llm":
                        rec["status"] = "rejected"
                        rec["problem"] = ("it rewards what the expert does not do: "
                                          + agreement.evidence())
            else:
                rec["problem"] = report.error or "failed its test"
            ctx.record.write_test(rec["id"], result)
        records.append(rec)
    rejected = [r for r in records if r["status"] == "rejected"]
    ctx.note(f"{len(records) - len(rejected)} passed, {len(rejected)} rejected"
             + "".join(f"; {r['id']}: {r.get('problem', '')}" for r in rejected))
    return {"candidates": records}


RANDOM_ROLLOUTS = 4
"""Random-action rollouts added to the known ones for the agreement check."""


def known_rollouts(ctx: RunContext, iteration: int) -> list[Rollout]:
    """Every evaluation episode of the candidates before ``iteration``, with the critic's
    similarity of its clip, and a few random-action rollouts (empty without a video critic or
    before any candidate was evaluated)."""
    expert = load_expert(ctx)
    if expert is None or iteration < 2:
        return []
    critic = FeatureCritic()
    out = []
    for cid in ctx.record.candidate_ids(iteration - 1):
        episodes = (ctx.record.evaluation(cid) or {}).get("episode_features", [])
        for k, (seed, actions) in enumerate(ctx.record.rollouts(cid)):
            if k < len(episodes):
                out.append(Rollout(seed=seed, actions=actions, label=f"{cid} episode {k + 1}",
                                   similarity=critic.similarity(expert.features, episodes[k])))
    if not out:
        return []
    steps = max(len(r.actions) for r in out)
    return out + random_rollouts(ctx.config.env_id, RANDOM_ROLLOUTS, seed=RANDOM_ROLLOUT_SEED,
                                 max_steps=steps)


RANDOM_ROLLOUT_SEED = 9000


def _check_agreement(ctx: RunContext, iteration: int, cid: str,
                     rollouts: list[Rollout]) -> AgreementReport | None:
    if not rollouts:
        return None
    report = check_agreement(ctx.record.program(cid), cid, ctx.config.env_id, rollouts)
    ctx.emit(RewardChecked(iteration=iteration, candidate_id=cid, agreement=report.agreement,
                           rollouts=report.rollouts, verdict=report.verdict,
                           detail=report.detail or (report.evidence() if report.agreement is not None else "")))
    return report


def repair_rewards(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Send each rejected program back to the engineer with its test report."""
    iteration = state["iteration"]
    b = brief(state, ctx, iteration - 1)
    records = []
    for rec in state["candidates"]:
        rec = CandidateRecord(**rec)
        if rec["status"] == "rejected":
            fixed = ctx.engineer.repair(b, ctx.record.program(rec["id"]), rec.get("problem", ""))
            ctx.record.replace_program(rec["id"], fixed)
            rec["reward_sha256"] = sha256_of(fixed)
        records.append(rec)
    return {"candidates": records, "repairs": state.get("repairs", 0) + 1}


def engineer(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The engineer answers the best candidate's feedback and the audit with the next
    iteration's programs."""
    iteration = state["iteration"]
    best = state.get("best")
    feedback = ctx.record.feedback(best["id"]) if best and best.get("feedback_id") else None
    words = state.get("human_feedback")
    if words:  # human as critic: the person's words, read as deltas, join (or are) the feedback
        evaluation = ctx.record.evaluation(best["id"]) if best else None
        human, feedback, parsed = human_critique(
            words, iteration=iteration, candidate_id=best["id"] if best else "", feedback=feedback,
            learner=(evaluation or {}).get("features", {}))
        ctx.emit(MessageEvent(sender="human", message=human))
        ctx.record.write_human_feedback(iteration, words)
        ctx.note(f"person: {parsed.summary(hint=False)}")
    answer = ctx.engineer.propose(brief(state, ctx, iteration), feedback, ctx.record.audits(iteration))
    records = write_candidates(ctx, iteration + 1, answer, feedback.id if feedback else None, best)
    ctx.note(f"{len(answer.edits)} edits: " + ", ".join(f"{e.op} {e.component}" for e in answer.edits))
    return {"iteration": iteration + 1, "candidates": records, "repairs": 0, "human_feedback": None}
