"""The trace's tables: the expert's features, a calibration, an iteration's candidates, the
chain rule (delta -> edit -> audit) and LLM usage. Each is built from the trace alone.

Each table is :class:`~vid2reward.agent.trace.fit.Fitted`: every column where the terminal is
wide enough, else a narrow layout (fewer columns, cells that stack their values, each named),
else one block per row; never a header or a value cut short.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
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
from vid2reward.agent.trace.fit import Column, Fitted, Layout
from vid2reward.agent.trace.model import CandidateTrace, IterationTrace, RunTrace


def _lines(*parts: str | Text) -> Text:
    """Non-empty parts, one per line, their styles kept."""
    kept = [p if isinstance(p, Text) else Text(p) for p in parts if str(p)]
    return Text("\n").join(kept)


def expert_table(trace: RunTrace) -> RenderableType:
    """The expert's measured features (the 'expert' column of every chain table)."""
    expert = trace.expert
    assert expert is not None
    wide = Layout([Column(name, "right") for name in expert.features])
    wide.add_row(*(num(v) for v in expert.features.values()))
    table = Fitted([wide], boxed=False, key=None)  # narrow: "name value" pairs in columns
    lines = expert.description.strip().splitlines()
    words = Text("\n".join(lines[:12]) + ("\n…" if len(lines) > 12 else ""), style="italic")
    where = Text("   ".join(p for p in (expert.clip, expert.sheet) if p), style="dim")
    return Group(table, words, where)


def calibration_table(it: IterationTrace) -> Fitted:
    """The pixel -> physical fits made after the iteration, and the expert read through them."""
    probes = (f" and {it.calibration_probe_clips} probe clips (the body carried sideways and "
              "turning)" if it.calibration_probe_clips else "")
    wide = Layout([Column(col, "left" if col in ("quantity", "from pixel feature") else "right")
                   for col in ("quantity", "from pixel feature", "fit", "points", "R²", "residual",
                               "expert", "used")])
    narrow = Layout([Column("quantity ← pixel feature"), Column("fit", "right"),
                     Column("residual", "right"), Column("expert", "right"), Column("used", "right")])
    for f in it.calibration:
        fit = f"{f.get('slope', 0):+.3g} x" + (f" {f['intercept']:+.3g}" if f.get("intercept") else "")
        expert = "-" if f.get("expert_value") is None else f"{f['expert_value']:.3g} {f.get('unit', '')}"
        residual = f"{num(f.get('residual'))} {f.get('unit', '')}"
        used = Text("yes") if f.get("usable") else Text("no", style="dim")
        wide.add_row(str(f.get("quantity")), str(f.get("feature")), fit, str(f.get("points")),
                     num(f.get("r2"), ".2f"), residual, expert, used)
        narrow.add_row(_lines(str(f.get("quantity")), f"← {f.get('feature')}"),
                       _lines(fit, f"{f.get('points')} points, R² {num(f.get('r2'), '.2f')}"),
                       residual, expert, used)
    # how an expert value was read when not through the fit alone (a person's leg lengths, ...)
    notes = [f"{f.get('quantity')}: {f['note']}" for f in it.calibration if f.get("note")]
    return Fitted([wide, narrow], caption="\n".join(notes) or None,
                  title=f"calibration after iteration {it.number} (fitted on the learner clips "
                        f"so far{probes}; the expert read through it)")


def candidate_table(it: IterationTrace) -> Fitted:
    """One row per candidate: sha, training status and speed, env return, similarity (± its
    spread over the evaluation episodes), falls, and the pre-training agreement check."""
    wide = Layout([Column(col, justify) for col, justify in (
        ("candidate", "left"), ("reward sha", "left"), ("status", "left"), ("steps", "right"),
        ("steps/s", "right"), ("train s", "right"), ("env return", "right"),
        ("similarity", "right"), ("falls", "left"), ("agrees", "right"), ("files", "left"))])
    narrow = Layout([Column("candidate"), Column("training"), Column("env return", "right"),
                     Column("similarity (agrees)", "right"), Column("falls")])
    for c in it.candidates:
        status = c.status + (" (cached)" if c.cached else "") + (f": {c.failure}" if c.failure else "")
        status_cell = Text(shorten(status, 60), style="red" if c.status in ("failed", "rejected") else "")
        best = c.id == (it.iteration_best_candidate_id or it.best_candidate_id)
        name = c.id + (" ★" if best else "")
        sha = (c.reward_sha256 or "-")[:12]
        files = " ".join(kind for kind, path in (("reward", c.reward), ("clip", c.clip), ("sheet", c.sheet)) if path)
        steps, speed, seconds = num(c.steps, "d"), num(c.steps_per_second, ".0f"), num(c.wall_seconds, ".1f")
        similarity = num(c.similarity, ".3f") + (f" ± {c.similarity_spread:.3f}"
                                                 if c.similarity_spread is not None else "")
        falls = Text(falls_label(c), style="red" if c.fell else "")
        style = "bold" if best else None
        wide.add_row(name, sha, status_cell, steps, speed, seconds, num(c.env_return_mean, ".1f"),
                     similarity, falls, agreement_label(c), files, style=style)
        trained = f"{steps} steps, {seconds} s ({speed} steps/s)" if c.steps is not None else ""
        narrow.add_row(_lines(name, Text(f"sha {sha}", style="dim"), Text(files, style="dim")),
                       _lines(status_cell, trained), num(c.env_return_mean, ".1f"),
                       _lines(similarity, _agrees(c)), falls, style=style)
    return Fitted([wide, narrow], title=f"candidates of iteration {it.number}")


def _agrees(c: CandidateTrace) -> Text:
    """The agreement check for a stacked cell: 'agrees +0.68' ('' before any check)."""
    label = agreement_label(c)
    return Text("") if c.agreement_verdict is None else Text.assemble("agrees ", label)


def chain_table(trace: RunTrace, it: IterationTrace) -> Fitted:
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
    # wide layout keeps one line per row down to ~125 columns; below, three columns: the
    # delta, the edit, the audit, each stacking its values.
    wide = Layout([Column("delta feature", no_wrap=True), Column("learner", "right"),
                   Column("expert", "right"), Column("dir", "center", no_wrap=True),
                   Column("imp", "right"), Column(f"→ edit ({rf.id})" if rf else "→ edit"),
                   Column("expects", "center", no_wrap=True), Column("→ predicted?"),
                   Column("→ closer?"), Column("before→after", "right")])
    narrow = Layout([Column("delta (learner → expert)"), Column(wide.columns[5].header),
                     Column("→ audit")])
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
        edit = edit_label(row.edit_index, row.edit)
        wide.add_row(*cells, edit, expects, outcome, closer, moved)
        delta_cell: str | Text = cells[0]
        if first and delta is not None:
            delta_cell = _lines(str(cells[0]), f"{cells[1]} → {cells[2]} {cells[3]} imp {cells[4]}")
        # spaced arrows: "0.000687 → 0.00074" may wrap where "0.000687→0.00074" may not
        narrow.add_row(delta_cell, _lines(edit.replace("→", " → "), f"expects {expects}" if expects else ""),
                       _lines(outcome, closer, f"moved {moved.replace('→', ' → ')}" if moved else ""))
    return Fitted([wide, narrow], title=title, caption=caption)


def usage_table(trace: RunTrace) -> RenderableType:
    """LLM calls, tokens and cost per (role, model), with the total."""
    if not trace.usage:
        return Text(f"no LLM calls (engine {trace.engine or '-'}): 0 tokens, $0.0000; "
                    f"{trace.tool_call_count} tool calls")
    layout = Layout([Column("role"), Column("model"), Column("calls", "right"),
                      Column("input tokens", "right"), Column("output tokens", "right"),
                      Column("cost", "right")])
    for u in trace.usage:
        layout.add_row(u.role, u.model, str(u.calls), str(u.input_tokens), str(u.output_tokens),
                       f"${u.cost_usd:.4f}")
    layout.add_row("total", "", str(sum(u.calls for u in trace.usage)),
                   str(sum(u.input_tokens for u in trace.usage)),
                   str(sum(u.output_tokens for u in trace.usage)), f"${trace.total_cost:.4f}",
                   style="bold")
    return Fitted([layout])
