"""What a critic and a reward engineer must do, whichever engine plays them.

The graph's nodes talk to these two interfaces only; the offline engine and the LLM engine
implement them, so both run through the same graph and exchange the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vid2reward.agent.messages import EditAudit, RewardEdit, VisualFeedback
from vid2reward.agent.run_log import LogEvent
from vid2reward.agent.state import selection_score


@dataclass
class ExpertView:
    """What agents may know about the expert: a video and what was measured from its pixels."""

    clip: Path
    sheet: Path
    features: dict[str, float]
    units: dict[str, str] = field(default_factory=dict)
    description: str = ""
    body_to_size: float = 1.0
    """Body sizes per L in its clip (``tools.calibration.length_to_size``)."""


@dataclass
class CandidateView:
    """A trained candidate: its program, its training statistics, its clip and features."""

    id: str
    iteration: int
    directory: Path
    source: str
    metrics: dict[str, Any]
    plan: dict[str, Any] | None = None
    """The engine's plan of the program (the offline engine's terms and WEIGHTS), if any."""
    clip: Path | None = None
    sheet: Path | None = None
    features: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    similarity: float | None = None
    falls: dict[str, Any] | None = None
    """Its evaluation episodes' falls: ``episodes``, ``fell``, ``fall_seconds``, ``clip_seconds``."""

    @property
    def score(self) -> float:
        """Its rank among candidates (:func:`~vid2reward.agent.state.selection_score`)."""
        return selection_score(self.similarity, self.metrics.get("return_mean"))


@dataclass
class ProgramDraft:
    """A reward program the engineer wants trained; ``plan`` is engine-specific (JSON)."""

    source: str
    plan: dict[str, Any] | None = None
    summary: str | None = None
    """One line on what the program is, for the record (e.g. what a final update changed)."""


@dataclass
class EngineerAnswer:
    """The engineer's edits (∂ξ/∂R) and the programs they produce for the next iteration."""

    edits: list[RewardEdit]
    programs: list[ProgramDraft]
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class EngineerBrief:
    """What the engineer is told every time: env, task, expert, the run so far."""

    env_id: str
    env_context: str
    task: str
    candidates: int
    iteration: int
    expert: ExpertView | None
    history: list[CandidateView] = field(default_factory=list)
    """Every evaluated candidate so far (oldest first)."""
    calibrated: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The expert in physical units, read through the latest calibration on the learner clips
    (``tools/calibration.py``): quantity -> {value, unit, feature, points, r2, residual}; only
    fits good enough to use. Empty before the first clips."""

    def calibrated_values(self) -> dict[str, float]:
        """The calibrated expert as quantity -> value (in its unit)."""
        return {q: float(fit["value"]) for q, fit in self.calibrated.items()}


class EventSink(Protocol):
    """Where an engine reports what it did: the run context (``RunContext`` has these three
    methods): events (model calls, tool calls), LLM usage for the budgets, one-line notes."""

    def emit(self, event: LogEvent) -> None:
        """Write one event to the run log."""
        ...

    def add_usage(self, tokens: int, cost: float) -> None:
        """Count an LLM call's tokens and cost towards the run's budgets."""
        ...

    def note(self, summary: str) -> None:
        """A one-line note for the running node's summary."""
        ...


class Critic(Protocol):
    """Upper level: compares the learner's clip with the expert video (∂L/∂ξ)."""

    def bind_context(self, ctx: EventSink) -> None:
        """Report to this run from now on (the runner calls it once per session)."""
        ...

    def describe_expert(self, expert: ExpertView) -> str:
        """A few sentences on how the expert moves."""
        ...

    def critique(self, expert: ExpertView, candidate: CandidateView, *, feedback_id: str,
                 iteration: int) -> VisualFeedback:
        """How the candidate's behaviour must change to look like the expert."""
        ...


class Engineer(Protocol):
    """Lower level: turns feedback into reward edits (∂ξ/∂R)."""

    def bind_context(self, ctx: EventSink) -> None:
        """Report to this run from now on (the runner calls it once per session)."""
        ...

    def draft(self, brief: EngineerBrief) -> EngineerAnswer:
        """The first iteration's programs."""
        ...

    def repair(self, brief: EngineerBrief, source: str, report: str) -> str:
        """A fixed version of a program that failed its test (``report`` says why)."""
        ...

    def propose(self, brief: EngineerBrief, feedback: VisualFeedback | None,
                audits: list[EditAudit]) -> EngineerAnswer:
        """The next iteration's programs, answering ``feedback`` (None without a video critic)."""
        ...

    def final_program(self, brief: EngineerBrief, winner: CandidateView,
                      feedback: VisualFeedback | None) -> ProgramDraft | None:
        """The program the run hands out, trained from scratch after the search: the winner
        updated with what the run measured since it was written (``brief.calibrated``, and
        ``feedback``, the critic's on the winner; None without a video critic), or None for
        the winner as it is."""
        ...
