"""Reading what models really answer: JSON in fences or prose, tool calls written as text.

Real models, small local ones especially, wrap JSON in markdown fences, surround it with
prose, and, behind llama.cpp or Ollama, often write their tool calls as JSON inside the
message instead of the API's ``tool_calls``. These pure functions find what is meant.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.tools import BaseTool

_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)


def json_text(text: str) -> str:
    """The JSON in a reply: the reply itself when it parses; else the inside of the first
    fence holding an object (models add ```json fences even when asked not to; a ```python
    fence *inside* a JSON string must not be taken for one); else the span from the first
    '{' to the last '}'."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            json.loads(stripped)
            return stripped
        except ValueError:
            pass
    for fenced in _FENCE.finditer(text):
        inner = fenced.group(1).strip()
        if inner.startswith("{"):
            text = inner
            break
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else text


_TAGGED_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def content_tool_calls(text: str, tool_names: set[str]) -> list[dict[str, Any]]:
    """Tool calls a model wrote as JSON inside its message, as LangChain tool calls.

    Small local models behind llama.cpp or Ollama often answer a tool-enabled request with
    text such as ``<tool_call>{"name": "test_reward", "arguments": {}}</tool_call>`` (Qwen,
    Hermes), ``{"name": ..., "parameters": {...}}`` (Llama 3.x), a ```json fence around either,
    or a list of them. Only objects naming one of ``tool_names`` count; arguments given as a
    JSON string are decoded. Returns [] when the text holds no such call."""
    if not text or not tool_names:
        return []
    pieces = _TAGGED_CALL.findall(text) or [m.group(1) for m in _FENCE.finditer(text)] or [text]
    calls: list[dict[str, Any]] = []
    for piece in pieces:
        for obj in _json_values(piece):
            for item in obj if isinstance(obj, list) else [obj]:
                call = _as_tool_call(item, tool_names)
                if call is not None:
                    calls.append({**call, "id": f"content_call_{len(calls)}", "type": "tool_call"})
    return calls


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object or array in ``text``, left to right."""
    decoder, i = json.JSONDecoder(), 0
    values: list[Any] = []
    while True:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return values
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        values.append(value)
        i = end


def _as_tool_call(item: Any, tool_names: set[str]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
        item = item["function"]
    name = item.get("name")
    args = item.get("arguments", item.get("parameters", item.get("args", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if name not in tool_names or not isinstance(args, dict):
        return None
    return {"name": name, "args": args}


def tool_name(tool: BaseTool | dict[str, Any]) -> str:
    """The name of a tool as offered to the model (a LangChain tool or an OpenAI tool dict)."""
    if isinstance(tool, dict):
        return str(tool.get("function", tool).get("name", ""))
    return tool.name
