"""The learning benchmark: how fast does ``train`` reach the expert's behaviour?

For each expert task (examples/experts: a clip made by a policy trained on a hidden reference
reward) it trains that *reference* reward from scratch, so the reward is known to be right and
only the RL is measured, with two set-ups:

- ``train``: the project's own ``train`` (sandboxed reward, worker processes, the per-env
  preset of sim/hyperparams.py), exactly what ``vid2reward train`` and the search run;
- ``rl-zoo``: the anchor, SB3 PPO with RL Zoo's tuned hyperparameters for that body
  (sim/hyperparams.py ``RL_ZOO_PPO``), one env in a plain DummyVecEnv, same reward program.

Every ``eval_every`` steps the policy is evaluated over seeded episodes of the expert clip's
length (sim/evaluation.py) and scored with the Normalized Expert Score (sim/expert_score.py).
The clock counts training only (evaluation time is taken out). The figure the benchmark is
judged by is the training time to the first checkpoint with NES >= ``target_nes``.

Each (task, method, seed) writes ``result.json`` when it ends; a rerun reads finished ones back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vid2reward.agent.benchmark import BenchConfig, TaskGround, task_ground
from vid2reward.agent.expert_tasks import EXPERT_TASKS
from vid2reward.agent.run_record import read_json, write_json
from vid2reward.sim.errors import UserError
from vid2reward.sim.evaluation import CheckpointEvaluation, PolicyEvaluation
from vid2reward.sim.expert_score import normalized_expert_score
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.hyperparams import RL_ZOO_PPO
from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.seeds import BENCHMARK_SEED
from vid2reward.sim.train import TrainConfig, train

LEARNING_METHODS = ("train", "rl-zoo")
"""The compared set-ups, in table order."""


@dataclass
class LearningBenchConfig:
    """What ``bench learning`` runs. Budgets are per task, method and seed."""

    tasks: list[str]
    seeds: int = 3
    """Seeds 0..seeds-1 of each set-up."""
    steps: int = 500_000
    """Env steps of training."""
    eval_every: int = 50_000
    """Env steps between checkpoint evaluations."""
    eval_episodes: int = 5
    """Seeded episodes per checkpoint (no rendering), each as long as the expert clip."""
    target_nes: float = 0.7
    """The NES a policy must reach to count as competent."""
    methods: list[str] = field(default_factory=lambda: list(LEARNING_METHODS))
    anchor_time_limit: float | None = 600.0
    """Training seconds the RL Zoo anchor may use (one env, tiny minibatches: slow on a CPU);
    None = its whole step budget."""
    experts: Path | None = None
    """Folder of bundled experts (default examples/experts)."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields set on top of the env's preset for the ``train`` set-up (``--ppo``):
    how a candidate preset is measured before it goes into sim/hyperparams.py."""


FAST = {"seeds": 1, "steps": 8192, "eval_every": 4096, "eval_episodes": 2,
        "anchor_time_limit": 20.0}
"""Tiny budgets for the pipeline check (CI): a minute, not numbers worth reading."""


@dataclass
class LearningCheckpoint:
    """One evaluation during training."""

    steps: int
    seconds: float
    """Training wall-clock seconds so far (evaluation excluded)."""
    nes: float
    env_return_mean: float
    env_return_std: float
    program_return_mean: float | None
    """The reference reward's return (the task's own score)."""
    length_mean: float
    fall_rate: float


@dataclass
class LearningResult:
    """One set-up on one task with one seed."""

    task: str
    env_id: str
    method: str
    seed: int
    checkpoints: list[LearningCheckpoint]
    steps: int
    seconds: float
    """Training wall-clock seconds (evaluation excluded)."""
    status: str
    """train's status: "finished", "time_limit" or "failed"."""
    config: dict[str, Any]

    @property
    def final_nes(self) -> float:
        """NES of the last checkpoint (0 without one)."""
        return self.checkpoints[-1].nes if self.checkpoints else 0.0

    @property
    def steps_per_second(self) -> float:
        """Training throughput, evaluation excluded."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def first_reaching(self, target: float) -> LearningCheckpoint | None:
        """The first checkpoint whose NES is at least ``target``."""
        return next((c for c in self.checkpoints if c.nes >= target), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LearningResult:
        """Read back what :func:`asdict` wrote."""
        data = dict(data)
        data["checkpoints"] = [LearningCheckpoint(**c) for c in data["checkpoints"]]
        return cls(**data)


def method_config(method: str, env_id: str, cfg: LearningBenchConfig, seed: int) -> TrainConfig:
    """The TrainConfig of a set-up: our per-env preset, or RL Zoo's on one in-process env."""
    if method == "train":
        return TrainConfig.for_env(env_id, total_steps=cfg.steps, seed=seed, **cfg.train_overrides)
    if method == "rl-zoo":
        if env_id not in RL_ZOO_PPO:
            raise ValueError(f"no RL Zoo hyperparameters for {env_id}")
        return TrainConfig(env_id=env_id, total_steps=cfg.steps, seed=seed, n_workers=0,
                           **RL_ZOO_PPO[env_id])
    raise ValueError(f"unknown learning-bench method {method!r}")


def run_learning(method: str, ground: TaskGround, cfg: LearningBenchConfig, seed: int, out: Path,
                 log: Callable[[str], None] = print) -> LearningResult:
    """Train the task's reference reward with one set-up, evaluating at checkpoints."""
    run_dir = out / "runs" / ground.task / f"{method}-s{seed}"
    done = run_dir / "result.json"
    config = method_config(method, ground.env_id, cfg, seed)
    if done.is_file():
        finished = LearningResult.from_json(read_json(done))
        check_same_settings(finished, config, run_dir)
        return finished
    source = EXPERT_TASKS[ground.task].reward_source
    name = f"{ground.task}.py"
    reference = load_reward_program(source, name=name)  # trusted: our own reference reward
    checkpoints: list[LearningCheckpoint] = []

    def on_checkpoint(steps: int, seconds: float, ev: PolicyEvaluation) -> None:
        nes = normalized_expert_score(ev.metrics, ground.expert_metrics, ground.random_metrics)
        checkpoints.append(LearningCheckpoint(
            steps=steps, seconds=round(seconds, 2), nes=round(nes, 4),
            env_return_mean=round(ev.env_return_mean, 2), env_return_std=round(ev.env_return_std, 2),
            program_return_mean=None if ev.program_return_mean is None else round(ev.program_return_mean, 2),
            length_mean=ev.length_mean, fall_rate=ev.fall_rate))
        log(f"    {steps:>8,} steps {seconds:6.0f} s  NES {nes:.2f}  falls {ev.fall_rate:.0%}  "
            f"env return {ev.env_return_mean:.0f}")

    anchor_limit = cfg.anchor_time_limit if method == "rl-zoo" else None
    checkpoint = CheckpointEvaluation(ground.env_id, cfg.eval_every, on_checkpoint,
                                      episodes=cfg.eval_episodes, seed=BENCHMARK_SEED,
                                      max_steps=ground.max_steps, reward=reference.compute,
                                      time_limit=anchor_limit,
                                      gait_clock_hz=declared_clock_hz(source, name))
    if method == "train":
        from vid2reward.tools.reward_sandbox import sandboxed_program
        from vid2reward.tools.reward_training import train_sandboxed

        program = sandboxed_program(source, name=name)
        result = train_sandboxed(config, program, run_dir / "policy", callbacks=[checkpoint])
    else:
        result = train(config, reference, run_dir / "policy", callbacks=[checkpoint])
    if result.status == "failed":  # not a seed that learned nothing: nothing to record
        raise UserError(f"{ground.task} {method} seed {seed}: the training failed: "
                        f"{result.metrics.get('failure')}",
                        where=str(run_dir / "policy" / "metrics.json"),
                        fix=result.metrics.get("failure_fix") or "fix the cause and rerun the "
                            "same command: finished seeds are read back")
    outcome = LearningResult(
        task=ground.task, env_id=ground.env_id, method=method, seed=seed,
        checkpoints=checkpoints, steps=int(result.metrics["steps"]),
        # the clock as of the final evaluation, which the callback always makes at the end
        seconds=checkpoints[-1].seconds if checkpoints else 0.0,
        status="time_limit" if checkpoint.hit_time_limit else result.status,
        config=asdict(config))
    write_json(done, asdict(outcome))
    return outcome


def check_same_settings(finished: LearningResult, config: TrainConfig, run_dir: Path) -> None:
    """A finished run is read back only if it was trained with the settings asked for now
    (another preset or ``--ppo`` in the same ``--out`` would mix two set-ups in one table).
    Fields the stored config lacks (written by an older version) are not compared."""
    wanted = json.loads(json.dumps(asdict(config)))
    differing = sorted(k for k, v in finished.config.items() if k in wanted and wanted[k] != v)
    if differing:
        shown = ", ".join(f"{k}={finished.config[k]!r} (now {wanted[k]!r})" for k in differing)
        raise UserError(f"{run_dir} was trained with other settings: {shown}",
                        where=str(run_dir / "result.json"),
                        fix="use another --out, or the settings it was trained with")


def run_learning_bench(cfg: LearningBenchConfig, out: Path, log: Callable[[str], None] = print,
                       ) -> tuple[list[LearningResult], dict[str, TaskGround]]:
    """Every task x seed x set-up, in that order (finished ones read back)."""
    out.mkdir(parents=True, exist_ok=True)
    grounds: dict[str, TaskGround] = {}
    results = []
    ground_cfg = BenchConfig(tasks=cfg.tasks, experts=cfg.experts)
    for task in cfg.tasks:
        ground = grounds[task] = task_ground(task, ground_cfg, out)
        for seed in range(cfg.seeds):
            for method in cfg.methods:
                log(f"{task} {method} seed {seed}:")
                started = time.monotonic()
                r = run_learning(method, ground, cfg, seed, out, log)
                reached = r.first_reaching(cfg.target_nes)
                log(f"  {task} {method} seed {seed}: final NES {r.final_nes:.2f}; NES "
                    f"{cfg.target_nes} " + (f"after {reached.seconds:.0f} s" if reached else "not reached")
                    + f" ({time.monotonic() - started:.0f} s with evaluation)")
                results.append(r)
    return results, grounds
