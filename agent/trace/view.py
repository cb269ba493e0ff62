"""Rich renderables of a :class:`~vid2reward.agent.trace.model.RunTrace`.

The report reads top to bottom: a header (status, best similarity and what it means, a
sparkline of the run-best similarity per iteration, tokens and cost), the timeline (iterations
-> nodes -> messages and tool calls), the expert, then per iteration its candidate table, the
critic's verdict, the chain rule as one table (delta -> edit -> moved as predicted? closer to the
expert?) and the reward-code diff; token and cost totals, then the final result, close it.
The tables are in tables.py, their cells in cells.py. Nothing here reads files: everything
comes from the trace.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from vid2reward.agent.messages import EditAudit
from vid2reward.agent.trace.cells import OUTCOME, num, shorten
from vid2reward.agent.trace.model import IterationTrace, NodeRun, RunTrace
from vid2reward.agent.trace.tables import (
    calibration_table,
    candidate_table,
    chain_table,
    expert_table,
    usage_table,
)
from vid2reward.sim.falls import describe_falls
from vid2reward.tools.gait_comparison import cadence_text, comparison_lines

BARS = "▁▂▃▄▅▆▇█"
SIMILARITY_SCALE = ("similarity 0..1: exp(-RMS of the behaviour features' differences from the "
                    "expert, each in units of a clearly visible difference); 1 = identical, "
                    "0.61 = half a visible difference per feature, 0.37 = one, 0.14 = two "
                    "(an LLM critic judges on the same scale)")
"""What a similarity means, shown wherever one is (FeatureCritic.similarity defines it)."""


def similarity_meaning(value: float | None) -> str:
    """'≈0.82 of a visible difference per feature' for a similarity ('' for none)."""
    if value is None or not 0.0 < value <= 1.0:
        return ""
    if value >= 0.995:
        return "as the expert"
    return f"≈{-math.log(value):.2g} of a clearly visible difference per feature (RMS)"


def sparkline(values: list[float | None]) -> str:
    """One bar per value on the absolute 0..1 similarity scale (so runs compare at a glance);
    a missing value is a space."""
    bars = []
    for v in values:
        if v is None:
            bars.append(" ")
        else:
            bars.append(BARS[min(len(BARS) - 1, max(0, int(v * len(BARS))))])
    return "".join(bars)


def audit_counts(audits: list[EditAudit]) -> str:
    """'3/4 moved as predicted, 1 opposite; 2/4 closer to the expert, 2 farther'."""
    n = len(audits)
    held = sum(a.outcome == "moved_as_expected" for a in audits)
    others = ", ".join(f"{k} {label[2:]}" for o, (label, _) in OUTCOME.items()
                       if o != "moved_as_expected" and (k := sum(a.outcome == o for a in audits)))
    closer = sum(a.closer_to_expert is True for a in audits)
    farther = sum(a.closer_to_expert is False for a in audits)
    return (f"{held}/{n} moved as predicted" + (f", {others}" if others else "")
            + f"; {closer}/{n} closer to the expert" + (f", {farther} farther" if farther else ""))


def render_trace(trace: RunTrace, iteration: int | None = None) -> Group:
    """The whole report, or the header and one iteration when ``iteration`` is given."""
    iterations = trace.iterations if iteration is None else [
        it for it in trace.iterations if it.number == iteration]
    parts: list[RenderableType] = [header(trace), *skipped_warning(trace),
                                   Rule("timeline", align="left"), timeline(trace, iterations)]
    if iteration is None and trace.expert is not None:
        parts += [Rule("expert", align="left"), expert_table(trace)]
    for it in iterations:
        parts += iteration_section(trace, it)
    parts += [Rule("tokens and cost", align="left"), usage_table(trace)]
    if iteration is None:  # the report ends with what the run reached
        parts += [Rule("final result", align="left"), final_view(trace)]
    return Group(*parts)


def final_lines(trace: RunTrace) -> list[str]:
    """The run's result in sentences: the best candidate and its similarity (with what it
    means), where its clip is, and the final policy's evaluation."""
    final = trace.final
    if final is None:
        return ["no result yet: best/ is written when the run ends"]
    meaning = similarity_meaning(final.best_similarity)
    lines = [f"best candidate {final.best_candidate_id or '-'}: similarity "
             f"{num(final.best_similarity, '.3f')}" + (f" ({meaning})" if meaning else "")
             + (f"; the run stopped: {final.stop_reason}" if final.stop_reason else "")]
    if final.clip:
        lines.append(f"its clip: {final.clip}   the expert's: {trace.expert.clip if trace.expert else '-'}")
    ft = final.final_training
    ev = (ft or {}).get("evaluation")
    if isinstance(ev, dict):
        lines.append(
            f"final policy (the best reward, trained {ft.get('steps', 0):,} steps): env return "  # type: ignore[union-attr]
            f"{num(ev.get('env_return_mean'), '.1f')} ± {num(ev.get('env_return_std'), '.1f')}, "
            f"episode length {num(ev.get('length_mean'), '.0f')} of {ev.get('max_steps', '-')}, "
            + describe_falls(ev.get("fall_rate", 0.0), ev.get("episodes", "-"),
                             ev.get("fall_seconds") or [])
            + (f", {cadence}" if (cadence := cadence_text(ev.get("metrics") or {})) else ""))
        lines += comparison_lines(ev.get("person") or [])  # as the summary and `evaluate` say it
        lines += final_program_lines(ft)  # type: ignore[arg-type]
    else:
        lines.append("no final training (run with --final-steps N to train the best reward on "
                     "and evaluate it)")
    return lines


def final_program_lines(final_training: dict[str, Any]) -> list[str]:
    """What the final training trained (the engineer's update of the winner, if any) and one
    sentence on its check (an update whose policy fell, against the winner's own program)."""
    lines = [f"its program: {final_training['updated']}"] if final_training.get("updated") else []
    check = final_training.get("verification")
    if isinstance(check, dict):
        kept = "the update" if check["handed_out"] == "update" else "the winner as it was"
        update, winner = check["update"], check["winner"]
        lines.append(f"verified: the updated program's policy "
                     f"{describe_falls(update['fall_rate'], update.get('episodes', '-'), update.get('fall_seconds') or [])}, "
                     f"the winner's own program's "
                     f"{describe_falls(winner['fall_rate'], winner.get('episodes', '-'), winner.get('fall_seconds') or [])}"
                     f"; handed out: {kept}")
    return lines


def final_view(trace: RunTrace) -> RenderableType:
    """The final result as text lines."""
    return Group(*(Text(line) for line in final_lines(trace)))


def render_live(trace: RunTrace) -> Group:
    """The compact view while following a run: header, the latest iteration's timeline and
    candidates (the full report is printed when the run ends)."""
    latest = trace.iterations[-1:] if trace.iterations else []
    parts: list[RenderableType] = [header(trace), *skipped_warning(trace), timeline(trace, latest)]
    if latest and latest[0].candidates:
        parts.append(candidate_table(latest[0]))
    return Group(*parts)


def skipped_warning(trace: RunTrace) -> list[RenderableType]:
    """One line when events.jsonl had lines that are not events (torn by a crash, garbled):
    what is shown then lacks them, and the reader must know."""
    lines = trace.skipped_lines
    if not lines:
        return []
    shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
    return [Text(f"warning: skipped {len(lines)} unreadable line{'s' * (len(lines) != 1)} of "
                 f"events.jsonl (line {shown}); the view may miss what they held", style="yellow")]


def header(trace: RunTrace) -> Panel:
    """Run id, env, engine, status, best similarity with sparkline, tokens, cost, time."""
    cfg = trace.config
    models = ", ".join(f"{role} {cfg[role]}" for role in ("critic", "engineer") if cfg.get(role))
    status = trace.status + (f" ({trace.finish.reason})" if trace.finish else "")
    done = sum(it.finished for it in trace.iterations)
    planned = cfg.get("iterations")
    runs = [p.run_best for p in trace.similarity_history]
    best_id = trace.finish.best_candidate_id if trace.finish and trace.finish.best_candidate_id else next(
        (it.best_candidate_id for it in reversed(trace.iterations) if it.best_candidate_id), None)
    wall = (trace.last_event - trace.started) if trace.started and trace.last_event else 0.0
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("env", f"{trace.env_id}   engine {trace.engine or '-'}" + (f" ({models})" if models else ""))
    grid.add_row("status", Text(status, style="green" if trace.status == "finished" else "yellow"))
    grid.add_row("iterations", f"{done} finished" + (f" of {planned}" if planned else "")
                 + (f"   sessions {trace.sessions}" if trace.sessions > 1 else ""))
    meaning = similarity_meaning(trace.best_similarity)
    grid.add_row("best similarity", f"{num(trace.best_similarity, '.3f')}" + (f" ({best_id})" if best_id else "")
                 + (f": {meaning}" if meaning else ""))
    grid.add_row("scale", Text(SIMILARITY_SCALE, style="dim"))
    grid.add_row("similarity", Text(sparkline(runs) or "-", style="cyan") + Text(
        "  run best per iteration: " + " → ".join(num(v, ".3f") for v in runs) if runs else ""))
    grid.add_row("tokens", f"{trace.total_tokens}   cost ${trace.total_cost:.4f}   "
                           f"tool calls {trace.tool_call_count}")
    grid.add_row("time", f"{wall:.1f}s of events   started "
                         + (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(trace.started)) if trace.started else "-"))
    grid.add_row("run dir", trace.run_dir)
    return Panel(grid, title=f"vid2reward trace · {trace.run_id}", title_align="left")


def timeline(trace: RunTrace, iterations: list[IterationTrace]) -> Tree:
    """Iterations -> nodes (seconds, summary) -> messages, tool calls and LLM calls."""
    start = trace.started or 0.0
    root = Tree(Text(f"{trace.run_id}  ({trace.event_count} events)", style="bold"))
    for it in iterations:
        branch = root.add(Text(iteration_title(it), style="bold cyan"))
        for node in it.nodes:
            _node_branch(branch.add(_node_label(node, start, trace.status == "running")), node)
    return root


def _node_label(node: NodeRun, start: float, run_is_live: bool) -> Text:
    if node.seconds is not None:
        seconds = f"{node.seconds:.1f}s"
    else:  # no node_finished: still at work, or cut off by a crash, a failure or Ctrl-C
        seconds = "running" if run_is_live and not node.cut_off else "did not finish"
    label = Text(f"+{node.started - start:7.1f}s  ", style="dim")
    label.append(node.name, style="bold")
    label.append(f"  {seconds}  ", style="magenta")
    label.append(shorten(node.summary, 140))
    return label


def iteration_title(it: IterationTrace) -> str:
    """'iteration 3: its best iter-003/cand-01 0.412; run best iter-002/cand-00 0.440' — the
    iteration's own best and the run's best so far, each with its own candidate."""
    title = "set-up" if it.number == 0 else f"iteration {it.number}"
    if not it.finished:
        return title
    own = f"its best {it.iteration_best_candidate_id or '-'} {num(it.iteration_best_similarity, '.3f')}"
    if it.best_candidate_id == it.iteration_best_candidate_id:
        return f"{title}: {own} (the run's best so far)"
    return f"{title}: {own}; run best {it.best_candidate_id or '-'} {num(it.run_best_similarity, '.3f')}"


def _node_branch(branch: Tree, node: NodeRun) -> None:
    audits = [m.message for m in node.messages if m.message.kind == "edit_audit"]
    for m in node.messages:
        msg: Any = m.message
        if msg.kind == "visual_feedback":
            branch.add(f"critic → VisualFeedback {msg.id} on {msg.candidate_id}: similarity "
                       f"{msg.similarity:.3f}, {len(msg.deltas)} deltas")
        elif msg.kind == "reward_feedback":
            ops = ", ".join(f"{e.op} {e.component}" for e in msg.edits)
            answers = f" answering {msg.feedback_id}" if msg.feedback_id else ""
            branch.add(shorten(f"{m.sender} → RewardFeedback {msg.id}{answers}: {len(msg.edits)} "
                               f"edits ({ops})", 200))
    if audits:  # one line for all of a node's audits: there is one per (edit, feature)
        branch.add(f"auditor → {len(audits)} EditAudits of {audits[0].reward_feedback_id}: "
                   + audit_counts(audits))
    for call in node.tool_calls:
        args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
        result = f"✗ {call.error}" if call.error else f"→ {call.result}"
        branch.add(Text(shorten(f"tool {call.agent}.{call.tool}({args}) {call.seconds:.1f}s {result}", 200),
                        style="red" if call.error else "blue"))
    for u in node.llm_calls:
        branch.add(Text(f"llm {u.role} {u.model}: {u.input_tokens} in / {u.output_tokens} out, "
                        f"${u.cost_usd:.4f}", style="dim"))


def iteration_section(trace: RunTrace, it: IterationTrace) -> list[RenderableType]:
    """Candidates, the critic's verdict, the chain-rule table and the reward diff of one iteration."""
    title = "set-up (expert, first draft)" if it.number == 0 else f"iteration {it.number}"
    parts: list[RenderableType] = [Rule(title, align="left", style="cyan")]
    if not (it.candidates or it.feedback or it.reward_feedback):
        return [*parts, Text("nothing recorded yet", style="dim")]
    if it.candidates:
        parts.append(candidate_table(it))
    if it.calibration:
        parts.append(calibration_table(it))
    feedback = it.answered_feedback()
    if feedback is not None:
        verdict = Text(f"critic on {feedback.candidate_id} ({feedback.id}): similarity "
                       f"{feedback.similarity:.3f}", style="bold")
        parts.append(Group(verdict, *(Text(f"  {p}") for p in feedback.problems)))
    previous = trace.iteration(it.number - 1)
    if previous is not None and previous.audits:
        parts.append(Text(f"audit here of {previous.audits[0].reward_feedback_id} (edits answering "
                          f"iteration {previous.number}): {audit_counts(previous.audits)}"))
    if feedback is not None or it.reward_feedback is not None:
        parts.append(chain_table(trace, it))
    if it.reward_diff is not None:
        parts.append(diff_view(it))
    return parts


def diff_view(it: IterationTrace) -> RenderableType:
    """The reward-code diff of the iteration's RewardFeedback, highlighted."""
    d = it.reward_diff
    assert d is not None
    title = f"reward diff {d.reward_feedback_id}: {d.base_label} → {d.new_label}"
    if not d.diff:
        body: RenderableType = Text("base program not found in the run directory" if d.base_label.startswith("(base")
                                    else "no change to the program text", style="dim")
    else:
        body = Syntax(d.diff, "diff", theme="ansi_dark", word_wrap=True)
    return Panel(body, title=title, title_align="left")


