"""The trace's tables: the expert's features, a calibration, an iteration's candidates, the
chain rule (delta -> edit -> audit) and LLM usage. Each is built from the trace alone."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vid2reward.agent.trace.cells import (
    ARROW,
    agreement_label,
    edit_label,
    expert_label,
    falls_label,
    feature_label,
    moved_label,
    num,
    outcome_label,
    shorten,
)
from vid2reward.agent.trace.chain import chain_rows
from vid2reward.agent.trace.model import IterationTrace, RunTrace


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
