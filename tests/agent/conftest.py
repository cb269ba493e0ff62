"""Fixtures shared by the agent tests."""

import pytest
from openai_server import ScriptedOpenAI


@pytest.fixture
def server(monkeypatch):
    """A scripted local server speaking the OpenAI chat-completions protocol, with the usual
    env vars cleared so nothing reaches a real provider."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with ScriptedOpenAI() as s:
        yield s
