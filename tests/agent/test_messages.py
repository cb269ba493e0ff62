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
