"""Fold a run directory into a :class:`~vid2reward.agent.trace.model.RunTrace`.

:func:`load_trace` reads events through :func:`~vid2reward.agent.run_log.read_events` (never
parsing the log itself) plus what the :class:`~vid2reward.agent.run_record.RunRecord` holds
(run.json, the expert, each candidate's program, test report, sheet and clip). This is the one
fold over the event stream that readers share (the terminal view, the HTML export, ``--json``,
usage per iteration); the live dashboard listens to the same events as they are written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.agent.run_log import (
    EVENTS_FILE,
    read_event_log,
)
from vid2reward.agent.run_record import RunRecord
from vid2reward.agent.trace.model import (
    CandidateTrace,
    ExpertTrace,
    FinalResult,
    IterationTrace,
    NodeRun,
    RewardDiff,
    RunTrace,
    SimilarityPoint,
    UsageTotal,
)
from vid2reward.sim.errors import UserError
from vid2reward.tools.reward_versions import sha256_of

T = TypeVar("T")
_CANDIDATE_ID = re.compile(r"^iter-(\d+)/cand-(\d+)$")


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
            c.episodes, c.fell, c.fall_seconds = e.episodes, e.fell, list(e.fall_seconds)
            c.similarity_spread = e.similarity_spread
        elif kind == "calibrated":
            it(e.iteration).calibration = [dict(f) for f in e.fits]
            it(e.iteration).calibration_probe_clips = e.probe_clips
        elif kind == "reward_checked":
            c = cand(e.candidate_id, e.iteration)
            c.agreement, c.agreement_verdict = e.agreement, e.verdict
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
    for i in iterations.values():
        i.iteration_best_candidate_id = _iteration_best(i)
    trace.iterations = [iterations[n] for n in sorted(iterations)]
    trace.similarity_history = [history[n] for n in sorted(history)]
    trace.usage = sorted(usage.values(), key=lambda u: (u.role, u.model))
    trace.expert = _expert(record)
    trace.final = _final(record)
    return trace


def _iteration_best(i: IterationTrace) -> str | None:
    """The iteration's own best candidate: the run's best when it is one of this iteration's,
    else the candidate whose similarity is the iteration's best."""
    if not i.finished:
        return None
    ids = {c.id for c in i.candidates}
    if i.best_candidate_id in ids:
        return i.best_candidate_id
    if i.iteration_best_similarity is None:
        return None
    return next((c.id for c in i.candidates if c.similarity is not None
                 and abs(c.similarity - i.iteration_best_similarity) < 1e-9), None)


def _final(record: RunRecord) -> FinalResult | None:
    """best/ as the run left it (None before it was written)."""
    summary = _tolerant(record.best_summary)
    if not isinstance(summary, dict):
        return None
    best = record.best_dir
    final = summary.get("final_training")
    return FinalResult(best_candidate_id=summary.get("best_candidate_id"),
                       best_similarity=summary.get("best_similarity"),
                       stop_reason=summary.get("stop_reason"),
                       clip=str((best / "clip.mp4").relative_to(record.root)) if (best / "clip.mp4").is_file() else None,
                       sheet=str((best / "sheet.png").relative_to(record.root)) if (best / "sheet.png").is_file() else None,
                       final_training=final if isinstance(final, dict) else None)


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
