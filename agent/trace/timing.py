"""Where a run's wall-clock went: each iteration's time by phase, from its log alone.

``vid2reward bench iteration RUN`` prints it; the inner-loop work is judged by it (training
against judging, docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vid2reward.agent.trace.model import RunTrace

PHASES: dict[str, tuple[str, ...]] = {
    "train": ("train_candidates",),
    "judge": ("evaluate_candidates",),
    "critic": ("ingest_expert", "describe_expert", "critique", "audit"),
    "engineer": ("draft_reward", "engineer", "repair_rewards", "test_rewards"),
    "final": ("train_final",),
}
"""Which graph nodes make each phase: judging is rendering and measuring the candidates'
clips; the engineer's phase includes testing the programs it wrote; the final training
(with its check) runs once, after the last iteration. Other nodes count as "other"."""


@dataclass
class IterationTimes:
    """Seconds of one iteration (0 = the set-up before the first) by phase."""

    iteration: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """All of the iteration's node time."""
        return sum(self.seconds.values())

    @property
    def judge_share(self) -> float | None:
        """Judging as a fraction of the search's own work (training + judging + agents),
        the final training left out; None when nothing ran."""
        search = self.total - self.seconds.get("final", 0.0)
        return self.seconds.get("judge", 0.0) / search if search > 0 else None


def phase_of(node: str) -> str:
    """The phase a graph node's time counts towards."""
    return next((phase for phase, nodes in PHASES.items() if node in nodes), "other")


def iteration_times(trace: RunTrace) -> list[IterationTimes]:
    """Each iteration's finished nodes' seconds, summed by :data:`PHASES`."""
    out = []
    for iteration in trace.iterations:
        times = IterationTimes(iteration.number)
        for node in iteration.nodes:
            if node.seconds is not None:
                phase = phase_of(node.name)
                times.seconds[phase] = times.seconds.get(phase, 0.0) + node.seconds
        out.append(times)
    return out
