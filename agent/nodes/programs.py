"""The engineer's nodes: draft the first programs, test them, repair failures, propose edits.

Each program the engineer writes becomes a candidate of the run record (its program, and its
plan when the engine keeps one); the iteration's RewardFeedback is recorded beside them.
"""

from __future__ import annotations

from typing import Any

from vid2reward.agent.context import RunContext, StopRequested
from vid2reward.agent.engines.base import EngineerAnswer, EngineerBrief
from vid2reward.agent.human_feedback import human_critique
from vid2reward.agent.messages import RewardFeedback
from vid2reward.agent.nodes.expert import load_expert
from vid2reward.agent.run_log import MessageEvent
from vid2reward.agent.run_record import candidate_id
from vid2reward.agent.state import CandidateRecord, RunState
from vid2reward.sim import env_context
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_versions import sha256_of


def brief(state: RunState, ctx: RunContext, iteration: int) -> EngineerBrief:
    """What the engineer is told: env, task, expert, and every evaluated candidate so far."""
    return EngineerBrief(env_id=ctx.config.env_id, env_context=env_context(ctx.config.env_id),
                         task=ctx.config.task, candidates=ctx.config.candidates,
                         iteration=iteration, expert=load_expert(ctx),
                         history=ctx.record.evaluated_candidates(upto=iteration))


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
    """Sandbox-test every pending program; a failure records its one-line reason."""
    records = []
    for rec in state["candidates"]:
        rec = CandidateRecord(**rec)
        if rec["status"] in ("pending", "rejected"):
            report = run_reward_test(ctx.record.program_path(rec["id"]), ctx.config.env_id)
            if not report.ok and ctx.stop.requested:
                # Ctrl-C reached the test's child process too: not the program's fault.
                raise StopRequested(f"{ctx.stop.reason} ({rec['id']} not tested)")
            ctx.record.write_test(rec["id"], report.to_dict())
            rec["status"] = "tested" if report.ok else "rejected"
            if report.ok:
                rec.pop("problem", None)
            else:
                rec["problem"] = report.error or "failed its test"
        records.append(rec)
    rejected = [r for r in records if r["status"] == "rejected"]
    ctx.note(f"{len(records) - len(rejected)} passed, {len(rejected)} rejected"
             + "".join(f"; {r['id']}: {r.get('problem', '')}" for r in rejected))
    return {"candidates": records}


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
        ctx.note(f"person: {parsed.summary()}")
    answer = ctx.engineer.propose(brief(state, ctx, iteration), feedback, ctx.record.audits(iteration))
    records = write_candidates(ctx, iteration + 1, answer, feedback.id if feedback else None, best)
    ctx.note(f"{len(answer.edits)} edits: " + ", ".join(f"{e.op} {e.component}" for e in answer.edits))
    return {"iteration": iteration + 1, "candidates": records, "repairs": 0, "human_feedback": None}
