"""The engineer's nodes: draft the first programs, test them, repair failures, propose edits.

Each program the engineer writes becomes a candidate directory ``iter-NNN/cand-MM`` holding
``reward.py`` (and ``plan.json`` when the engine keeps one); the iteration's RewardFeedback
goes to ``iter-NNN/edits.json``.
"""

from __future__ import annotations

from typing import Any

from vid2reward.agent.context import RunContext, StopRequested
from vid2reward.agent.engines.base import CandidateView, EngineerAnswer, EngineerBrief
from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.agent.nodes.expert import load_expert
from vid2reward.agent.run_dir import candidate_id, read_json, write_json
from vid2reward.agent.run_log import MessageEvent
from vid2reward.agent.state import CandidateRecord, RunState
from vid2reward.sim import env_context
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_versions import sha256_of


def brief(state: RunState, ctx: RunContext, iteration: int) -> EngineerBrief:
    """What the engineer is told: env, task, expert, and every evaluated candidate so far."""
    return EngineerBrief(env_id=ctx.config.env_id, env_context=env_context(ctx.config.env_id),
                         task=ctx.config.task, candidates=ctx.config.candidates,
                         iteration=iteration, expert=load_expert(ctx),
                         history=evaluated_candidates(ctx, upto=iteration))


def evaluated_candidates(ctx: RunContext, upto: int) -> list[CandidateView]:
    """Every candidate of iterations 1..upto that has an evaluation.json (oldest first)."""
    views = []
    for it in range(1, upto + 1):
        it_dir = ctx.paths.iteration(it)
        for cand_dir in sorted(it_dir.glob("cand-*")) if it_dir.is_dir() else []:
            if (cand_dir / "evaluation.json").is_file():
                views.append(candidate_view(ctx, f"{it_dir.name}/{cand_dir.name}"))
    return views


def candidate_view(ctx: RunContext, cid: str) -> CandidateView:
    """Load what is known about one candidate from its directory."""
    d = ctx.paths.candidate(cid)
    evaluation = read_json(d / "evaluation.json") if (d / "evaluation.json").is_file() else {}
    return CandidateView(
        id=cid, iteration=int(cid[5:8]), directory=d,
        source=(d / "reward.py").read_text(encoding="utf-8"),
        metrics=read_json(d / "metrics.json") if (d / "metrics.json").is_file() else {},
        clip=d / "clip.mp4" if (d / "clip.mp4").is_file() else None,
        sheet=d / "sheet.png" if (d / "sheet.png").is_file() else None,
        features=evaluation.get("features", {}), similarity=evaluation.get("similarity"))


def write_candidates(ctx: RunContext, iteration: int, answer: EngineerAnswer,
                     feedback_id: str | None, base: CandidateRecord | None,
                     ) -> tuple[list[CandidateRecord], str]:
    """Write the answer's programs as candidate dirs and its RewardFeedback as edits.json."""
    records: list[CandidateRecord] = []
    for index, program in enumerate(answer.programs):
        cid = candidate_id(iteration, index)
        d = ctx.paths.candidate(cid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "reward.py").write_text(program.source, encoding="utf-8")
        if program.plan is not None:
            write_json(d / "plan.json", program.plan)
        records.append(CandidateRecord(id=cid, reward_sha256=sha256_of(program.source), status="pending"))
    centre = answer.programs[0].source
    feedback = RewardFeedback(id=f"rf-{iteration:03d}", iteration=iteration - 1,
                              feedback_id=feedback_id,
                              base_sha256=base.get("reward_sha256") if base else None,
                              base_candidate_id=base["id"] if base else None,
                              edits=answer.edits, source=centre, sha256=sha256_of(centre),
                              notes=answer.notes)
    path = ctx.paths.iteration(iteration) / "edits.json"
    write_json(path, feedback.model_dump())
    ctx.emit(MessageEvent(sender="engineer", message=feedback))
    return records, str(path)


def draft_reward(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The engineer drafts iteration 1's programs."""
    answer = ctx.engineer.draft(brief(state, ctx, 1))
    records, edits_path = write_candidates(ctx, 1, answer, None, None)
    ctx.note(f"{len(records)} programs with terms " + ", ".join(e.component for e in answer.edits))
    return {"iteration": 1, "candidates": records, "repairs": 0, "last_reward_feedback": edits_path}


def test_rewards(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Sandbox-test every pending program; a failure records its one-line reason."""
    records = []
    for rec in state["candidates"]:
        rec = CandidateRecord(**rec)
        if rec["status"] in ("pending", "rejected"):
            path = ctx.paths.candidate(rec["id"]) / "reward.py"
            report = run_reward_test(path, ctx.config.env_id)
            if not report.ok and ctx.stop.requested:
                # Ctrl-C reached the test's child process too: not the program's fault.
                raise StopRequested(f"{ctx.stop.reason} ({rec['id']} not tested)")
            write_json(path.with_name("test.json"), report.to_dict())
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
            path = ctx.paths.candidate(rec["id"]) / "reward.py"
            fixed = ctx.engineer.repair(b, path.read_text(encoding="utf-8"), rec.get("problem", ""))
            path.write_text(fixed, encoding="utf-8")
            rec["reward_sha256"] = sha256_of(fixed)
        records.append(rec)
    return {"candidates": records, "repairs": state.get("repairs", 0) + 1}


def engineer(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """The engineer answers the best candidate's feedback and the audit with the next
    iteration's programs."""
    iteration = state["iteration"]
    best = state.get("best")
    feedback = None
    if best and best.get("feedback_id"):
        fb_path = ctx.paths.candidate(best["id"]) / "feedback.json"
        feedback = VisualFeedback.model_validate(read_json(fb_path))
    words = state.get("human_feedback")
    if words:  # human as critic: the person's words join (or, with no video, are) the feedback
        human = VisualFeedback(id=f"hf-{iteration:03d}", iteration=iteration,
                               candidate_id=best["id"] if best else "", problems=[f"(person) {words}"],
                               similarity=feedback.similarity if feedback else 0.0)
        ctx.emit(MessageEvent(sender="human", message=human))
        (ctx.paths.iteration(iteration) / "human_feedback.txt").write_text(words, encoding="utf-8")
        feedback = human if feedback is None else feedback.model_copy(
            update={"problems": [*human.problems, *feedback.problems]})
    audit_path = ctx.paths.iteration(iteration) / "audit.json"
    audits = [EditAudit.model_validate(a) for a in read_json(audit_path)] if audit_path.is_file() else []
    answer = ctx.engineer.propose(brief(state, ctx, iteration), feedback, audits)
    records, edits_path = write_candidates(ctx, iteration + 1, answer,
                                           feedback.id if feedback else None, best)
    ctx.note(f"{len(answer.edits)} edits: " + ", ".join(f"{e.op} {e.component}" for e in answer.edits))
    return {"iteration": iteration + 1, "candidates": records, "repairs": 0,
            "last_reward_feedback": edits_path, "human_feedback": None}
