"""The run context: what every node may use but the checkpointed state must not hold
(configuration, paths, the log, the two agents, the stop flag)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vid2reward.agent.config import RunConfig
from vid2reward.agent.engines.base import Critic, Engineer
from vid2reward.agent.run_log import LogEvent, RunLog, RunStarted
from vid2reward.agent.run_record import RunRecord

if TYPE_CHECKING:
    from vid2reward.agent.training_backend import TrainingBackend


@dataclass
class StopFlag:
    """Set by a signal handler or a person; nodes and the runner check it between steps."""

    requested: bool = False
    reason: str = ""

    def request(self, reason: str) -> None:
        """Ask the run to stop at the next step boundary."""
        self.requested = True
        self.reason = reason

    def check(self) -> None:
        """Raise :class:`StopRequested` when a stop was asked for (a node's safe point)."""
        if self.requested:
            raise StopRequested(self.reason)


def _this_machine() -> TrainingBackend:
    from vid2reward.agent.training_backend import LocalTraining  # it imports this module

    return LocalTraining()


class StopRequested(Exception):
    """A node stopped early, at a safe point, because a stop was requested.

    What it finished is on disk and cached by content (trainings, evaluations); its state
    update is never written, so ``resume`` runs the node again and redoes only the unfinished
    part. Nodes also raise it when work failed while a stop was pending: a terminal's Ctrl-C
    reaches every process of the group, so such a failure is the interrupt's, not the work's.
    """


@dataclass
class RunContext:
    """Everything a node needs besides the state."""

    run_id: str
    config: RunConfig
    record: RunRecord
    """The run directory (the only way to its files)."""
    log: RunLog
    critic: Critic
    engineer: Engineer
    stop: StopFlag = field(default_factory=StopFlag)
    listeners: list[Callable[[LogEvent], None]] = field(default_factory=list)
    """Called with every event written (live dashboards)."""
    progress: Callable[[str, int, int], None] | None = None
    """Called with (candidate id, steps done, total) while a candidate trains."""
    training: TrainingBackend = field(default_factory=_this_machine)
    """Where candidates train: this machine, or Ray tasks (``--ray``)."""
    notes: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    """LLM tokens and cost not yet added to the state (the node wrapper moves them there)."""
    scope: list[str] = field(default_factory=list)
    """Ids of the open events new events happen inside: the session's run_started, then the
    running node's node_started."""
    unwritten_start: RunStarted | None = None
    """The session's run_started, until the session writes its first event (see :meth:`begin`)."""

    def begin(self, started: RunStarted) -> None:
        """Open a session: its run_started is written just before its first event, so opening
        a run only to look at it (``chat`` on a finished run, then ``/quit``) writes nothing
        and leaves its status as it was."""
        self.unwritten_start = started

    def emit(self, event: LogEvent) -> None:
        """Write an event to events.jsonl and tell the listeners. An event without a parent
        gets the innermost open scope (the running node, else the session)."""
        if self.unwritten_start is not None and not isinstance(event, RunStarted):
            started, self.unwritten_start = self.unwritten_start, None
            self.emit(started)
        if isinstance(event, RunStarted):  # a session: no parent; its events hang below it
            self.scope[:] = [event.id]
        elif event.parent is None and self.scope:
            event.parent = self.scope[-1]
        self.log.write(event)
        for listener in self.listeners:
            listener(event)

    @contextmanager
    def inside(self, event: LogEvent) -> Iterator[None]:
        """Events emitted in this block get ``event`` as their parent (a node's events)."""
        self.scope.append(event.id)
        try:
            yield
        finally:
            self.scope.remove(event.id)

    def note(self, summary: str) -> None:
        """A one-line summary of the running node's work (goes into its node_finished event)."""
        self.notes.append(summary)

    def take_notes(self) -> str:
        """The running node's notes, joined; clears them."""
        text, self.notes[:] = "; ".join(self.notes), []
        return text

    def add_usage(self, tokens: int, cost: float) -> None:
        """Count an LLM call's tokens and cost towards the run's budgets."""
        self.usage["tokens"] = self.usage.get("tokens", 0) + tokens
        self.usage["cost"] = self.usage.get("cost", 0.0) + cost
