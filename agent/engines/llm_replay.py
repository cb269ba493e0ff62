"""Re-run an LLM run with no key and no network: every model call answered from its log.

Each ``llm_usage`` event of a run's events.jsonl holds the request a role sent and the reply it
got (text and tool calls). :class:`ReplayLog` queues them per role, in order;
:class:`ReplayChatModel` stands in for ``ChatOpenAI`` and answers a role's next call with the
next logged reply, after checking that the request matches the logged one. A request that does
not match (a different prompt, program, tool result or number of messages) is a divergence:
:class:`ReplayDiverged` says where, and the run stops rather than answer the wrong question.

Calls the server refused for a named cause (a model without image input) are logged with that
refusal and refused again here, so the run takes the same turn.

What "matches" means: the same messages in the same order, with the same roles, text, tool
calls and images, where numbers may differ (tool-call ids the server made up, timings a tool
reports, the size of a re-rendered image, training statistics of a re-trained candidate) —
numbers change when training runs again on another machine, words and structure do not.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages

from vid2reward.agent.engines.llm_client import ImagesNotSupported, RequestRefused, logged_message
from vid2reward.agent.run_log import LLMUsage, read_events
from vid2reward.sim.errors import UserError

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class ReplayDiverged(UserError):
    """The replayed run asked a model something the recorded run did not."""


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A logged message as replay compares it: numbers masked, tool-call ids dropped."""
    calls = [{"name": c.get("name"), "args": _NUMBER.sub("#", json.dumps(c.get("args"), sort_keys=True))}
             for c in message.get("tool_calls", []) or []]
    return {"role": message.get("role"), "text": _NUMBER.sub("#", str(message.get("text", ""))),
            "tool_calls": calls}


class ReplayLog:
    """The logged model calls of one run, per role and in order.

    Raises:
        UserError: the directory holds no logged model call (not an LLM run, or a log written
            before requests were kept).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.calls: dict[str, deque[LLMUsage]] = defaultdict(deque)
        self.answered: dict[str, int] = defaultdict(int)
        for event in read_events(self.run_dir):
            if isinstance(event, LLMUsage) and event.request:
                self.calls[event.role].append(event)
        if not self.calls:
            raise UserError("the run's log holds no model call to replay", where=str(self.run_dir),
                            fix="replay an --engine llm run recorded by this version (its "
                                "events.jsonl keeps every request and reply)")

    def remaining(self) -> dict[str, int]:
        """Logged calls not replayed yet, per role."""
        return {role: len(q) for role, q in self.calls.items() if q}

    def answer(self, role: str, messages: Sequence[BaseMessage]) -> AIMessage:
        """The logged reply to this role's next call, if ``messages`` is the logged request.

        Raises:
            ReplayDiverged: no call of ``role`` is left, or the request differs from the log's.
        """
        queue = self.calls.get(role)
        number = self.answered[role] + 1
        where = f"{self.run_dir}/events.jsonl ({role} call {number})"
        fix = ("replay with the vid2reward version, prompts and inputs of the recorded run "
               "(run.json has its versions), or run it live with a model")
        if not queue:
            raise ReplayDiverged(f"replay diverged: the {role} asks a call the recorded run never "
                                 f"made (it made {self.answered[role]})", where=where, fix=fix)
        logged = queue[0]
        now = [logged_message(m) for m in convert_to_messages(list(messages))]
        difference = _first_difference(logged.request, now)
        if difference is not None:
            raise ReplayDiverged(f"replay diverged: the {role}'s request differs from the log's "
                                 f"({difference})", where=where, fix=fix)
        queue.popleft()
        self.answered[role] = number
        return _reply(logged, number)


def _first_difference(logged: list[Any], now: list[dict[str, Any]]) -> str | None:
    """Where two requests differ, in words (None: they match)."""
    for i, (a, b) in enumerate(zip(logged, now, strict=False)):
        ca, cb = comparable(a if isinstance(a, dict) else {}), comparable(b)
        for key in ("role", "tool_calls", "text"):
            if ca[key] != cb[key]:
                return (f"message {i + 1} ({cb['role']}): {key} was "
                        f"{_snippet(ca[key], cb[key])!r}, now {_snippet(cb[key], ca[key])!r}")
    if len(logged) != len(now):
        return f"{len(now)} messages, the log has {len(logged)}"
    return None


def _snippet(value: Any, other: Any, width: int = 60) -> str:
    """``value`` around its first difference from ``other``."""
    a, b = str(value), str(other)
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, at - width // 2)
    return ("…" if start else "") + a[start:start + width] + ("…" if start + width < len(a) else "")


def _reply(logged: LLMUsage, number: int) -> AIMessage:
    """The logged reply as the model's answer; a logged refusal (e.g. no image input) is
    raised again, so the run takes the same turn it took then."""
    response = logged.response
    if response.get("refused"):
        error = ImagesNotSupported if response.get("images_not_supported") else RequestRefused
        raise error(str(response["refused"]), where=logged.role, fix=str(response.get("fix") or ""),
                    exit_code=2)
    logged_calls = response.get("tool_calls")
    calls = [{"name": c["name"], "args": c.get("args") or {}, "id": f"replay_{number}_{i}",
              "type": "tool_call"}
             for i, c in enumerate(logged_calls if isinstance(logged_calls, list) else [])
             if isinstance(c, dict)]
    usage = {"input_tokens": logged.input_tokens, "output_tokens": logged.output_tokens,
             "total_tokens": logged.input_tokens + logged.output_tokens}
    return AIMessage(content=str(response.get("text", "")), tool_calls=calls,
                     usage_metadata=usage)  # type: ignore[arg-type]


class ReplayChatModel:
    """Stands in for a role's ``ChatOpenAI``: ``bind_tools``/``bind`` keep nothing (the log
    holds the answers), ``invoke`` answers from the :class:`ReplayLog`."""

    def __init__(self, log: ReplayLog, role: str) -> None:
        self.log = log
        self.role = role

    def bind_tools(self, tools: Any, **kwargs: Any) -> ReplayChatModel:
        """The model itself: tools change what a live model may answer, not the log."""
        return self

    def bind(self, **kwargs: Any) -> ReplayChatModel:
        """The model itself (response formats and tool choices are in the logged reply)."""
        return self

    def invoke(self, messages: Sequence[BaseMessage], *args: Any, **kwargs: Any) -> AIMessage:
        """The logged reply to ``messages`` (see :meth:`ReplayLog.answer`)."""
        return self.log.answer(self.role, messages)
