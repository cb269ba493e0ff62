"""The reward sources as ``bench nes`` methods: ``viper``, ``vlm-rm`` and ``car``.

Each trains one policy with the benchmark's budget (iterations x candidates x steps) through
:func:`~vid2reward.agent.reward_source_run.run_with_source`, on the task's expert clip, and
is scored like the other methods. ``car`` verifies its checks on the ``full`` method's best
candidates of the same task and seed (run first when missing); ``vlm-rm`` needs
``--clip-checkpoint``, ``car`` ``--car-model`` (and ``--base-url``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vid2reward.agent.config import RunConfig
from vid2reward.agent.reward_source_run import SourceOptions, run_with_source
from vid2reward.sim.errors import UserError

SOURCE_METHODS = ("viper", "vlm-rm", "car")
"""Bench methods that are reward sources (agent/reward_source_run.py)."""


def check_source_methods(methods: list[str], sources: dict[str, Any]) -> None:
    """Refuse, before any work, a source method whose required option is missing."""
    if "vlm-rm" in methods and not sources.get("clip_checkpoint"):
        from vid2reward.tools.clip_reward import GET_ONE

        raise UserError("the vlm-rm method needs a CLIP checkpoint", where="--clip-checkpoint",
                        fix=GET_ONE)
    if "car" in methods and not sources.get("car_model"):
        raise UserError("the car method needs a VLM", where="--car-model",
                        fix="pass --car-model MODEL and --base-url URL (an OpenAI-compatible "
                            "endpoint)")


def train_source_method(method: str, clip: Path, env_id: str, task_words: str, *, seed: int,
                        iterations: int, candidates: int, steps: int, n_envs: int | None,
                        sources: dict[str, Any], run_dir: Path, full_run: Path | None,
                        log: Callable[[str], None]) -> Path:
    """Train ``method``'s reward for the task (read back when done); its policy directory."""
    best = run_dir / "run" / "best"
    if (best / "policy.zip").is_file():
        return best
    if (run_dir / "run").exists():  # an interrupted one: start it again (the model is cached)
        import shutil

        shutil.rmtree(run_dir / "run")
    fields = {k: v for k, v in sources.items() if k in SourceOptions.__dataclass_fields__}
    opts = SourceOptions(**{**fields, "kind": method,
                            "car_expert_run": str(full_run) if full_run else None})
    config = RunConfig(env_id=env_id, video=str(clip), task=task_words, iterations=iterations,
                       candidates=candidates, steps=steps, seed=seed, n_envs=n_envs,
                       engine="llm" if method == "car" else "offline",
                       critic=sources.get("car_model") if method == "car" else None,
                       base_url=sources.get("base_url"))
    if method == "vlm-rm" and opts.clip_goal == "text" and not task_words:
        opts.clip_goal = "image"  # the task has no words: the expert's frames are the goal
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = run_with_source(config, opts, run_dir / "run", log=log)
    if summary["status"] == "failed":
        raise UserError(f"the {method} training failed: {summary['failure']}", where=str(best),
                        fix=f"its run is in {run_dir / 'run'}; `vid2reward trace` it, or try --fast")
    return best


def train_bench_source(method: str, ground: Any, cfg: Any, seed: int, out: Path,
                       log: Callable[[str], None]) -> Path:
    """``bench nes``'s ``viper``, ``vlm-rm`` or ``car`` on one task and seed (``ground``: the
    benchmark's TaskGround, ``cfg``: its BenchConfig); the trained policy's directory. ``car``
    runs (or reads back) the ``full`` method of the same task and seed first: its best
    candidates are the expert-like episodes."""
    from vid2reward.agent.benchmark import run_method
    from vid2reward.agent.expert_bundle import bundled_expert

    check_source_methods([method], cfg.sources)
    full_run = None
    if method == "car":
        run_method("full", ground, cfg, seed, out, log)
        full_run = out / "runs" / ground.task / f"full-s{seed}"
    words = str(bundled_expert(ground.task, cfg.experts)[1].get("description", ""))
    return train_source_method(method, ground.clip, ground.env_id, words, seed=seed,
                               iterations=cfg.iterations, candidates=cfg.candidates,
                               steps=cfg.steps, n_envs=cfg.n_envs, sources=cfg.sources,
                               run_dir=out / "runs" / ground.task / f"{method}-s{seed}",
                               full_run=full_run, log=log)
