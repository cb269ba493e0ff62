"""One line per run of a folder (``vid2reward runs``), read from each run's record and log.

A run directory that cannot be read (half-written, foreign, from a newer vid2reward) gives a
row that says "unreadable" and why; one bad run never hides the others.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vid2reward.agent.run_log import (
    EVENTS_FILE,
    IterationFinished,
    RolledBack,
    RunFinished,
    RunStarted,
    read_events,
)
from vid2reward.agent.run_record import RunRecord
from vid2reward.sim.falls import fall_count


@dataclass(frozen=True)
class RunRow:
    """What ``vid2reward runs`` shows of one run."""

    id: str
    """The run directory's name."""
    path: str
    env: str = ""
    engine: str = ""
    """Engine (and models), then the expert video's source."""
    status: str = ""
    """finished, budget, failed, interrupted (from the log), unfinished (running, or killed:
    resume continues it; with the time since its last event), or unreadable."""
    iterations: int | None = None
    best_similarity: float | None = None
    final_evaluation: str = ""
    """The final policy's return ± std and fall rate, when the run trained one."""
    started: float | None = None
    """Seconds since the epoch."""
    problem: str = ""
    """Why the run is unreadable."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)

    def cells(self) -> list[str]:
        """The row as text, in :data:`COLUMNS` order."""
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started)) \
            if self.started is not None else "—"
        if self.status == "unreadable":
            # The reason goes where the widest column is.
            return [self.id, "—", self.problem, "unreadable", "—", "—", "—", started]
        return [self.id, self.env or "—", self.engine or "—", self.status or "—",
                "—" if self.iterations is None else str(self.iterations),
                "—" if self.best_similarity is None else f"{self.best_similarity:.3f}",
                self.final_evaluation or "—", started]


COLUMNS = ("run", "env", "engine · video", "status", "iter", "best sim", "final return",
           "started")


def is_run_dir(path: Path) -> bool:
    """Whether a directory looks like a run (even a broken one): run.json, events.jsonl or
    the checkpoints of one."""
    record = RunRecord(path)
    return path.is_dir() and (record.is_run() or record.checkpoints.is_file()
                              or (path / EVENTS_FILE).is_file())


def list_runs(folder: Path) -> list[RunRow]:
    """A row for every run directory directly inside ``folder``, oldest first."""
    rows = [run_row(p) for p in sorted(folder.iterdir()) if is_run_dir(p)]
    return sorted(rows, key=lambda r: (r.started is None, r.started or 0.0, r.id))


def run_row(path: Path) -> RunRow:
    """The row of one run; anything unreadable gives an "unreadable" row, never an error."""
    try:
        return _read_row(path)
    except Exception as exc:  # noqa: BLE001 - a broken run must not stop the listing
        what = _problem(exc)
        try:
            started: float | None = path.stat().st_mtime
        except OSError:
            started = None
        return RunRow(id=path.name, path=str(path), status="unreadable", started=started,
                      problem=what)


def _problem(exc: Exception) -> str:
    """Why a run could not be read, in a few words."""
    if isinstance(exc, json.JSONDecodeError):
        return "run.json is not valid JSON (half-written?)"
    if isinstance(exc, KeyError | TypeError):
        return f"run.json lacks {exc} (not a vid2reward run?)" if isinstance(exc, KeyError) \
            else "run.json has an unexpected shape"
    if isinstance(exc, OSError):
        return f"cannot read it: {exc.strerror or exc}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:80]


def _read_row(path: Path) -> RunRow:
    record = RunRecord(path)
    if not record.is_run():
        raise ValueError("no run.json")
    info = record.read_info()
    config = record.config()
    events = read_events(path)
    started = next((e.ts for e in events if isinstance(e, RunStarted)), None)
    status, iterations, best = "unfinished", None, None
    for event in events:
        if isinstance(event, RunStarted):
            status = "unfinished"
        elif isinstance(event, RunFinished):
            status, best = event.status, event.best_similarity
        elif isinstance(event, IterationFinished):
            iterations, best = event.iteration, event.run_best_similarity
        elif isinstance(event, RolledBack):
            iterations = event.iteration
    if status == "unfinished" and events:  # running, or killed: how long since it last spoke
        status += f", last event {_age(time.time() - events[-1].ts)} ago"
    summary = record.best_summary() or {}
    if summary.get("best_similarity") is not None and status != "unfinished":
        best = summary["best_similarity"]
    final = (summary.get("final_training") or {}).get("evaluation")
    final_text = ""
    if isinstance(final, dict):
        final_text = (f"{final['env_return_mean']:.0f} ± {final['env_return_std']:.0f}, "
                      + (f"fell {fall_count(final['fall_rate'], final['episodes'])}"
                         if isinstance(final.get("episodes"), int) and final["episodes"] > 0
                         else f"fell {final['fall_rate']:.0%}"))
    models = info.get("models") or {}
    engine = str(info.get("engine") or config.engine)
    named = [f"{role} {m}" for role, m in models.items() if m] if isinstance(models, dict) else []
    if named:
        engine += f" ({', '.join(named)})"
    return RunRow(id=path.name, path=str(path), env=config.env_id,
                  engine=f"{engine} · {_source(config.video)}" if config.video else engine,
                  status=status, iterations=iterations, best_similarity=best,
                  final_evaluation=final_text,
                  started=started if started is not None else record.run_json.stat().st_mtime)


def _age(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h``, ``2 days``."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def _source(video: str) -> str:
    """A short name of the expert video: a URL's host and path, a file's name."""
    url = urlparse(video)
    if url.scheme in ("http", "https"):
        return f"{url.netloc}{url.path}"[:48]
    return Path(video).name
