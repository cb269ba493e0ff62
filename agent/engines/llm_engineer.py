"""The LLM reward engineer: a bounded tool-calling loop, then one validated structured answer.

Each call (draft, propose, repair) is a fresh conversation: the system prompt (role, rules, the
env context), a task prompt (the feedback, the audit of the last edits, every candidate's
statistics, the program to edit), then at most ``engineer_rounds`` rounds in which the model
calls tools on a working draft (``tools/agent_tools.py``). A reply without tool calls, or the
round limit, ends the loop; the model is then asked for an :class:`EngineerReply` (edits and the
final program). The answer is checked: it must parse, the program must pass the static check,
and each edit must cite the critic's deltas it addresses with a predicted direction. Problems
get one repair round; what is still wrong after it is mended here (unknown addresses dropped,
missing directions taken from the deltas) or, if nothing parses, replaced by a fallback (the
working draft or the base program, without edits), and the run's notes say so.

The iteration's other candidates are WEIGHTS perturbations of the answer
(:mod:`vid2reward.agent.engines.weight_variants`). Without a video critic (``--critic none``)
the task prompt holds training statistics only: Eureka's reward reflection.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vid2reward.agent.engines.base import (
    CandidateView,
    EngineerAnswer,
    EngineerBrief,
    EventSink,
    ProgramDraft,
)
from vid2reward.agent.engines.llm_client import LLMSettings, RoleClient, Structured, echo
from vid2reward.agent.engines.reward_terms import fallback_program
from vid2reward.agent.engines.weight_variants import weight_variants
from vid2reward.agent.messages import EditAudit, RewardEdit, VisualFeedback
from vid2reward.agent.prompts import render
from vid2reward.agent.run_log import ToolCall
from vid2reward.tools.agent_tools import (
    CandidateFacts,
    EngineerWorkspace,
    engineer_tools,
    features_table,
)
from vid2reward.tools.program_text import extract_program
from vid2reward.tools.reward_check import find_violations
from vid2reward.tools.reward_versions import RewardStore, sha256_of

MAX_ARGUMENT_CHARS = 4000
"""Longest tool-call argument kept in the run log (programs are about a page)."""


class EngineerReply(BaseModel):
    """The engineer's final answer: its edits (∂ξ/∂R) and the program they produce."""

    model_config = ConfigDict(extra="ignore")
    edits: list[RewardEdit] = Field(default_factory=list, description="every change made")
    source: str = Field(default="", description="the complete final program; '' = the working draft")
    summary: str = ""


class RepairReply(BaseModel):
    """The engineer's answer to a failed test: the fixed program."""

    model_config = ConfigDict(extra="ignore")
    source: str = Field(default="", description="the complete fixed program; '' = the working draft")
    fix: str = ""


@dataclass
class Conversation:
    """One answer's exchange: the final structured result, the draft, and what it cost."""

    result: Structured
    messages: list[BaseMessage]
    rounds: int
    tool_calls: int


class LLMEngineer:
    """The engineer role played by a tool-calling LLM (see the module docstring).

    Args:
        client: the engineer's chat model.
        settings: loop bounds and probe limit.
    """

    def __init__(self, client: RoleClient, settings: LLMSettings) -> None:
        self.client = client
        self.settings = settings
        self.sink: EventSink | None = None
        self._versions = tempfile.TemporaryDirectory(prefix="vid2reward-drafts-")

    def bind_context(self, ctx: EventSink) -> None:
        """Report usage, tool calls and notes to the run (called by the runner)."""
        self.client.bind(ctx)
        self.sink = ctx

    # -- the three answers -------------------------------------------------------------------------

    def draft(self, brief: EngineerBrief) -> EngineerAnswer:
        """Iteration 1: a program written from the expert's description and features."""
        if brief.expert is not None:
            names = ", ".join(brief.expert.features)
            expert = (f"How the expert moves (the critic's description):\n{brief.expert.description}"
                      f"\n\nPixel features of the expert video (the critic measures the same on "
                      f"your learner's clips):\n{features_table(brief.expert.features, brief.expert.units)}")
            rule = f"For the first program, addresses are the expert's features each term aims at ({names})."
        else:
            expert = "There is no expert video in this run: write a reward for the task as described."
            rule = "For the first program, addresses name the behaviours each term aims at."
        task = render("engineer_draft", task=_task(brief), env_id=brief.env_id, expert=expert)
        return self._answer(brief, task, rule, feedback=None, base=None)

    def propose(self, brief: EngineerBrief, feedback: VisualFeedback | None,
                audits: list[EditAudit]) -> EngineerAnswer:
        """The next iteration's programs: edits answering ``feedback`` (or, without a video
        critic, the training statistics alone)."""
        base = _base_candidate(brief, feedback)
        if base is None:  # nothing was evaluated yet: start over
            return self.draft(brief)
        history = _history_table(brief.history)
        if feedback is None:
            task = render("engineer_reflect", iteration=brief.iteration, task=_task(brief),
                          history=history, base_id=base.id, base_source=base.source)
            rule = ("Without a video critic, addresses name the training statistics or behaviours "
                    "each edit is meant to change (e.g. episode_length, a component name).")
        else:
            task = render("engineer_propose", iteration=brief.iteration, task=_task(brief),
                          feedback=_feedback_text(feedback), audits=_audit_text(audits),
                          history=history, base_id=base.id, base_source=base.source)
            rule = ("Each edit's addresses must be features of the critic's deltas: "
                    + ", ".join(d.feature for d in feedback.deltas) + "." if feedback.deltas else
                    "The critic reported no deltas: addresses name the behaviours each edit keeps or refines.")
        return self._answer(brief, task, rule, feedback=feedback, base=base)

    def final_program(self, brief: EngineerBrief, winner: CandidateView,
                      feedback: VisualFeedback | None) -> ProgramDraft | None:
        """The winner as it is: the model saw the calibration while it wrote its programs."""
        return None

    def repair(self, brief: EngineerBrief, source: str, report: str) -> str:
        """A fixed version of ``source`` (``report`` says why its test failed)."""
        ws = self._workspace(brief, draft=source)
        rounds = max(1, min(4, self.settings.engineer_rounds))
        task = render("engineer_repair", source=source, report=report)
        conv = self._converse(brief, ws, task, render("engineer_repair_answer"), RepairReply, rounds)
        fixed = _program_of(conv.result) or ws.draft
        problems = [str(v) for v in find_violations(fixed)]
        if problems:
            conv.messages += [*echo(conv.result.raw, "; ".join(problems)), HumanMessage(
                content=render("engineer_answer_repair", problems=_bullets(problems)))]
            fixed = _program_of(self.client.structured(conv.messages, RepairReply)) or fixed
        if find_violations(fixed):
            self.client.note("repair still breaks the static rules; the test will say so again")
        return fixed

    # -- the loop ----------------------------------------------------------------------------------

    def _answer(self, brief: EngineerBrief, task: str, rule: str, *,
                feedback: VisualFeedback | None, base: CandidateView | None) -> EngineerAnswer:
        calls_before = len(self.client.calls)
        ws = self._workspace(brief, draft=base.source if base else "")
        conv = self._converse(brief, ws, task, render("engineer_answer", address_rule=rule),
                              EngineerReply, self.settings.engineer_rounds)
        reply, problems = _checked(conv.result, ws, feedback)
        if problems:
            conv.messages += [*echo(conv.result.raw, "; ".join(problems)), HumanMessage(
                content=render("engineer_answer_repair", problems=_bullets(problems)))]
            reply, problems = _checked(self.client.structured(conv.messages, EngineerReply), ws, feedback)
        notes: dict[str, Any] = {"engine": "llm", "rounds": conv.rounds, "tool_calls": conv.tool_calls,
                                 "tests": ws.tests}
        if reply is None:
            source = ws.draft if ws.draft.strip() and not find_violations(ws.draft) else (
                base.source if base else fallback_program("the engineer gave none"))
            reply = EngineerReply(edits=[], source=source, summary="fallback")
            notes["fallback"] = "no valid answer after a repair round: " + "; ".join(problems)
            self.client.note(notes["fallback"][:200])
        elif problems:
            notes["problems"] = problems
        source = reply.source if reply.source.strip() else ws.draft
        edits = _mended_edits(reply.edits, feedback)
        programs = [ProgramDraft(source=source, plan={"engine": "llm", "summary": reply.summary})]
        prefer = [e.component for e in edits]
        for variant, scaled in weight_variants(source, brief.candidates - 1, prefer):
            programs.append(ProgramDraft(source=variant, plan={"engine": "llm", "scaled": scaled,
                                                               "variant_of": sha256_of(source)[:16]}))
        if len(programs) < brief.candidates:
            notes["variants"] = f"only {len(programs)} programs: too few non-zero WEIGHTS to perturb"
        usage = self.client.calls[calls_before:]
        notes["usage"] = {"calls": len(usage), "input_tokens": sum(u.input_tokens for u in usage),
                          "output_tokens": sum(u.output_tokens for u in usage),
                          "cost_usd": round(sum(u.cost_usd for u in usage), 6)}
        return EngineerAnswer(edits=edits, programs=programs, notes=notes)

    def _workspace(self, brief: EngineerBrief, draft: str) -> EngineerWorkspace:
        return EngineerWorkspace(env_id=brief.env_id, store=RewardStore(Path(self._versions.name)),
                                 candidates={c.id: CandidateFacts(c.source, c.metrics, c.similarity,
                                                                  c.features, c.units)
                                             for c in brief.history},
                                 draft=draft, probe_steps=self.settings.probe_steps)

    def _converse(self, brief: EngineerBrief, ws: EngineerWorkspace, task: str, answer_prompt: str,
                  schema: type[BaseModel], max_rounds: int) -> Conversation:
        """Tool rounds (bounded), then the structured answer."""
        tools = {t.name: t for t in engineer_tools(ws)}
        system = render("engineer_system", env_context=brief.env_context, max_rounds=max_rounds,
                        candidates=brief.candidates)
        messages: list[BaseMessage] = [SystemMessage(content=system), HumanMessage(content=task)]
        rounds = calls = 0
        while True:
            if rounds == max_rounds:  # the budget is spent: no more tools, answer now
                messages.append(HumanMessage(content=render("engineer_budget", max_rounds=max_rounds)))
                break
            reply = self.client.invoke(messages, tools=list(tools.values()))
            messages.append(reply)
            requested = [*reply.tool_calls, *reply.invalid_tool_calls]
            if not requested:
                break
            rounds += 1
            for call in requested:
                calls += 1
                messages.append(self._run_tool(tools, call))
        messages.append(HumanMessage(content=answer_prompt))
        return Conversation(self.client.structured(messages, schema), messages, rounds, calls)

    def _run_tool(self, tools: dict[str, BaseTool], call: Any) -> ToolMessage:
        """Run one tool call; bad names and arguments become error text for the model."""
        name, call_id = call.get("name") or "", call.get("id") or ""
        started = time.monotonic()
        error, result = None, ""
        if call.get("type") == "invalid_tool_call":
            error = (f"the arguments of {name} are not valid JSON ({(call.get('error') or '')[:160]}); "
                     f"call it again with a JSON object")
        elif name not in tools:
            error = f"there is no tool '{name}'; the tools are {', '.join(tools)}"
        else:
            try:
                result = str(tools[name].invoke(call.get("args") or {}))
            except ValidationError as exc:
                error = f"invalid arguments for {name}: " + "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        text = f"error: {error}" if error else result
        if self.sink is not None:
            args = call.get("args")
            arguments = ({k: (v[:MAX_ARGUMENT_CHARS] if isinstance(v, str) else v) for k, v in args.items()}
                         if isinstance(args, dict) else {"raw": str(args)[:MAX_ARGUMENT_CHARS]})
            self.sink.emit(ToolCall(agent="engineer", tool=name, arguments=arguments,
                                    result=text[:2000], error=error,
                                    seconds=round(time.monotonic() - started, 3)))
        return ToolMessage(content=text, tool_call_id=call_id, name=name)


# -- checks ----------------------------------------------------------------------------------------

def _program_of(result: Structured) -> str:
    """The program of a repair answer: its ``source`` (fences and prose taken off), or a
    program the model wrote as plain text instead of JSON; "" when there is none."""
    if isinstance(result.value, RepairReply | EngineerReply) and result.value.source.strip():
        return extract_program(result.value.source)
    program = extract_program(result.raw.text or "")
    return program if "def compute_reward" in program and not find_violations(program) else ""


def _checked(result: Structured, ws: EngineerWorkspace,
             feedback: VisualFeedback | None) -> tuple[EngineerReply | None, list[str]]:
    """The reply (None if it did not parse) and what is wrong with it. A ```python fence (and
    prose) around the program is taken off; a program written as text instead of JSON is
    taken as the answer's source (its edits are then missing, and asked for when required)."""
    if not isinstance(result.value, EngineerReply):
        program = _program_of(result)
        if not program:
            return None, [result.error or "no answer"]
        result = Structured(EngineerReply(source=program, summary="(the program, given as text)"),
                            result.raw)
    assert isinstance(result.value, EngineerReply)
    reply = result.value
    if reply.source.strip():
        reply.source = extract_program(reply.source)
    source = reply.source if reply.source.strip() else ws.draft
    if not source.strip():
        return reply, ["there is no program: give the complete program in source"]
    problems = [f"the program is rejected: {v}" for v in find_violations(source)]
    if feedback is not None and feedback.deltas:  # no deltas (a perfect clip): nothing to cite
        known = {d.feature for d in feedback.deltas}
        if not reply.edits:
            problems.append("list every edit you made in edits")
        for i, edit in enumerate(reply.edits):
            unknown = [a for a in edit.addresses if a not in known]
            if not edit.addresses or unknown:
                problems.append(f"edit {i} ({edit.component}) must address deltas of the feedback "
                                f"({', '.join(sorted(known))}), not {unknown or 'nothing'}")
            missing = [a for a in edit.addresses if a not in edit.expected]
            if missing:
                problems.append(f"edit {i} ({edit.component}) predicts no direction for {missing}")
    return reply, problems


def _mended_edits(edits: list[RewardEdit], feedback: VisualFeedback | None) -> list[RewardEdit]:
    """Edits made consistent after the repair round: addresses that are not deltas are dropped
    and a missing prediction is the delta's own direction (with a video critic only)."""
    if feedback is None or not feedback.deltas:
        return edits
    direction = {d.feature: d.direction for d in feedback.deltas}
    mended = []
    for edit in edits:
        addresses = [a for a in edit.addresses if a in direction]
        expected = {a: edit.expected.get(a, direction[a]) for a in addresses}
        mended.append(edit.model_copy(update={"addresses": addresses, "expected": expected}))
    return mended


# -- what the prompts show -------------------------------------------------------------------------

def _task(brief: EngineerBrief) -> str:
    return "(none given)" if not brief.task.strip() else brief.task


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _base_candidate(brief: EngineerBrief, feedback: VisualFeedback | None) -> CandidateView | None:
    """The program to edit: the candidate the feedback judged, else the best so far."""
    if feedback is not None:
        judged = [c for c in brief.history if c.id == feedback.candidate_id]
        if judged:
            return judged[0]
    return max(brief.history, key=lambda c: c.score) if brief.history else None


def _history_table(history: list[CandidateView], limit: int = 12) -> str:
    rows = ["| candidate | similarity | return (own reward) | env return | episode length | "
            "largest components (share) |", "|---|---|---|---|---|---|"]
    for c in history[-limit:]:
        m = c.metrics
        comps = sorted((m.get("components") or {}).items(), key=lambda kv: -kv[1].get("share", 0.0))
        top = ", ".join(f"{k} {v.get('share', 0.0):.0%}" for k, v in comps[:3]) or "n/a"
        rows.append(f"| {c.id} | {_fmt(c.similarity)} | {_fmt(m.get('return_mean'))} | "
                    f"{_fmt(m.get('env_return_mean'))} | {_fmt(m.get('episode_length_mean'))} | {top} |")
    if len(history) > limit:
        rows.append(f"({len(history) - limit} older candidates not shown; training_stats has them)")
    return "\n".join(rows)


def _feedback_text(feedback: VisualFeedback) -> str:
    lines = [f"similarity {feedback.similarity:.3f}", *feedback.problems, "", "deltas:"]
    lines += [json.dumps(d.model_dump(exclude={"kind"})) for d in feedback.deltas]
    return "\n".join(lines)


def _audit_text(audits: list[EditAudit]) -> str:
    if not audits:
        return "(nothing to audit yet)"
    return "\n".join(f"- edit {a.edit_index} ({a.component}): {a.feature} expected to {a.expected}, "
                     f"{_fmt(a.before)} -> {_fmt(a.after)}: {a.outcome.replace('_', ' ')}" for a in audits)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


