"""Chain-rule messages: JSON round trips, validation, audit outcomes."""

import pytest
from pydantic import TypeAdapter, ValidationError

from vid2reward.agent.messages import (
    BehaviorDelta,
    ChainMessage,
    EditAudit,
    RewardEdit,
    RewardFeedback,
    VisualFeedback,
    audit_outcome,
    moved_closer,
)


def _feedback():
    return VisualFeedback(id="fb-001-00", iteration=1, candidate_id="iter-001/cand-00", similarity=0.4,
                          problems=["1. It moves forward too slowly."],
                          deltas=[BehaviorDelta(feature="forward_speed", learner=0.1, expert=0.6,
                                                direction="increase", importance=0.9, evidence="0.1 vs 0.6")])


def test_every_message_round_trips_through_json():
    messages = [
        _feedback(),
        RewardFeedback(id="rf-002", iteration=1, feedback_id="fb-001-00", base_sha256="ab",
                       edits=[RewardEdit(op="reweight", component="speed_target", addresses=["forward_speed"],
                                         expected={"forward_speed": "increase"}, old_value=0.5, new_value=0.8)],
                       source="def compute_reward(s, a):\n    return 0.0, {}\n", sha256="cd"),
        EditAudit(reward_feedback_id="rf-002", edit_index=0, component="speed_target",
                  feature="forward_speed", expected="increase", before=0.1, after=0.3,
                  outcome="moved_as_expected"),
    ]
    adapter = TypeAdapter(ChainMessage)
    for message in messages:
        again = adapter.validate_json(message.model_dump_json())
        assert again == message and type(again) is type(message)


def test_validation_rejects_out_of_range_and_unknown_fields():
    with pytest.raises(ValidationError):
        BehaviorDelta(feature="x", direction="increase", importance=1.5)
    with pytest.raises(ValidationError):
        VisualFeedback(id="f", iteration=1, candidate_id="c", similarity=0.5, bogus=1)
    with pytest.raises(ValidationError):
        RewardEdit(op="delete", component="x")


@pytest.mark.parametrize(("expected", "before", "after", "outcome"), [
    ("increase", 0.1, 0.3, "moved_as_expected"),
    ("increase", 0.3, 0.1, "opposite"),
    ("decrease", 0.3, 0.1, "moved_as_expected"),
    ("increase", 0.1, 0.105, "unchanged"),
    ("change", 0.3, 0.1, "moved_as_expected"),
    ("increase", None, 0.1, "unchanged"),
])
def test_audit_outcome(expected, before, after, outcome):
    assert audit_outcome(expected, before, after, tolerance=0.01) == outcome


def test_older_message_files_migrate_into_the_schema():
    """edits.json once carried the edited candidate as "base" outside the schema, and audits had
    no iteration: both still read, into the typed fields."""
    old_edits = {"kind": "reward_feedback", "id": "rf-003", "iteration": 2, "source": "x",
                 "sha256": "0" * 64, "base": "iter-002/cand-01", "notes": {"radius": 0.6}}
    rf = RewardFeedback.model_validate(old_edits)
    assert rf.base_candidate_id == "iter-002/cand-01" and rf.notes == {"radius": 0.6}
    old_audit = {"kind": "edit_audit", "reward_feedback_id": "rf-003", "edit_index": 0,
                 "component": "speed", "feature": "forward_speed", "expected": "increase",
                 "before": 0.1, "after": 0.3, "outcome": "moved_as_expected"}
    audit = EditAudit.model_validate(old_audit)
    assert audit.iteration == 3 and audit.closer_to_expert is None


def test_an_expected_move_away_from_the_expert_is_not_closer():
    """The outcome follows the edit's prediction; closer_to_expert follows the expert: a
    prediction can hold while the learner overshoots and ends farther away."""
    assert audit_outcome("increase", 0.4, 1.2, 0.01) == "moved_as_expected"
    assert moved_closer(0.4, 1.2, expert=0.5) is False
    assert moved_closer(0.4, 0.55, expert=0.5) is True
    assert moved_closer(0.4, 0.55, expert=None) is None
