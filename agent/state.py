"""The graph's state: small, JSON-friendly, paths and ids only (never arrays or clips).

Every node returns a partial update of these keys. The checkpointer stores the state after
each node, so a killed run resumes from the last finished node.
"""

from __future__ import annotations

from typing import TypedDict


class CandidateRecord(TypedDict, total=False):
    """One reward program of an iteration, as it moves through test -> train -> evaluate."""

    id: str
    """``iter-NNN/cand-MM``: also its directory under the run directory."""
    reward_sha256: str
    status: str
    """"pending", "rejected", "trained", "failed", "evaluated"."""
    problem: str
    """Why it was rejected or failed (one line)."""
    similarity: float
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
    last_reward_feedback: str | None
    """Path of the RewardFeedback (edits.json) whose edits the next audit checks."""
    best: CandidateRecord | None
    history: list[HistoryPoint]
    usage: dict[str, float]
    """LLM tokens ("tokens") and US dollars ("cost") used so far."""
    elapsed: float
    """Seconds of work so far (summed over sessions; for the wall-clock budget)."""
    stop_reason: str | None
    human_feedback: str | None
    """Words from a person (chat) that replace or add to the critic's feedback."""
