"""The trace viewer on a recorded run directory: text report, HTML export, JSON, follow, errors.

The fixture writes a two-iteration run the way the graph does — events through RunLog and the
real models, plus the files the events and the layout name — so the viewer is tested against
the file format, not against the runner.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from io import StringIO
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from rich.console import Console

from vid2reward.agent.cli import main
from vid2reward.agent.commands.trace import follow
from vid2reward.agent.messages import (
    BehaviorDelta,
    EditAudit,
    RewardEdit,
    RewardFeedback,
    VisualFeedback,
)
from vid2reward.agent.run_log import (
    CandidateEvaluated,
    IterationFinished,
    LLMUsage,
    MessageEvent,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunLog,
    RunStarted,
    ToolCall,
    TrainingSummary,
)
from vid2reward.agent.trace.cells import shorten
from vid2reward.agent.trace.chain import chain_rows
from vid2reward.agent.trace.html import export_html
from vid2reward.agent.trace.load import load_trace
from vid2reward.agent.trace.model import IterationTrace, RunTrace
from vid2reward.agent.trace.view import iteration_title, render_trace, sparkline

SRC1 = '''import numpy as np

WEIGHTS = {
    "speed": 1.0,
    "ctrl": 0.001,
}


def compute_reward(s, a):
    c = {"speed": WEIGHTS["speed"] * s.forward_velocity,
         "ctrl": -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))}
    return float(sum(c.values())), c
'''
SRC2 = SRC1.replace('"ctrl": 0.001,', '"ctrl": 0.01,\n    "stride": 0.5,')


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_png(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full((12, 16, 3), shade, dtype=np.uint8))


def node(log: RunLog, name: str, iteration: int, summary: str = "", events=(), ends_in: int | None = None):
    log.write(NodeStarted(node=name, iteration=iteration))
    for event in events:
        log.write(event)
    log.write(NodeFinished(node=name, iteration=iteration if ends_in is None else ends_in,
                           seconds=0.5, summary=summary))


def record_run(root: Path, finished: bool = True) -> Path:
    """A two-iteration llm run with usage, a tool call, feedback, edits, audits and files."""
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"run_id": "rec-run", "engine": "llm",
                                               "config": {"env_id": "Hopper-v5", "iterations": 2,
                                                          "critic": "vlm-x", "engineer": "llm-y"}}))
    (root / "expert").mkdir()
    (root / "expert" / "features.json").write_text(json.dumps({"features": {"cadence": 0.9, "forward_speed": 0.5}}))
    (root / "expert" / "description.txt").write_text("hops slowly forward")
    write_png(root / "expert" / "sheet.png", 200)
    for cid, source in (("iter-001/cand-00", SRC1), ("iter-001/cand-01", SRC1 + "# v2\n"),
                        ("iter-002/cand-00", SRC2), ("iter-002/cand-01", "def broken(:\n")):
        (root / cid).mkdir(parents=True)
        (root / cid / "reward.py").write_text(source)
    write_png(root / "iter-001/cand-00/sheet.png", 40)
    write_png(root / "iter-002/cand-00/sheet.png", 90)
    (root / "iter-002/cand-01/test.json").write_text(json.dumps({"ok": False, "error": "SyntaxError: line 1"}))

    rf1 = RewardFeedback(id="rf-001", iteration=0, edits=[RewardEdit(op="add", component="speed",
                                                                     addresses=["forward_speed"])],
                         source=SRC1, sha256=sha(SRC1))
    fb1 = VisualFeedback(id="fb-001-00", iteration=1, candidate_id="iter-001/cand-00", similarity=0.41,
                         problems=["1. It hops too fast <script>alert(1)</script>."],
                         deltas=[BehaviorDelta(feature="cadence", learner=1.8, expert=0.9, direction="decrease",
                                               importance=0.9, evidence="1.8 vs 0.9"),
                                 BehaviorDelta(feature="forward_speed", learner=0.2, expert=0.5,
                                               direction="increase", importance=0.6)])
    fb1b = VisualFeedback(id="fb-001-01", iteration=1, candidate_id="iter-001/cand-01", similarity=0.22)
    rf2 = RewardFeedback(id="rf-002", iteration=1, feedback_id="fb-001-00", base_sha256=sha(SRC1),
                         base_candidate_id="iter-001/cand-00", edits=[RewardEdit(op="reweight", component="ctrl", addresses=["cadence"],
                                           expected={"cadence": "decrease"}, old_value=0.001, new_value=0.01,
                                           rationale="slower legs"),
                                RewardEdit(op="add", component="stride", addresses=["forward_speed"],
                                           expected={"forward_speed": "increase"})],
                         source=SRC2, sha256=sha(SRC2))
    (root / "iter-002" / "edits.json").write_text(rf2.model_dump_json())
    fb2 = VisualFeedback(id="fb-002-00", iteration=2, candidate_id="iter-002/cand-00", similarity=0.67,
                         deltas=[BehaviorDelta(feature="forward_speed", learner=0.15, expert=0.5,
                                               direction="increase", importance=0.7)])

    log = RunLog(root)
    log.write(RunStarted(run_id="rec-run", env_id="Hopper-v5", engine="llm", config={"iterations": 2}))
    node(log, "ingest_expert", 0, "expert features: cadence=0.9")
    node(log, "draft_reward", 0, "2 programs", ends_in=1, events=[
        LLMUsage(role="engineer", model="llm-y", input_tokens=1000, output_tokens=200, cost_usd=0.012),
        MessageEvent(sender="engineer", message=rf1)])
    node(log, "test_rewards", 1, "2 passed, 0 rejected")
    node(log, "train_candidates", 1, "trained 2", events=[
        TrainingSummary(iteration=1, candidate_id=cid, reward_sha256=sha(src), status="finished", steps=2048,
                        wall_seconds=1.4, steps_per_second=1500.0, env_return_mean=ret)
        for cid, src, ret in (("iter-001/cand-00", SRC1, 12.5), ("iter-001/cand-01", SRC1 + "# v2\n", 8.0))])
    node(log, "critique", 1, "cand-00: 0.410", events=[
        LLMUsage(role="critic", model="vlm-x", input_tokens=3000, output_tokens=150, cost_usd=0.03),
        ToolCall(agent="critic", tool="compare_clips", arguments={"candidate": "iter-001/cand-00"},
                 result="similarity 0.41", seconds=0.2),
        MessageEvent(sender="critic", message=fb1), MessageEvent(sender="critic", message=fb1b),
        CandidateEvaluated(iteration=1, candidate_id="iter-001/cand-00", similarity=0.41),
        CandidateEvaluated(iteration=1, candidate_id="iter-001/cand-01", similarity=0.22)])
    node(log, "audit", 1)
    node(log, "keep_best", 1, "best iter-001/cand-00", events=[
        IterationFinished(iteration=1, best_candidate_id="iter-001/cand-00", iteration_best_similarity=0.41,
                          run_best_similarity=0.41)])
    node(log, "engineer", 1, "2 edits", ends_in=2, events=[MessageEvent(sender="engineer", message=rf2)])
    node(log, "test_rewards", 2, "1 passed, 1 rejected")
    node(log, "train_candidates", 2, "trained 1", events=[
        TrainingSummary(iteration=2, candidate_id="iter-002/cand-00", reward_sha256=sha(SRC2), status="finished",
                        steps=2048, wall_seconds=1.1, steps_per_second=1862.0, env_return_mean=20.0)])
    node(log, "critique", 2, "cand-00: 0.670", events=[
        MessageEvent(sender="critic", message=fb2),
        CandidateEvaluated(iteration=2, candidate_id="iter-002/cand-00", similarity=0.67)])
    node(log, "audit", 2, "1/2 predictions held", events=[
        MessageEvent(sender="auditor", message=EditAudit(
            iteration=2, reward_feedback_id="rf-002", edit_index=0, component="ctrl", feature="cadence", expected="decrease",
            before=1.8, after=1.1, outcome="moved_as_expected")),
        MessageEvent(sender="auditor", message=EditAudit(
            iteration=2, reward_feedback_id="rf-002", edit_index=1, component="stride", feature="forward_speed",
            expected="increase", before=0.2, after=0.15, expert=0.5, outcome="opposite",
            closer_to_expert=False))])
    if finished:
        node(log, "keep_best", 2, "best iter-002/cand-00; stopping", events=[
            IterationFinished(iteration=2, best_candidate_id="iter-002/cand-00", iteration_best_similarity=0.67,
                              run_best_similarity=0.67)])
        log.write(RunFinished(status="finished", reason="all 2 iterations done",
                              best_candidate_id="iter-002/cand-00", best_similarity=0.67))
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return record_run(tmp_path / "run")


def rendered_text(trace: RunTrace, iteration: int | None = None) -> str:
    console = Console(record=True, width=160, file=StringIO())
    console.print(render_trace(trace, iteration))
    return console.export_text()


def test_report_has_every_section_and_key_values(run_dir):
    text = rendered_text(load_trace(run_dir))
    for section in ("vid2reward trace · rec-run", "timeline", "expert", "set-up", "iteration 1", "iteration 2",
                    "candidates of iteration 1", "candidates of iteration 2", "tokens and cost"):
        assert section in text, section
    # header: status, best, sparkline (0.41 -> ▄, 0.67 -> ▆), tokens and cost
    assert "finished (all 2 iterations done)" in text and "hops slowly forward" in text
    assert "0.670 (iter-002/cand-00)" in text
    assert "▄▆" in text and "0.410 → 0.670" in text
    assert "4350" in text and "$0.0420" in text
    # timeline: nodes with summaries, messages and the tool call
    assert "critic → VisualFeedback fb-001-00 on iter-001/cand-00: similarity 0.410, 2 deltas" in text
    assert "engineer → RewardFeedback rf-002 answering fb-001-00: 2 edits (reweight ctrl, add stride)" in text
    assert ("auditor → 2 EditAudits of rf-002: 1/2 moved as predicted, 1 opposite; "
            "0/2 closer to the expert, 1 farther") in text
    assert "tool critic.compare_clips(candidate='iter-001/cand-00')" in text
    # candidate table: sha, status, speed, return, similarity, the rejected program
    assert re.search(r"iter-001/cand-00 ★ +│ " + sha(SRC1)[:12] + r" +│ finished .*│ +1500 .*│ +12\.5 │ +0\.410", text)
    assert "rejected: SyntaxError: line 1" in text
    # chain rule, left to right on one line: delta -> edit -> audit outcome
    assert "chain rule: fb-001-00 → rf-002 → audit in iteration 2" in text
    assert re.search(r"cadence +│ +1\.8 │ +0\.9 │ +↓ +│ +0\.90 │ #0 reweight ctrl 0\.001→0\.01 +│ +↓ +│ "
                     r"✓ as predicted +│ +- \(no expert value\) +│ +1\.8→1\.1 │", text)
    assert re.search(r"forward_speed .*#1 add stride .*↑ .*✗ opposite +│ ✗ farther +│ +0\.2→0\.15", text)
    assert "(no edits: the run ended here)" in text
    # reward diff between the base (iteration 1's best) and the new centre program
    assert "reward diff rf-002: iter-001/cand-00 → iter-002/cand-00" in text
    assert '-    "ctrl": 0.001,' in text and '+    "ctrl": 0.01,' in text and '+    "stride": 0.5,' in text
    assert "engine llm (critic vlm-x, engineer llm-y)" in text
    assert re.search(r"engineer +│ llm-y +│ +1 │ +1000 │ +200 │ +\$0\.0120", text)


def test_model_links_the_chain_and_counts_usage(run_dir):
    trace = load_trace(run_dir)
    assert [it.number for it in trace.iterations] == [0, 1, 2]
    assert trace.status == "finished" and trace.best_similarity == 0.67
    assert trace.total_tokens == 4350 and abs(trace.total_cost - 0.042) < 1e-9 and trace.tool_call_count == 1
    one = trace.iteration(1)
    assert one.reward_feedback.id == "rf-002" and one.base_candidate_id == "iter-001/cand-00"
    assert [a.outcome for a in one.audits] == ["moved_as_expected", "opposite"]
    assert trace.audited(1) and not trace.audited(2)
    rows = chain_rows(one.answered_feedback(), one.reward_feedback, one.audits)
    assert [(r.feature, r.edit.component, r.audit.outcome) for r in rows] == [
        ("cadence", "ctrl", "moved_as_expected"), ("forward_speed", "stride", "opposite")]
    statuses = {c.id: c.status for it in trace.iterations for c in it.candidates}
    assert statuses["iter-002/cand-01"] == "rejected" and statuses["iter-001/cand-00"] == "finished"
    assert trace.iteration(0).reward_diff.base_label == "(none: first draft)"
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▅█ "


def test_html_export_holds_iterations_sheets_and_escapes(run_dir, tmp_path):
    out = export_html(load_trace(run_dir), tmp_path / "page" / "trace.html")
    html = out.read_text(encoding="utf-8")
    assert "id='iteration-1'" in html and "id='iteration-2'" in html
    assert html.count("data:image/png;base64,") == 3  # expert + two candidate sheets
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "✓ as predicted" in html and "✗ farther" in html and "reweight ctrl 0.001→0.01" in html
    assert "as expected" not in html
    assert "<span class='add'>+    &quot;ctrl&quot;: 0.01,</span>" in html


def test_cli_export_default_path(run_dir, capsys):
    assert main(["trace", str(run_dir), "--export", "html"]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "trace.html").is_file() and "wrote" in out
    assert "(2 iterations)" in out  # iterations 1 and 2; the set-up (0) is not one


def test_an_overshoot_is_as_predicted_but_farther_never_as_expected(run_dir):
    """The issue's case: cadence had to rise to 0.79, the edit raised it 0.43 -> 1.96 (past
    the expert): the prediction held, the learner moved away from the expert."""
    trace = load_trace(run_dir)
    trace.iteration(1).audits[0] = EditAudit(
        iteration=2, reward_feedback_id="rf-002", edit_index=0, component="ctrl", feature="cadence",
        expected="increase", before=0.43, after=1.96, expert=0.79, outcome="moved_as_expected",
        closer_to_expert=False)
    text = rendered_text(trace)
    assert re.search(r"cadence .*✓ as predicted +│ ✗ farther +│ +0\.43→1\.96", text)
    assert "as expected" not in text


def test_iteration_header_keeps_its_own_best_apart_from_the_runs():
    worse = IterationTrace(number=2, finished=True, best_candidate_id="iter-001/cand-00",
                           iteration_best_candidate_id="iter-002/cand-01",
                           iteration_best_similarity=0.3, run_best_similarity=0.41)
    assert iteration_title(worse) == ("iteration 2: its best iter-002/cand-01 0.300; "
                                      "run best iter-001/cand-00 0.410")
    better = worse.model_copy(update={"best_candidate_id": "iter-002/cand-01", "run_best_similarity": 0.3})
    assert iteration_title(better) == "iteration 2: its best iter-002/cand-01 0.300 (the run's best so far)"


def test_long_lines_end_at_a_word_with_an_ellipsis():
    text = "trained 4, from cache 0, failed 1; iter-002/cand-03: reward raised ZeroDivisionError"
    cut = shorten(text, 40)
    assert cut.endswith("…") and len(cut) <= 40 and text.startswith(cut[:-1])
    assert text[len(cut) - 1] in " ,;:"  # cut where a word ended, not inside one
    assert shorten("short", 40) == "short"


def test_html_ends_with_the_final_result(run_dir, tmp_path):
    (run_dir / "expert" / "clip.mp4").write_bytes(b"expert-mp4-bytes")
    (run_dir / "best").mkdir()
    (run_dir / "best" / "clip.mp4").write_bytes(b"learner-mp4-bytes")
    (run_dir / "best" / "summary.json").write_text(json.dumps({
        "best_candidate_id": "iter-002/cand-00", "best_similarity": 0.67, "stop_reason": "all 2 iterations done",
        "final_training": {"steps": 300000, "wall_seconds": 600.0, "evaluation": {
            "episodes": 5, "env_return_mean": 1234.5, "env_return_std": 10.0, "length_mean": 980.0,
            "length_std": 5.0, "max_steps": 1000, "fall_rate": 0.2, "fall_seconds": [5.04],
            "metrics": {"cadence_steps_per_s": 1.95, "cadence_hz": 0.97, "forward_velocity": 1.2}},
        "updated": "iter-002/cand-00's, with the targets of the run's last calibration "
                   "(speed_target -2.5 -> -3.9)."}}))
    html = export_html(load_trace(run_dir), tmp_path / "t.html").read_text(encoding="utf-8")
    assert html.rindex("<h2") == html.index("<h2 id='result'>final result</h2>")  # the last section
    result = html[html.index("id='result'"):]
    assert result.count("data:video/mp4;base64,") == 2  # expert and learner side by side
    assert "<svg" in result and "<polyline" in result  # the similarity curve
    assert "fell in 1 of 5 episodes (20%, 95% CI 4-62%" in result and "1234.5" in result
    assert "0.670" in result and "visible difference" in result  # the scale explained
    assert "its program: iter-002/cand-00&#x27;s, with the targets" in result
    # the primary cadence, named with its method and unit (never the torso bob's 0.97 Hz)
    assert "cadence 1.95 steps/s by foot touchdowns" in result
    assert "<td>cadence, steps/s by foot touchdowns</td>" in result and "0.97" not in result
    text = rendered_text(load_trace(run_dir))
    # when the falls came, not only how often (the line wraps at the console's width)
    assert "fell in 1 of 5 episodes (20%, 95% CI 4-62%; at 5.0 s)" in " ".join(text.split())
    assert text.rstrip().endswith("(speed_target -2.5 -> -3.9).")


def test_cli_json_round_trips(run_dir, capsys):
    assert main(["trace", str(run_dir), "--json"]) == 0
    dumped = RunTrace.model_validate_json(capsys.readouterr().out)
    assert dumped == load_trace(run_dir)
    assert dumped.iteration(1).feedback[0].deltas[0].feature == "cadence"


def test_cli_focus_on_one_iteration(run_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["trace", str(run_dir), "--iteration", "2"]) == 0
    out = capsys.readouterr().out
    assert "candidates of iteration 2" in out and "candidates of iteration 1" not in out
    assert main(["trace", str(run_dir), "--iteration", "9"]) == 2
    assert "no iteration 9" in capsys.readouterr().err


def test_torn_last_line_is_tolerated(run_dir, capsys):
    with (run_dir / "events.jsonl").open("a") as f:
        f.write('{"version": 1, "kind": "node_sta')  # a crash mid-write
    trace = load_trace(run_dir)
    assert trace.status == "finished" and len(trace.iterations) == 3
    assert main(["trace", str(run_dir)]) == 0


@pytest.mark.parametrize("make", ["missing", "no_events", "empty_events", "garbage"])
def test_bad_input_is_one_error_line_exit_2(tmp_path, capsys, make):
    target = tmp_path / "x"
    if make != "missing":
        target.mkdir()
    if make == "empty_events":
        (target / "events.jsonl").write_text("")
    if make == "garbage":
        (target / "events.jsonl").write_text("not json\n{\"kind\": \"nope\"}\n")
    assert main(["trace", str(target)]) == 2
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in err and str(target) in err


def test_follow_stops_when_the_run_finishes(tmp_path):
    root = record_run(tmp_path / "live", finished=False)
    assert load_trace(root).status == "running"

    def finish_later() -> None:
        time.sleep(0.3)
        log = RunLog(root)
        log.write(IterationFinished(iteration=2, best_candidate_id="iter-002/cand-00",
                                    iteration_best_similarity=0.67, run_best_similarity=0.67))
        log.write(RunFinished(status="budget", reason="token budget spent"))

    writer = threading.Thread(target=finish_later)
    writer.start()
    started = time.monotonic()
    trace, interrupted = follow(root, Console(file=StringIO(), width=160), poll=0.05, timeout=20)
    writer.join()
    assert trace.status == "budget" and not interrupted and time.monotonic() - started < 10
    assert [p.run_best for p in trace.similarity_history] == [0.41, 0.67]


def test_running_run_shows_pending_audits_and_running_nodes(tmp_path):
    root = record_run(tmp_path / "live", finished=False)
    log = RunLog(root)
    rf3 = RewardFeedback(id="rf-003", iteration=2, feedback_id="fb-002-00", base_sha256=sha(SRC2),
                         edits=[RewardEdit(op="reweight", component="stride", addresses=["forward_speed"],
                                           expected={"forward_speed": "increase"}, old_value=0.5, new_value=0.9)],
                         source=SRC2.replace("0.5,", "0.9,"), sha256=sha(SRC2.replace("0.5,", "0.9,")))
    node(log, "engineer", 2, "1 edit", ends_in=3, events=[MessageEvent(sender="engineer", message=rf3)])
    log.write(NodeStarted(node="test_rewards", iteration=3))
    trace = load_trace(root)
    text = rendered_text(trace)
    assert trace.status == "running" and re.search(r"status +running", text)
    assert re.search(r"test_rewards +running", text)
    assert re.search(r"forward_speed .*#0 reweight stride 0\.5→0\.9 .*↑ .*pending", text)
    assert "reward diff rf-003: iter-002/cand-00 → rf-003" in text


def test_a_node_cut_off_by_a_kill_is_not_running_after_resume(tmp_path):
    root = record_run(tmp_path / "resumed", finished=False)
    log = RunLog(root)
    log.write(NodeStarted(node="keep_best", iteration=2))  # then kill -9: no finish, no run_finished
    log.write(RunStarted(run_id="rec-run", env_id="Hopper-v5", engine="llm", config={}, resumed=True))
    node(log, "keep_best", 2, "best iter-002/cand-00")
    log.write(NodeStarted(node="engineer", iteration=2))
    trace = load_trace(root)
    keep_best = [n for n in trace.iteration(2).nodes if n.name == "keep_best"]
    assert [(n.seconds, n.cut_off) for n in keep_best] == [(None, True), (0.5, False)]
    text = rendered_text(trace)
    assert re.search(r"keep_best +did not finish", text) and re.search(r"engineer +running", text)
    assert trace.sessions == 2 and "sessions 2" in text


def test_a_persons_feedback_is_shown_as_the_engineer_got_it():
    from vid2reward.agent.human_feedback import human_critique

    critic = VisualFeedback(id="fb-001-00", iteration=1, candidate_id="iter-001/cand-00", similarity=0.4,
                            deltas=[BehaviorDelta(feature="forward_speed", learner=0.2, expert=0.5, scale=0.5,
                                                  direction="increase", importance=0.6),
                                    BehaviorDelta(feature="tilt_deg", learner=1.0, expert=6.0, scale=5.0,
                                                  direction="increase", importance=0.5)])
    human, merged, _ = human_critique("slower", iteration=1, candidate_id="iter-001/cand-00",
                                      feedback=critic, learner={"forward_speed": 0.2})
    rf = RewardFeedback(id="rf-002", iteration=1, feedback_id="fb-001-00", source=SRC1, sha256=sha(SRC1))
    it = IterationTrace(number=1, feedback=[critic, human], reward_feedback=rf)
    assert it.answered_feedback() == merged
    trace = RunTrace(run_dir="/x", run_id="x", status="finished", iterations=[it])
    text = rendered_text(trace, 1)
    assert re.search(r"forward_speed \(person\) +│ +0\.2 │ +-0\.3 │ +↓", text)
    assert re.search(r"tilt_deg +│ +1 │ +6 │ +↑", text)


def test_the_calibration_table_says_how_an_expert_value_was_read_when_not_by_the_fit():
    from vid2reward.agent.trace.tables import calibration_table

    fit = {"quantity": "forward_velocity", "feature": "forward_speed", "unit": "m/s", "slope": 0.36,
           "intercept": 0.0, "points": 21, "r2": 1.0, "residual": 0.05, "usable": True,
           "expert_value": 1.21, "note": "the person's 1.28 leg lengths/s at Walker2d-v5's 0.95 m legs"}
    out = StringIO()
    Console(file=out, width=120).print(calibration_table(IterationTrace(number=2, calibration=[fit])))
    assert "forward_velocity: the person's 1.28 leg lengths/s" in out.getvalue()
    out = StringIO()
    Console(file=out, width=120).print(calibration_table(IterationTrace(number=2, calibration=[{**fit, "note": ""}])))
    assert "leg lengths" not in out.getvalue()


CALIBRATION = [  # as a real run fits them (iter-001/calibration.json of a tiny Hopper run)
    {"quantity": "torso_height", "feature": "height_ratio", "unit": "m", "slope": 0.016906,
     "intercept": 1.137711, "points": 6, "r2": 0.2657, "residual": 0.00089, "usable": False,
     "expert_value": 1.20355, "note": "the expert's 3.89 is outside the learners' 3.94..4.04"},
    {"quantity": "torso_pitch", "feature": "tilt_deg", "unit": "rad", "slope": -0.000857,
     "intercept": 0.0638, "points": 12, "r2": 0.0, "residual": 0.00495, "usable": False,
     "expert_value": 0.0585}]


def cut_words(text: str) -> list[str]:
    """Lines of the report below the timeline that hold an ellipsis: a header or value cut
    short ("le…", "ite…"). The timeline shortens node summaries on purpose, nothing else does."""
    return [line for line in text[text.index("expert ─"):].splitlines() if "…" in line]


@pytest.mark.parametrize("width", [60, 80, 100])
def test_a_narrow_terminal_gets_narrow_tables_not_cut_headers(run_dir, width):
    """At 80 columns the chain table's headers were "le…", "ex…" and the candidates' "ite…":
    a narrow terminal gets fewer columns whose cells stack their values, or one block per row."""
    trace = load_trace(run_dir)
    trace.iteration(1).calibration = CALIBRATION
    console = Console(record=True, width=width, file=StringIO())
    console.print(render_trace(trace))
    text = console.export_text()
    assert cut_words(text) == []
    assert max(len(line) for line in text.splitlines()) <= width
    words = set(re.findall(r"[\w./★±→✓✗$#+-]+", text))
    # the candidates: whole ids, shas, similarity, falls, the rejected program's reason
    assert {"iter-001/cand-00", "iter-002/cand-01", sha(SRC1)[:12], "0.410", "candidate",
            "similarity", "falls", "rejected", "SyntaxError"} <= words
    # the chain rule: the delta's values, the edit, both audit verdicts, every feature name
    assert {"cadence", "forward_speed", "1.8", "0.9", "learner", "expert", "reweight", "ctrl",
            "as", "predicted", "opposite", "farther", "#0", "#1"} <= words
    # the calibration, the expert's features and the usage, none cut
    assert {"torso_height", "height_ratio", "torso_pitch", "tilt_deg", "+0.0169", "1.2",
            "residual", "quantity", "llm-y", "vlm-x", "$0.0120", "$0.0420"} <= words
    # the wide layout where there is room: one line per chain row, as at 160 columns
    wide = Console(record=True, width=160, file=StringIO())
    wide.print(render_trace(trace))
    assert re.search(r"cadence +│ +1\.8 │ +0\.9 │ +↓ +│ +0\.90 │ #0 reweight ctrl", wide.export_text())


def test_a_fitted_table_keeps_a_no_wrap_header_whole():
    """A column that does not wrap (the chain table's feature names) does not wrap its header
    either: its width is the header's whole length, not its longest word ("delta f…")."""
    from vid2reward.agent.trace.fit import Column, Fitted, Layout

    layout = Layout([Column("delta feature", no_wrap=True), Column("words")])
    layout.add_row("x", "a long sentence that wraps in a narrow terminal " * 3)
    out = StringIO()
    Console(file=out, width=40).print(Fitted([layout]))
    text = out.getvalue()
    assert "delta feature" in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 40
