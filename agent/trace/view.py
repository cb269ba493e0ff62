"""Rich renderables of a :class:`~vid2reward.agent.trace.model.RunTrace`.

The report reads top to bottom: a header (status, best similarity and what it means, a
sparkline of the run-best similarity per iteration, tokens and cost), the timeline (iterations
-> nodes -> messages and tool calls), the expert, then per iteration its candidate table, the
critic's verdict, the chain rule as one table (delta -> edit -> moved as predicted? closer to the
expert?) and the reward-code diff; token and cost totals, then the final result, close it. Nothing here reads files: everything comes from the trace.
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
from vid2reward.agent.trace.chain import chain_rows
from vid2reward.agent.trace.model import IterationTrace, NodeRun, RunTrace
from vid2reward.sim.falls import describe_falls
from vid2reward.tools.gait_comparison import cadence_text, comparison_lines

BARS = "▁▂▃▄▅▆▇█"
ARROW = {"increase": "↑", "decrease": "↓", "change": "↕"}
OUTCOME = {"moved_as_expected": ("✓ as predicted", "green"),
           "opposite": ("✗ opposite", "red"),
           "unchanged": ("= unchanged", "yellow")}
EXPERT = {True: ("✓ closer", "green"), False: ("✗ farther", "red"), None: ("- (no expert value)", "dim")}
"""An audit's second verdict: an edit can move a feature as predicted and still past (or
away from) the expert, so the two are always shown side by side."""


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


def num(value: float | None, spec: str = ".3g") -> str:
    """A number for a table cell ('-' for none)."""
    return "-" if value is None else format(value, spec)


def moved_label(audit: EditAudit) -> str:
    """``before→after`` of an audited feature."""
    return f"{num(audit.before)}→{num(audit.after)}"


def outcome_label(outcome: str) -> tuple[str, str]:
    """An audit outcome's (label, colour): did the feature move as the edit predicted?"""
    return OUTCOME.get(outcome, (outcome, ""))


def expert_label(audit: EditAudit) -> tuple[str, str]:
    """(label, colour): did the audited feature end closer to the expert's value?"""
    return EXPERT[audit.closer_to_expert]


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


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: cut at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = text[:width - 1]
    cut = head.rfind(" ")
    return (head[:cut] if cut > width // 2 else head).rstrip(" ,;:") + "…"


def edit_label(index: int | None, edit: Any) -> str:
    """'#2 reweight speed 1→0.744' — an edit as one cell."""
    if edit is None:
        return "" if index is None else f"#{index}"
    text = f"#{index} {edit.op} {edit.component}"
    if edit.old_value is not None or edit.new_value is not None:
        text += f" {num(edit.old_value)}→{num(edit.new_value)}"
    return text


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


def feature_label(feature: str, delta: Any) -> str:
    """The feature of a chain row; '(person)' marks a person's delta, whose 'expert' value is
    the target they asked for."""
    return f"{feature} (person)" if delta is not None and delta.evidence.startswith("the person said") else feature


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


def expert_table(trace: RunTrace) -> RenderableType:
    """The expert's measured features (the 'expert' column of every chain table)."""
    expert = trace.expert
    assert expert is not None
    table = Table(show_edge=False, box=None, padding=(0, 2))
    for name in expert.features:
        table.add_column(name, justify="right")
    table.add_row(*(num(v) for v in expert.features.values()))
    lines = expert.description.strip().splitlines()
    words = Text("\n".join(lines[:12]) + ("\n…" if len(lines) > 12 else ""), style="italic")
    where = Text("   ".join(p for p in (expert.clip, expert.sheet) if p), style="dim")
    return Group(table, words, where)


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


def falls_label(c: Any) -> str:
    """'2/3 at 1.3, 1.6 s', 'none of 3', or '-' before evaluation."""
    if c.episodes is None:
        return "-"
    if not c.fell:
        return f"none of {c.episodes}"
    return f"{c.fell}/{c.episodes} at {', '.join(f'{t:.1f}' for t in sorted(c.fall_seconds))} s"


def agreement_label(c: Any) -> Text:
    """The pre-training check: the rank correlation, red when it disagrees with the critic."""
    if c.agreement_verdict is None:
        return Text("-")
    value = "?" if c.agreement is None else f"{c.agreement:+.2f}"
    return Text(value, style="red" if c.agreement_verdict == "disagrees" else "")


def calibration_table(it: IterationTrace) -> Table:
    """The pixel -> physical fits made after the iteration, and the expert read through them."""
    probes = (f" and {it.calibration_probe_clips} probe clips (the body carried sideways and "
              "turning)" if it.calibration_probe_clips else "")
    table = Table(title=f"calibration after iteration {it.number} (fitted on the learner clips "
                        f"so far{probes}; the expert read through it)", title_justify="left")
    for col in ("quantity", "from pixel feature", "fit", "points", "R²", "residual", "expert", "used"):
        table.add_column(col, justify="left" if col in ("quantity", "from pixel feature") else "right")
    for f in it.calibration:
        fit = f"{f.get('slope', 0):+.3g} x" + (f" {f['intercept']:+.3g}" if f.get("intercept") else "")
        expert = "-" if f.get("expert_value") is None else f"{f['expert_value']:.3g} {f.get('unit', '')}"
        table.add_row(str(f.get("quantity")), str(f.get("feature")), fit, str(f.get("points")),
                      num(f.get("r2"), ".2f"), f"{num(f.get('residual'))} {f.get('unit', '')}",
                      expert, "yes" if f.get("usable") else Text("no", style="dim"))
    # how an expert value was read when not through the fit alone (a person's leg lengths, ...)
    notes = [f"{f.get('quantity')}: {f['note']}" for f in it.calibration if f.get("note")]
    if notes:
        table.caption, table.caption_justify = "\n".join(notes), "left"
    return table


def candidate_table(it: IterationTrace) -> Table:
    """One row per candidate: sha, training status and speed, env return, similarity (± its
    spread over the evaluation episodes), falls, and the pre-training agreement check."""
    table = Table(title=f"candidates of iteration {it.number}", title_justify="left")
    for col, justify in (("candidate", "left"), ("reward sha", "left"), ("status", "left"),
                         ("steps", "right"), ("steps/s", "right"), ("train s", "right"),
                         ("env return", "right"), ("similarity", "right"), ("falls", "left"),
                         ("agrees", "right"), ("files", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in it.candidates:
        status = c.status + (" (cached)" if c.cached else "") + (f": {c.failure}" if c.failure else "")
        best = c.id == (it.iteration_best_candidate_id or it.best_candidate_id)
        files = " ".join(name for name, path in (("reward", c.reward), ("clip", c.clip), ("sheet", c.sheet)) if path)
        table.add_row(c.id + (" ★" if best else ""), (c.reward_sha256 or "-")[:12],
                      Text(shorten(status, 60), style="red" if c.status in ("failed", "rejected") else ""),
                      num(c.steps, "d"), num(c.steps_per_second, ".0f"), num(c.wall_seconds, ".1f"),
                      num(c.env_return_mean, ".1f"),
                      num(c.similarity, ".3f") + (f" ± {c.similarity_spread:.3f}"
                                                  if c.similarity_spread is not None else ""),
                      Text(falls_label(c), style="red" if c.fell else ""), agreement_label(c), files,
                      style="bold" if best else None)
    return table


def chain_table(trace: RunTrace, it: IterationTrace) -> Table:
    """The chain rule left to right: behaviour delta (∂L/∂ξ) → reward edit (∂ξ/∂R) → audit."""
    rf = it.reward_feedback
    feedback = it.answered_feedback()
    audited = trace.audited(it.number)
    if rf is not None:
        answer = f"{rf.id} → audit in iteration {it.number + 1}"
    else:
        answer = "(no edits yet)" if trace.status == "running" else "(no edits: the run ended here)"
    title = f"chain rule: {feedback.id if feedback else '(no critique)'} → {answer}"
    caption = ("↑ increase  ↓ decrease  ↕ change   predicted? = did the feature move the way the "
               "edit predicted; closer? = did it end nearer the expert's value; (person): a "
               "person's delta, its 'expert' is the target they asked for")
    # Feature names never wrap (they are what the eye scans for); directions are arrows, so the
    # table keeps one line per row down to ~110 columns.
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("delta feature", no_wrap=True)
    table.add_column("learner", justify="right")
    table.add_column("expert", justify="right")
    table.add_column("dir", justify="center", no_wrap=True)
    table.add_column("imp", justify="right")
    table.add_column(f"→ edit ({rf.id})" if rf else "→ edit", min_width=16)
    table.add_column("expects", justify="center", no_wrap=True)
    table.add_column("→ predicted?", min_width=11)
    table.add_column("→ closer?", min_width=9)
    table.add_column("before→after", justify="right", overflow="fold")
    shown: set[str] = set()
    for row in chain_rows(feedback, rf, it.audits):
        delta = row.delta
        first = delta is not None and row.feature not in shown
        if delta is not None:
            shown.add(row.feature)
        cells = ([feature_label(row.feature, delta), num(delta.learner), num(delta.expert), ARROW[delta.direction],
                  f"{delta.importance:.2f}"] if first and delta is not None
                 else [Text(row.feature, style="dim") if delta is None else "", "", "", "", ""])
        closer = Text("")
        if row.audit is not None:
            label, colour = outcome_label(row.audit.outcome)
            outcome = Text(label, style=colour)
            closer = Text(*expert_label(row.audit))
            moved = moved_label(row.audit)
        elif row.edit is None:
            outcome, moved = Text("no edit", style="dim"), ""
        elif row.expected is None:  # e.g. a first-draft term: it names features, predicts nothing
            outcome, moved = Text("no prediction", style="dim"), ""
        else:
            outcome = Text("not measured" if audited else "pending", style="dim")
            moved = ""
        expects = ARROW.get(row.expected, "") if row.expected else ""
        table.add_row(*cells, edit_label(row.edit_index, row.edit), expects, outcome, closer, moved)
    return table


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


def usage_table(trace: RunTrace) -> RenderableType:
    """LLM calls, tokens and cost per (role, model), with the total."""
    if not trace.usage:
        return Text(f"no LLM calls (engine {trace.engine or '-'}): 0 tokens, $0.0000; "
                    f"{trace.tool_call_count} tool calls")
    table = Table(show_footer=True)
    table.add_column("role", footer="total")
    table.add_column("model")
    table.add_column("calls", justify="right", footer=str(sum(u.calls for u in trace.usage)))
    table.add_column("input tokens", justify="right", footer=str(sum(u.input_tokens for u in trace.usage)))
    table.add_column("output tokens", justify="right", footer=str(sum(u.output_tokens for u in trace.usage)))
    table.add_column("cost", justify="right", footer=f"${trace.total_cost:.4f}")
    for u in trace.usage:
        table.add_row(u.role, u.model, str(u.calls), str(u.input_tokens), str(u.output_tokens), f"${u.cost_usd:.4f}")
    return table
