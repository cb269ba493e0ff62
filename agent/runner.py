"""Start, resume and drive a run: run directory, engines, checkpointer, signals, outcome.

The graph does the work; this module owns what lies around it: creating ``runs/<id>/`` with
``run.json``, choosing the engines, the SQLite checkpointer that makes ``resume`` possible,
stopping at a step boundary on SIGINT/SIGTERM, and turning the end into an exit code
(0 finished, 3 stopped by a budget, 1 failed, 130 interrupted).
"""

from __future__ import annotations

import platform
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.sqlite import SqliteSaver

from vid2reward import __version__
from vid2reward.agent.config import RunConfig
from vid2reward.agent.context import RunContext, StopFlag, StopRequested
from vid2reward.agent.engines.base import Critic, Engineer
from vid2reward.agent.graph import build_graph
from vid2reward.agent.interrupts import StepClock, stop_on_signals
from vid2reward.agent.output_dir import make_dirs, remove_created
from vid2reward.agent.run_log import LogEvent, RunFinished, RunLog, RunStarted
from vid2reward.agent.run_record import RunRecord
from vid2reward.agent.training_backend import TrainingBackend
from vid2reward.sim.envs import get_spec
from vid2reward.sim.errors import UserError

EXIT_FINISHED, EXIT_FAILED, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 1, 3, 130
OutcomeStatus = Literal["finished", "budget", "failed", "interrupted", "awaiting_approval"]
"""How a session ended (a run paused for a person's approval is "awaiting_approval")."""


@dataclass
class RunOutcome:
    """How a run (or a session of it) ended."""

    status: OutcomeStatus
    reason: str
    run_dir: Path
    best_similarity: float | None = None

    @property
    def exit_code(self) -> int:
        """0 finished, 3 stopped by a budget or patience, 1 failed, 130 interrupted."""
        return {"finished": EXIT_FINISHED, "budget": EXIT_BUDGET, "awaiting_approval": EXIT_FINISHED,
                "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


def new_run_dir(config: RunConfig, out: Path | None) -> RunRecord:
    """Create the run directory with run.json (config, versions, engine, models)."""
    get_spec(config.env_id)
    if out is None:
        out = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{get_spec(config.env_id).short_name.lower()}"
    if out.is_dir() and any(out.iterdir()):
        raise UserError("the run directory exists and is not empty", where=str(out),
                        fix="choose another --out, or continue it with `vid2reward resume`")
    record = RunRecord(out, created=tuple(make_dirs(out)))
    record.write_info({"run_id": out.name, "config": config.to_json(), "versions": _versions(),
                       "engine": config.engine,
                       "models": {"critic": config.critic, "engineer": config.engineer}})
    return record


def load_run(run_dir: Path) -> tuple[RunRecord, RunConfig, str]:
    """Open an existing run directory (for resume, chat, trace)."""
    record = RunRecord(Path(run_dir))
    if not record.run_json.is_file():
        raise UserError("not a vid2reward run directory (no run.json)", where=str(run_dir),
                        fix="pass a directory made by `vid2reward run`")
    try:
        data = record.read_info()
        config = RunConfig.from_json(data["config"])
        run_id = data["run_id"]
        if not isinstance(run_id, str):
            raise TypeError("run_id is not a string")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"run.json is unreadable ({type(exc).__name__}: {exc})",
                        where=str(record.run_json),
                        fix="restore run.json (its config and run_id), or start a new run") from None
    try:
        get_spec(config.env_id)  # an edited env id fails here, in one line
    except UserError as exc:
        raise UserError(exc.what, where=str(record.run_json), fix=exc.fix) from None
    return record, config, run_id


def make_engines(config: RunConfig) -> tuple[Critic, Engineer]:
    """The critic and engineer for ``config.engine``."""
    if config.engine == "offline":
        from vid2reward.agent.engines.offline import OfflineCritic, OfflineEngineer

        critic = OfflineCritic()
        if config.search == "random":  # the benchmark's ablation (docs/benchmark.md)
            from vid2reward.agent.engines.random_search import RandomSearchEngineer

            return critic, RandomSearchEngineer(config.env_id, seed=config.seed)
        return critic, OfflineEngineer(config.env_id, seed=config.seed)
    if config.engine == "llm":
        from vid2reward.agent.engines.llm import make_llm_engines

        return make_llm_engines(config)
    raise UserError(f"unknown engine '{config.engine}'", where="--engine", fix="use offline or llm")


class RunSession:
    """One open run: its context, compiled graph and checkpointer. ``execute`` drives it to the
    end; the chat session drives it step by step (approve, reject, feedback, rollback).

    Args:
        approve: override ``config.approve_rewards`` (pause before each training) for this session.
        training: where candidates train (default this machine); the caller closes it.
    """

    def __init__(self, paths: RunRecord, config: RunConfig, run_id: str, *, resume: bool = False,
                 listeners: list[Callable[[LogEvent], None]] | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 stop: StopFlag | None = None, engines: tuple[Critic, Engineer] | None = None,
                 approve: bool | None = None, human_feedback: str | None = None,
                 training: TrainingBackend | None = None) -> None:
        critic, engineer = engines or make_engines(config)
        self.human_feedback = human_feedback
        """A person's words (``run --feedback``) for the first edit step of a fresh run."""
        if approve is not None:
            config.approve_rewards = approve
        self.record, self.config, self.run_id = paths, config, run_id
        self.clock = StepClock()  # how long the running step still needs, for a Ctrl-C
        self.ctx = RunContext(run_id=run_id, config=config, record=paths, log=RunLog(paths.root),
                              critic=critic, engineer=engineer, stop=stop or StopFlag(),
                              listeners=[self.clock.on_event, *(listeners or [])],
                              progress=_both(self.clock.on_progress, progress))
        if training is not None:
            self.ctx.training = training
        critic.bind_context(self.ctx)  # LLM engines report model calls, tool calls, fallbacks
        engineer.bind_context(self.ctx)
        self.ctx.begin(RunStarted(run_id=run_id, env_id=config.env_id, engine=config.engine,
                                  config=config.to_json(), resumed=resume))
        self.conn = sqlite3.connect(str(paths.checkpoints), check_same_thread=False)
        self.graph = build_graph(self.ctx, SqliteSaver(self.conn))
        self.thread: dict[str, Any] = {"configurable": {"thread_id": run_id}}

    def close(self) -> None:
        """Close the checkpoint database."""
        self.conn.close()

    def state(self) -> Any:
        """The latest checkpoint (LangGraph StateSnapshot: ``values``, ``next``)."""
        return self.graph.get_state(self.thread)

    def update(self, values: dict[str, Any], as_node: str | None = None) -> None:
        """Change the state at the latest checkpoint, as if ``as_node`` had returned ``values``."""
        self.graph.update_state(self.thread, values, as_node=as_node)

    def advance(self) -> RunOutcome:
        """Run until the graph ends, pauses for approval, or a stop is requested."""
        ctx, paths = self.ctx, self.record
        fresh = not self.state().values
        try:
            with stop_on_signals(ctx.stop, self.clock):
                start = {"iteration": 0, "human_feedback": self.human_feedback}
                for _ in self.graph.stream(start if fresh else None, self.thread,
                                           stream_mode="updates"):
                    if ctx.stop.requested:
                        break
            snapshot = self.state()
        except StopRequested as exc:  # a node stopped at a safe point; resume re-runs it
            ctx.emit(RunFinished(status="interrupted", reason=str(exc)))
            return RunOutcome("interrupted", str(exc), paths.root)
        except UserError:
            if fresh and not paths.has_work():
                self.close()
                _remove_new_run(paths)  # nothing worth keeping yet
                raise
            ctx.emit(RunFinished(status="failed", reason="user error (see the message)"))
            raise
        except KeyboardInterrupt:
            ctx.emit(RunFinished(status="interrupted", reason="aborted by a second Ctrl-C"))
            return RunOutcome("interrupted", "aborted", paths.root)
        except Exception as exc:
            if ctx.stop.requested:
                # The signal reached every process of the terminal's group: an error that
                # follows it (a worker's broken pipe during start-up) is the interrupt's.
                reason = f"{ctx.stop.reason} ({type(exc).__name__} in the running step)"
                ctx.emit(RunFinished(status="interrupted", reason=reason))
                return RunOutcome("interrupted", reason, paths.root)
            ctx.emit(RunFinished(status="failed", reason=f"{type(exc).__name__}: {exc}"))
            raise
        return self._outcome(snapshot)

    def _outcome(self, snapshot: Any) -> RunOutcome:
        ctx, paths = self.ctx, self.record
        state = snapshot.values
        best = state.get("best") or {}
        if snapshot.next:
            if ctx.stop.requested:
                ctx.emit(RunFinished(status="interrupted", reason=ctx.stop.reason))
                return RunOutcome("interrupted", ctx.stop.reason, paths.root, best.get("similarity"))
            return RunOutcome("awaiting_approval", f"paused before {snapshot.next[0]}", paths.root,
                              best.get("similarity"))
        reason = state.get("stop_reason") or "done"
        status: Literal["finished", "failed", "budget"] = "finished" if reason.startswith("all ") \
            else ("failed" if reason.startswith("no candidate") else "budget")
        ctx.emit(RunFinished(status=status, reason=reason, best_candidate_id=best.get("id"),
                             best_similarity=best.get("similarity")))
        return RunOutcome(status, reason, paths.root, best.get("similarity"))

    def checkpoint_after_iteration(self, iteration: int) -> Any:
        """The checkpoint just after ``keep_best`` of ``iteration`` (the point to fork from)."""
        for snapshot in self.graph.get_state_history(self.thread):
            values = snapshot.values
            if values.get("iteration") == iteration and snapshot.next in (("engineer",), ("train_final",)) \
                    and len(values.get("history", [])) == iteration:
                return snapshot
        return None


def execute(paths: RunRecord, config: RunConfig, run_id: str, *, resume: bool = False,
            listeners: list[Callable[[LogEvent], None]] | None = None,
            progress: Callable[[str, int, int], None] | None = None,
            stop: StopFlag | None = None, engines: tuple[Critic, Engineer] | None = None,
            human_feedback: str | None = None, training: TrainingBackend | None = None,
            ) -> RunOutcome:
    """Run (or resume) the graph until it ends, pauses for approval, or is stopped
    (``human_feedback``: a person's words for the first edit step of a fresh run)."""
    session = RunSession(paths, config, run_id, resume=resume, listeners=listeners,
                         progress=progress, stop=stop, engines=engines, human_feedback=human_feedback,
                         training=training)
    try:
        return session.advance()
    finally:
        session.close()


def _remove_new_run(paths: RunRecord) -> None:
    """Undo :func:`new_run_dir` for a run that failed before any work: the directories it
    created, or, in an empty directory the user gave, only what the run wrote there."""
    if paths.root in paths.created:
        shutil.rmtree(paths.root, ignore_errors=True)
        remove_created(list(paths.created))
    else:
        for item in paths.root.iterdir():  # it was empty when the run began
            shutil.rmtree(item) if item.is_dir() else item.unlink()


def _both(first: Callable[[str, int, int], None],
          second: Callable[[str, int, int], None] | None) -> Callable[[str, int, int], None]:
    if second is None:
        return first

    def both(candidate: str, done: int, total: int) -> None:
        first(candidate, done, total)
        second(candidate, done, total)

    return both


def _versions() -> dict[str, str]:
    import gymnasium
    import langgraph.version
    import mujoco
    import stable_baselines3
    import torch

    return {"vid2reward": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "sb3": stable_baselines3.__version__, "mujoco": mujoco.__version__,
            "gymnasium": gymnasium.__version__, "langgraph": langgraph.version.__version__}
