"""A scripted OpenAI chat-completions server on 127.0.0.1 for testing the LLM engine.

Replies are queued per model name (the critic and the engineer use different models, so each
role has its own script); every request is recorded so tests can check what was sent. A reply
can be a normal message, tool calls, an HTTP error, or a delay (longer than the client's
timeout) before its reply. An empty queue answers 500 with "script exhausted", which the
engine retries and then reports, so a test with too few replies fails loudly.

    with ScriptedOpenAI() as server:
        server.script("critic-vlm", Reply.json({...}))
        config = RunConfig(engine="llm", base_url=server.base_url, critic="critic-vlm", ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer to one request."""

    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(tool name, arguments as raw JSON text: it may be deliberately malformed)."""
    status: int = 200
    delay: float = 0.0
    """Seconds to wait before answering (beyond the client's timeout: a timeout)."""
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (100, 20)

    @classmethod
    def text(cls, text: str) -> Reply:
        """A plain assistant message."""
        return cls(content=text)

    @classmethod
    def json(cls, obj: Any) -> Reply:
        """An assistant message whose content is ``obj`` as JSON (structured output)."""
        return cls(content=json.dumps(obj))

    @classmethod
    def calls(cls, *calls: tuple[str, Any]) -> Reply:
        """Tool calls; a str argument is sent as is (to send malformed JSON), else dumped."""
        return cls(tool_calls=[(name, args if isinstance(args, str) else json.dumps(args))
                               for name, args in calls])

    @classmethod
    def error(cls, status: int, message: str = "scripted failure") -> Reply:
        """An HTTP error with an OpenAI-style error body (429s say retry after 0 s)."""
        headers = {"retry-after": "0"} if status == 429 else {}
        return cls(content=message, status=status, headers=headers)


class ScriptedOpenAI:
    """The server: ``script(model, *replies)`` queues replies; ``requests`` records bodies."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        """The endpoint to give ChatOpenAI (``.../v1``)."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for requests naming ``model``."""
        with self.lock:
            self.queues[model].extend(replies)

    def remaining(self, model: str) -> int:
        """Replies not yet used for ``model``."""
        with self.lock:
            return len(self.queues[model])

    def sent(self, model: str) -> list[dict[str, Any]]:
        """Every request body that named ``model``, in order."""
        with self.lock:
            return [r for r in self.requests if r.get("model") == model]

    def __enter__(self) -> ScriptedOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            queue = self.queues[body.get("model", "")]
            return queue.popleft() if queue else Reply.error(500, "script exhausted")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._next(body)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.content,
                                                        "type": "scripted", "code": None}},
                               reply.headers)
                    return
                self._send(200, _completion(body.get("model", ""), reply))

            def _send(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        return Handler


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}_{int(time.monotonic() * 1e6)}", "type": "function",
             "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(reply.tool_calls)]
    prompt, completion = reply.usage
    return {"id": f"chatcmpl-{int(time.time() * 1e6)}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def image_parts(body: dict[str, Any]) -> list[str]:
    """The image URLs (data: URLs) in a request's user messages."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls += [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    return urls


def tool_names(body: dict[str, Any]) -> list[str]:
    """The tools a request offered the model."""
    return [t["function"]["name"] for t in body.get("tools", [])]
