"""The LLM engine against a local OpenAI-protocol server with scripted replies: what the critic
and the engineer send, how they use tools, and how they repair or fall back."""

from __future__ import annotations

import json

import pytest
from llm_fixtures import (
    CRITIC,
    ENGINEER,
    PROGRAM,
    Sink,
    brief,
    candidate,
    critique_json,
    engineer_json,
    expert_view,
    llm_config,
)
from openai_server import Reply, image_parts, tool_names

from vid2reward.agent.engines.llm import NoVideoCritic, make_llm_engines
from vid2reward.agent.engines.offline import OfflineCritic
from vid2reward.agent.messages import EditAudit
from vid2reward.tools.reward_check import check_reward_source, static_weights


def engines(server, **extra):
    critic, engineer = make_llm_engines(llm_config(server.base_url, **extra))
    sink = Sink()
    critic.bind_context(sink)
    engineer.bind_context(sink)
    return critic, engineer, sink


def messages_text(body) -> str:
    """Every text part of a request, joined."""
    parts = []
    for m in body["messages"]:
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content]
    return "\n".join(parts)


def test_critic_is_shown_both_sheets_and_features(server, tmp_path):
    critic, _, sink = engines(server)
    expert, cand = expert_view(tmp_path), candidate(tmp_path)
    server.script(CRITIC, Reply.text("It hops forward twice a second.\nKnees bend deeply."),
                  Reply.json(critique_json()))
    assert critic.describe_expert(expert).startswith("It hops forward")
    fb = critic.critique(expert, cand, feedback_id="fb-001-00", iteration=1)

    describe, judge = server.sent(CRITIC)
    assert len(image_parts(describe)) == 1 and len(image_parts(judge)) == 2
    assert all(url.startswith("data:image/png;base64,") for url in image_parts(judge))
    assert judge["response_format"]["type"] == "json_schema"
    text = messages_text(judge)
    assert "forward_speed" in text and "body lengths/s" in text and "iter-001/cand-00" in text
    # ids come from code, measured values replace the model's copies, free-text deltas stay
    assert (fb.id, fb.iteration, fb.candidate_id) == ("fb-001-00", 1, "iter-001/cand-00")
    speed = fb.deltas[0]
    assert (speed.learner, speed.expert, speed.direction) == (0.1, 0.6, "increase")
    assert fb.deltas[1].feature == "knee flexion" and fb.similarity == 0.35
    usage = sink.kinds("llm_usage")
    assert len(usage) == 2 and {u.role for u in usage} == {"critic"} and sink.tokens == 240
    # the log keeps what the model saw and said: the request's text, images as their size only
    sent = usage[-1].request
    assert [m["role"] for m in sent] == ["system", "human"]
    assert "forward_speed" in str(sent[1]["text"]) and "[image:" in str(sent[1]["text"])
    assert "base64" not in json.dumps(sent) and "knee flexion" in str(usage[-1].response["text"])
    assert any("no price known" in n for n in sink.notes)


def test_critic_repairs_malformed_json_then_falls_back(server, tmp_path):
    critic, _, sink = engines(server)
    expert, cand = expert_view(tmp_path), candidate(tmp_path)
    server.script(CRITIC, Reply.text('{"similarity": 0.5, "problems": ['),
                  Reply.json(critique_json()))
    fb = critic.critique(expert, cand, feedback_id="fb", iteration=1)
    assert fb.similarity == 0.35 and critic.fallbacks == 0
    repair = server.sent(CRITIC)[1]
    assert "could not be used" in messages_text(repair) and "not valid JSON" in messages_text(repair)

    server.script(CRITIC, Reply.json({"similarity": 7}), Reply.json({"deltas": "none"}))
    fb = critic.critique(expert, cand, feedback_id="fb", iteration=1)
    reference = OfflineCritic().critique(expert, cand, feedback_id="fb",
                                                                iteration=1)
    assert fb == reference and critic.fallbacks == 1
    assert any("used the feature critic" in n for n in sink.notes)
    assert "similarity" in messages_text(server.sent(CRITIC)[-1])  # the validation error was quoted


def test_critic_with_function_calling(server, tmp_path):
    critic, _, _ = engines(server, structured_output="function_calling")
    server.script(CRITIC, Reply.calls(("CritiqueReply", '{"similarity": 0.4, "deltas": [')),
                  Reply.calls(("CritiqueReply", critique_json(similarity=0.45))))
    fb = critic.critique(expert_view(tmp_path), candidate(tmp_path), feedback_id="fb", iteration=1)
    assert fb.similarity == 0.45
    first, second = server.sent(CRITIC)
    assert first["tool_choice"]["function"]["name"] == "CritiqueReply"
    tool_reply = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_reply and "error:" in tool_reply[0]["content"]


def test_engineer_edits_with_tools_and_answers(server, tmp_path):
    _, engineer, sink = engines(server)
    cand = candidate(tmp_path)
    feedback = OfflineCritic().critique(
        expert_view(tmp_path), cand, feedback_id="fb-001-00", iteration=1)
    search = '"forward": 1.0, "healthy": 1.0'
    server.script(
        ENGINEER,
        Reply.calls(("edit_reward", {"kind": "search_replace", "search": search,
                                     "replace": '"forward": 2.0, "healthy": 1.0'}),
                    ("training_stats", {"candidate_id": "iter-001/cand-00"})),
        Reply.calls(("test_reward", '{"source": ')),          # malformed arguments
        Reply.calls(("test_reward", {"source": 42}), ("no_such_tool", {})),
        Reply.calls(("test_reward", {})),
        Reply.text("The draft passes; forward is doubled."),
        Reply.json(engineer_json()))
    audits = [EditAudit(reward_feedback_id="rf-001", edit_index=0, component="forward",
                        feature="forward_speed", expected="increase", before=0.1, after=0.05,
                        outcome="opposite")]
    answer = engineer.propose(brief(tmp_path, history=[cand]), feedback, audits)

    requests = server.sent(ENGINEER)
    assert len(requests) == 6
    assert {"env_context", "read_reward", "edit_reward", "test_reward", "training_stats"} == set(
        tool_names(requests[0]))
    assert "probe_train" not in tool_names(requests[0])  # off unless extra["probe_steps"] > 0
    first = messages_text(requests[0])
    assert "forward_speed" in first and "opposite" in first and "healthy 90%" in first
    tool_results = [m["content"] for m in requests[4]["messages"] if m["role"] == "tool"]
    assert "draft is now version" in tool_results[0] and "share 90%" in tool_results[1]
    assert "not valid JSON" in tool_results[2]
    assert "invalid arguments for test_reward" in tool_results[3] and "no tool 'no_such_tool'" in tool_results[4]
    assert json.loads(tool_results[5])["ok"] is True
    assert "tools" not in requests[5] and requests[5]["response_format"]["type"] == "json_schema"

    main = answer.programs[0].source
    assert static_weights(main)["forward"] == 2.0 and len(answer.programs) == 3
    scaled = [p.plan["scaled"] for p in answer.programs[1:]]
    assert scaled == [{"forward": 1.5}, {"healthy": 1.5}]  # the edited weight is perturbed first
    for p in answer.programs:
        check_reward_source(p.source)
    edit = answer.edits[0]
    assert edit.addresses == ["forward_speed"] and edit.expected == {"forward_speed": "increase"}
    assert answer.notes["rounds"] == 4 and answer.notes["tool_calls"] == 6
    assert answer.notes["usage"]["calls"] == 6 and "fallback" not in answer.notes
    calls = sink.kinds("tool_call")
    assert [c.tool for c in calls][:2] == ["edit_reward", "training_stats"]
    assert calls[2].error and "not valid JSON" in calls[2].error


def test_engineer_answer_is_repaired_once(server, tmp_path):
    _, engineer, _ = engines(server)
    cand = candidate(tmp_path)
    feedback = OfflineCritic().critique(
        expert_view(tmp_path), cand, feedback_id="fb", iteration=1)
    bad = engineer_json(source="import os\n" + PROGRAM, addresses=("speed of light",))
    good = engineer_json(source=PROGRAM.replace('"forward": 1.0', '"forward": 3.0'))
    server.script(ENGINEER, Reply.text("Done."), Reply.text("not json"), Reply.text("{still not"))
    answer = engineer.propose(brief(tmp_path, history=[cand]), feedback, [])
    # not JSON twice: the fallback is the unchanged draft, without edits
    assert answer.programs[0].source == PROGRAM and answer.edits == []
    assert "fallback" in answer.notes

    server.script(ENGINEER, Reply.text("Done."), Reply.json(bad), Reply.json(good))
    answer = engineer.propose(brief(tmp_path, history=[cand]), feedback, [])
    repair = messages_text(server.sent(ENGINEER)[-1])
    assert "import of 'os'" in repair and "speed of light" in repair
    assert static_weights(answer.programs[0].source)["forward"] == 3.0
    assert answer.edits[0].addresses == ["forward_speed"] and "problems" not in answer.notes

    # a critic that found nothing to fix leaves the addresses free
    server.script(ENGINEER, Reply.text("Done."), Reply.json(engineer_json(addresses=("style",))))
    answer = engineer.propose(brief(tmp_path, history=[cand]),
                              feedback.model_copy(update={"deltas": []}), [])
    assert answer.edits[0].addresses == ["style"] and "problems" not in answer.notes


def test_engineer_must_answer_when_rounds_are_spent(server, tmp_path):
    _, engineer, _ = engines(server, engineer_rounds=2)
    server.script(ENGINEER, Reply.calls(("env_context", {})), Reply.calls(("read_reward", {})),
                  Reply.json(engineer_json(source=PROGRAM, addresses=("forward_speed",))))
    answer = engineer.draft(brief(tmp_path))
    requests = server.sent(ENGINEER)
    assert len(requests) == 3 and "used all 2 rounds" in messages_text(requests[2])
    assert "Pixel features of the expert video" in messages_text(requests[0])
    assert answer.programs[0].source == PROGRAM and len(answer.programs) == 3


def test_no_video_ablation_reflects_on_training_statistics(server, tmp_path):
    config = llm_config(server.base_url)
    config.critic = "none"
    critic, engineer = make_llm_engines(config)
    assert isinstance(critic, NoVideoCritic)
    history = [candidate(tmp_path, "iter-001/cand-00", similarity=None),
               candidate(tmp_path, "iter-001/cand-01", similarity=None)]
    server.script(ENGINEER, Reply.text("ok"),
                  Reply.json(engineer_json(source=PROGRAM, addresses=("episode_length",))))
    answer = engineer.propose(brief(tmp_path, expert=False, history=history), None, [])
    text = messages_text(server.sent(ENGINEER)[0])
    assert "no video critic" in text and "iter-001/cand-01" in text and "healthy 90%" in text
    assert not image_parts(server.sent(ENGINEER)[0])
    assert answer.edits[0].addresses == ["episode_length"]  # free text without a critic
    assert server.sent(CRITIC) == []


def test_engineer_repairs_a_failing_program(server, tmp_path):
    _, engineer, _ = engines(server)
    broken = PROGRAM.replace("s.forward_velocity", "s.forward_velocity / 0.0")
    server.script(ENGINEER,
                  Reply.calls(("edit_reward", {"kind": "search_replace", "search": " / 0.0",
                                               "replace": ""})),
                  Reply.text("fixed"), Reply.json({"source": "", "fix": "removed the division"}))
    fixed = engineer.repair(brief(tmp_path), broken, "compute_reward raised ZeroDivisionError")
    assert fixed == PROGRAM
    assert "ZeroDivisionError" in messages_text(server.sent(ENGINEER)[0])


@pytest.mark.parametrize("fault", [Reply.error(429), Reply.error(500), Reply(content="late", delay=2.5)],
                         ids=["429", "500", "timeout"])
def test_transient_faults_are_retried(server, tmp_path, fault):
    critic, _, sink = engines(server)
    server.script(CRITIC, fault, Reply.json(critique_json()))
    fb = critic.critique(expert_view(tmp_path), candidate(tmp_path), feedback_id="fb", iteration=1)
    assert fb.similarity == 0.35 and len(server.sent(CRITIC)) == 2
    assert any("retry 1/2" in n for n in sink.notes)


def test_llm_run_end_to_end(server, tmp_path, monkeypatch, capsys):
    """One tiny iteration of the whole graph on the LLM engine: real training and rendering,
    the expert's video measurement stubbed, one rate-limit fault on the critic; then the run
    replayed from its log with the network off."""
    from llm_fixtures import EXPERT_FEATURES, UNITS, sheet

    from vid2reward.agent.nodes import candidates as candidate_nodes
    from vid2reward.agent.nodes import expert as expert_nodes
    from vid2reward.agent.run_log import read_events
    from vid2reward.agent.runner import execute, new_run_dir

    def prepare(source, expert_dir, start=None, end=None):
        expert_dir.mkdir(parents=True, exist_ok=True)
        (expert_dir / "clip.mp4").write_bytes(b"not a real video")
        return expert_dir / "clip.mp4"

    def measure(clip, sheet_path=None, **_):
        if sheet_path is not None:
            sheet(sheet_path, 40)
        return {"features": dict(EXPERT_FEATURES), "units": dict(UNITS), "details": {}}

    monkeypatch.setattr(expert_nodes, "prepare_expert", prepare)
    monkeypatch.setattr(expert_nodes, "check_clip_length", lambda clip, what="": 8.0)  # stub clip
    monkeypatch.setattr(expert_nodes, "measure_video", lambda clip, sheet=None, forward="right", crop=None: measure(clip, sheet))
    real_measure = candidate_nodes.measure_video

    def measure_candidate(clip, **kwargs):  # the real measurement, with the features fixed
        return {**real_measure(clip, **kwargs), "features": dict(EXPERT_FEATURES), "units": dict(UNITS)}

    monkeypatch.setattr(candidate_nodes, "measure_video", measure_candidate)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-test-key")
    config = llm_config(server.base_url)
    config.video, config.iterations, config.candidates = "expert.mp4", 1, 2
    config.steps, config.n_envs, config.n_workers, config.clip_seconds = 2048, 4, 1, 1.0
    server.script(CRITIC, Reply.text("It hops forward."), Reply.error(429),
                  *[Reply.json(critique_json(similarity=s)) for s in (0.3, 0.6)])
    server.script(ENGINEER, Reply.calls(("edit_reward", {"kind": "replace_all", "source": PROGRAM})),
                  Reply.calls(("test_reward", {})), Reply.text("done"), Reply.json(engineer_json()))
    paths = new_run_dir(config, tmp_path / "run")
    outcome = execute(paths, config, "run")

    assert outcome.status == "finished" and outcome.best_similarity == 0.6
    assert server.remaining(CRITIC) == server.remaining(ENGINEER) == 0
    events = read_events(paths.root)
    usage = [e for e in events if e.kind == "llm_usage"]
    assert {u.role for u in usage} == {"critic", "engineer"} and len(usage) == 7
    assert [e.tool for e in events if e.kind == "tool_call"] == ["edit_reward", "test_reward"]
    assert any("retry 1/2" in e.summary for e in events if e.kind == "node_finished")
    summary = json.loads((paths.root / "best" / "summary.json").read_text())
    assert summary["usage"]["tokens"] == 7 * 120
    assert "sk-secret" not in (paths.root / "run.json").read_text()
    assert (paths.root / "iter-001" / "cand-01" / "reward.py").read_text().startswith("# variant")

    # Replay: the same run with no key, no server and the network off reaches the same programs.
    import socket

    from vid2reward.agent.cli import main
    from vid2reward.agent.run_record import RunRecord

    def no_network(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network is off in this test (connect to {address})")
        return real_connect(self, address, *args)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("OPENAI_API_KEY")
    sent_before = len(server.requests)
    replayed = tmp_path / "replayed"
    assert main(["run", "--replay", str(paths.root), "--out", str(replayed), "--quiet"]) == 0
    assert len(server.requests) == sent_before  # nothing reached the model's server

    def programs(root):
        record = RunRecord(root)
        return {cid: record.program(cid) for cid in record.candidate_ids()}

    assert programs(replayed) == programs(paths.root) and len(programs(replayed)) == 2
    again = [e for e in read_events(replayed) if e.kind == "llm_usage"]
    assert [(u.role, u.response) for u in again] == [(u.role, u.response) for u in usage]
    assert json.loads((replayed / "run.json").read_text())["replay_of"] == str(paths.root.resolve())

    # A recorded request that no longer matches (here: edited in the log) stops the replay.
    events = (paths.root / "events.jsonl").read_text().replace("hop forward", "hop backward")
    (paths.root / "events.jsonl").write_text(events)
    capsys.readouterr()
    assert main(["run", "--replay", str(paths.root), "--out", str(tmp_path / "diverged"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "replay diverged" in err and "hop backward" in err and "Traceback" not in err
