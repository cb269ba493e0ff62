"""Real models, as they really answer, reproduced in the scripted OpenAI-protocol server:
programs in markdown fences, tool calls written as JSON inside the message (llama.cpp, Ollama),
a text-only model sent images (llama.cpp answers HTTP 500 "image input is not supported"), a
permanent error that names its cause; and the replay log that answers from a recorded run."""

from __future__ import annotations

import json

import pytest
from llm_fixtures import (
    CRITIC,
    ENGINEER,
    PROGRAM,
    brief,
    candidate,
    critique_json,
    engineer_json,
    expert_view,
    llm_config,
)
from openai_server import Reply, image_parts
from test_llm_engine import engines

from vid2reward.agent.engines.llm_client import ProviderError, json_text
from vid2reward.agent.engines.llm_replay import ReplayDiverged, ReplayLog
from vid2reward.agent.engines.llm_replies import content_tool_calls
from vid2reward.agent.run_log import LLMUsage, RunLog
from vid2reward.tools.program_text import extract_program

FENCED = f"Here is the reward program:\n\n```python\n{PROGRAM}```\n\nIt rewards forward speed."
LLAMA_500 = "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"


def test_programs_come_out_of_fences_and_prose():
    assert extract_program(FENCED) == PROGRAM
    assert extract_program("Sure! Here it is:\n" + PROGRAM + "\nHope this helps.") == PROGRAM
    assert extract_program("```\n" + PROGRAM) == PROGRAM  # a fence never closed
    assert extract_program(PROGRAM) == PROGRAM
    # a JSON answer whose program is fenced inside the string: the JSON is not the fence
    reply = json.dumps(engineer_json(source=f"```python\n{PROGRAM}```"))
    assert json.loads(json_text(reply))["source"].startswith("```python")


def test_engineer_takes_the_program_out_of_a_fence_everywhere(server, tmp_path):
    """The issue's run: a small model wraps a correct program in ```python: in a tool call,
    in its JSON answer, and as its whole answer (no JSON at all)."""
    _, engineer, sink = engines(server)
    server.script(ENGINEER,
                  Reply.calls(("edit_reward", {"kind": "replace_all", "source": FENCED})),
                  Reply.calls(("test_reward", {"source": FENCED})),
                  Reply.text("done"),
                  Reply.json(engineer_json(source=FENCED)))
    answer = engineer.draft(brief(tmp_path))
    edit_result, test_result = (c.result for c in sink.kinds("tool_call"))
    assert "static check: ok" in edit_result and json.loads(test_result)["ok"] is True
    assert answer.programs[0].source == PROGRAM and "fallback" not in answer.notes

    server.script(ENGINEER, Reply.text("done"), Reply.text(FENCED))  # no JSON: the fenced program
    answer = engineer.draft(brief(tmp_path))
    assert answer.programs[0].source == PROGRAM and "fallback" not in answer.notes

    server.script(ENGINEER, Reply.text("done"), Reply.json({"source": FENCED, "fix": "a fence"}))
    assert engineer.repair(brief(tmp_path), "def broken(:\n", "SyntaxError") == PROGRAM


def test_tool_calls_written_as_json_in_the_message_are_tool_calls(server, tmp_path):
    _, engineer, sink = engines(server)
    server.script(ENGINEER,
                  Reply.text('<tool_call>\n{"name": "edit_reward", "arguments": '
                             + json.dumps({"kind": "replace_all", "source": PROGRAM}) + "}\n</tool_call>"),
                  Reply.text('```json\n{"name": "test_reward", "parameters": {}}\n```'),
                  Reply.text("The draft passes."),
                  Reply.json(engineer_json()))
    answer = engineer.draft(brief(tmp_path))
    assert [c.tool for c in sink.kinds("tool_call")] == ["edit_reward", "test_reward"]
    assert answer.programs[0].source == PROGRAM
    # the tool results went back to the model as tool messages answering those calls
    third = server.sent(ENGINEER)[2]["messages"]
    assert [m["role"] for m in third[-4:]] == ["assistant", "tool", "assistant", "tool"]
    assert any("read as tool calls" in n for n in sink.notes)


def test_content_tool_calls_only_name_offered_tools():
    names = {"test_reward"}
    assert content_tool_calls('{"name": "test_reward", "arguments": "{}"}', names)[0]["args"] == {}
    assert content_tool_calls('[{"type": "function", "function": {"name": "test_reward", '
                              '"arguments": {"source": ""}}}]', names)[0]["name"] == "test_reward"
    assert content_tool_calls('{"name": "rm_rf", "arguments": {}}', names) == []
    assert content_tool_calls("I think the reward is fine {not json}", names) == []


def test_a_text_only_critic_is_detected_once_and_critiques_from_the_tables(server, tmp_path):
    critic, _, sink = engines(server)
    server.script(CRITIC, Reply.error(500, LLAMA_500), Reply.text("It hops."),
                  Reply.json(critique_json(similarity=0.4)))
    assert critic.describe_expert(expert_view(tmp_path)) == "It hops."
    fb = critic.critique(expert_view(tmp_path), candidate(tmp_path), feedback_id="fb", iteration=1)
    assert fb.similarity == 0.4 and critic.text_only and critic.fallbacks == 0
    first, second, third = server.sent(CRITIC)  # refused once, never retried as if down
    assert image_parts(first) and not image_parts(second) and not image_parts(third)
    third_text = json.dumps(third["messages"])
    assert "forward_speed" in third_text and "takes text only" in third_text  # the feature table
    said = [n for n in sink.notes if "does not accept images" in n]
    assert len(said) == 1 and "text-only" in said[0]

    # The refusal is in the log, so a replay takes the same turn without the server.
    from vid2reward.agent.engines.llm import make_llm_engines

    calls = sink.kinds("llm_usage")
    assert calls[0].response["images_not_supported"] and calls[0].input_tokens == 0
    replayed, _ = make_llm_engines(llm_config("http://127.0.0.1:9/v1"), replay=_logged(tmp_path / "log", *calls))
    assert replayed.describe_expert(expert_view(tmp_path)) == "It hops."
    again = replayed.critique(expert_view(tmp_path), candidate(tmp_path), feedback_id="fb", iteration=1)
    assert again == fb and replayed.text_only


def test_the_critic_drops_images_mid_critique(server, tmp_path):
    critic, _, _ = engines(server)
    server.script(CRITIC, Reply.error(400, "Invalid content type. image_url is only supported by "
                                           "certain models."), Reply.json(critique_json()))
    fb = critic.critique(expert_view(tmp_path), candidate(tmp_path), feedback_id="fb", iteration=1)
    assert fb.similarity == 0.35 and len(server.sent(CRITIC)) == 2
    assert not image_parts(server.sent(CRITIC)[1])


@pytest.mark.parametrize("status,body,fix", [
    (500, "the request exceeds the available context size, try increasing it", "--ctx-size"),
    (500, "tools param requires --jinja flag: tool calls are not supported", "--jinja"),
    (404, "model 'qwen9' not found, try pulling it first", "ollama pull"),
])
def test_a_permanent_error_that_names_its_cause_is_not_retried(server, status, body, fix):
    _, engineer, _ = engines(server)
    server.script(ENGINEER, Reply.error(status, body))
    with pytest.raises(ProviderError) as caught:
        engineer.client.invoke([("user", "hi")])
    assert len(server.sent(ENGINEER)) == 1 and caught.value.exit_code == 2
    assert fix in caught.value.fix and "provider may be down" not in caught.value.fix


def _logged(tmp_path, *calls: LLMUsage):
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = RunLog(tmp_path)
    for call in calls:
        log.write(call)
    return ReplayLog(tmp_path)


def test_replay_answers_in_order_and_refuses_a_different_request(tmp_path):
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

    asked = [SystemMessage("You are the engineer."), HumanMessage("iteration 1: similarity 0.41")]
    answer = {"role": "ai", "text": "", "tool_calls": [{"name": "test_reward", "args": {}}]}
    replay = _logged(tmp_path, LLMUsage(role="engineer", model="m", input_tokens=10, output_tokens=2,
                                        request=[{"role": "system", "text": "You are the engineer."},
                                                 {"role": "human", "text": "iteration 1: similarity 0.38"}],
                                        response=answer),
                     LLMUsage(role="engineer", model="m", input_tokens=12, output_tokens=3,
                              request=[{"role": "human", "text": "go on"}], response={"role": "ai", "text": "ok"}))
    reply = replay.answer("engineer", asked)  # numbers may differ: training ran again
    assert reply.tool_calls[0]["name"] == "test_reward" and reply.usage_metadata["input_tokens"] == 10
    tool_echo = ToolMessage(content="ok", tool_call_id="whatever-id-the-server-made")
    with pytest.raises(ReplayDiverged, match="engineer call 2") as caught:
        replay.answer("engineer", [HumanMessage("stop here"), tool_echo])
    assert "'go on'" in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(ReplayDiverged, match="never made"):
        replay.answer("critic", [HumanMessage("hi")])


def test_replay_user_errors_are_one_line(tmp_path, capsys):
    from vid2reward.agent.cli import main

    assert main(["run", "--replay", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "run.json").write_text(json.dumps({"run_id": "x", "config": {"env_id": "Hopper-v5",
                                                                             "engine": "offline"}}))
    assert main(["run", "--replay", str(offline)]) == 2
    assert "only an --engine llm run can be replayed" in capsys.readouterr().err
    assert main(["run", "--replay", str(offline), "--env", "Hopper-v5"]) == 2
    assert "--env cannot change them" in capsys.readouterr().err
    assert main(["run", "--env", "Hopper-v5"]) == 2
    assert "run needs --video" in capsys.readouterr().err


def test_a_long_reply_is_logged_whole_for_the_replay(server):
    _, engineer, _ = engines(server)
    long_program = PROGRAM + "# " + "x" * 25_000 + "\n"
    server.script(ENGINEER, Reply.text(long_program))
    engineer.client.invoke([("user", "write it")])
    assert engineer.client.calls[0].response["text"] == long_program
