"""The live dashboard shows the run's progress from its events, and the summary at the end."""

import io

from rich.console import Console

from vid2reward.agent.config import RunConfig
from vid2reward.agent.dashboard import Dashboard
from vid2reward.agent.run_log import IterationFinished, LLMUsage, NodeFinished, NodeStarted
from vid2reward.agent.run_record import write_json
from vid2reward.agent.runner import RunOutcome


def test_dashboard_shows_iteration_best_tokens_and_training(tmp_path):
    console = Console(file=io.StringIO(), record=True, width=140, force_terminal=False)
    board = Dashboard(RunConfig(env_id="Walker2d-v5", iterations=4, wall_clock_limit=600), tmp_path,
                      console=console)
    board.on_event(NodeStarted(node="train_candidates", iteration=2))
    board.on_progress("iter-002/cand-01", 5000, 20000)
    board.on_event(NodeFinished(node="critique", iteration=2, seconds=1.5, summary="cand-01: 0.412"))
    board.on_event(IterationFinished(iteration=2, best_candidate_id="iter-002/cand-01",
                                     iteration_best_similarity=0.412, run_best_similarity=0.412))
    board.on_event(LLMUsage(role="critic", model="m", input_tokens=100, output_tokens=20, cost_usd=0.01))
    console.print(board._render())
    text = console.export_text()
    assert "Walker2d-v5" in text and "iteration 2/4" in text and "0.412" in text
    assert "tokens 120" in text and "$0.010" in text and "time left" in text
    assert "iter-002/cand-01" in text and "5000/20000" in text
    assert "critique" in text


def test_summary_table_reads_best_summary(tmp_path, capsys):
    write_json(tmp_path / "best" / "summary.json", {"history": [
        {"iteration": 1, "best_candidate_id": "iter-001/cand-02", "iteration_best_similarity": 0.3,
         "run_best_similarity": 0.3}]})
    (tmp_path / "best" / "reward.py").write_text("")
    board = Dashboard(RunConfig(), tmp_path, quiet=True)
    board.print_summary(RunOutcome("budget", "wall-clock budget of 60s spent", tmp_path, 0.3))
    out = capsys.readouterr().out
    assert "budget" in out and "iter-001/cand-02" in out and "vid2reward trace" in out
    assert "final policy" not in out and "its program" not in out


def test_summary_says_what_the_final_training_trained(tmp_path, capsys):
    updated = "iter-001/cand-02's, with a term the calibration left no lever for: flight (weight 1)"
    write_json(tmp_path / "best" / "summary.json", {"history": [], "final_training": {
        "steps": 4096, "updated": updated,
        "evaluation": {"fall_rate": 0.0, "episodes": 5, "length_mean": 1000.0, "length_std": 0.0,
                       "max_steps": 1000}}})
    Dashboard(RunConfig(), tmp_path, quiet=True).print_summary(
        RunOutcome("completed", "all iterations done", tmp_path, 0.3))
    out = " ".join(capsys.readouterr().out.split())
    assert "fell in 0 of 5 episodes (95% CI 0-43%: too few to say it never falls)" in out
    assert f"its program: {updated}" in out


def test_candidate_k_of_n_and_a_whole_run_eta():
    from vid2reward.agent.dashboard import RunProgress
    from vid2reward.agent.run_log import TrainingSummary

    clock = [100.0]
    progress = RunProgress(RunConfig(env_id="Hopper-v5", iterations=2, candidates=4, steps=1000,
                                     final_steps=2000), now=lambda: clock[0])
    assert progress.eta() is None and "run ETA -" in progress.line()
    clock[0] = 110.0
    progress.on_progress("iter-001/cand-01", 500, 1000)
    # 500 steps in 10 s; to come: 7500 of the search, 2000 final, 2000 if the final check trains
    assert progress.eta_range() == (190.0, 230.0) and progress.eta() == 230.0
    line = progress.line()
    assert "training candidate 2/4 of iteration 1" in line and "run ETA 3m10s-3m50s" in line
    clock[0] = 120.0
    progress.on_event(TrainingSummary(iteration=1, candidate_id="iter-001/cand-01", reward_sha256="x",
                                      status="finished", steps=1000, wall_seconds=9.0))
    progress.on_event(TrainingSummary(iteration=1, candidate_id="iter-001/cand-00", reward_sha256="y",
                                      status="finished", steps=1000, wall_seconds=0.0, cached=True))
    # cached steps are done but set no pace: 1000 trained in 20 s; 6000 + 2000 (+ 2000) to come
    assert progress.eta_range() == (20.0 * 8000 / 1000, 20.0 * 10000 / 1000)
    progress.on_progress("final", 1, 2000)
    assert "training final training" in progress.line()
    # the update's policy fell: the winner's own reward trains as long again, and no longer a maybe
    progress.on_progress("final", 2000, 2000)
    clock[0] = 140.0
    progress.on_progress("final check", 1000, 2000)
    assert "training final check (the winner's own reward)" in progress.line()
    assert progress.eta_range() == (40.0 * 1000 / 4000, 40.0 * 1000 / 4000)


def test_the_eta_counts_the_final_training_and_its_check():
    """The demo's dashboard said "21s" 3.5 minutes before the end: the final check (the
    winner's own reward, 300k steps more) was counted only once it started."""
    from vid2reward.agent.dashboard import RunProgress
    from vid2reward.agent.run_log import TrainingSummary

    clock = [0.0]
    config = RunConfig(env_id="Hopper-v5", iterations=1, candidates=2, steps=1000, final_steps=3000)
    progress = RunProgress(config, now=lambda: clock[0])
    for k in range(2):
        clock[0] += 10.0  # 100 steps/s
        progress.on_event(TrainingSummary(iteration=1, candidate_id=f"iter-001/cand-0{k}",
                                          reward_sha256=str(k), status="finished", steps=1000,
                                          wall_seconds=10.0))
    progress.on_event(NodeStarted(node="train_final", iteration=1))
    assert progress.eta() == 60.0  # just before: the final 3000 steps, and its check's 3000
    assert progress.eta_range() == (30.0, 60.0)
    clock[0] += 30.0
    progress.on_progress("final", 3000, 3000)  # trained; its policy is being evaluated
    assert progress.eta() == 30.0 and "run ETA 0s-30s" in progress.line()
    progress.on_event(NodeFinished(node="train_final", iteration=1, seconds=35.0, summary=""))
    assert progress.eta() == 0.0  # the update did not fall: no check
    ended_early = RunProgress(config, now=lambda: clock[0])  # --patience ended the search early
    ended_early.on_event(TrainingSummary(iteration=1, candidate_id="iter-001/cand-00",
                                         reward_sha256="0", status="finished", steps=1000,
                                         wall_seconds=10.0))
    ended_early.on_event(NodeStarted(node="train_final", iteration=1))
    assert ended_early.steps_left() == (3000, 6000)  # the untrained candidate no longer counts
    assert RunProgress(RunConfig(iterations=1, candidates=2, steps=1000, final_steps=0)).steps_left() \
        == (2000, 2000)  # --final-steps 0: no final training, no check


def test_plain_lines_when_output_is_not_a_terminal(tmp_path):
    pipe = io.StringIO()
    console = Console(file=pipe, width=200, force_terminal=False)
    with Dashboard(RunConfig(env_id="Hopper-v5", iterations=2), tmp_path, console=console) as board:
        assert board.live is None  # no redrawn screen in a log file
        board.on_event(NodeFinished(node="critique", iteration=1, seconds=1.5, summary="cand-00: 0.412"))
        board.on_progress("iter-001/cand-00", 10, 100)
        board.on_event(IterationFinished(iteration=1, best_candidate_id="iter-001/cand-00",
                                         iteration_best_similarity=0.412, run_best_similarity=0.412))
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "[1] critique (1.5s) cand-00: 0.412"
    assert "candidate 1/4 of iteration 1: 10/100 steps" in lines[1]
    assert lines[2].startswith("[1] iteration done:") and "best similarity 0.412" in lines[2]
    assert "\x1b" not in pipe.getvalue()
    tty = io.StringIO()
    with Dashboard(RunConfig(), tmp_path, console=Console(file=tty, force_terminal=True)) as board:
        assert board.live is not None and board.plain is None
