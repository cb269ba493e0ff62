"""One chat model per role over any OpenAI-compatible endpoint, with retries, usage and cost.

:class:`RoleClient` wraps a ``ChatOpenAI`` for one role (critic or engineer) and adds what the
engines need around every call:

- **provider errors in one table** (:data:`PROVIDER_ERRORS`): rate limits, 5xx, timeouts and
  dropped connections are retried with exponential backoff (or the server's Retry-After), a
  bounded number of times; a bad request, a bad key or an unknown model is not retried and
  becomes a :class:`ProviderError` (a ``UserError``) whose ``fix`` says what to change. The
  OpenAI client's own retries are switched off so this table is the only retry policy and every
  retry is visible in the run's notes;
- **usage**: tokens and dollars of every call become an ``LLMUsage`` event and count towards the
  run's budgets (:meth:`RoleClient.bind`); :data:`PRICES` holds USD per 1M tokens, and a model
  not in it costs $0 and is said to;
- **structured output** (:meth:`RoleClient.structured`): the reply is validated against a
  pydantic model here, not inside the client. ``with_structured_output(method="json_schema")``
  validates inside the OpenAI client and raises without the reply on malformed JSON, which
  would lose the raw text a repair round quotes and the call's usage;
- **models as they really answer**: an error body that names a permanent cause (images or
  tools not supported, a context too long, an unknown model) is not retried, even on a 5xx
  (llama.cpp answers 500 for a text-only model sent an image); :class:`ImagesNotSupported`
  lets the critic go on text-only. Tool calls a small local model writes as JSON inside its
  message (llama.cpp, Ollama) become tool calls (:func:`content_tool_calls`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_messages
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, SecretStr, ValidationError

from vid2reward.agent.config import LLMSettings
from vid2reward.agent.engines.base import EventSink
from vid2reward.agent.engines.llm_replies import content_tool_calls, json_text, tool_name
from vid2reward.agent.run_log import LLMUsage
from vid2reward.sim.errors import UserError

M = TypeVar("M", bound=BaseModel)

PRICES: dict[str, tuple[float, float]] = {
    # model name prefix: (USD per 1M input tokens, USD per 1M output tokens), OpenAI list prices
    # as published in 2025; the longest matching prefix wins. Override with RunConfig.llm.prices.
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}


def price_of(model: str, prices: dict[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model`` (longest prefix match), None if unknown."""
    table = {**PRICES, **(prices or {})}
    matches = [p for p in table if model.startswith(p)]
    return tuple(table[max(matches, key=len)]) if matches else None  # type: ignore[return-value]


# -- provider errors -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ErrorRule:
    """What to do about one kind of provider error."""

    error: type[Exception]
    retry: bool
    what: str
    fix: str


PROVIDER_ERRORS: tuple[ErrorRule, ...] = (
    # Order matters: the first rule whose class matches wins (timeouts are connection errors).
    ErrorRule(openai.RateLimitError, True, "the endpoint is rate-limiting requests (429)",
              "wait and `vid2reward resume RUN_DIR`, or lower the load on the endpoint"),
    ErrorRule(openai.APITimeoutError, True, "the model did not answer in time",
              "raise RunConfig.llm.timeout, or use a faster model or endpoint"),
    ErrorRule(openai.APIConnectionError, True, "cannot reach the endpoint",
              "check --base-url (it ends in /v1) and that the server is running"),
    ErrorRule(openai.InternalServerError, True, "the endpoint failed (5xx)",
              "wait and `vid2reward resume RUN_DIR`; the provider may be down"),
    ErrorRule(openai.AuthenticationError, False, "the endpoint rejected the API key (401)",
              "set OPENAI_API_KEY or pass --api-key with a valid key"),
    ErrorRule(openai.PermissionDeniedError, False, "the key may not use this model (403)",
              "use a model the key has access to"),
    ErrorRule(openai.NotFoundError, False, "the endpoint does not know this model or path (404)",
              "check the model name (--critic/--engineer) and that --base-url ends in /v1"),
    ErrorRule(openai.BadRequestError, False, "the endpoint refused the request (400)",
              "the model may not accept images (critic), tools or JSON schemas (engineer); "
              "pick one that does, or set RunConfig.llm.structured_output='function_calling'"),
    ErrorRule(openai.UnprocessableEntityError, False, "the endpoint could not process the "
              "request (422)", "check that the endpoint speaks the OpenAI chat-completions API"),
)


class ProviderError(UserError):
    """An LLM call failed for good: not retryable, or still failing after the retries."""


class RequestRefused(ProviderError):
    """The server refused the request for a cause it named (not retried; logged, so a replay
    refuses it too)."""


class ImagesNotSupported(RequestRefused):
    """The model (or its server) does not accept image input: a critic goes on text-only."""


@dataclass(frozen=True)
class PermanentCause:
    """An error body that names a cause no retry can cure, whatever the HTTP status."""

    pattern: re.Pattern[str]
    what: str
    fix: str


PERMANENT_CAUSES: tuple[PermanentCause, ...] = (
    # Order matters: the first match wins. Bodies as real servers word them: llama.cpp ("image
    # input is not supported", 500), vLLM ("... is not a multimodal model", 400), OpenAI
    # ("image_url is only supported by certain models", 400), Ollama ("does not support images").
    PermanentCause(re.compile(r"(image|vision|multimodal|mmproj)[^.\n]{0,80}(not (be )?supported|"
                              r"unsupported|only supported|not enabled)|not a multimodal|"
                              r"(does not|doesn't|cannot|can't) (support|accept|process|read) "
                              r"(image|vision)", re.I),
                   "the model does not accept images",
                   "use a vision model as --critic (llama.cpp: start the server with --mmproj), "
                   "or go on without images"),
    PermanentCause(re.compile(r"context (length|size|window)|maximum context|too many tokens|"
                              r"exceeds? the (available )?context|prompt is too long", re.I),
                   "the request is longer than the model's context",
                   "use a model with a longer context (llama.cpp: --ctx-size; Ollama: num_ctx), "
                   "or lower RunConfig.llm.engineer_rounds"),
    PermanentCause(re.compile(r"(tool|function)[^.\n]{0,60}(not supported|unsupported|"
                              r"not enabled)|does not support (tools|function)", re.I),
                   "the model or server does not support tool calls",
                   "llama.cpp: start llama-server with --jinja; Ollama: use a model tagged 'tools'; "
                   "or choose another --engineer"),
    PermanentCause(re.compile(r"(response_format|json_schema|json schema|grammar)[^.\n]{0,60}"
                              r"(not supported|unsupported|invalid|failed)", re.I),
                   "the server does not support this structured-output request",
                   "set RunConfig.llm.structured_output='function_calling'"),
    PermanentCause(re.compile(r"(model|model_name)[^.\n]{0,60}(not found|does not exist|unknown|"
                              r"not loaded)|no such model|unknown model", re.I),
                   "the endpoint does not know this model",
                   "check the model name (--critic/--engineer); Ollama: `ollama pull MODEL`"),
    PermanentCause(re.compile(r"\bnot (yet )?supported\b|\bunsupported\b", re.I),
                   "the endpoint does not support part of the request",
                   "see the server's message; docs/llm.md lists what each server supports"),
)
"""Error bodies that name a permanent cause: never retried, reported with their fix."""


def rule_for(exc: BaseException) -> ErrorRule | None:
    """The table's rule for ``exc`` (None: not a provider error, e.g. a bug of ours)."""
    return next((r for r in PROVIDER_ERRORS if isinstance(exc, r.error)), None)


def permanent_cause(exc: BaseException) -> PermanentCause | None:
    """The permanent cause an HTTP error's body names (None: none, or not an HTTP error)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    text = f"{getattr(exc, 'message', '')} {exc.body if exc.body is not None else ''}"
    return next((c for c in PERMANENT_CAUSES if c.pattern.search(text)), None)


def retry_delay(exc: BaseException, attempt: int, backoff: float, max_delay: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's Retry-After when it
    gives one, else ``backoff * 2**attempt``; never more than ``max_delay``."""
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        if header is not None:
            return max(0.0, min(float(header), max_delay))
    except ValueError:  # an HTTP date: fall back to our own backoff
        pass
    return min(backoff * 2 ** attempt, max_delay)


# -- usage ---------------------------------------------------------------------------------------

def api_key_for(base_url: str | None) -> str:
    """OPENAI_API_KEY; with no key but a base URL (a local server), a placeholder key.

    Raises:
        UserError: no key and no base URL (the OpenAI API itself needs a key).
    """
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if base_url:
        return "not-needed"  # local servers (vLLM, Ollama, llama.cpp) ignore the key
    raise UserError("the llm engine has no API key", where="OPENAI_API_KEY",
                    fix="set OPENAI_API_KEY or pass --api-key; for a local server pass --base-url")


@dataclass
class Structured:
    """A structured call's outcome: the validated answer, or why there is none."""

    value: BaseModel | None
    raw: AIMessage
    error: str | None = None


class RoleClient:
    """The chat model of one role, with the error table, usage accounting and JSON answers.

    Args:
        role: "critic" or "engineer" (recorded with every call's usage).
        model: the model name the endpoint knows.
        llm: the chat model (a ``ChatOpenAI``; tests may pass any ``BaseChatModel``).
        settings: retries, backoff and the structured-output method.
    """

    def __init__(self, role: str, model: str, llm: Any, settings: LLMSettings) -> None:
        self.role = role
        self.model = model
        self.llm = llm
        self.settings = settings
        self.sink: EventSink | None = None
        self.calls: list[LLMUsage] = []
        """Usage of every call made (also sent to the sink when one is bound)."""
        self._price = price_of(model, settings.prices)
        self._warned_price = False
        self._warned_content_calls = False

    def bind(self, sink: EventSink | None) -> None:
        """Send usage events, budget counts and notes to ``sink`` from now on."""
        self.sink = sink

    def note(self, text: str) -> None:
        """A one-line note in the running node's summary (dropped when no sink is bound)."""
        if self.sink is not None:
            self.sink.note(f"{self.role}: {text}")

    def invoke(self, messages: Sequence[BaseMessage], *, tools: Sequence[BaseTool | dict] = (),
               **bind: Any) -> AIMessage:
        """One chat completion, retried per :data:`PROVIDER_ERRORS`; usage recorded. When
        ``tools`` were offered and the model wrote its calls as JSON in the message instead,
        they are read as tool calls."""
        runnable = self.llm.bind_tools(list(tools), **bind) if tools else (
            self.llm.bind(**bind) if bind else self.llm)
        try:
            reply = self._with_retries(lambda: runnable.invoke(list(messages)))
        except RequestRefused as exc:  # in the log too: the run went on from this answer
            self._record(messages, AIMessage(content=""), refused=exc)
            raise
        if tools and not reply.tool_calls and not reply.invalid_tool_calls:
            calls = content_tool_calls(reply.text, {tool_name(t) for t in tools})
            if calls:
                if not self._warned_content_calls:
                    self._warned_content_calls = True
                    self.note("the model writes tool calls as JSON in its message; read as tool calls")
                reply = AIMessage(content=reply.content, tool_calls=calls,
                                  usage_metadata=reply.usage_metadata,
                                  response_metadata=reply.response_metadata, id=reply.id)
        self._record(messages, reply)
        return reply

    def structured(self, messages: Sequence[BaseMessage], schema: type[M]) -> Structured:
        """Ask for an answer matching ``schema`` and validate it (no exception on a bad answer:
        ``error`` says what is wrong, in words a repair prompt can quote)."""
        if self.settings.structured_output == "function_calling":
            tool = convert_to_openai_tool(schema)
            reply = self.invoke(messages, tools=[tool], tool_choice=tool["function"]["name"])
            if reply.tool_calls:
                return _validate(schema, reply.tool_calls[0]["args"], reply)
            bad = reply.invalid_tool_calls
            error = (f"the arguments were not valid JSON: {bad[0].get('args')!r}" if bad
                     else "no answer was given (call the answer tool)")
            return Structured(None, reply, error)
        response_format = {"type": "json_schema",
                           "json_schema": {"name": schema.__name__,
                                           "schema": schema.model_json_schema()}}
        reply = self.invoke(messages, response_format=response_format)
        try:
            data = json.loads(json_text(reply.text))
        except ValueError as exc:
            return Structured(None, reply, f"the reply is not valid JSON ({exc})")
        return _validate(schema, data, reply)

    def _with_retries(self, call: Callable[[], AIMessage]) -> AIMessage:
        for attempt in range(self.settings.retries + 1):
            try:
                return call()
            except Exception as exc:
                rule = rule_for(exc)
                if rule is None:
                    raise
                cause = permanent_cause(exc)
                if cause is not None:  # the server said why: retrying would only repeat it
                    error = ImagesNotSupported if cause is PERMANENT_CAUSES[0] else RequestRefused
                    raise error(f"{self.role} model '{self.model}': {cause.what}: {_short(exc)}",
                                where=self.role, fix=cause.fix, exit_code=2) from exc
                if not rule.retry or attempt == self.settings.retries:
                    tries = f" after {attempt + 1} attempts" if rule.retry else ""
                    raise ProviderError(f"{self.role} model '{self.model}': {rule.what}{tries}: "
                                        f"{_short(exc)}", where=self.role, fix=rule.fix,
                                        exit_code=2 if not rule.retry else 1) from exc
                delay = retry_delay(exc, attempt, self.settings.backoff, self.settings.max_delay)
                self.note(f"{rule.what}; retry {attempt + 1}/{self.settings.retries} in {delay:.1f}s")
                time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _record(self, messages: Sequence[BaseMessage], reply: AIMessage,
                refused: RequestRefused | None = None) -> None:
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        cost = 0.0
        if self._price is not None:
            cost = (tokens_in * self._price[0] + tokens_out * self._price[1]) / 1e6
        elif not self._warned_price:
            self._warned_price = True
            self.note(f"no price known for model '{self.model}': its calls count as $0")
        event = LLMUsage(role=self.role, model=self.model, input_tokens=tokens_in,
                         output_tokens=tokens_out, cost_usd=round(cost, 6),
                         request=[logged_message(m) for m in convert_to_messages(list(messages))],
                         # the reply whole: a replay answers with it, a cut program would differ
                         response=logged_message(reply, limit=None) if refused is None else {
                             "role": "ai", "text": "", "refused": refused.what, "fix": refused.fix or "",
                             "images_not_supported": isinstance(refused, ImagesNotSupported)})
        self.calls.append(event)
        if self.sink is not None:
            self.sink.emit(event)
            self.sink.add_usage(tokens_in + tokens_out, cost)


MAX_LOGGED_TEXT = 20_000
"""Longest text of one message kept in the run log (a request holds a page or two)."""


def logged_message(message: BaseMessage, limit: int | None = MAX_LOGGED_TEXT) -> dict[str, Any]:
    """A chat message as the run log keeps it: its role, its text parts (at most ``limit``
    characters; None: whole), each image as a size (a contact sheet's base64 would swamp the
    log; the sheet itself is in the run record), and its tool calls or the call it answers."""
    parts: list[str] = []
    content = message.content if isinstance(message.content, list) else [message.content]
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        elif isinstance(part, dict):
            data = part.get("base64") or part.get("image_url") or ""
            parts.append(f"[{part.get('type', 'part')}: {len(str(data))} characters]")
    text = "\n".join(parts)
    logged: dict[str, Any] = {"role": message.type, "text": text[:limit]}
    if isinstance(message, AIMessage) and message.tool_calls:
        logged["tool_calls"] = [{"name": c["name"], "args": json.loads(json.dumps(c["args"], default=str))}
                                for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        logged["tool_call_id"] = message.tool_call_id
    return logged


def _validate(schema: type[M], data: Any, reply: AIMessage) -> Structured:
    try:
        return Structured(schema.model_validate(data), reply)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                             for e in exc.errors()[:8])
        return Structured(None, reply, f"the JSON does not match the schema: {problems}")


def echo(raw: AIMessage, error: str) -> list[BaseMessage]:
    """The failed answer as it goes back into the conversation before a repair prompt: the
    reply itself and, for tool calls (function-calling answers), a tool result per call with
    the error (the chat API wants every tool call answered)."""
    calls = [c.get("id") for c in [*raw.tool_calls, *raw.invalid_tool_calls]]
    if not calls:
        return [AIMessage(content=raw.text or "(empty reply)")]
    return [raw, *[ToolMessage(content=f"error: {error}", tool_call_id=c or "") for c in calls]]


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]


def make_chat_model(model: str, base_url: str | None, settings: LLMSettings) -> Any:
    """A ``ChatOpenAI`` on the chat-completions API (which every compatible server speaks),
    with the client's own retries off (the error table retries)."""
    from langchain_openai import ChatOpenAI

    kwargs: dict[str, Any] = {}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    return ChatOpenAI(model=model, base_url=base_url, api_key=SecretStr(api_key_for(base_url)),
                      timeout=settings.timeout, max_retries=0, use_responses_api=False, **kwargs)
