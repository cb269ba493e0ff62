"""The live terminal view of a run: what is happening now, and a summary at the end.

It listens to the run's events (the same ones written to events.jsonl) and to training
progress; it never reads state the log does not carry.
"""

from __future__ import annotations

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


class Dashboard:
    """A rich Live display: header (iteration, best similarity, tokens, cost, time left), training
    progress bars, and the last node summaries. ``quiet`` prints nothing until the summary."""

    def __init__(self, config: RunConfig, run_dir: Path, quiet: bool = False,
                 console: Console | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self.iteration = 0
        self.best: float | None = None
        self.tokens = 0
        self.cost = 0.0
        self.lines: list[str] = []
        self.progress = Progress(TextColumn("  train {task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(), console=self.console)
        self.tasks: dict[str, Any] = {}
        self.live: Live | None = None

    def __enter__(self) -> Dashboard:
        if not self.quiet:
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def on_event(self, event: LogEvent) -> None:
        """Listener for run events."""
        if isinstance(event, NodeStarted):
            self.iteration = max(self.iteration, event.iteration)
        elif isinstance(event, NodeFinished):
            self.lines.append(f"[{event.iteration}] {event.node} ({event.seconds:.1f}s) "
                              f"{event.summary}"[:160])
            self.lines = self.lines[-8:]
            if self.quiet:
                return
        elif isinstance(event, IterationFinished):
            self.best = event.run_best_similarity
        elif isinstance(event, LLMUsage):
            self.tokens += event.input_tokens + event.output_tokens
            self.cost += event.cost_usd
        elif isinstance(event, TrainingSummary):
            task = self.tasks.get(event.candidate_id)
            if task is not None:
                self.progress.update(task, completed=event.steps, visible=False)
        self._refresh()

    def on_progress(self, candidate: str, done: int, total: int) -> None:
        """Training progress of one candidate."""
        if candidate not in self.tasks:
            self.tasks[candidate] = self.progress.add_task(candidate, total=total)
        self.progress.update(self.tasks[candidate], completed=done)
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Group:
        cfg = self.config
        elapsed = time.monotonic() - self.started
        left = ""
        if cfg.wall_clock_limit:
            left = f"  time left {max(0.0, cfg.wall_clock_limit - elapsed):.0f}s"
        best = "-" if self.best is None else f"{self.best:.3f}"
        header = Text.from_markup(
            f"[bold]vid2reward[/] {cfg.env_id}  iteration {self.iteration}/{cfg.iterations}  "
            f"best similarity [bold]{best}[/]  tokens {self.tokens}  ${self.cost:.3f}  "
            f"elapsed {elapsed:.0f}s{left}")
        return Group(header, self.progress, Text("\n".join(self.lines), style="dim"))

    def print_summary(self, outcome: RunOutcome) -> None:
        """The final table: iterations with their best similarity, and where things are."""
        out = Console()
        record = RunRecord(outcome.run_dir)
        summary = record.best_summary() or {}
        table = Table(title=f"vid2reward run: {outcome.status} ({outcome.reason})")
        for col in ("iteration", "best candidate", "iteration best", "run best"):
            table.add_column(col, justify="right")
        for h in summary.get("history", []):
            table.add_row(str(h["iteration"]), str(h["best_candidate_id"]),
                          _fmt(h["iteration_best_similarity"]), _fmt(h["run_best_similarity"]))
        out.print(table)
        final = summary.get("final_training")
        if final:
            ev = final["evaluation"]
            out.print(f"final policy (the best reward trained from scratch, {final['steps']:,} steps): fell in "
                      f"{ev['fall_rate']:.0%} of {ev['episodes']} episodes, episode length "
                      f"{ev['length_mean']:.0f} ± {ev['length_std']:.0f} of {ev['max_steps']}")
        best_reward = record.best_program_path()
        if best_reward is not None:
            out.print(f"best reward: {best_reward}")
        out.print(f"look at it:  vid2reward trace {outcome.run_dir}")
        if outcome.status in ("interrupted", "failed"):
            out.print(f"continue:    vid2reward resume {outcome.run_dir}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
