"""The trace of a run as one typed value: events.jsonl folded with the files it names.

:func:`load_trace` reads a run directory through :func:`~vid2reward.agent.run_log.read_events`
(never parsing the log itself) plus what the :class:`~vid2reward.agent.run_record.RunRecord`
holds (run.json, the expert, each candidate's program, test report, sheet and clip) and
returns a :class:`RunTrace`. Every reader of a trace — the terminal view, the HTML export and
``trace --json`` — goes through these models; nothing here imports the graph or the runner.

How the chain rule maps onto iterations: iteration N's critic judges N's clips (VisualFeedback),
the engineer answers the best one with RewardFeedback ``iteration == N`` (the programs of N+1),
and iteration N+1's audit checks that answer's predictions (EditAudit). So an iteration's
:class:`IterationTrace` holds its feedback, the edits answering it and the audits of those edits,
which is exactly one left-to-right row set: delta -> edit -> outcome. Iteration 0 is the set-up
(expert, first draft).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.agent.run_log import (
    EVENTS_FILE,
    LLMUsage,
    MessageEvent,
    RunFinished,
    ToolCall,
    read_event_log,
)
from vid2reward.agent.run_record import RunRecord
from vid2reward.sim.errors import UserError
from vid2reward.tools.reward_versions import sha256_of

T = TypeVar("T")
TRACE_VERSION = 1
_CANDIDATE_ID = re.compile(r"^iter-(\d+)/cand-(\d+)$")


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
    best_candidate_id: str | None = None
    iteration_best_similarity: float | None = None
    run_best_similarity: float | None = None

    def answered_feedback(self) -> VisualFeedback | None:
        """The VisualFeedback the engineer answered (else the iteration's best-scored one)."""
        wanted = self.reward_feedback.feedback_id if self.reward_feedback else None
        for fb in self.feedback:
            if fb.id == wanted:
                return fb
        return max(self.feedback, key=lambda fb: fb.similarity, default=None)


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


def load_trace(run_dir: str | Path, *, allow_empty: bool = False) -> RunTrace:
    """Read a run directory into a RunTrace.

    Raises UserError (exit 2) when ``run_dir`` is not a run directory, or when its log holds no
    readable event (unless ``allow_empty``: a run that has only just started, whose run.json
    may exist before its first event)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError("not a directory", where=str(root), fix="pass a run directory made by `vid2reward run`")
    just_created = allow_empty and RunRecord(root).run_json.is_file()
    if not (root / EVENTS_FILE).is_file() and not just_created:
        raise UserError(f"not a vid2reward run directory (no {EVENTS_FILE})", where=str(root),
                        fix="pass a run directory made by `vid2reward run`")
    events, skipped = read_event_log(root)
    if not events and not allow_empty:
        unreadable = f" ({len(skipped)} unreadable lines)" if skipped else ""
        raise UserError(f"no readable event in {EVENTS_FILE}{unreadable}", where=str(root / EVENTS_FILE),
                        fix="the run wrote nothing yet: wait, or follow it with `vid2reward trace --follow`")
    trace = build_trace(root, events)
    trace.skipped_lines = skipped
    return trace


def build_trace(root: Path, events: list[Any]) -> RunTrace:
    """Fold events (in log order) and the files they name into a RunTrace."""
    record = RunRecord(root)
    run_json = _tolerant(record.read_info) or {}
    trace = RunTrace(run_dir=str(root.resolve()), run_id=run_json.get("run_id", root.name),
                     engine=run_json.get("engine", ""), config=run_json.get("config", {}),
                     env_id=run_json.get("config", {}).get("env_id", ""), status="running",
                     event_count=len(events))
    iterations: dict[int, IterationTrace] = {}
    candidates: dict[str, CandidateTrace] = {}
    open_nodes: list[NodeRun] = []
    current: NodeRun | None = None
    by_id: dict[str, NodeRun] = {}  # node_started id -> its NodeRun (events name it as parent)
    history: dict[int, SimilarityPoint] = {}
    usage: dict[tuple[str, str], UsageTotal] = {}

    def it(n: int) -> IterationTrace:
        return iterations.setdefault(n, IterationTrace(number=n))

    def cand(cid: str, iteration: int) -> CandidateTrace:
        return candidates.setdefault(cid, CandidateTrace(id=cid, iteration=_iteration_of(cid, iteration)))

    def node_for(ts: float, parent: str | None) -> NodeRun:
        """The node an event happened in: its parent (log version 2), else the node running
        when it was written; events outside any node get a node of their own."""
        nonlocal current
        if parent in by_id:
            return by_id[parent]
        if current is None:
            last = max(iterations, default=0)
            current = NodeRun(name="(between nodes)", iteration=last, started=ts)
            it(last).nodes.append(current)
        return current

    for e in events:
        trace.started = trace.started if trace.started is not None else e.ts
        trace.last_event = e.ts
        kind = e.kind
        if kind in ("run_started", "run_finished"):  # a session boundary: nothing still runs
            for n in open_nodes:
                n.cut_off = True
            open_nodes.clear()
            current = None
        if kind == "run_started":
            trace.sessions += 1
            trace.run_id, trace.env_id, trace.engine = e.run_id, e.env_id, e.engine
            trace.config = trace.config or e.config
            trace.status, trace.finish = "running", None
        elif kind == "run_finished":
            trace.status, trace.finish = e.status, e
        elif kind == "rolled_back":  # no longer finished: paused at the end of that iteration
            trace.status, trace.finish = f"rolled back to iteration {e.iteration}", None
        elif kind == "node_started":
            current = NodeRun(name=e.node, iteration=e.iteration, started=e.ts)
            by_id[e.id] = current
            open_nodes.append(current)
            it(e.iteration).nodes.append(current)
        elif kind == "node_finished":
            match = by_id.get(e.parent) if e.parent in by_id else None
            match = match if match in open_nodes else next(
                (n for n in reversed(open_nodes) if n.name == e.node), None)
            if match is None:  # its start was lost (torn log): keep what the finish says
                match = NodeRun(name=e.node, iteration=e.iteration, started=e.ts - e.seconds)
                it(e.iteration).nodes.append(match)
            else:
                open_nodes.remove(match)
            match.seconds, match.summary = e.seconds, e.summary
            current = open_nodes[-1] if open_nodes else None
        elif kind == "message":
            node_for(e.ts, e.parent).messages.append(e)
            _place_message(e.message, it, cand)
        elif kind == "tool_call":
            node_for(e.ts, e.parent).tool_calls.append(e)
        elif kind == "llm_usage":
            node_for(e.ts, e.parent).llm_calls.append(e)
            total = usage.setdefault((e.role, e.model), UsageTotal(role=e.role, model=e.model))
            total.calls += 1
            total.input_tokens += e.input_tokens
            total.output_tokens += e.output_tokens
            total.cost_usd += e.cost_usd
        elif kind == "training_summary":
            c = cand(e.candidate_id, e.iteration)
            c.reward_sha256, c.status, c.steps = e.reward_sha256, e.status, e.steps
            c.wall_seconds, c.steps_per_second = e.wall_seconds, e.steps_per_second
            c.env_return_mean, c.episode_length_mean = e.env_return_mean, e.episode_length_mean
            c.cached, c.failure = e.cached, e.failure
        elif kind == "candidate_evaluated":
            c = cand(e.candidate_id, e.iteration)
            c.similarity, c.features = e.similarity, dict(e.features)
        elif kind == "iteration_finished":
            i = it(e.iteration)
            i.finished, i.best_candidate_id = True, e.best_candidate_id
            i.iteration_best_similarity, i.run_best_similarity = e.iteration_best_similarity, e.run_best_similarity
            history[e.iteration] = SimilarityPoint(iteration=e.iteration, iteration_best=e.iteration_best_similarity,
                                                   run_best=e.run_best_similarity)
    for fb in (fb for i in iterations.values() for fb in i.feedback):
        cand(fb.candidate_id, fb.iteration).feedback_id = fb.id
    _add_candidate_files(record, candidates, cand)
    for _, c in sorted(candidates.items()):
        it(c.iteration).candidates.append(c)
    sources = _sources_by_sha(record, candidates.values(), iterations.values())
    for i in iterations.values():
        _attach_reward_diff(record, i, sources)
    trace.iterations = [iterations[n] for n in sorted(iterations)]
    trace.similarity_history = [history[n] for n in sorted(history)]
    trace.usage = sorted(usage.values(), key=lambda u: (u.role, u.model))
    trace.expert = _expert(record)
    return trace


def _place_message(message: Any, it: Any, cand: Any) -> None:
    """File a chain message under the iteration it belongs to (see the module docstring)."""
    if isinstance(message, VisualFeedback):
        it(message.iteration).feedback.append(message)
        c = cand(message.candidate_id, message.iteration)
        c.similarity = message.similarity if c.similarity is None else c.similarity
    elif isinstance(message, RewardFeedback):
        it(message.iteration).reward_feedback = message
    elif isinstance(message, EditAudit):
        # Measured in iteration N, it audits the edits that answered iteration N-1.
        it(max(0, message.iteration - 1)).audits.append(message)


def _iteration_of(candidate_id: str, fallback: int) -> int:
    match = _CANDIDATE_ID.match(candidate_id)
    return int(match.group(1)) if match else fallback


def _add_candidate_files(record: RunRecord, candidates: dict[str, CandidateTrace], cand: Any) -> None:
    """Candidates written but never trained (rejected, or training now) come from the record;
    every candidate gets the paths (relative to the run directory) of its files that exist."""
    for cid in record.candidate_ids():
        if _CANDIDATE_ID.match(cid):
            cand(cid, 0)
    for c in candidates.values():
        for path, attr in ((record.program_path(c.id), "reward"), (record.clip(c.id), "clip"),
                           (record.sheet(c.id), "sheet")):
            if path.is_file():
                setattr(c, attr, str(path.relative_to(record.root)))
        source = _tolerant(partial(record.program, c.id)) if c.reward else None
        if c.reward_sha256 is None and source is not None:
            c.reward_sha256 = sha256_of(source)
        test = _tolerant(partial(record.test, c.id))
        if c.status == "written" and isinstance(test, dict) and test.get("ok") is False:
            c.status, c.failure = "rejected", test.get("error") or "failed its test"


def _sources_by_sha(record: RunRecord, candidates: Any, iterations: Any) -> dict[str, tuple[str, str]]:
    """sha256 -> (label, source) for every program the run holds."""
    sources: dict[str, tuple[str, str]] = {}
    for i in iterations:
        if i.reward_feedback is not None:
            sources[i.reward_feedback.sha256] = (i.reward_feedback.id, i.reward_feedback.source)
    for c in candidates:  # candidate labels win: "iter-001/cand-00" says more than "rf-001"
        text = _tolerant(partial(record.program, c.id)) if c.reward else None
        if text is not None:
            sources[sha256_of(text)] = (c.id, text)
    return sources


def _attach_reward_diff(record: RunRecord, i: IterationTrace, sources: dict[str, tuple[str, str]]) -> None:
    """Diff the program the iteration's RewardFeedback edited against the one it wrote."""
    rf = i.reward_feedback
    if rf is None:
        return
    i.base_candidate_id = base_id = rf.base_candidate_id
    new_label = sources.get(rf.sha256, (f"{rf.id} program", ""))[0]
    if rf.base_sha256 is None and base_id is None:
        base_label, base = "(none: first draft)", ""
    elif rf.base_sha256 in sources:
        base_label, base = sources[rf.base_sha256]
    elif base_id and (text := _tolerant(partial(record.program, base_id))) is not None:
        base_label, base = base_id, text
    else:
        i.reward_diff = RewardDiff(reward_feedback_id=rf.id, base_label="(base program not found)",
                                   base_sha256=rf.base_sha256, new_label=new_label,
                                   new_sha256=rf.sha256, diff="")
        return
    lines = difflib.unified_diff(_lines(base), _lines(rf.source),
                                 fromfile=f"{base_label} ({(rf.base_sha256 or '-')[:12]})",
                                 tofile=f"{new_label} ({rf.sha256[:12]})")
    i.reward_diff = RewardDiff(reward_feedback_id=rf.id, base_label=base_label,
                               base_sha256=rf.base_sha256, new_label=new_label,
                               new_sha256=rf.sha256, diff="".join(lines))


def _expert(record: RunRecord) -> ExpertTrace | None:
    if not record.expert_dir.is_dir():
        return None
    measured = _tolerant(record.expert_measured)
    features = measured.get("features", {}) if isinstance(measured, dict) else {}
    clip, sheet = record.expert_clip, record.expert_sheet
    description: str | None = _tolerant(record.expert_description)
    return ExpertTrace(features={k: float(v) for k, v in features.items() if isinstance(v, int | float)},
                       description=description or "",
                       clip=str(clip.relative_to(record.root)) if clip.is_file() else None,
                       sheet=str(sheet.relative_to(record.root)) if sheet.is_file() else None)


def _lines(text: str) -> list[str]:
    """Lines with their ends, the last one too, so difflib output stays one line per line."""
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def _tolerant(read: Callable[[], T]) -> T | None:
    """``read()``, or None when the file is missing or unreadable: a trace shows what it can of a
    run in progress or a damaged one."""
    try:
        return read()
    except (OSError, ValueError, KeyError, TypeError):  # UnicodeDecodeError, JSON and schema errors
        return None
