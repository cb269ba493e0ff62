"""The chain-rule messages passed between the critic and the reward engineer.

    VisualFeedback  = ∂L/∂ξ   the critic: how the learner's behaviour ξ must change
    RewardFeedback  = ∂ξ/∂R   the engineer: which reward edits should move ξ that way
    EditAudit                 the next iteration: did each edit move its features as predicted?

Every message is a pydantic model with a ``kind`` tag and ids linking critique -> edit ->
candidate -> audit; they double as structured-output schemas for the LLM engine. All fields
are JSON-serialisable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

Direction = Literal["increase", "decrease", "change"]
AuditOutcome = Literal["moved_as_expected", "opposite", "unchanged"]


class BehaviorDelta(BaseModel):
    """One way the learner's behaviour differs from the expert's."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["behavior_delta"] = "behavior_delta"
    feature: str = Field(description="a behaviour feature name, or free text in LLM mode")
    learner: float | None = Field(default=None, description="the learner's value (None if not numeric)")
    expert: float | None = Field(default=None, description="the expert's value (None if not numeric)")
    scale: float | None = Field(default=None, gt=0.0,
                                description="the unit the difference is measured in: (learner - "
                                            "expert) / scale = 1 is a clearly visible difference")
    weight: float = Field(default=1.0, ge=0.0,
                          description="the feature's weight in the critic's loss "
                                      "L = sum of weight * ((learner - expert) / scale)^2")
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
    base_candidate_id: str | None = Field(default=None,
                                          description="the candidate whose program was edited "
                                                      "(the next audit's 'before')")
    edits: list[RewardEdit] = Field(default_factory=list)
    source: str = Field(description="the new reward program's source")
    sha256: str = Field(description="sha256 of source")
    notes: dict[str, JsonValue] = Field(default_factory=dict,
                                        description="the engineer's working (trust radius, "
                                                    "gradient, mode, ...)")

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """Older run directories wrote the edited candidate as a "base" key outside the schema."""
        if isinstance(data, dict) and "base" in data:
            data = dict(data)
            base = data.pop("base")
            data.setdefault("base_candidate_id", base)
        return data


class EditAudit(BaseModel):
    """Did an edit move a feature it addressed in the direction it predicted?"""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["edit_audit"] = "edit_audit"
    iteration: int = Field(description="the iteration whose centre candidate measured 'after'")
    reward_feedback_id: str
    edit_index: int
    component: str
    feature: str
    expected: Direction
    before: float | None = None
    after: float | None = None
    expert: float | None = Field(default=None, description="the expert's value of the feature")
    outcome: AuditOutcome
    closer_to_expert: bool | None = Field(
        default=None, description="whether 'after' is nearer the expert than 'before' (None "
                                  "without an expert value): the outcome alone can say "
                                  "'as expected' while the learner moved away from the expert")

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """Older audits had no iteration: rf-NNN made iteration NNN's programs, which NNN's
        audit measured."""
        if isinstance(data, dict) and "iteration" not in data:
            match = re.search(r"(\d+)$", str(data.get("reward_feedback_id", "")))
            data = {**data, "iteration": int(match.group(1)) if match else 0}
        return data


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


def moved_closer(before: float | None, after: float | None, expert: float | None) -> bool | None:
    """Whether ``after`` is strictly nearer ``expert`` than ``before`` (None if any is missing)."""
    if before is None or after is None or expert is None:
        return None
    return abs(after - expert) < abs(before - expert)
