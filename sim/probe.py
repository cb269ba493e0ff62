"""Probe clips: a body carried along a known path, for reading camera geometry off pixels.

A learner that has not yet learned to walk sideways or to turn never shows the camera what
motion in depth or a turn looks like, so a calibration fitted on learner clips alone cannot
read those motions in the expert's video. A probe clip shows them on purpose: the body acts
at random (its limbs move as in any early learner's clip) while its root is carried along a
known velocity and turned at a known rate, so its simulator state records exactly the motion
the camera saw. ``tools/direction_probe.py`` pairs the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.render import ClipRenderer, frame_stride
from vid2reward.sim.rollout import Episode, new_samples, record_sample
from vid2reward.sim.state import StateTracker


@dataclass(frozen=True)
class ProbeMotion:
    """How the probe carries the body: a speed along a heading that turns at a steady rate."""

    speed: float
    """m/s."""
    heading: float
    """Initial direction of travel, rad (0 = +x, pi/2 = +y: away from the side camera)."""
    turn_rate: float = 0.0
    """rad/s; the torso turns with the direction of travel."""


PROBE_MOTIONS: tuple[ProbeMotion, ...] = (
    ProbeMotion(0.6, math.pi / 2),
    ProbeMotion(0.6, -math.pi / 2),
    ProbeMotion(0.6, math.pi / 4),
    ProbeMotion(0.6, 0.0, 0.5),
    ProbeMotion(0.6, math.pi, -0.5),
)
"""The standard probes: away from and toward the camera, diagonally, turning each way."""
PLANAR_PROBE_MOTIONS: tuple[ProbeMotion, ...] = (
    ProbeMotion(0.6, 0.0),
    ProbeMotion(0.6, math.pi),
)
"""A planar body can only be carried forward and backward (its motion in depth must read 0)."""


def probe_episode(env_id: str, motion: ProbeMotion, *, seconds: float = 6.0, seed: int = 0,
                  render_size: tuple[int, int] = (320, 240), fps: float = 30.0,
                  action_scale: float = 0.3) -> Episode:
    """Render one probe clip and record its state as a rollout would.

    Raises:
        UserError: a planar body asked to move sideways or turn.
    """
    spec = get_spec(env_id)
    if spec.planar and (abs(math.sin(motion.heading)) > 1e-9 or motion.turn_rate):
        raise UserError(f"{env_id} moves in a plane: it cannot be carried sideways or turned",
                        where="probe", fix="probe it forward or backward (heading 0 or pi)")
    env = make_env(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    base: Any = env.unwrapped
    model, data = base.model, base.data
    tracker = StateTracker(env, spec)
    renderer = ClipRenderer(model, data, spec, *render_size)
    stride = frame_stride(tracker.dt, fps)
    rng = np.random.default_rng(seed)
    samples = new_samples()
    frames = [renderer.frame()]
    steps = int(round(seconds / tracker.dt))
    try:
        for k in range(steps):
            action = action_scale * rng.uniform(-1.0, 1.0, env.action_space.shape)
            tracker.before_step()
            env.step(action)
            t = (k + 1) * tracker.dt
            heading = motion.heading + motion.turn_rate * t
            # carry the root: a planar body's qpos starts with its x slide; a free joint's is
            # x, y, z, then the quaternion (w, x, y, z)
            data.qpos[0] += motion.speed * math.cos(heading) * tracker.dt
            if not spec.planar:
                data.qpos[1] += motion.speed * math.sin(heading) * tracker.dt
                yaw = motion.turn_rate * tracker.dt
                turn = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
                quat = np.empty(4)
                mujoco.mju_mulQuat(quat, turn, np.array(data.qpos[3:7]))
                data.qpos[3:7] = quat
            mujoco.mj_forward(model, data)
            record_sample(samples, tracker.view(action))
            if (k + 1) % stride == 0:
                frames.append(renderer.frame())
    finally:
        renderer.close()
        env.close()
    return Episode(env_id=env_id, dt=tracker.dt, length=steps, terminated=False, env_return=0.0,
                   samples={k: np.asarray(v) for k, v in samples.items()}, frames=frames,
                   fps=1.0 / (stride * tracker.dt))
