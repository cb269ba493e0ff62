"""A chat session driven by scripted stdin changes the run as asked: approve, reject,
feedback (human as critic), rollback (checkpoint time travel), budgets."""

import io

from vid2reward.agent.cli import main
from vid2reward.agent.run_log import read_events
from vid2reward.agent.run_record import read_json

SCRIPT = """/status
/feedback hop higher and slower, like a kangaroo
/approve
/reject too timid
/approve
/show 1
/rollback 1
/budget iterations=3 patience=5
/approve
/approve
/approve
/quit
"""


def test_scripted_chat_session(tmp_path, monkeypatch, capsys):
    out = tmp_path / "chat"
    monkeypatch.setattr("sys.stdin", io.StringIO(SCRIPT))
    code = main(["chat", "--env", "Hopper-v5", "--video", "examples/demo_expert_hopper.mp4",
                 "--iterations", "2", "--candidates", "2", "--steps", "2048", "--envs", "4",
                 "--final-steps", "0", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    # approve: iteration 1 was trained; feedback reached the engineer as a human message.
    events = read_events(out)
    human = [e for e in events if e.kind == "message" and e.sender == "human"]
    assert human and "hop higher and slower" in human[0].message.problems[0]
    assert (out / "iter-001" / "human_feedback.txt").read_text() == "hop higher and slower, like a kangaroo"
    # the words were read as behaviour deltas with measured targets; the rest was said not understood
    deltas = {d.feature: d for d in human[0].message.deltas}
    assert deltas["forward_speed"].direction == "decrease" and deltas["forward_speed"].scale is not None
    assert deltas["vertical_oscillation"].direction == "increase"
    assert "understood: 'hop higher'" in text and "not understood: 'like a kangaroo'" in text
    assert "the offline engineer cannot act on them" in text
    # /approve says how training goes: candidates trained (k of N) and the run's ETA
    assert "trained iter-001/cand-00" in text and "run ETA" in text
    # reject: the proposed programs went back to the engineer and were tested again.
    assert any(e.kind == "node_finished" and e.node == "repair_rewards" for e in events)
    # rollback: iteration 2 of the first branch was kept aside, not lost, and redone.
    abandoned = list(out.glob("iter-002.abandoned-*"))
    assert len(abandoned) == 1 and (abandoned[0] / "cand-00" / "reward.py").is_file()
    # budget: three iterations now, and the run reached the third and finished it.
    assert read_json(out / "run.json")["config"]["iterations"] == 3
    assert (out / "iter-003" / "cand-00" / "evaluation.json").is_file()
    assert (out / "best" / "summary.json").is_file()
    assert "rolled back to the end of iteration 1" in text and "bye" in text


def test_chat_without_a_run_is_a_user_error(capsys):
    assert main(["chat"]) == 2
    assert "chat needs a run directory" in capsys.readouterr().err


def test_rollback_keeps_a_valid_best_and_feedback_after_the_end_waits(tmp_path, monkeypatch, capsys):
    from stable_baselines3 import PPO

    from vid2reward.agent.trace.load import load_trace

    out = tmp_path / "chat"
    script = "/approve\n/approve\n/feedback smoother please\n/rollback 1\n/status\n/quit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code = main(["chat", "--env", "Hopper-v5", "--video", "examples/demo_expert_hopper.mp4",
                 "--iterations", "2", "--candidates", "1", "--steps", "1024", "--envs", "2",
                 "--final-steps", "0", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "run finished" in text
    # Feedback typed after the end is not dropped: it waits, then reaches the forked run.
    assert "the run has finished, so this waits" in text
    assert "feedback for the engineer: smoother please" in text.split("rolled back")[-1]
    # best/ still holds a loadable policy: the best candidate of what remains.
    summary = read_json(out / "best" / "summary.json")
    assert summary["best_candidate_id"].startswith("iter-001/")
    PPO.load(out / "best" / "policy.zip", device="cpu")
    assert f"best/ now holds {summary['best_candidate_id']}" in text
    # The trace no longer says "finished".
    assert load_trace(out).status == "rolled back to iteration 1"


def test_chat_with_stdin_closed_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", None)
    assert main(["chat", "examples"]) == 2
    err = capsys.readouterr().err
    assert "stdin is closed" in err and "Traceback" not in err


def test_opening_a_finished_run_changes_nothing(tmp_path, monkeypatch, capsys):
    """chat RUN on a finished run, a look around, /approve and /quit: the run's log, hence
    what `runs` and `trace` say of it, stays as it was."""
    from vid2reward.agent.run_list import list_runs
    from vid2reward.agent.trace.load import load_trace

    out = tmp_path / "done"
    assert main(["run", "--env", "Hopper-v5", "--video", "examples/demo_expert_hopper.mp4",
                 "--iterations", "1", "--candidates", "1", "--steps", "1024", "--envs", "2",
                 "--final-steps", "0", "--quiet", "--out", str(out)]) == 0
    log = (out / "events.jsonl").read_bytes()
    assert [r.status for r in list_runs(tmp_path)] == ["finished"]
    monkeypatch.setattr("sys.stdin", io.StringIO("/status\n/approve\n/show\n/diff\n/quit\n"))
    capsys.readouterr()
    assert main(["chat", str(out)]) == 0
    text = capsys.readouterr().out
    assert "finished" in text and "the run has finished" in text and "bye" in text
    assert (out / "events.jsonl").read_bytes() == log
    assert [r.status for r in list_runs(tmp_path)] == ["finished"]
    assert load_trace(out).status == "finished"


def test_chat_with_no_terminal_and_no_commands_is_one_line_and_makes_nothing(tmp_path, monkeypatch,
                                                                           capsys):
    """`vid2reward chat ... </dev/null`: not a terminal, and nothing to read."""
    import json

    from vid2reward.agent.config import RunConfig

    existing = tmp_path / "existing"  # a run made but not started
    existing.mkdir()
    (existing / "run.json").write_text(json.dumps({"run_id": "existing",
                                                   "config": RunConfig(env_id="Hopper-v5").to_json()}))
    out = tmp_path / "new"
    for args in (["--env", "Hopper-v5", "--video", "examples/demo_expert_hopper.mp4", "--out", str(out),
                  "--iterations", "1", "--candidates", "1", "--steps", "1024"],
                 [str(existing)]):
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert main(["chat", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: chat has no terminal, and stdin holds no commands"), err
        assert "\nfix: run it in a terminal, or pipe commands in" in err
    assert list(tmp_path.iterdir()) == [existing]
    assert [f.name for f in existing.iterdir()] == ["run.json"]
