"""Expert tasks with known ground truth: a hidden reference reward, the expert policy trained
on it, the clip rendered from that policy, and the expert's simulator-state metrics.

vid2reward is only ever given the clip; the reward and the state metrics stay hidden and are
used to score the result (benchmarks) and to make the demo's bundled expert.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vid2reward.agent.run_record import write_json
from vid2reward.sim.envs import steps_for_seconds
from vid2reward.sim.errors import UserError
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.render import write_clip_and_sheet
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.sim.train import ProgressFn, TrainConfig
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed


@dataclass(frozen=True)
class ExpertTask:
    """A behaviour to imitate, defined by a hidden reference reward."""

    name: str
    env_id: str
    description: str
    reward_source: str
    train_steps: int = 600_000
    held_out: bool = False
    """Held out: never used to choose a constant of the engineer or the calibration; the
    benchmark reports these tasks apart from the ones the method was tuned on."""


_HEADER = "import numpy as np\n\n"

EXPERT_TASKS: dict[str, ExpertTask] = {t.name: t for t in [
    ExpertTask(
        "hopper-steady", "Hopper-v5", "the hopper hops forward at a steady 0.8 m/s",
        _HEADER + "WEIGHTS = {\"speed\": 2.0, \"target\": 0.8, \"alive\": 1.0, \"ctrl\": 0.001}\n\n"
        "def compute_reward(s, a):\n"
        "    # A bell around the target speed: always positive, so staying up always pays.\n"
        "    c = {\"speed\": WEIGHTS[\"speed\"] * float(np.exp(-4.0 * (s.forward_velocity - WEIGHTS[\"target\"]) ** 2)),\n"
        "         \"alive\": WEIGHTS[\"alive\"] * float(s.is_healthy),\n"
        "         \"ctrl\": -WEIGHTS[\"ctrl\"] * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n"),
    ExpertTask(
        # A plain -forward_velocity reward (with the alive bonus) taught standing still: a bell
        # around a backward target pays 2.7x more at the target than at rest, so it hops.
        "hopper-backward", "Hopper-v5", "the hopper hops backward at about 0.5 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"backward\": 2.0 * float(np.exp(-4.0 * (s.forward_velocity + 0.5) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 800_000),
    ExpertTask(
        # With "still" as -|forward velocity| it hopped forward at 0.6 m/s (more bounce paid
        # more than the penalty cost); a bell at zero speed pays only for staying in place.
        # With bounce 1.0 it then stood still (600k steps): bounce 3.0 makes hopping pay.
        "hopper-in-place", "Hopper-v5", "the hopper hops in place, high",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"bounce\": 3.0 * abs(s.vertical_velocity),\n"
        "         \"still\": 1.5 * float(np.exp(-8.0 * s.forward_velocity ** 2)),\n"
        "         \"alive\": float(s.is_healthy), \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n"),
    ExpertTask(
        "walker-slow", "Walker2d-v5", "the walker walks forward slowly, at 0.7 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-4.0 * (s.forward_velocity - 0.7) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 1_000_000),  # 500k steps: it fell in every episode
    ExpertTask(
        "walker-backward", "Walker2d-v5", "the walker walks backward at about 0.6 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"backward\": 2.0 * float(np.exp(-4.0 * (s.forward_velocity + 0.6) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 1_000_000),
    ExpertTask(
        "cheetah-backward", "HalfCheetah-v5", "the half cheetah runs backward",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"backward\": -1.0 * s.forward_velocity, \"ctrl\": -0.1 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n"),
    ExpertTask(
        # With only -|v - 1.5| it flipped onto its back and shuffled at 0.7 m/s: the upright
        # term makes the flip cost, the bell makes the target speed pay.
        "cheetah-steady", "HalfCheetah-v5", "the half cheetah runs forward at a steady 1.5 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-2.0 * (s.forward_velocity - 1.5) ** 2)),\n"
        "         \"upright\": 1.0 * s.uprightness,\n"
        "         \"ctrl\": -0.1 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n"),
    ExpertTask(
        # Crab-like: the ant walks along its lateral axis (+y, away from the side camera), so
        # its travel is in the image's depth, not across it. The bell on x keeps it from
        # turning the walk into a forward one at an angle.
        "ant-sideways", "Ant-v5", "the ant walks sideways (to its left, away from the camera) at 0.5 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"sideways\": 2.0 * float(np.exp(-4.0 * (s.lateral_velocity - 0.5) ** 2)),\n"
        "         \"straight\": 0.5 * float(np.exp(-4.0 * s.forward_velocity ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.05 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 2_000_000),
    ExpertTask(
        # Walking forward along its own axis while turning left: a circle of about 1 m radius.
        # Speed is measured along the torso's heading, so spinning in place does not pay it.
        # Not shipped: after 2M steps it walked straight ahead at 0.29 m/s (yaw rate -0.04) and
        # flipped over near the end of the clip; the speed term paid more than turning cost.
        "ant-circle", "Ant-v5", "the ant walks in a circle, turning left at 0.5 rad/s at 0.5 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    ahead = s.forward_velocity * np.cos(s.torso_yaw) + s.lateral_velocity * np.sin(s.torso_yaw)\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-4.0 * (ahead - 0.5) ** 2)),\n"
        "         \"turn\": 1.0 * float(np.exp(-4.0 * (s.yaw_rate - 0.5) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.05 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 2_000_000),
    # Held-out tasks (issue 33): other speeds, other gaits, another body. Defined after every
    # constant of the engineer and the calibration was chosen; nothing is tuned on them.
    ExpertTask(
        # Half hopper-steady's speed: the bell is narrower so that standing (0.15 of the top)
        # pays as little as it does there. Not shipped: after 600k steps (seed 0) it hopped at
        # 0.39 m/s but fell in every episode.
        "hopper-slow", "Hopper-v5", "the hopper hops forward slowly, at 0.4 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-16.0 * (s.forward_velocity - 0.4) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", held_out=True),
    ExpertTask(
        "walker-fast", "Walker2d-v5", "the walker walks forward fast, at 1.5 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-1.0 * (s.forward_velocity - 1.5) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.001 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 1_000_000, held_out=True),
    ExpertTask(
        # Bounding: paid for vertical speed as well as for running, so it leaves the floor.
        "cheetah-bound", "HalfCheetah-v5", "the half cheetah bounds forward at 3 m/s",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"speed\": 2.0 * float(np.exp(-0.5 * (s.forward_velocity - 3.0) ** 2)),\n"
        "         \"bounce\": 0.5 * abs(s.vertical_velocity),\n"
        "         \"upright\": 1.0 * s.uprightness,\n"
        "         \"ctrl\": -0.1 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", held_out=True),
    ExpertTask(
        # Twice ant-sideways' speed, drifting back: the speed a hidden Ant task read 37 % short.
        # Not shipped: after 2M steps (seed 0) it walked sideways at 0.46 m/s drifting forward
        # 0.17 m/s, ant-sideways' own gait; the bell at 1 m/s paid too little at 0.5 to pull it on.
        "ant-sideways-fast", "Ant-v5", "the ant walks sideways (to its left) at 1 m/s, drifting back",
        _HEADER + "def compute_reward(s, a):\n"
        "    c = {\"sideways\": 2.0 * float(np.exp(-2.0 * (s.lateral_velocity - 1.0) ** 2)),\n"
        "         \"drift\": 0.5 * float(np.exp(-4.0 * (s.forward_velocity + 0.2) ** 2)),\n"
        "         \"alive\": float(s.is_healthy),\n"
        "         \"ctrl\": -0.05 * float(np.sum(np.square(a)))}\n"
        "    return sum(c.values()), c\n", 2_000_000, held_out=True),
]}
"""Tasks none of which is an env's default reward."""


def check_task_names(tasks: list[str]) -> None:
    """Raise a one-line :class:`UserError` for a name that is not in :data:`EXPERT_TASKS`."""
    for t in tasks:
        if t not in EXPERT_TASKS:
            raise UserError(f"unknown expert task '{t}'", where="--tasks",
                            fix=f"choose from {', '.join(EXPERT_TASKS)}")


def make_expert(task: ExpertTask, out_dir: Path, *, seed: int = 0, clip_seconds: float = 8.0,
                render_size: tuple[int, int] = (320, 240), episodes: int = 3,
                on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train the expert on its hidden reward, render its clip, measure its state metrics.

    Writes ``out_dir/policy/`` (training output), ``clip.mp4``, ``sheet.png`` and
    ``expert.json`` (task, hidden reward, state metrics over ``episodes`` episodes).
    """
    program = sandboxed_program(task.reward_source, f"{task.name}.py")
    config = TrainConfig.for_env(task.env_id, total_steps=task.train_steps, seed=seed)
    result = train_sandboxed(config, program, out_dir / "policy", on_progress=on_progress)
    policy = load_policy(out_dir / "policy", task.env_id)
    max_steps = steps_for_seconds(task.env_id, clip_seconds)
    shown = run_episodes(task.env_id, policy, episodes=1, seed=seed + 500, max_steps=max_steps,
                         render_size=render_size)[0]
    write_clip_and_sheet(shown.frames, shown.fps, out_dir / "clip.mp4", out_dir / "sheet.png")
    measured = run_episodes(task.env_id, policy, episodes=episodes, seed=seed + 500,
                            max_steps=max_steps)
    info = {"task": task.name, "env_id": task.env_id, "description": task.description,
            "reward_source": task.reward_source, "train_steps": task.train_steps,
            "train_env_return": result.metrics.get("env_return_mean"),
            "state_metrics": behaviour_metrics(measured).to_dict(), "clip_seconds": clip_seconds}
    write_json(out_dir / "expert.json", info)
    return info
