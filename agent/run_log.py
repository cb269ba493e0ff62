"""The run log: ``events.jsonl``, a typed, versioned, append-only file format.

One pydantic model per event kind, told apart by ``kind``; every line carries ``version`` and a
timestamp. Writers append through :class:`RunLog`; every reader (the trace viewer, ``--json``,
benchmarks, tests) goes through :func:`read_events`. Nothing else parses the file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback

LOG_VERSION = 1
EVENTS_FILE = "events.jsonl"


class _Event(BaseModel):
    version: int = LOG_VERSION
    ts: float = Field(default_factory=time.time, description="seconds since the epoch")


class RunStarted(_Event):
    """A run began (or resumed: ``resumed`` is True)."""

    kind: Literal["run_started"] = "run_started"
    run_id: str
    env_id: str
    engine: str
    config: dict[str, Any]
    resumed: bool = False


class NodeStarted(_Event):
    """A graph node began."""

    kind: Literal["node_started"] = "node_started"
    node: str
    iteration: int


class NodeFinished(_Event):
    """A graph node ended; ``summary`` is one line for people."""

    kind: Literal["node_finished"] = "node_finished"
    node: str
    iteration: int
    seconds: float
    summary: str = ""


class MessageEvent(_Event):
    """A chain-rule message: critic's VisualFeedback, engineer's RewardFeedback, an audit."""

    kind: Literal["message"] = "message"
    sender: Literal["critic", "engineer", "auditor", "human"]
    message: Annotated[VisualFeedback | RewardFeedback | EditAudit, Field(discriminator="kind")]


class ToolCall(_Event):
    """An agent called a tool."""

    kind: Literal["tool_call"] = "tool_call"
    agent: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str = Field(default="", description="bounded text of the result")
    error: str | None = None
    seconds: float = 0.0


class TrainingSummary(_Event):
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


class CandidateEvaluated(_Event):
    """A candidate's clip was rendered and measured."""

    kind: Literal["candidate_evaluated"] = "candidate_evaluated"
    iteration: int
    candidate_id: str
    similarity: float | None
    clip: str | None = None
    features: dict[str, float] = Field(default_factory=dict)


class LLMUsage(_Event):
    """Tokens and money one model call used."""

    kind: Literal["llm_usage"] = "llm_usage"
    role: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float = 0.0


class IterationFinished(_Event):
    """An iteration ended: its best candidate and the run's best so far."""

    kind: Literal["iteration_finished"] = "iteration_finished"
    iteration: int
    best_candidate_id: str | None
    iteration_best_similarity: float | None
    run_best_similarity: float | None
    seconds: dict[str, float] = Field(default_factory=dict, description="time split by phase")


class RunFinished(_Event):
    """The run ended."""

    kind: Literal["run_finished"] = "run_finished"
    status: Literal["finished", "budget", "failed", "interrupted"]
    reason: str
    best_candidate_id: str | None = None
    best_similarity: float | None = None


class RolledBack(_Event):
    """A person rolled the run back (chat /rollback): it goes on from the end of ``iteration``;
    later iterations were moved aside (``abandoned``) and best/ rewritten from what remains."""

    kind: Literal["rolled_back"] = "rolled_back"
    iteration: int
    abandoned: list[str] = Field(default_factory=list)
    best_candidate_id: str | None = None


Event = Annotated[
    RunStarted | NodeStarted | NodeFinished | MessageEvent | ToolCall | TrainingSummary
    | CandidateEvaluated | LLMUsage | IterationFinished | RunFinished | RolledBack,
    Field(discriminator="kind"),
]
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


class RunLog:
    """Appends events to ``<run_dir>/events.jsonl``; each line is flushed as it is written so a
    viewer following the file (or a crash) sees every finished event."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: BaseModel) -> None:
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
            events.append(_EVENT.validate_python(json.loads(raw.decode("utf-8"))))
        except (ValueError, ValidationError):  # UnicodeDecodeError is a ValueError
            skipped.append(number)
    return events, skipped
