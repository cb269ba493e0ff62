"""The run log: ``events.jsonl``, a typed, versioned, append-only file format.

One pydantic model per event kind, told apart by ``kind``; every line carries ``version``, an
``id``, a ``parent`` (the event it happened inside: a node's events point to its
``node_started``, a node to its session's ``run_started``) and a timestamp. Writers append
through :class:`RunLog`; every reader (the trace viewer, ``--json``, benchmarks, tests) goes
through :func:`read_events`, which migrates older versions and refuses newer ones in one line.
Nothing else parses the file.

Versions: 1 had no ids or parents (read with ``line-N`` ids); 2 adds them, and each model
call's request and response in ``llm_usage``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, TypeAdapter, ValidationError

from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.sim.errors import UserError

LOG_VERSION = 2
EVENTS_FILE = "events.jsonl"


def new_event_id() -> str:
    """A fresh event id (random: ids must stay unique across resumed sessions)."""
    return uuid.uuid4().hex[:16]


class LogEvent(BaseModel):
    """What every event of the log carries."""

    version: int = LOG_VERSION
    id: str = Field(default_factory=new_event_id)
    parent: str | None = Field(default=None, description="id of the event it happened inside")
    ts: float = Field(default_factory=time.time, description="seconds since the epoch")


class RunStarted(LogEvent):
    """A run began (or resumed: ``resumed`` is True)."""

    kind: Literal["run_started"] = "run_started"
    run_id: str
    env_id: str
    engine: str
    config: dict[str, Any]
    resumed: bool = False


class NodeStarted(LogEvent):
    """A graph node began."""

    kind: Literal["node_started"] = "node_started"
    node: str
    iteration: int


class NodeFinished(LogEvent):
    """A graph node ended; ``summary`` is one line for people."""

    kind: Literal["node_finished"] = "node_finished"
    node: str
    iteration: int
    seconds: float
    summary: str = ""


class MessageEvent(LogEvent):
    """A chain-rule message: critic's VisualFeedback, engineer's RewardFeedback, an audit."""

    kind: Literal["message"] = "message"
    sender: Literal["critic", "engineer", "auditor", "human"]
    message: Annotated[VisualFeedback | RewardFeedback | EditAudit, Field(discriminator="kind")]


class ToolCall(LogEvent):
    """An agent called a tool."""

    kind: Literal["tool_call"] = "tool_call"
    agent: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str = Field(default="", description="bounded text of the result")
    error: str | None = None
    seconds: float = 0.0


class TrainingSummary(LogEvent):
    """A candidate finished training (or was found in the cache)."""

    kind: Literal["training_summary"] = "training_summary"
    iteration: int
    candidate_id: str
    reward_sha256: str
    status: Literal["finished", "time_limit", "failed"]
    steps: int
    wall_seconds: float
    steps_per_second: float | None = None
    env_return_mean: float | None = None
    episode_length_mean: float | None = None
    components: dict[str, dict[str, float]] = Field(default_factory=dict)
    cached: bool = False
    failure: str | None = None


class CandidateEvaluated(LogEvent):
    """A candidate's clip was rendered and measured."""

    kind: Literal["candidate_evaluated"] = "candidate_evaluated"
    iteration: int
    candidate_id: str
    similarity: float | None
    clip: str | None = None
    features: dict[str, float] = Field(default_factory=dict)
    episodes: int | None = Field(default=None, description="evaluation episodes rendered")
    fell: int | None = Field(default=None, description="how many of them ended in a fall")
    fall_seconds: list[float] = Field(default_factory=list, description="when each fall came")
    similarity_spread: float | None = Field(
        default=None, description="std of the similarity over the episodes: the critic's noise")


class Calibrated(LogEvent):
    """The pixel -> physical fit on the learner clips so far (and a 3D body's probe clips;
    ``tools/calibration.py``) and the expert's values read through it."""

    kind: Literal["calibrated"] = "calibrated"
    iteration: int
    clips: int
    probe_clips: int = Field(default=0, description="probe clips of a 3D body carried sideways "
                                                    "and turning (tools/direction_probe.py) in the fit")
    fits: list[dict[str, JsonValue]] = Field(
        default_factory=list, description="per quantity: slope, intercept, points, r2, residual, "
                                          "usable, expert_pixel, expert_value, unit")


class RewardChecked(LogEvent):
    """A proposed program scored on rollouts the run already has, before any training: does
    its return rank the rollouts the way the critic does?"""

    kind: Literal["reward_checked"] = "reward_checked"
    iteration: int
    candidate_id: str
    agreement: float | None = Field(description="rank correlation of program return and "
                                                "similarity over the rollouts (-1..1)")
    rollouts: int
    verdict: Literal["agrees", "disagrees", "unknown"]
    detail: str = ""


class LLMUsage(LogEvent):
    """One model call: what the model was sent, what it answered, and the tokens and money it
    used (images are logged as their size, not their bytes)."""

    kind: Literal["llm_usage"] = "llm_usage"
    role: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float = 0.0
    request: list[dict[str, JsonValue]] = Field(default_factory=list,
                                                description="the messages sent, in order")
    response: dict[str, JsonValue] = Field(default_factory=dict,
                                           description="the reply: text and tool calls")


class IterationFinished(LogEvent):
    """An iteration ended: its best candidate and the run's best so far."""

    kind: Literal["iteration_finished"] = "iteration_finished"
    iteration: int
    best_candidate_id: str | None
    iteration_best_similarity: float | None
    run_best_similarity: float | None
    seconds: dict[str, float] = Field(default_factory=dict, description="time split by phase")


class RunFinished(LogEvent):
    """The run ended."""

    kind: Literal["run_finished"] = "run_finished"
    status: Literal["finished", "budget", "failed", "interrupted"]
    reason: str
    best_candidate_id: str | None = None
    best_similarity: float | None = None


class RolledBack(LogEvent):
    """A person rolled the run back (chat /rollback): it goes on from the end of ``iteration``;
    later iterations were moved aside (``abandoned``) and best/ rewritten from what remains."""

    kind: Literal["rolled_back"] = "rolled_back"
    iteration: int
    abandoned: list[str] = Field(default_factory=list)
    best_candidate_id: str | None = None


Event = Annotated[
    RunStarted | NodeStarted | NodeFinished | MessageEvent | ToolCall | TrainingSummary
    | CandidateEvaluated | Calibrated | RewardChecked | LLMUsage | IterationFinished
    | RunFinished | RolledBack,
    Field(discriminator="kind"),
]
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


class RunLog:
    """Appends events to ``<run_dir>/events.jsonl``; each line is flushed as it is written so a
    viewer following the file (or a crash) sees every finished event."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: LogEvent) -> None:
        """Append one event."""
        line = event.model_dump_json()
        with self.path.open("a+b") as f:
            if f.tell() > 0:  # after a line torn by a crash, start a new line: lose only that one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write((line + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def read_events(run_dir: str | Path, *, strict: bool = False) -> list[Any]:
    """Every event of a run, in order. Unreadable lines (a torn last line after a crash
    mid-write, binary garbage, an edit by hand) are skipped unless ``strict``; use
    :func:`read_event_log` to learn which."""
    events, skipped = read_event_log(run_dir)
    if strict and skipped:
        raise ValueError(f"{Path(run_dir) / EVENTS_FILE}:{skipped[0]}: not a vid2reward event")
    return events


def read_event_log(run_dir: str | Path) -> tuple[list[Any], list[int]]:
    """``(events, skipped)``: every readable event in order, and the 1-based numbers of the
    non-blank lines that are not an event (readers must say they skipped them)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        return [], []
    events, skipped = [], []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            events.append(_EVENT.validate_python(_migrate(data, number, path)))
        except (ValueError, ValidationError):  # UnicodeDecodeError is a ValueError
            skipped.append(number)
    return events, skipped


def _migrate(data: dict[str, Any], number: int, path: Path) -> dict[str, Any]:
    """An event line of any known version as the current models read it.

    Raises:
        UserError: the line was written by a newer vid2reward (its version is unknown here).
    """
    version = data.get("version", 1)
    if isinstance(version, int) and version > LOG_VERSION:
        raise UserError(f"{EVENTS_FILE} is log version {version}; this vid2reward reads up to "
                        f"{LOG_VERSION}", where=f"{path}:{number}",
                        fix="upgrade vid2reward to read this run")
    if version == 1:  # no ids: the line number names the event, and nothing has a parent
        data = {**data, "id": f"line-{number}"}
    return data
