"""Ctrl-C and SIGTERM during a run: stop at the next safe point, say so, and lose nothing.

A terminal sends SIGINT to the whole process group. The first one asks the run to stop after
the running step (one candidate's training or rendering, or one graph node) and prints how long
that should take; a second SIGINT aborts at once. Either way the work already on disk stays:
trainings and evaluations are cached by content and a node that did not finish is run again by
``vid2reward resume``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel

from vid2reward.agent.context import StopFlag
from vid2reward.agent.run_log import NodeFinished, NodeStarted, TrainingSummary


class StepClock:
    """Estimates how long the running step still needs, from the run's events and progress.

    A training's remaining time is extrapolated from its own progress (or, before its first
    progress report, from the previous candidate's); any other node's from its earlier runs.
    """

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.node: str | None = None
        self.started = now()
        """When the running step (node, or candidate inside a node) began."""
        self.progress: tuple[int, int] | None = None
        self.last_candidate_seconds: float | None = None
        self.durations: dict[str, list[float]] = {}

    def on_event(self, event: BaseModel) -> None:
        """Listener for run events."""
        if isinstance(event, NodeStarted):
            self.node, self.started, self.progress = event.node, self.now(), None
            self.last_candidate_seconds = None
        elif isinstance(event, NodeFinished):
            self.durations.setdefault(event.node, []).append(event.seconds)
            self.node = None
        elif isinstance(event, TrainingSummary):  # one candidate done; the next starts now
            if not event.cached:
                self.last_candidate_seconds = self.now() - self.started
            self.started, self.progress = self.now(), None

    def on_progress(self, candidate: str, done: int, total: int) -> None:
        """Training progress of the running candidate."""
        self.progress = (done, total)

    def remaining(self) -> float | None:
        """Seconds the running step should still take, or None when there is no basis."""
        elapsed = self.now() - self.started
        if self.progress is not None and self.progress[0] > 0:
            done, total = self.progress
            return max(0.0, elapsed * (total - done) / done)
        if self.last_candidate_seconds is not None:
            return max(1.0, self.last_candidate_seconds - elapsed)
        past = self.durations.get(self.node or "")
        if past:
            return max(1.0, sum(past) / len(past) - elapsed)
        return None


def stop_message(remaining: float | None) -> str:
    """What the first Ctrl-C prints."""
    eta = "" if remaining is None else f" (~{remaining:.0f} s)"
    return f"stopping after this step{eta}; Ctrl-C again to abort"


@contextmanager
def stop_on_signals(stop: StopFlag, clock: StepClock | None = None,
                    say: Callable[[str], None] | None = None) -> Iterator[None]:
    """While inside: the first SIGINT or SIGTERM requests a stop at the next safe point and
    ``say``s so; a second SIGINT raises KeyboardInterrupt (abort now). Outside the main thread
    signals stay with the caller."""
    say = say or _to_stderr
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        global _ctrl_c_seen
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if stop.requested:
            return
        _ctrl_c_seen = _ctrl_c_seen or signum == signal.SIGINT
        stop.request(f"{signal.Signals(signum).name}: stopped after the running step")
        say(stop_message(clock.remaining() if clock is not None else None))

    try:
        for sig in previous:
            signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            try:
                signal.signal(sig, old)
            except ValueError:
                pass


_ctrl_c_seen = False
"""Whether this process has had a Ctrl-C (by :func:`exit_on_repeated_ctrl_c` or a run's stop)."""


def exit_on_repeated_ctrl_c(signum: int, frame: Any) -> None:
    """SIGINT handler of a real ``vid2reward`` process outside a run's own handler: the first
    Ctrl-C raises KeyboardInterrupt (so clean-up runs and the CLI says "interrupted"); once one
    has been seen, here or by a run's stop, another ends the process at once with status 130.
    Without it a second Ctrl-C that lands while the first is being handled, or just after a
    stopped run returned, escapes as a bare KeyboardInterrupt (status -2)."""
    global _ctrl_c_seen
    if _ctrl_c_seen:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing left to say
                pass
        os._exit(130)
    _ctrl_c_seen = True
    raise KeyboardInterrupt


def _to_stderr(text: str) -> None:
    # A live dashboard replaces sys.stderr with a proxy that prints above it.
    print(text, file=sys.stderr, flush=True)
