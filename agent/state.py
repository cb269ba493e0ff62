"""The graph's state: small, JSON-friendly, paths and ids only (never arrays or clips).

Every node returns a partial update of these keys. The checkpointer stores the state after
each node, so a killed run resumes from the last finished node.
"""

from __future__ import annotations

from typing import Literal, TypedDict

CandidateStatus = Literal["pending", "rejected", "tested", "trained", "failed", "evaluated"]
"""Where a candidate is: written (pending) -> tested or rejected -> trained or failed -> evaluated."""


def selection_score(similarity: float | None, return_mean: float | None) -> float:
    """The one rule that ranks candidates: the critic's similarity; without a video critic
    (no similarity), the program's own mean training return; -inf when neither is known, so
    an unmeasured candidate never wins."""
    if similarity is not None:
        return float(similarity)
    return float(return_mean) if return_mean is not None else float("-inf")


class CandidateRecord(TypedDict, total=False):
    """One reward program of an iteration, as it moves through test -> train -> evaluate."""

    id: str
    """``iter-NNN/cand-MM``: also its directory under the run directory."""
    reward_sha256: str
    status: CandidateStatus
    problem: str
    """Why it was rejected or failed (one line)."""
    similarity: float | None
    feedback_id: str


class HistoryPoint(TypedDict):
    """One finished iteration."""

    iteration: int
    best_candidate_id: str | None
    iteration_best_similarity: float | None
    run_best_similarity: float | None


class RunState(TypedDict, total=False):
    """The state of a run."""

    iteration: int
    """The iteration being worked on (1-based)."""
    expert_described: bool
    candidates: list[CandidateRecord]
    """This iteration's candidates."""
    repairs: int
    """Repair rounds used on this iteration's rewards."""
    best: CandidateRecord | None
    history: list[HistoryPoint]
    usage: dict[str, float]
    """LLM tokens ("tokens") and US dollars ("cost") used so far."""
    elapsed: float
    """Seconds of work so far (summed over sessions; for the wall-clock budget)."""
    stop_reason: str | None
    human_feedback: str | None
    """Words from a person (chat) that replace or add to the critic's feedback."""
