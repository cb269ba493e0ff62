"""The LLM client: the provider-error table, retries, usage and prices, keys; and the prompt
templates every LLM request is built from."""

from __future__ import annotations

import pytest
from llm_fixtures import llm_config
from openai_server import Reply

from vid2reward.agent.engines.llm import make_llm_engines
from vid2reward.agent.engines.llm_client import (
    LLMSettings,
    ProviderError,
    RoleClient,
    api_key_for,
    json_text,
    make_chat_model,
    price_of,
)
from vid2reward.agent.prompts import PromptError, load_prompt, prompt_names, render
from vid2reward.agent.run_log import LLMUsage, NodeStarted
from vid2reward.agent.trace.load import build_trace
from vid2reward.sim.errors import UserError


def client(server, model="m", **settings) -> RoleClient:
    s = LLMSettings(timeout=1.0, backoff=0.01, retries=2, **settings)
    return RoleClient("critic", model, make_chat_model(model, server.base_url, s), s)


@pytest.mark.parametrize("status,fix", [(400, "accept images"), (401, "OPENAI_API_KEY"),
                                        (404, "ends in /v1")])
def test_client_errors_are_not_retried_and_say_how_to_fix(server, status, fix):
    c = client(server)
    server.script("m", Reply.error(status, "nope"))
    with pytest.raises(ProviderError) as caught:
        c.invoke([("user", "hi")])
    assert len(server.sent("m")) == 1 and fix in caught.value.fix and caught.value.exit_code == 2
    assert "nope" in str(caught.value)


def test_retries_are_bounded(server):
    c = client(server)
    server.script("m", *[Reply.error(503)] * 3)
    with pytest.raises(ProviderError, match="after 3 attempts") as caught:
        c.invoke([("user", "hi")])
    assert len(server.sent("m")) == 3 and caught.value.exit_code == 1
    assert "resume" in caught.value.fix


def test_usage_and_cost_per_call(server):
    c = client(server, model="gpt-4o-mini-2024-07-18")
    server.script("gpt-4o-mini-2024-07-18", Reply(content="hi", usage=(1_000_000, 100_000)))
    c.invoke([("user", "hi")])
    (usage,) = c.calls
    assert (usage.input_tokens, usage.output_tokens) == (1_000_000, 100_000)
    assert usage.cost_usd == pytest.approx(0.15 + 0.06)
    assert price_of("my-local-model") is None
    assert price_of("my-local-model", {"my-local": (1.0, 2.0)}) == (1.0, 2.0)


def test_usage_by_iteration_groups_calls_by_node(tmp_path):
    events = [NodeStarted(node="critique", iteration=1),
              LLMUsage(role="critic", model="m", input_tokens=10, output_tokens=1, cost_usd=0.1),
              NodeStarted(node="engineer", iteration=2),
              LLMUsage(role="engineer", model="m", input_tokens=5, output_tokens=5, cost_usd=0.2),
              LLMUsage(role="engineer", model="m", input_tokens=5, output_tokens=5, cost_usd=0.0)]
    totals = build_trace(tmp_path, events).usage_by_iteration()  # the trace is the one fold
    assert totals[1].input_tokens == 10 and totals[2].calls == 2
    assert totals[2].cost_usd == pytest.approx(0.2)


def test_keys_and_models(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert api_key_for("http://127.0.0.1:1/v1") == "not-needed"
    with pytest.raises(UserError, match="no API key"):
        make_llm_engines(llm_config(None))  # type: ignore[arg-type]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert api_key_for(None) == "sk-test"
    config = llm_config("http://127.0.0.1:1/v1")
    config.critic, config.engineer = None, None
    with pytest.raises(UserError, match="needs a model"):
        make_llm_engines(config)
    assert "sk-test" not in str(config.to_json())
    config.engineer = "only-one"  # serves both roles
    critic, engineer = make_llm_engines(config)
    assert critic.client.model == engineer.client.model == "only-one"  # type: ignore[attr-defined]


def test_json_text_finds_the_object():
    assert json_text('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert json_text('Here it is: {"a": {"b": 2}} hope that helps') == '{"a": {"b": 2}}'


def test_every_prompt_renders():
    names = prompt_names()
    assert {"critic_system", "critic_critique", "engineer_system", "engineer_draft",
            "engineer_propose", "engineer_repair"} <= set(names)
    for name in names:
        template = load_prompt(name)
        text = render(name, **{v: f"<{v}>" for v in template.variables})
        assert all(f"<{v}>" in text for v in template.variables)
        assert "$" not in text.replace("$$", ""), name


def test_render_is_strict():
    with pytest.raises(PromptError, match="missing"):
        render("critic_repair")
    with pytest.raises(PromptError, match="undeclared"):
        render("critic_repair", error="x", extra="y")
    with pytest.raises(PromptError, match="no prompt template"):
        render("no_such_prompt")
