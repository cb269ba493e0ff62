"""The chain rule of one iteration as rows: behaviour delta -> reward edit -> audit outcome.

The critic's VisualFeedback names features that must move (deltas), the engineer's
RewardFeedback names, per edit, the features it addresses and the direction it expects, and the
next iteration's EditAudits say per (edit, feature) what happened. :func:`chain_rows` joins the
three by feature name and edit index so a table can read left to right.
"""

from __future__ import annotations

from pydantic import BaseModel

from vid2reward.agent.messages import (
    BehaviorDelta,
    Direction,
    EditAudit,
    RewardEdit,
    RewardFeedback,
    VisualFeedback,
)


class ChainRow(BaseModel):
    """One line of the chain rule: a behaviour delta, an edit addressing it, and its audit.

    ``delta`` is None for an edit's predicted feature the critic did not name; ``edit`` is None
    for a delta no edit addressed; ``audit`` is None until the next iteration measured it."""

    feature: str
    delta: BehaviorDelta | None = None
    edit_index: int | None = None
    edit: RewardEdit | None = None
    expected: Direction | None = None
    audit: EditAudit | None = None


def chain_rows(feedback: VisualFeedback | None, reward_feedback: RewardFeedback | None,
               audits: list[EditAudit]) -> list[ChainRow]:
    """Link deltas -> edits -> audits by feature name and edit index, deltas in critic order.

    Every delta, every (edit, feature) pair and every audit appears exactly once."""
    deltas = feedback.deltas if feedback else []
    edits = reward_feedback.edits if reward_feedback else []
    audit_by_key = {(a.edit_index, a.feature): a for a in audits}
    used: set[tuple[int, str]] = set()
    rows: list[ChainRow] = []

    def row(feature: str, delta: BehaviorDelta | None, index: int | None) -> ChainRow:
        if index is None:
            return ChainRow(feature=feature, delta=delta)
        used.add((index, feature))
        edit = edits[index]
        return ChainRow(feature=feature, delta=delta, edit_index=index, edit=edit,
                        expected=edit.expected.get(feature), audit=audit_by_key.get((index, feature)))

    for delta in deltas:
        matching: list[int | None] = [i for i, e in enumerate(edits)
                                      if delta.feature in e.addresses or delta.feature in e.expected]
        for index in matching or [None]:
            rows.append(row(delta.feature, delta, index))
    for i, edit in enumerate(edits):
        features = list(dict.fromkeys([*edit.addresses, *edit.expected]))
        rows.extend(row(f, None, i) for f in features if (i, f) not in used)
        if not features:
            rows.append(row("", None, i))
    for a in audits:  # an audit whose edit or feature the message no longer names
        if (a.edit_index, a.feature) not in used:
            rows.append(ChainRow(feature=a.feature, edit_index=a.edit_index, expected=a.expected, audit=a))
    return rows
