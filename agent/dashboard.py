"""The live terminal view of a run: what is happening now, and a summary at the end.

It listens to the run's events (the same ones written to events.jsonl) and to training
progress; it never reads state the log does not carry.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from vid2reward.agent.config import RunConfig
from vid2reward.agent.run_log import (
    IterationFinished,
    LLMUsage,
    LogEvent,
    NodeFinished,
    NodeStarted,
    TrainingSummary,
)
from vid2reward.agent.run_record import RunRecord
from vid2reward.agent.runner import RunOutcome
from vid2reward.agent.trace.cells import shorten
from vid2reward.agent.trace.view import SIMILARITY_SCALE, final_program_lines
from vid2reward.sim.falls import describe_falls
from vid2reward.tools.gait_comparison import cadence_text, comparison_lines

FINAL = "final"
"""Progress label of the final training (agent/nodes/final.py)."""
FINAL_CHECK = "final check"
"""Progress label of its check: the winner's own reward, trained as long again when the
updated reward's policy falls."""


class RunProgress:
    """What the run has done and how long the rest should take, from its events and training
    progress: the iteration, the candidate in training (k of N), the best similarity, tokens,
    cost, and a whole-run ETA.

    The ETA counts training steps, which dominate a run's time: every candidate of every
    iteration, then the final training and its check. Whether the check trains is known only
    after the final policy's evaluation, so until then the ETA is a range: without the check,
    and with it (:meth:`eta`, the upper end, is what a user can plan on). Steps trained in this
    session set the pace (time per step, everything else included); candidates found in the
    cache are done but set no pace. Once the final training starts the search is over (a budget
    or ``--patience`` may end it early): its untrained candidates no longer count.
    """

    def __init__(self, config: RunConfig, now: Any = time.monotonic) -> None:
        self.config = config
        self.now = now
        self.started = now()
        self.iteration = 0
        self.best: float | None = None
        self.tokens = 0
        self.cost = 0.0
        self.candidate: str | None = None
        self.candidate_done = 0
        self.steps_cached = 0
        self.steps_trained = 0
        """Steps of the search's finished candidates trained in this session."""
        self.finished_candidates: set[str] = set()
        self.finals: dict[str, tuple[int, int]] = {}
        """Progress (done, total) of the final training and of its check, once they start."""
        self.search_over = False
        self.final_over = False

    def on_event(self, event: LogEvent) -> None:
        """Listener for run events."""
        if isinstance(event, NodeStarted):
            self.iteration = max(self.iteration, event.iteration)
            self.search_over = self.search_over or event.node == "train_final"
        elif isinstance(event, NodeFinished) and event.node == "train_final":
            self.final_over = True  # trained (and checked, or not), cached, or skipped
            self.candidate, self.candidate_done = None, 0
        elif isinstance(event, IterationFinished):
            self.best = event.run_best_similarity
        elif isinstance(event, LLMUsage):
            self.tokens += event.input_tokens + event.output_tokens
            self.cost += event.cost_usd
        elif isinstance(event, TrainingSummary) and event.candidate_id not in self.finished_candidates:
            self.finished_candidates.add(event.candidate_id)
            if event.cached:
                self.steps_cached += event.steps
            else:
                self.steps_trained += event.steps
            if event.candidate_id == self.candidate:
                self.candidate, self.candidate_done = None, 0

    def on_progress(self, candidate: str, done: int, total: int) -> None:
        """Training progress of one candidate (or of the final training, or its check)."""
        if candidate in (FINAL, FINAL_CHECK):
            self.finals[candidate] = (done, total)
            self.search_over = True
        self.candidate, self.candidate_done = candidate, done

    def candidate_label(self) -> str:
        """'candidate 2/4 of iteration 3', 'final training', or '' when nothing trains."""
        if self.candidate is None:
            return ""
        if self.candidate == FINAL:
            return "final training"
        if self.candidate == FINAL_CHECK:
            return "final check (the winner's own reward)"
        match = re.match(r"iter-(\d+)/cand-(\d+)$", self.candidate)
        if match is None:
            return self.candidate
        return (f"candidate {int(match.group(2)) + 1}/{self.config.candidates} of iteration "
                f"{int(match.group(1))}")

    def _trained(self) -> int:
        """Steps trained in this session (the pace's basis)."""
        search_now = 0 if self.candidate in (None, FINAL, FINAL_CHECK) else self.candidate_done
        return self.steps_trained + search_now + sum(done for done, _ in self.finals.values())

    def steps_left(self) -> tuple[int, int]:
        """Training steps still to come: (without the final check, with it). The two differ
        while the check may or may not train."""
        cfg = self.config
        search = 0
        if not self.search_over:
            search_now = 0 if self.candidate in (None, FINAL, FINAL_CHECK) else self.candidate_done
            planned = cfg.iterations * cfg.candidates * cfg.steps
            search = max(0, planned - self.steps_cached - self.steps_trained - search_now)
        if self.final_over or cfg.final_steps <= 0:
            return search, search
        if FINAL_CHECK in self.finals:  # the final training is done and its check trains
            check = self._left_of(FINAL_CHECK)
            return search + check, search + check
        final = self._left_of(FINAL)
        return search + final, search + final + cfg.final_steps  # the check trains as long

    def _left_of(self, label: str) -> int:
        if label not in self.finals:
            return self.config.final_steps
        done, total = self.finals[label]
        return max(0, total - done)

    def eta_range(self) -> tuple[float, float] | None:
        """Seconds the whole run should still take, (without the final check, with it); None
        before any step was trained."""
        trained = self._trained()
        if trained <= 0:
            return None
        per_step = (self.now() - self.started) / trained
        low, high = self.steps_left()
        return per_step * low, per_step * high

    def eta(self) -> float | None:
        """Seconds the whole run should still take, counting every training it may still do
        (the final check too, until it is known not to train); None before any step."""
        span = self.eta_range()
        return None if span is None else span[1]

    def eta_text(self) -> str:
        """'-', '3m10s', or '1m05s-3m10s' while the final check may or may not train."""
        span = self.eta_range()
        if span is None:
            return "-"
        low, high = (_clock(s) for s in span)
        return high if low == high else f"{low}-{high}"

    def line(self) -> str:
        """The status as one plain line."""
        cfg = self.config
        elapsed = self.now() - self.started
        best = "-" if self.best is None else f"{self.best:.3f}"
        parts = [f"vid2reward {cfg.env_id}", f"iteration {self.iteration}/{cfg.iterations}"]
        if self.candidate_label():
            parts.append(f"training {self.candidate_label()}")
        parts += [f"best similarity {best} (0..1)", f"tokens {self.tokens}", f"${self.cost:.3f}",
                  f"elapsed {_clock(elapsed)}", f"run ETA {self.eta_text()}"]
        if cfg.wall_clock_limit:
            parts.append(f"time left {_clock(max(0.0, cfg.wall_clock_limit - elapsed))}")
        return "  ".join(parts)


def _clock(seconds: float) -> str:
    """'42s', '3m05s', '1h02m'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class PlainProgress:
    """Progress as plain lines, for output that is not a terminal (a log file, CI, a pipe,
    chat): a line per finished node and iteration, and a training line at most every
    ``every`` seconds (and at each candidate's end), never a redrawn screen."""

    def __init__(self, config: RunConfig, say: Any, every: float = 30.0,
                 now: Any = time.monotonic) -> None:
        self.state = RunProgress(config, now=now)
        self.say = say
        self.every = every
        self.now = now
        self.last_progress = -1e9

    def on_event(self, event: LogEvent) -> None:
        """Listener for run events."""
        self.state.on_event(event)
        if isinstance(event, NodeFinished):
            self.say(f"[{event.iteration}] {event.node} ({event.seconds:.1f}s) {event.summary}")
        elif isinstance(event, TrainingSummary):
            self.say(f"[{event.iteration}] trained {event.candidate_id}: {event.status}, "
                     f"{event.steps} steps" + (" (cached)" if event.cached else "")
                     + f"; run ETA {self.state.eta_text()}")
        elif isinstance(event, IterationFinished):
            self.say(f"[{event.iteration}] iteration done: {self.state.line()}")

    def on_progress(self, candidate: str, done: int, total: int) -> None:
        """Training progress: one line now and then."""
        self.state.on_progress(candidate, done, total)
        if self.now() - self.last_progress >= self.every:
            self.last_progress = self.now()
            self.say(f"  {self.state.candidate_label() or candidate}: {done}/{total} steps; "
                     f"run ETA {self.state.eta_text()}")


class Dashboard:
    """The live view: a rich display (header with iteration, candidate k/N, best similarity,
    tokens, cost, run ETA and time left; training bars; the last node summaries) on a
    terminal, plain progress lines otherwise. ``quiet`` prints nothing until the summary."""

    def __init__(self, config: RunConfig, run_dir: Path, quiet: bool = False,
                 console: Console | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.state = RunProgress(config)
        self.lines: list[str] = []
        self.progress = Progress(TextColumn("  train {task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(), console=self.console)
        self.tasks: dict[str, Any] = {}
        self.live: Live | None = None
        self.plain: PlainProgress | None = None
        if not quiet and not self.console.is_terminal:
            # soft_wrap: one event, one line in a log file, however long
            self.plain = PlainProgress(config, lambda text: self.console.print(
                text, highlight=False, markup=False, soft_wrap=True))

    def __enter__(self) -> Dashboard:
        if not self.quiet and self.plain is None:
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def on_event(self, event: LogEvent) -> None:
        """Listener for run events."""
        self.state.on_event(event)
        if self.plain is not None:
            self.plain.on_event(event)
        if isinstance(event, NodeFinished):
            self.lines.append(shorten(f"[{event.iteration}] {event.node} ({event.seconds:.1f}s) "
                                   f"{event.summary}", 160))
            self.lines = self.lines[-8:]
        elif isinstance(event, TrainingSummary):
            task = self.tasks.get(event.candidate_id)
            if task is not None:
                self.progress.update(task, completed=event.steps, visible=False)
        self._refresh()

    def on_progress(self, candidate: str, done: int, total: int) -> None:
        """Training progress of one candidate."""
        self.state.on_progress(candidate, done, total)
        if self.plain is not None:
            self.plain.on_progress(candidate, done, total)
        if candidate not in self.tasks:
            self.tasks[candidate] = self.progress.add_task(candidate, total=total)
        self.progress.update(self.tasks[candidate], completed=done)
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Group:
        header = Text(self.state.line(), style="bold")
        scale = Text(SIMILARITY_SCALE, style="dim")
        return Group(header, scale, self.progress, Text("\n".join(self.lines), style="dim"))

    def print_summary(self, outcome: RunOutcome) -> None:
        """The final table: iterations with their best similarity, and where things are."""
        out = Console()
        record = RunRecord(outcome.run_dir)
        summary = record.best_summary() or {}
        table = Table(title=f"vid2reward run: {outcome.status} ({outcome.reason})",
                      caption=SIMILARITY_SCALE, caption_justify="left")
        for col in ("iteration", "its best candidate", "its similarity", "run best so far"):
            table.add_column(col, justify="right")
        for h in summary.get("history", []):
            table.add_row(str(h["iteration"]), str(h["best_candidate_id"]),
                          _fmt(h["iteration_best_similarity"]), _fmt(h["run_best_similarity"]))
        out.print(table)
        final = summary.get("final_training")
        if final:
            ev = final["evaluation"]
            out.print(f"final policy (the best reward trained from scratch, {final['steps']:,} steps): "
                      f"{describe_falls(ev['fall_rate'], ev['episodes'], ev.get('fall_seconds') or [])}, episode length "
                      f"{ev['length_mean']:.0f} ± {ev['length_std']:.0f} of {ev['max_steps']}"
                      + (f", {cadence}" if (cadence := cadence_text(ev.get("metrics") or {})) else ""),
                      highlight=False)
            # the same lines as the trace's and `evaluate`'s
            for line in comparison_lines(ev.get("person") or []) + final_program_lines(final):
                out.print(line, highlight=False)
        best_reward = record.best_program_path()
        if best_reward is not None:
            out.print(f"best reward: {best_reward}")
        out.print(f"look at it:  vid2reward trace {outcome.run_dir}")
        if outcome.status in ("interrupted", "failed"):
            out.print(f"continue:    vid2reward resume {outcome.run_dir}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
