"""The chain-rule messages passed between the critic and the reward engineer.

    VisualFeedback  = ∂L/∂ξ   the critic: how the learner's behaviour ξ must change
    RewardFeedback  = ∂ξ/∂R   the engineer: which reward edits should move ξ that way
    EditAudit                 the next iteration: did each edit move its features as predicted?

Every message is a pydantic model with a ``kind`` tag and ids linking critique -> edit ->
candidate -> audit; they double as structured-output schemas for the LLM engine. All fields
are JSON-serialisable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["increase", "decrease", "change"]
AuditOutcome = Literal["moved_as_expected", "opposite", "unchanged"]


class BehaviorDelta(BaseModel):
    """One way the learner's behaviour differs from the expert's."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["behavior_delta"] = "behavior_delta"
    feature: str = Field(description="a behaviour feature name, or free text in LLM mode")
    learner: float | None = Field(default=None, description="the learner's value (None if not numeric)")
    expert: float | None = Field(default=None, description="the expert's value (None if not numeric)")
    direction: Direction = Field(description="how the learner's value must move")
    importance: float = Field(ge=0.0, le=1.0, description="0..1, how much this matters")
    evidence: str = Field(default="", description="frames or values that show it")


class VisualFeedback(BaseModel):
    """∂L/∂ξ: the critic's verdict on one candidate's clip against the expert video."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["visual_feedback"] = "visual_feedback"
    id: str = Field(description="unique id, e.g. 'fb-002-01'")
    iteration: int
    candidate_id: str = Field(description="the candidate whose clip was judged, e.g. 'iter-002/cand-01'")
    similarity: float = Field(ge=0.0, le=1.0, description="1 = indistinguishable from the expert")
    problems: list[str] = Field(default_factory=list, description="numbered-list style sentences")
    deltas: list[BehaviorDelta] = Field(default_factory=list)


class RewardEdit(BaseModel):
    """One edit of the reward program, and the behaviour change it is meant to cause."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["reward_edit"] = "reward_edit"
    op: Literal["add", "rewrite", "remove", "reweight"]
    component: str = Field(description="the reward component (or WEIGHTS name) edited")
    addresses: list[str] = Field(default_factory=list, description="BehaviorDelta features it addresses")
    expected: dict[str, Direction] = Field(default_factory=dict,
                                           description="feature -> the direction it should move")
    rationale: str = ""
    old_value: float | None = Field(default=None, description="previous weight (reweight)")
    new_value: float | None = Field(default=None, description="new weight (reweight)")


class RewardFeedback(BaseModel):
    """∂ξ/∂R: the engineer's edits and the new reward program they produce."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["reward_feedback"] = "reward_feedback"
    id: str = Field(description="unique id, e.g. 'rf-002'")
    iteration: int = Field(description="the iteration whose feedback these edits answer")
    feedback_id: str | None = Field(default=None, description="the VisualFeedback answered")
    base_sha256: str | None = Field(default=None, description="the reward version edited")
    edits: list[RewardEdit] = Field(default_factory=list)
    source: str = Field(description="the new reward program's source")
    sha256: str = Field(description="sha256 of source")


class EditAudit(BaseModel):
    """Did an edit move a feature it addressed in the direction it predicted?"""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["edit_audit"] = "edit_audit"
    reward_feedback_id: str
    edit_index: int
    component: str
    feature: str
    expected: Direction
    before: float | None = None
    after: float | None = None
    outcome: AuditOutcome


ChainMessage = Annotated[VisualFeedback | RewardFeedback | EditAudit, Field(discriminator="kind")]
"""Any message of the chain, told apart by ``kind``."""


def audit_outcome(expected: Direction, before: float | None, after: float | None,
                  tolerance: float) -> AuditOutcome:
    """Compare a feature before and after an edit with the direction the edit predicted.

    A move smaller than ``tolerance`` (in the feature's own units) counts as unchanged; for
    ``change`` any larger move counts as expected.
    """
    if before is None or after is None or abs(after - before) <= tolerance:
        return "unchanged"
    moved_up = after > before
    if expected == "change" or (expected == "increase") == moved_up:
        return "moved_as_expected"
    return "opposite"
