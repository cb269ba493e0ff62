"""The NES benchmark's summary: held-out tasks reported apart from the tasks tuned on, and the
calibration's speed error along the expert's own direction of travel."""

from pathlib import Path

from vid2reward.agent.benchmark import MethodResult, TaskGround
from vid2reward.agent.benchmark_report import calibration_table, summarise, task_set
from vid2reward.sim.expert_score import NES_METRICS


def _metrics(forward: float, lateral: float = 0.0) -> dict[str, float]:
    m = {k: 0.0 for k in NES_METRICS}
    m.update(forward_velocity=forward, lateral_velocity=lateral, torso_height_mean=1.0)
    return m


def _ground(task: str, forward: float, lateral: float = 0.0) -> TaskGround:
    return TaskGround(task=task, env_id="Hopper-v5", clip=Path("x.mp4"),
                      expert_metrics=_metrics(forward, lateral), random_metrics=_metrics(0.0),
                      max_steps=100)


def _result(task: str, seed: int, nes: float, calibration: dict[str, float] | None = None) -> MethodResult:
    return MethodResult(task=task, method="full", seed=seed, nes=nes, nes_per_iteration=[nes],
                        distance=1.0 - nes, wall_seconds=1.0, env_steps=10, best_candidate=None,
                        best_metrics={}, run_dir="", calibration=calibration)


def test_held_out_tasks_have_their_own_mean() -> None:
    assert task_set("hopper-steady") == "tune" and task_set("hopper-slow") == "held-out"
    grounds = {t: _ground(t, 1.0) for t in ("hopper-steady", "walker-slow", "hopper-slow")}
    results = [_result("hopper-steady", 0, 0.9), _result("walker-slow", 0, 0.7),
               _result("hopper-slow", 0, 0.2), _result("hopper-slow", 1, 0.4)]
    rows = {r["task"]: r for r in summarise(results, grounds)}
    assert rows["mean (tune)"]["nes_mean"] == 0.8
    assert abs(rows["mean (held-out)"]["nes_mean"] - 0.3) < 1e-9
    assert "mean" not in rows  # no mean that mixes the tasks tuned on with the held-out ones
    only_tune = summarise(results[:2], grounds)
    assert [r["task"] for r in only_tune][-1] == "mean"


def test_calibration_speed_is_the_experts_direction_of_travel() -> None:
    grounds = {"ant-sideways": _ground("ant-sideways", 0.1, 0.45),
               "hopper-steady": _ground("hopper-steady", 0.7)}
    results = [_result("ant-sideways", 0, 0.5, {"forward_velocity": 0.6, "lateral_velocity": 0.05}),
               _result("hopper-steady", 0, 0.5, {"forward_velocity": 0.08, "lateral_velocity": 0.9})]
    lines = calibration_table(results, grounds).splitlines()
    ant = next(line for line in lines if line.startswith("| ant-sideways"))
    hopper = next(line for line in lines if line.startswith("| hopper-steady"))
    assert "| lateral | 5% " in ant and "| forward | 8% " in hopper
