"""A run's trace as one static, self-contained HTML page.

The same sections as the terminal report (header with sparkline, timeline, expert, per
iteration: candidates, contact sheets, the critic's verdict, the chain-rule table and the
reward diff; tokens and cost). Contact sheets are embedded as base64 PNG, so the file can be
mailed or attached to an issue. The page ends with the final result: the expert's and the best
candidate's clips side by side (embedded mp4), the similarity curve per iteration and the final
policy's evaluation. Every piece of text from the run is escaped: reward programs
and LLM output are untrusted.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from vid2reward.agent.trace.cells import (
    ARROW,
    edit_label,
    expert_label,
    feature_label,
    moved_label,
    num,
    outcome_label,
)
from vid2reward.agent.trace.chain import chain_rows
from vid2reward.agent.trace.model import IterationTrace, NodeRun, RunTrace
from vid2reward.agent.trace.view import (
    SIMILARITY_SCALE,
    audit_counts,
    final_lines,
    iteration_title,
    similarity_meaning,
    skipped_warning,
    sparkline,
)
from vid2reward.sim.falls import describe_falls

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #4a90a4; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; } caption { text-align: left; font-weight: bold; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.spark { font-size: 1.6em; color: #4a90a4; letter-spacing: .05em; }
.green { color: #1a7f37; } .red { color: #c62828; } .yellow { color: #9a6700; } .dim { color: #888; }
pre.diff { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: 12px; }
pre.diff .add { color: #1a7f37; background: #e6ffec; } pre.diff .del { color: #c62828; background: #ffebe9; }
pre.diff .hunk { color: #6f42c1; } figure { display: inline-block; margin: .5em; max-width: 47%; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ccc; } ul.timeline { font-size: 13px; }
figure video { max-width: 100%; border: 1px solid #ccc; } .scale { color: #666; font-size: 12px; }
"""

MAX_EMBEDDED_VIDEO = 25_000_000
"""Largest clip embedded in the page (bytes); a larger one is linked by its path instead."""


def export_html(trace: RunTrace, path: str | Path, iteration: int | None = None) -> Path:
    """Write the page to ``path`` (atomically) and return it; ``iteration`` keeps one."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(render_html(trace, iteration), encoding="utf-8")
    tmp.replace(out)
    return out


def render_html(trace: RunTrace, iteration: int | None = None) -> str:
    """The whole page as a string (only the header, one iteration and totals when
    ``iteration`` is given)."""
    root = Path(trace.run_dir)
    iterations = [it for it in trace.iterations if iteration is None or it.number == iteration]
    skipped = [f"<p><b>{_e(str(line))}</b></p>" for line in skipped_warning(trace)]
    body = [f"<h1>vid2reward trace · {_e(trace.run_id)}</h1>", _header(trace), *skipped,
            "<h2>timeline</h2>", _timeline(trace, iterations)]
    if trace.expert is not None and iteration is None:
        body += ["<h2 id='expert'>expert</h2>", _table(list(trace.expert.features),
                                                       [[num(v) for v in trace.expert.features.values()]]),
                 f"<pre>{_e(trace.expert.description)}</pre>" if trace.expert.description else "",
                 _figure(root, trace.expert.sheet, "expert contact sheet")]
    for it in iterations:
        body.append(_iteration(trace, it, root))
    body += ["<h2>tokens and cost</h2>", _usage(trace)]
    if iteration is None:
        body += ["<h2 id='result'>final result</h2>", _final(trace, root)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>vid2reward trace · {_e(trace.run_id)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(columns: list[str], rows: list[list[str]], caption: str = "",
           numeric: set[int] | None = None, classes: list[list[str]] | None = None) -> str:
    """An HTML table; cells are plain text (escaped here), ``classes`` a CSS class per cell."""
    numeric = numeric or set()
    head = "".join(f"<th>{_e(c)}</th>" for c in columns) if any(columns) else ""
    lines = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            css = " ".join(filter(None, ["num" if i in numeric else "", classes[r][i] if classes else ""]))
            cells.append(f"<td class='{css}'>{_e(cell)}</td>" if css else f"<td>{_e(cell)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{cap}{thead}<tbody>{''.join(lines)}</tbody></table>"


def _header(trace: RunTrace) -> str:
    runs = [p.run_best for p in trace.similarity_history]
    status = trace.status + (f" ({trace.finish.reason})" if trace.finish else "")
    rows = [["env", trace.env_id], ["engine", trace.engine or "-"], ["status", status],
            ["iterations finished", str(sum(it.finished for it in trace.iterations))],
            ["best similarity", num(trace.best_similarity, ".3f") + (
                f" ({similarity_meaning(trace.best_similarity)})" if similarity_meaning(trace.best_similarity) else "")],
            ["iterations (search)", str(len(trace.search_iterations))],
            ["run best per iteration", " → ".join(num(v, ".3f") for v in runs) or "-"],
            ["tokens", str(trace.total_tokens)], ["cost", f"${trace.total_cost:.4f}"],
            ["tool calls", str(trace.tool_call_count)], ["run dir", trace.run_dir]]
    spark = f"<p class='spark' title='run-best similarity per iteration (0..1)'>{_e(sparkline(runs))}</p>"
    return _table(["", ""], rows) + spark + f"<p class='scale'>{_e(SIMILARITY_SCALE)}</p>"


def _timeline(trace: RunTrace, iterations: list[IterationTrace]) -> str:
    start = trace.started or 0.0
    items = []
    for it in iterations:
        title = iteration_title(it)
        nodes = "".join(_node(n, start, trace.status == "running") for n in it.nodes)
        items.append(f"<li><a href='#iteration-{it.number}'><b>{_e(title)}</b></a><ul>{nodes}</ul></li>")
    return f"<ul class='timeline'>{''.join(items)}</ul>"


def _node(node: NodeRun, start: float, run_is_live: bool) -> str:
    if node.seconds is not None:
        seconds = f"{node.seconds:.1f}s"
    else:  # no node_finished: still at work, or cut off
        seconds = "running" if run_is_live and not node.cut_off else "did not finish"
    children = []
    for m in node.messages:
        msg = m.message
        if msg.kind == "visual_feedback":
            children.append(f"critic → VisualFeedback {msg.id} on {msg.candidate_id}: similarity {msg.similarity:.3f}")
        elif msg.kind == "reward_feedback":
            children.append(f"{m.sender} → RewardFeedback {msg.id}: "
                            + ", ".join(f"{e.op} {e.component}" for e in msg.edits))
    audits = [m.message for m in node.messages if m.message.kind == "edit_audit"]
    if audits:  # one line for all: there is one audit per (edit, feature)
        children.append(f"auditor → {len(audits)} EditAudits of {audits[0].reward_feedback_id}: "
                        + audit_counts(audits))
    for call in node.tool_calls:
        children.append(f"tool {call.agent}.{call.tool}({call.arguments}) {call.seconds:.1f}s "
                        + (f"✗ {call.error}" if call.error else f"→ {call.result}"))
    for u in node.llm_calls:
        children.append(f"llm {u.role} {u.model}: {u.input_tokens} in / {u.output_tokens} out, ${u.cost_usd:.4f}")
    inner = "".join(f"<li>{_e(c)}</li>" for c in children)
    return (f"<li><span class='dim'>+{node.started - start:.1f}s</span> <b>{_e(node.name)}</b> "
            f"{_e(seconds)} {_e(node.summary)}" + (f"<ul>{inner}</ul>" if inner else "") + "</li>")


def _iteration(trace: RunTrace, it: IterationTrace, root: Path) -> str:
    title = "set-up (expert, first draft)" if it.number == 0 else f"iteration {it.number}"
    parts = [f"<section id='iteration-{it.number}'><h2>{_e(title)}</h2>"]
    if it.candidates:
        star = it.iteration_best_candidate_id or it.best_candidate_id
        rows = [[c.id + (" ★" if c.id == star else ""), (c.reward_sha256 or "-")[:12],
                 c.status + (" (cached)" if c.cached else "") + (f": {c.failure}" if c.failure else ""),
                 num(c.steps, "d"), num(c.steps_per_second, ".0f"), num(c.env_return_mean, ".1f"),
                 num(c.similarity, ".3f")] for c in it.candidates]
        parts.append(_table(["candidate", "reward sha", "status", "steps", "steps/s", "env return", "similarity"],
                            rows, caption=f"candidates of iteration {it.number}", numeric={3, 4, 5, 6}))
        parts += [_figure(root, c.sheet, f"{c.id} (similarity {num(c.similarity, '.3f')})")
                  for c in it.candidates if c.sheet]
    feedback = it.answered_feedback()
    if feedback is not None:
        problems = "".join(f"<li>{_e(p)}</li>" for p in feedback.problems)
        parts.append(f"<p><b>critic on {_e(feedback.candidate_id)} ({_e(feedback.id)}): similarity "
                     f"{feedback.similarity:.3f}</b></p><ul>{problems}</ul>")
    if feedback is not None or it.reward_feedback is not None:
        parts.append(_chain(trace, it))
    if it.reward_diff is not None:
        d = it.reward_diff
        parts.append(f"<h3>reward diff {_e(d.reward_feedback_id)}: {_e(d.base_label)} → {_e(d.new_label)}</h3>")
        parts.append(_diff(d.diff) if d.diff else "<p class='dim'>no diff (base program not found or unchanged)</p>")
    return "\n".join(parts) + "</section>"


def _chain(trace: RunTrace, it: IterationTrace) -> str:
    rf, feedback = it.reward_feedback, it.answered_feedback()
    audited = trace.audited(it.number)
    rows, classes = [], []
    for row in chain_rows(feedback, rf, it.audits):
        d = row.delta
        delta = [feature_label(row.feature, d), num(d.learner), num(d.expert), ARROW[d.direction],
                 f"{d.importance:.2f}"] if d else [
            row.feature, "", "", "", ""]
        closer, closer_colour = "", ""
        if row.audit is not None:
            outcome, colour = outcome_label(row.audit.outcome)
            closer, closer_colour = expert_label(row.audit)
            moved = moved_label(row.audit)
        else:
            colour, moved = "dim", ""
            outcome = ("no edit" if row.edit is None else "no prediction" if row.expected is None
                       else "not measured" if audited else "pending")
        rows.append([*delta, edit_label(row.edit_index, row.edit), ARROW.get(row.expected or "", ""), outcome,
                     closer, moved])
        classes.append(["" if d else "dim", "", "", "", "", "", "", colour, closer_colour, ""])
    caption = f"chain rule: {feedback.id if feedback else '(no critique)'} → {rf.id if rf else '(no edits)'} → audit"
    return _table(["delta feature", "learner", "expert", "direction", "importance", "edit", "expects",
                   "moved as predicted?", "closer to the expert?", "before→after"], rows, caption=caption,
                  numeric={1, 2, 4, 9}, classes=classes)


def _diff(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        css = ("hunk" if line.startswith(("@@", "---", "+++")) else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "")
        lines.append(f"<span class='{css}'>{_e(line)}</span>" if css else _e(line))
    return "<pre class='diff'>" + "\n".join(lines) + "</pre>"


def _figure(root: Path, relative: str | None, caption: str) -> str:
    """A contact sheet embedded as a data: URI (nothing if the file is gone)."""
    if not relative:
        return ""
    try:
        data = base64.b64encode((root / relative).read_bytes()).decode("ascii")
    except OSError:
        return ""
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _usage(trace: RunTrace) -> str:
    if not trace.usage:
        return f"<p>no LLM calls (engine {_e(trace.engine or '-')}): 0 tokens, $0.0000</p>"
    rows = [[u.role, u.model, str(u.calls), str(u.input_tokens), str(u.output_tokens), f"${u.cost_usd:.4f}"]
            for u in trace.usage]
    rows.append(["total", "", str(sum(u.calls for u in trace.usage)),
                 str(sum(u.input_tokens for u in trace.usage)), str(sum(u.output_tokens for u in trace.usage)),
                 f"${trace.total_cost:.4f}"])
    return _table(["role", "model", "calls", "input tokens", "output tokens", "cost"], rows, numeric={2, 3, 4, 5})


def _final(trace: RunTrace, root: Path) -> str:
    """The end of the page: the result in sentences, the expert's and the best candidate's
    clips side by side, the similarity per iteration as a curve, the final evaluation."""
    parts = ["<p>" + "<br>".join(_e(line) for line in final_lines(trace)) + "</p>"]
    final = trace.final
    clips = [_video(root, trace.expert.clip if trace.expert else None, "expert"),
             _video(root, final.clip if final else None,
                    "learner: the final policy (best/)" if final and final.final_training
                    else f"learner: best candidate {final.best_candidate_id if final else '-'}")]
    if any(clips):
        parts.append("<div class='clips'>" + "".join(clips) + "</div>")
    parts.append(_similarity_curve(trace))
    ev = ((final.final_training or {}).get("evaluation") if final else None)
    if isinstance(ev, dict):
        parts.append(_table(["final policy", "value"], final_rows(ev),
                            caption="the final policy's evaluation (seeded full-length episodes, "
                                    "as `vid2reward evaluate` makes it)", numeric={1}))
    return "\n".join(parts)


def final_rows(ev: dict[str, Any]) -> list[list[str]]:
    """The final evaluation's figures, each named with its method and unit."""
    metrics = ev.get("metrics") or {}
    rows = [["episodes (seeds)", f"{ev.get('episodes', '-')} (from {ev.get('seed', '-')})"],
            ["env return", f"{num(ev.get('env_return_mean'), '.1f')} ± {num(ev.get('env_return_std'), '.1f')}"],
            ["episode length, steps", f"{num(ev.get('length_mean'), '.0f')} ± {num(ev.get('length_std'), '.0f')} "
                                      f"of {ev.get('max_steps', '-')}"],
            ["falls", describe_falls(ev.get("fall_rate", 0.0), ev.get("episodes", "-"), ev.get("fall_seconds") or [])]]
    if ev.get("program_return_mean") is not None:
        rows.insert(2, ["reward return", f"{num(ev['program_return_mean'], '.1f')} ± "
                                         f"{num(ev.get('program_return_std'), '.1f')}"])
    for key, label, fmt in (("forward_velocity", "forward velocity, m/s", "+.2f"),
                            ("cadence_steps_per_s", "cadence, steps/s by foot touchdowns", ".2f"),
                            ("flight_fraction", "flight, fraction of the time (no foot down)", ".2f"),
                            ("double_support_fraction", "double support, fraction of the time", ".2f")):
        if metrics.get(key) is not None:
            rows.append([label, format(float(metrics[key]), fmt)])
    return rows


def _video(root: Path, relative: str | None, caption: str) -> str:
    """A clip embedded as a data: URI (linked by its path when too large; nothing if gone)."""
    if not relative:
        return ""
    path = root / relative
    try:
        size = path.stat().st_size
        if size > MAX_EMBEDDED_VIDEO:
            return (f"<figure><a href='{_e(relative)}'>{_e(relative)}</a> ({size // 1_000_000} MB)"
                    f"<figcaption>{_e(caption)}</figcaption></figure>")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return ""
    return (f"<figure><video controls loop muted playsinline src='data:video/mp4;base64,{data}'>"
            f"</video><figcaption>{_e(caption)}</figcaption></figure>")


def _similarity_curve(trace: RunTrace, width: int = 560, height: int = 200) -> str:
    """An inline SVG of the iteration's best and the run's best similarity per iteration, on
    the absolute 0..1 scale."""
    points = [p for p in trace.similarity_history if p.iteration > 0]
    if not points:
        return "<p class='dim'>no finished iteration: no similarity curve</p>"
    pad, last = 30, max(p.iteration for p in points)

    def xy(iteration: int, value: float) -> str:
        x = pad + (width - 2 * pad) * ((iteration - 1) / max(1, last - 1) if last > 1 else 0.5)
        return f"{x:.1f},{height - pad - (height - 2 * pad) * value:.1f}"

    lines = []
    for attr, colour, label in (("iteration_best", "#9a6700", "iteration best"),
                                ("run_best", "#4a90a4", "run best")):
        pts = [xy(p.iteration, v) for p in points if (v := getattr(p, attr)) is not None]
        if pts:
            lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(pts)}'/>"
                         + "".join(f"<circle cx='{q.split(',')[0]}' cy='{q.split(',')[1]}' r='3' "
                                   f"fill='{colour}'/>" for q in pts))
            lines.append(f"<text x='{width - pad - 90}' y='{pad + 14 * len(lines) // 2}' fill='{colour}' "
                         f"font-size='11'>{_e(label)}</text>")
    grid = "".join(f"<line x1='{pad}' x2='{width - pad}' y1='{height - pad - (height - 2 * pad) * g}' "
                   f"y2='{height - pad - (height - 2 * pad) * g}' stroke='#ddd'/>"
                   f"<text x='2' y='{height - pad - (height - 2 * pad) * g + 4}' font-size='10'>{g:.2g}</text>"
                   for g in (0.0, 0.25, 0.5, 0.75, 1.0))
    ticks = "".join(f"<text x='{xy(p.iteration, 0).split(',')[0]}' y='{height - 8}' font-size='10' "
                    f"text-anchor='middle'>{p.iteration}</text>" for p in points)
    return (f"<figure><svg role='img' aria-label='similarity per iteration' width='{width}' "
            f"height='{height}' xmlns='http://www.w3.org/2000/svg'>{grid}{ticks}{''.join(lines)}</svg>"
            "<figcaption>similarity per iteration (0..1; x: iteration)</figcaption></figure>")
