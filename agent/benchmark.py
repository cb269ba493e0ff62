"""The NES benchmark: does the learned reward reproduce the expert?

For each expert task (a bundled clip whose reward stays hidden) and seed it runs four methods
with the same training budget (iterations x candidates x steps env steps):

- ``full``: the offline engine (pixel-feature critic + chain-rule numeric engineer);
- ``random``: random programs from the same term library, kept by the same video critic's
  similarity (isolates the chain-rule step; agent/engines/random_search.py);
- ``eureka``: ``--critic none``, no video: programs explored around the best by their own
  training return;
- ``default``: the env's own reward (examples/<env>_default.py), one PPO run of the whole budget;
- ``viper``, ``vlm-rm``, ``car`` (on request): the papers' other reward sources, one training
  of the whole budget each (agent/source_bench.py);
- ``reference``: the task's hidden reward itself, trained from scratch like a final training
  (``final_steps``, else the whole budget): what the learned reward is measured against.

With ``final_steps``, each search method's winning reward (full, random, eureka) is also
trained again from scratch for that many steps (the run's final training) and that policy is
scored too (``final_nes``): the rewards are compared with equal retraining, not only their
short-budget candidates. For
search runs with a video critic, ``calibration`` holds how far the expert's speed, torso height
and cadence read from its pixels (through the calibration fitted on the learner clips of
iterations 1 and 2) are from the truth.

Each method's best policy (and, per iteration, the best-so-far candidate by the method's own
selection rule) is rolled out for several seeded episodes and scored with the Normalized Expert
Score on simulator-state metrics (sim/expert_score.py). Method directories are resumable: a
finished one (``result.json``) is read back, an interrupted run is resumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vid2reward.agent.config import RunConfig
from vid2reward.agent.expert_bundle import bundled_expert
from vid2reward.agent.run_record import RunRecord, iteration_of, read_json, write_json
from vid2reward.agent.source_bench import SOURCE_METHODS, train_bench_source
from vid2reward.agent.training_backend import open_training_backend
from vid2reward.sim.envs import steps_for_seconds
from vid2reward.sim.evaluation import evaluate_policy
from vid2reward.sim.expert_score import behaviour_distance, normalized_expert_score
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.sim.seeds import BENCHMARK_RANDOM_SEED, BENCHMARK_SEED
from vid2reward.tools.calibration import QUANTITIES, Calibration

METHODS = ("full", "random", "eureka", "default", "reference", *SOURCE_METHODS)
"""The compared methods, in table order."""
DEFAULT_REWARD = {"Hopper-v5": "hopper_default.py", "Walker2d-v5": "walker2d_default.py",
                  "HalfCheetah-v5": "halfcheetah_default.py", "Ant-v5": "ant_default.py",
                  "Humanoid-v5": "humanoid_default.py"}
"""The env's own reward, as a bundled reward program (examples/)."""


@dataclass
class BenchConfig:
    """What the benchmark runs. Budgets are per method, per task, per seed."""

    tasks: list[str]
    seeds: int = 1
    """Seeds 0..seeds-1 of each method (RunConfig.seed / TrainConfig.seed)."""
    iterations: int = 3
    candidates: int = 4
    steps: int = 60_000
    """PPO steps per candidate; ``default`` trains once for iterations*candidates*steps."""
    n_envs: int | None = None
    """Parallel envs per training; None: the env's preset."""
    clip_seconds: float = 8.0
    """Length of the learner clips the critic sees (the expert clips are 8 s)."""
    eval_episodes: int = 5
    """Seeded episodes (no rendering) measured per evaluated policy."""
    random_episodes: int = 10
    """Uniform-random-action episodes that give d(random, expert)."""
    methods: list[str] = field(default_factory=lambda: [m for m in METHODS if m != "reference"
                                                        and m not in SOURCE_METHODS])
    experts: Path | None = None
    """Folder of bundled experts (default examples/experts)."""
    sources: dict[str, Any] = field(default_factory=dict)
    """Options of the reward-source methods (agent/source_bench.py): CLIP checkpoint, CaR
    model and endpoint, weights."""
    ray_address: str | None = None
    """The searches' candidates train as Ray tasks there (``--ray``); None: this machine."""
    final_steps: int = 0
    """Train the full method's winning reward again from scratch for this many steps and score
    that policy too (0: off); also the ``reference`` method's budget."""

    @property
    def budget_steps(self) -> int:
        """Training env steps each method may spend."""
        return self.iterations * self.candidates * self.steps


FAST = {"iterations": 2, "candidates": 2, "steps": 2048, "n_envs": 4, "clip_seconds": 3.0,
        "eval_episodes": 2, "random_episodes": 3}
"""Tiny budgets for the pipeline check (CI): minutes, not numbers worth reading."""


@dataclass
class MethodResult:
    """One method on one task with one seed."""

    task: str
    method: str
    seed: int
    nes: float
    nes_per_iteration: list[float]
    distance: float
    wall_seconds: float
    env_steps: int
    best_candidate: str | None
    best_metrics: dict[str, float]
    run_dir: str
    final_nes: float | None = None
    """NES of the winning reward trained again from scratch (``final_steps``), if it was."""
    final_metrics: dict[str, float] | None = None
    calibration: dict[str, float] | None = None
    """Relative error of the expert's values read through the run's last calibration, by
    quantity (forward_velocity, lateral_velocity, torso_height_mean, cadence_hz)."""


@dataclass
class TaskGround:
    """What the score needs about a task: env, the expert's and a random policy's metrics."""

    task: str
    env_id: str
    clip: Path
    expert_metrics: dict[str, float]
    random_metrics: dict[str, float]
    max_steps: int
    """Episode length of every measurement: the expert clip's duration in env steps."""
    reference_reward: str = ""
    """The task's hidden reward program (the ``reference`` method trains it; no agent sees it)."""


def task_ground(task: str, cfg: BenchConfig, out: Path) -> TaskGround:
    """The bundled expert's clip and metrics, and (cached in ``out/random``) a random policy's."""
    clip, info = bundled_expert(task, cfg.experts)
    env_id = info["env_id"]
    max_steps = steps_for_seconds(env_id, float(info.get("clip_seconds", 8.0)))
    cache = out / "random" / f"{task}.json"
    if cache.is_file() and read_json(cache).get("episodes") == cfg.random_episodes:
        random_metrics = read_json(cache)
    else:
        episodes = run_episodes(env_id, None, episodes=cfg.random_episodes, seed=BENCHMARK_RANDOM_SEED,
                                max_steps=max_steps)
        random_metrics = behaviour_metrics(episodes).to_dict()
        write_json(cache, random_metrics)
    return TaskGround(task, env_id, clip, info["state_metrics"], random_metrics, max_steps,
                      reference_reward=info.get("reward_source", ""))


def measure_policy(policy_dir: Path, ground: TaskGround, episodes: int) -> dict[str, float]:
    """State metrics of a trained policy over seeded episodes, cached in the policy's directory
    (``bench_metrics.json``, keyed by episodes and length)."""
    cache = policy_dir / "bench_metrics.json"
    key = {"episodes": episodes, "max_steps": ground.max_steps, "seed": BENCHMARK_SEED}
    if cache.is_file() and read_json(cache).get("key") == key:
        return read_json(cache)["metrics"]
    policy = load_policy(policy_dir, ground.env_id)
    metrics = evaluate_policy(ground.env_id, policy, episodes=episodes, seed=BENCHMARK_SEED,
                              max_steps=ground.max_steps).metrics
    write_json(cache, {"key": key, "metrics": metrics})
    return metrics


def best_so_far(run_dir: Path) -> list[Path]:
    """Per iteration, the best candidate of iterations 1..i by the run's own selection rule."""
    record = RunRecord(run_dir)
    out: list[Path] = []
    best: tuple[float, str] | None = None
    for it in sorted({iteration_of(c) for c in record.candidate_ids()}):
        for cid in record.candidate_ids(upto=it):
            if iteration_of(cid) == it and record.is_evaluated(cid) and record.has_policy(cid):
                score = record.score(cid, (record.evaluation(cid) or {}).get("similarity"))
                if best is None or score > best[0]:
                    best = (score, cid)
        if best is not None:
            out.append(record.candidate_dir(best[1]))
    return out


CALIBRATION_TARGETS = ("forward_velocity", "lateral_velocity", "torso_height", "cadence_hz")
"""The calibrated quantities the benchmark reports (speed either way, torso height, cadence)."""


def calibration_errors(run_dir: Path, ground: TaskGround, iteration: int) -> dict[str, float] | None:
    """|read - true| / |true| of the expert's speed, torso height and cadence, read through the
    calibration made after ``iteration`` (or the latest before it; None without one); a
    quantity the fit could not use yet is left out."""
    data = RunRecord(run_dir).latest_calibration(iteration)
    if data is None:
        return None
    fits = Calibration.from_dict(data).fits
    out = {}
    for spec in QUANTITIES:
        fit = fits.get(spec.quantity)
        if spec.quantity not in CALIBRATION_TARGETS or fit is None or not fit.usable \
                or fit.expert_value is None:
            continue
        truth = float(ground.expert_metrics[spec.metric])
        out[spec.metric] = round(abs(fit.expert_value - truth) / max(abs(truth), 1e-6), 4)
    return out


def _env_steps(run_dir: Path) -> int:
    """Env steps actually trained: one count per distinct training (cached copies excluded)."""
    return sum(int(m.get("steps", 0)) for m in RunRecord(run_dir).distinct_trainings())


def _run_search(method: str, ground: TaskGround, cfg: BenchConfig, seed: int, run_dir: Path,
                log: Callable[[str], None]) -> None:
    """Run (or resume) the graph for the full, random or eureka method."""
    from vid2reward.agent.runner import execute, load_run, new_run_dir

    if RunRecord(run_dir).run_json.is_file():
        paths, config, run_id = load_run(run_dir)
        resume = True
    else:
        config = RunConfig(env_id=ground.env_id, video=str(ground.clip), iterations=cfg.iterations,
                           candidates=cfg.candidates, steps=cfg.steps, seed=seed,
                           patience=cfg.iterations, n_envs=cfg.n_envs,
                           clip_seconds=cfg.clip_seconds,
                           critic="none" if method == "eureka" else None,
                           search="random" if method == "random" else "chain_rule",
                           final_steps=cfg.final_steps)
        paths, run_id, resume = new_run_dir(config, run_dir), run_dir.name, False
    config.ray_address = cfg.ray_address  # a runtime choice: a resumed method may move
    training = open_training_backend(cfg.ray_address)
    try:  # make_engines reads config.search: "random" swaps in the random-search engineer.
        outcome = execute(paths, config, run_id, resume=resume, training=training)
    finally:
        training.close()
    log(f"  {method}: run {outcome.status} ({outcome.reason})")
    if outcome.status == "interrupted":
        # Stop the whole bench and record nothing: a half-run search is not a result, and
        # rerunning the same command resumes this run where it stopped.
        log("  stopped; rerun the same command to resume")
        raise KeyboardInterrupt


def _train_once(method: str, ground: TaskGround, cfg: BenchConfig, seed: int,
                run_dir: Path) -> Path:
    """``default``: the env's own reward for the whole budget; ``reference``: the task's hidden
    reward for ``final_steps`` (else the budget). Returns the policy directory."""
    from vid2reward import examples
    from vid2reward.sim.train import TrainConfig
    from vid2reward.tools.reward_sandbox import sandboxed_program
    from vid2reward.tools.reward_training import train_sandboxed

    policy_dir = run_dir / "policy"
    if (policy_dir / "policy.zip").is_file():
        return policy_dir
    if method == "default":
        name = DEFAULT_REWARD[ground.env_id]
        source = (Path(examples.__file__).parent / name).read_text(encoding="utf-8")
        steps = cfg.budget_steps
    else:
        name, source = f"{ground.task}_reference.py", ground.reference_reward
        steps = cfg.final_steps or cfg.budget_steps
    overrides = {} if cfg.n_envs is None else {"n_envs": cfg.n_envs}
    # An --experts DIR's reference reward is whatever its JSON says: sandboxed like any other.
    train_sandboxed(TrainConfig.for_env(ground.env_id, total_steps=steps, seed=seed, **overrides),
                    sandboxed_program(source, name), policy_dir)
    return policy_dir


def run_method(method: str, ground: TaskGround, cfg: BenchConfig, seed: int, out: Path,
               log: Callable[[str], None] = print) -> MethodResult:
    """One method on one task and seed; read back when ``result.json`` exists."""
    run_dir = out / "runs" / ground.task / f"{method}-s{seed}"
    done = run_dir / "result.json"
    if done.is_file():
        return MethodResult(**read_json(done))
    t0 = time.monotonic()
    final_nes, final_metrics, calibration = None, None, None
    if method in SOURCE_METHODS:  # VIPER, VLM-RM, VLM-CaR: one reward, one training
        policy_dir = train_bench_source(method, ground, cfg, seed, out, log)
        steps = int(read_json(policy_dir / "metrics.json").get("steps", cfg.budget_steps))
        trail = [policy_dir]
    elif method in ("default", "reference"):
        policy_dir = _train_once(method, ground, cfg, seed, run_dir)
        steps = int(read_json(policy_dir / "metrics.json").get("steps", cfg.budget_steps))
        trail = [policy_dir]
    else:
        _run_search(method, ground, cfg, seed, run_dir, log)
        steps = _env_steps(run_dir)
        trail = best_so_far(run_dir)
        calibration = calibration_errors(run_dir, ground, iteration=cfg.iterations)
        final_dir = RunRecord(run_dir).final_dir
        if cfg.final_steps > 0 and (final_dir / "policy.zip").is_file():
            final_metrics = measure_policy(final_dir, ground, cfg.eval_episodes)
            final_nes = normalized_expert_score(final_metrics, ground.expert_metrics,
                                                ground.random_metrics)
    curve = [normalized_expert_score(measure_policy(p, ground, cfg.eval_episodes),
                                     ground.expert_metrics, ground.random_metrics) for p in trail]
    best_metrics = measure_policy(trail[-1], ground, cfg.eval_episodes) if trail else {}
    result = MethodResult(
        task=ground.task, method=method, seed=seed, nes=curve[-1] if curve else 0.0,
        nes_per_iteration=curve,
        distance=behaviour_distance(best_metrics, ground.expert_metrics) if best_metrics else float("nan"),
        wall_seconds=round(time.monotonic() - t0, 1), env_steps=steps,
        best_candidate=str(trail[-1].relative_to(run_dir)) if trail else None,
        best_metrics=best_metrics, run_dir=str(run_dir), final_nes=final_nes,
        final_metrics=final_metrics, calibration=calibration)
    write_json(done, asdict(result))
    return result


def run_benchmark(cfg: BenchConfig, out: Path, log: Callable[[str], None] = print,
                  ) -> tuple[list[MethodResult], dict[str, TaskGround]]:
    """Every task x seed x method, in that order (each method's directory resumable)."""
    out.mkdir(parents=True, exist_ok=True)
    grounds: dict[str, TaskGround] = {}
    results = []
    for task in cfg.tasks:
        ground = grounds[task] = task_ground(task, cfg, out)
        log(f"{task} ({ground.env_id}): d(random, expert) = "
            f"{behaviour_distance(ground.random_metrics, ground.expert_metrics):.2f}")
        for seed in range(cfg.seeds):
            for method in cfg.methods:
                log(f"  {method} seed {seed} ...")
                r = run_method(method, ground, cfg, seed, out, log)
                log(f"  {method} seed {seed}: NES {r.nes:.3f} "
                    f"(per iteration {', '.join(f'{v:.2f}' for v in r.nes_per_iteration)}), "
                    f"{r.wall_seconds:.0f} s, {r.env_steps:,} steps")
                results.append(r)
    return results, grounds


def config_json(cfg: BenchConfig) -> dict[str, Any]:
    """The benchmark config as JSON."""
    data = asdict(cfg)
    data["experts"] = str(cfg.experts) if cfg.experts else None
    data["budget_steps"] = cfg.budget_steps
    return json.loads(json.dumps(data))
