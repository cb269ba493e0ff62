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
