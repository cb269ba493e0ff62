"""The trace of a run as one typed value: events.jsonl folded with the files it names.

:func:`~vid2reward.agent.trace.load.load_trace` fills these models from a run directory. Every
reader of a trace — the terminal view, the HTML export and ``trace --json`` — goes through
these models; nothing here imports the graph or the runner.

How the chain rule maps onto iterations: iteration N's critic judges N's clips (VisualFeedback),
the engineer answers the best one with RewardFeedback ``iteration == N`` (the programs of N+1),
and iteration N+1's audit checks that answer's predictions (EditAudit). So an iteration's
:class:`IterationTrace` holds its feedback, the edits answering it and the audits of those edits,
which is exactly one left-to-right row set: delta -> edit -> outcome. Iteration 0 is the set-up
(expert, first draft).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.agent.run_log import (
    LLMUsage,
    MessageEvent,
    RunFinished,
    ToolCall,
)

TRACE_VERSION = 1


class NodeRun(BaseModel):
    """One execution of a graph node, with what happened inside it."""

    name: str
    iteration: int = Field(description="the iteration the node started in (0 = set-up)")
    started: float = Field(description="seconds since the epoch")
    seconds: float | None = Field(default=None, description="None while running or if cut off")
    cut_off: bool = Field(default=False, description="its session ended before it finished")
    summary: str = ""
    messages: list[MessageEvent] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    llm_calls: list[LLMUsage] = Field(default_factory=list)


class CandidateTrace(BaseModel):
    """One candidate reward program: its training, its clip and the critic's score.

    Paths are relative to the run directory, so a trace stays valid when the folder moves."""

    id: str
    iteration: int
    reward_sha256: str | None = None
    status: str = Field(default="written", description="training status, 'rejected' or 'written'")
    steps: int | None = None
    wall_seconds: float | None = None
    steps_per_second: float | None = None
    env_return_mean: float | None = None
    episode_length_mean: float | None = None
    cached: bool = False
    failure: str | None = None
    similarity: float | None = None
    similarity_spread: float | None = Field(default=None, description="its std over the episodes")
    episodes: int | None = Field(default=None, description="evaluation episodes rendered")
    fell: int | None = None
    fall_seconds: list[float] = Field(default_factory=list)
    agreement: float | None = Field(default=None, description="rank correlation of the program's "
                                    "return with the critic on known rollouts, before training")
    agreement_verdict: str | None = None
    features: dict[str, float] = Field(default_factory=dict)
    feedback_id: str | None = None
    reward: str | None = None
    clip: str | None = None
    sheet: str | None = None


class RewardDiff(BaseModel):
    """The reward-code change one RewardFeedback made: base program -> new centre program."""

    reward_feedback_id: str
    base_label: str = Field(description="where the base came from: a candidate id, or why none")
    base_sha256: str | None = None
    new_label: str
    new_sha256: str
    diff: str = Field(description="unified diff text ('' when the base program was not found)")


class IterationTrace(BaseModel):
    """One iteration: its nodes, candidates, the critic's feedback, the engineer's answer and
    the audits of that answer (measured one iteration later)."""

    number: int
    nodes: list[NodeRun] = Field(default_factory=list)
    candidates: list[CandidateTrace] = Field(default_factory=list)
    feedback: list[VisualFeedback] = Field(default_factory=list)
    reward_feedback: RewardFeedback | None = None
    base_candidate_id: str | None = Field(default=None, description="the candidate edited")
    reward_diff: RewardDiff | None = None
    audits: list[EditAudit] = Field(default_factory=list)
    finished: bool = False
    best_candidate_id: str | None = Field(default=None, description="the run's best candidate "
                                          "after this iteration (it may be an earlier one's)")
    iteration_best_candidate_id: str | None = Field(default=None,
                                                    description="this iteration's own best candidate")
    iteration_best_similarity: float | None = None
    run_best_similarity: float | None = None
    calibration: list[dict[str, Any]] = Field(
        default_factory=list, description="the pixel -> physical fits made after this iteration")
    calibration_probe_clips: int = Field(default=0, description="probe clips in those fits")

    def answered_feedback(self) -> VisualFeedback | None:
        """The VisualFeedback the engineer answered (else the iteration's best-scored one),
        with a person's feedback of the iteration (``hf-NNN``) merged in as the engineer got
        it: their deltas first, replacing the critic's for the same features."""
        human = next((fb for fb in self.feedback if fb.id.startswith("hf-")), None)
        critic = [fb for fb in self.feedback if fb is not human]
        wanted = self.reward_feedback.feedback_id if self.reward_feedback else None
        answered = next((fb for fb in critic if fb.id == wanted), None) or max(
            critic, key=lambda fb: fb.similarity, default=None)
        if human is None or answered is None:
            return answered or human
        named = {d.feature for d in human.deltas}
        return answered.model_copy(update={
            "problems": [*human.problems, *answered.problems],
            "deltas": [*human.deltas, *(d for d in answered.deltas if d.feature not in named)]})


class SimilarityPoint(BaseModel):
    """The similarity after one finished iteration."""

    iteration: int
    iteration_best: float | None
    run_best: float | None


class UsageTotal(BaseModel):
    """LLM calls, tokens and cost of one (role, model)."""

    role: str
    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ExpertTrace(BaseModel):
    """The expert as the run measured it."""

    features: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    clip: str | None = None
    sheet: str | None = None


class FinalResult(BaseModel):
    """How the run ended up: best/ (the winning candidate, its clip) and, with --final-steps,
    the final policy's evaluation (best/summary.json ``final_training``)."""

    best_candidate_id: str | None = None
    best_similarity: float | None = None
    stop_reason: str | None = None
    clip: str | None = Field(default=None, description="best/clip.mp4 (relative to the run)")
    sheet: str | None = None
    final_training: dict[str, Any] | None = Field(
        default=None, description="steps, wall_seconds and evaluation (return, length, falls)")


class RunTrace(BaseModel):
    """Everything the viewer shows about one run directory."""

    version: int = TRACE_VERSION
    run_dir: str
    run_id: str
    env_id: str = ""
    engine: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    status: str = Field(description="'running', or how the last session ended")
    finish: RunFinished | None = None
    sessions: int = Field(default=0, description="run_started events (1 + resumes)")
    started: float | None = None
    last_event: float | None = None
    event_count: int = 0
    skipped_lines: list[int] = Field(default_factory=list,
                                     description="events.jsonl lines that are not an event (skipped)")
    expert: ExpertTrace | None = None
    iterations: list[IterationTrace] = Field(default_factory=list)
    similarity_history: list[SimilarityPoint] = Field(default_factory=list)
    usage: list[UsageTotal] = Field(default_factory=list)
    final: FinalResult | None = Field(default=None, description="None until best/ is written")

    @property
    def search_iterations(self) -> list[IterationTrace]:
        """The iterations proper (iteration 0 is the set-up, not an iteration)."""
        return [it for it in self.iterations if it.number > 0]

    def iteration(self, number: int) -> IterationTrace | None:
        """The iteration with this number, if the run reached it."""
        return next((it for it in self.iterations if it.number == number), None)

    def audited(self, number: int) -> bool:
        """Whether the edits answering iteration ``number`` have been audited (the next
        iteration's audit node finished): a missing audit then means 'not measurable', not
        'pending'."""
        following = self.iteration(number + 1)
        return following is not None and any(
            n.name == "audit" and n.seconds is not None for n in following.nodes)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens of every LLM call."""
        return sum(u.input_tokens + u.output_tokens for u in self.usage)

    @property
    def total_cost(self) -> float:
        """US dollars of every LLM call."""
        return sum(u.cost_usd for u in self.usage)

    def usage_by_iteration(self) -> dict[int, UsageTotal]:
        """LLM calls, tokens and dollars per iteration (of the node each call happened in)."""
        totals: dict[int, UsageTotal] = {}
        for it in self.iterations:
            for call in (c for n in it.nodes for c in n.llm_calls):
                total = totals.setdefault(it.number, UsageTotal(role="all", model="all"))
                total.calls += 1
                total.input_tokens += call.input_tokens
                total.output_tokens += call.output_tokens
                total.cost_usd += call.cost_usd
        return totals

    @property
    def tool_call_count(self) -> int:
        """Tool calls made by agents across the run."""
        return sum(len(n.tool_calls) for it in self.iterations for n in it.nodes)

    @property
    def best_similarity(self) -> float | None:
        """The run's best similarity so far."""
        if self.finish is not None and self.finish.best_similarity is not None:
            return self.finish.best_similarity
        bests = [p.run_best for p in self.similarity_history if p.run_best is not None]
        return bests[-1] if bests else None
