"""Table cells and short labels of the trace: numbers, audit verdicts, edits, falls, the
agreement check, and one ellipsis rule for text that must fit a line. The terminal view
(view.py, tables.py) and the HTML page (html.py) share them, so both say the same thing."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from vid2reward.agent.messages import EditAudit

ARROW = {"increase": "↑", "decrease": "↓", "change": "↕"}
OUTCOME = {"moved_as_expected": ("✓ as predicted", "green"),
           "opposite": ("✗ opposite", "red"),
           "unchanged": ("= unchanged", "yellow")}
EXPERT = {True: ("✓ closer", "green"), False: ("✗ farther", "red"), None: ("- (no expert value)", "dim")}
"""An audit's second verdict: an edit can move a feature as predicted and still past (or
away from) the expert, so the two are always shown side by side."""


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


def feature_label(feature: str, delta: Any) -> str:
    """The feature of a chain row; '(person)' marks a person's delta, whose 'expert' value is
    the target they asked for."""
    return f"{feature} (person)" if delta is not None and delta.evidence.startswith("the person said") else feature


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
