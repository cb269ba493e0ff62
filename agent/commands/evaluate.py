"""``vid2reward evaluate``: how good is a trained policy? Mean ± std over seeded episodes.

For a ``train --out`` directory: the policy on the unmodified env (the env's own return,
episode length, fall rate with its 95% interval, simulator-state behaviour metrics, the cadence
by foot touchdowns) and, when the directory holds the reward program it trained on (or
``--reward`` names one), that program's return too, computed in the sandbox. For a run
directory: the same for ``best/``, beside the expert's behaviour metrics where they are known
(a clip made in simulation, e.g. the demo's) and its gait beside the person's where the video
showed one (tools/gait_comparison.py). The defaults are a run's final check's, so the numbers
are its summary's.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vid2reward.agent.run_record import RunRecord
from vid2reward.sim.errors import SEED_FIX, WORKER_FIX, UserError
from vid2reward.sim.evaluation import EVALUATION_EPISODES, EVALUATION_MAX_STEPS, PolicyEvaluation
from vid2reward.sim.falls import describe_falls
from vid2reward.sim.reward import RewardError, one_line
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.tools.gait_comparison import GaitRow, compare_with_person, comparison_lines
from vid2reward.tools.reward_isolation import set_trust


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "evaluate", help="mean ± std return, episode length, falls and behaviour of a policy",
        description="Run a trained policy deterministically for N seeded episodes on the "
                    "unmodified env and report mean ± std of the env's own return and of the "
                    "reward program's return (run sandboxed), episode length, fall rate and "
                    "simulator-state behaviour metrics. A run directory evaluates its best/ "
                    "beside the expert's metrics where they are known.")
    p.add_argument("--policy", required=True, type=Path, metavar="DIR",
                   help="a `vid2reward train` output directory, a run's best/, or a run "
                        "directory (evaluates its best/)")
    p.add_argument("--episodes", type=int, default=EVALUATION_EPISODES,
                   help=f"episodes (default {EVALUATION_EPISODES}, as a run's final check: "
                        "20 fall-free episodes bound the fall rate below 16%%)")
    p.add_argument("--seed", type=int, default=EVALUATION_SEED,
                   help="seed of the first episode; the others follow (default "
                        f"{EVALUATION_SEED}, the final check's: the same policy gives the "
                        "run's numbers)")
    p.add_argument("--max-steps", type=int, default=EVALUATION_MAX_STEPS,
                   help=f"cap on each episode's length, steps (default {EVALUATION_MAX_STEPS}, "
                        "the envs' limit)")
    p.add_argument("--reward", type=Path, default=None, metavar="FILE",
                   help="reward program whose return to report (default: the directory's "
                        "reward.py, if any)")
    p.add_argument("--video", type=Path, default=None, metavar="FILE",
                   help="also render the first episode to this mp4 (and <stem>_sheet.png)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--trust-reward-code", action="store_true",
                   help="run the reward program even where the OS cannot isolate it; only for "
                        "code you trust")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class EvaluatedPolicy:
    """A policy directory's evaluation and what was evaluated."""

    policy_dir: Path
    reward: Path | None
    """The reward program whose return was measured, if any."""
    evaluation: PolicyEvaluation
    expert: tuple[dict[str, float], Path] | None = None
    """The expert's state metrics and their file, when known (run directories)."""
    person: list[GaitRow] = field(default_factory=list)
    """The policy's gait beside the person's in the run's expert video (empty without one)."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` output (and an export's evaluation.json)."""
        expert = None if self.expert is None else {"source": str(self.expert[1]),
                                                   "state_metrics": self.expert[0]}
        return {"policy": {"path": str(self.policy_dir),
                           "reward": None if self.reward is None else str(self.reward),
                           **self.evaluation.to_dict()},
                "expert": expert, "person": [row.to_dict() for row in self.person]}


def policy_of(directory: Path) -> tuple[Path, Path | None, RunRecord | None]:
    """``(policy directory, its reward.py or None, the run)`` for a train output directory, a
    run's best/ or a run directory.

    Raises:
        UserError: nothing to evaluate there.
    """
    if not directory.is_dir():
        raise UserError("no such directory", where=str(directory),
                        fix="pass a `vid2reward train --out` directory or a run directory")
    record = RunRecord(directory)
    if record.is_run():
        if not (record.best_dir / "policy.zip").is_file():
            raise UserError("the run has no trained best policy yet (best/policy.zip)",
                            where=str(directory),
                            fix="wait for the run to finish, or `vid2reward resume` it")
        return record.best_dir, record.best_program_path(), record
    parent = RunRecord(directory.parent)
    run = parent if directory.name == "best" and parent.is_run() else None
    reward = directory / "reward.py"
    return directory, reward if reward.is_file() else None, run


def evaluate_directory(directory: Path, *, episodes: int = EVALUATION_EPISODES,
                       seed: int = EVALUATION_SEED, max_steps: int = EVALUATION_MAX_STEPS,
                       reward: Path | None = None, video: Path | None = None,
                       trust: bool | None = None) -> EvaluatedPolicy:
    """Evaluate what :func:`policy_of` finds in ``directory``; the reward program (``reward``,
    else the directory's) runs sandboxed, in lockstep with the evaluation's env. The defaults
    are a run's final check's (tools/policy_evaluation.py), so a run's best/ gets the numbers
    its summary shows.

    Raises:
        UserError: bad numbers, nothing to evaluate, an unloadable policy or reward, or a
            reward that fails while it is evaluated.
    """
    if episodes < 1 or max_steps < 1:
        raise UserError("--episodes and --max-steps must be positive", where="evaluate",
                        fix="give each a whole number of at least 1")
    if not 0 <= seed < 2**32 - episodes:
        raise UserError("--seed must be between 0 and 2**32 - 1", where=f"--seed {seed}", fix=SEED_FIX)
    if video is not None and video.suffix.lower() != ".mp4":
        raise UserError("the video must be an .mp4 file", where=str(video),
                        fix="give --video a file name ending in .mp4")
    from vid2reward.sim.envs import get_spec
    from vid2reward.sim.rollout import load_policy
    from vid2reward.sim.vec_env import EnvWorkerError
    from vid2reward.tools.policy_evaluation import evaluate_for_user
    from vid2reward.tools.reward_env import LockstepReward

    policy_dir, found_reward, run = policy_of(directory)
    reward = reward or found_reward
    policy = load_policy(policy_dir)
    lockstep = None if reward is None else LockstepReward(
        policy.env_id, reward, max_steps=max_steps, trust_reward_code=trust)
    try:
        evaluation = evaluate_for_user(policy.env_id, policy, episodes=episodes, seed=seed,
                                       max_steps=max_steps, reward=lockstep)
        if lockstep is not None:
            lockstep.finish()
    except EnvWorkerError as exc:  # the reward's worker overran its step time, or died
        raise RewardError(one_line(str(exc)), where=str(reward), fix=WORKER_FIX) from None
    finally:
        if lockstep is not None:
            lockstep.close()
    if video is not None:
        _render_first_episode(policy, seed, max_steps, video)
    person = [] if run is None else compare_with_person(
        evaluation.to_dict(), run.expert_measured(), get_spec(policy.env_id).body_length)
    return EvaluatedPolicy(policy_dir, reward, evaluation,
                           run.expert_state_metrics() if run is not None else None, person)


def _render_first_episode(policy: Any, seed: int, max_steps: int, video: Path) -> None:
    from vid2reward.sim.render import write_clip_and_sheet
    from vid2reward.sim.rollout import run_episodes

    video.parent.mkdir(parents=True, exist_ok=True)
    episode = run_episodes(policy.env_id, policy, episodes=1, seed=seed, max_steps=max_steps,
                           render_size=(320, 240))[0]
    write_clip_and_sheet(episode.frames, episode.fps, video,
                         video.with_name(f"{video.stem}_sheet.png"))


BEHAVIOUR_ROWS = (("forward_velocity", "forward velocity", "{:+.2f} m/s"),
                  ("cadence_steps_per_s", "cadence (foot touchdowns)", "{:.2f} steps/s"),
                  ("torso_height_mean", "torso height", "{:.2f} m"),
                  ("torso_height_std", "torso bob (std)", "{:.3f} m"),
                  ("cadence_hz", "torso bob frequency", "{:.2f} Hz"),
                  ("uprightness", "uprightness", "{:.3f}"),
                  ("torso_pitch", "torso pitch", "{:+.3f} rad"),
                  ("flight_fraction", "flight (no foot down)", "{:.0%}"),
                  ("double_support_fraction", "double support (two feet down)", "{:.0%}"))
"""Behaviour metrics shown in the table: key, label, format (sim/metrics.py). The cadence is
the steps the feet take; the torso bob frequency is what a clip's pixel cadence reads."""


def evaluation_table(result: EvaluatedPolicy) -> Table:
    """The rich table of an evaluation (a column for the expert when known)."""
    e = result.evaluation
    table = Table(title=f"{e.env_id}: {e.episodes} episodes from seed {e.seed}, "
                        f"deterministic actions")
    sources = [f"policy {result.policy_dir}"]
    if result.reward is not None:
        sources.append(f"reward {result.reward}")
    if result.expert is not None:
        sources.append(f"expert metrics {result.expert[1]}")
    table.caption = "; ".join(sources)
    table.add_column("")
    table.add_column(f"{result.policy_dir.name}/", justify="right")
    if result.expert is not None:
        table.add_column("expert", justify="right")

    def row(label: str, learner: str, expert: str = "—") -> None:
        table.add_row(label, learner, *([expert] if result.expert is not None else []))

    row("env return", f"{e.env_return_mean:.1f} ± {e.env_return_std:.1f}")
    if e.program_return_mean is not None:
        row("reward return", f"{e.program_return_mean:.1f} ± {e.program_return_std or 0.0:.1f}")
    row("episode length", f"{e.length_mean:.0f} ± {e.length_std:.0f} of {e.max_steps}")
    expert_metrics = result.expert[0] if result.expert is not None else {}
    # upside down or on the floor counts, not only the env's own end (sim/falls.py)
    row("falls", describe_falls(e.fall_rate, e.episodes, e.fall_seconds),
        describe_falls(expert_metrics["fall_rate"], int(expert_metrics.get("episodes", 0)))
        if "fall_rate" in expert_metrics else "—")
    for key, label, fmt in BEHAVIOUR_ROWS:
        row(label, fmt.format(e.metrics[key]) if key in e.metrics else "—",
            fmt.format(expert_metrics[key]) if key in expert_metrics else "—")
    return table


def run(args: argparse.Namespace) -> int:
    set_trust(args.trust_reward_code)
    console = Console(stderr=True)
    with console.status(f"evaluating {args.policy} over {args.episodes} episodes"):
        result = evaluate_directory(args.policy, episodes=args.episodes, seed=args.seed,
                                    max_steps=args.max_steps, reward=args.reward,
                                    video=args.video, trust=args.trust_reward_code)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    out = Console()
    out.print(evaluation_table(result))
    for line in comparison_lines(result.person):  # as the run's summary and trace word it
        out.print(line, highlight=False)
    if result.reward is None:
        console.print("no reward program found beside the policy: pass --reward FILE to "
                      "report its return too", highlight=False)
    if args.video is not None:
        console.print(f"first episode: {args.video}", highlight=False)
    return 0
