"""Which way the body travels, read from pixels: the probe clips that calibrate it.

``sim/probe.py`` renders a 3D body carried along known directions (away from and toward the
camera, diagonally, turning each way). Measured like any learner clip, they pair the pixel
features of motion in depth and of turning (``depth_speed``, ``turning_rate``) with the
simulator's ``lateral_velocity`` and ``yaw_rate`` for this body, camera and renderer: the
points ``tools/calibration.py`` needs to read an expert that walks sideways or turns, which a
learner that has not learned it yet cannot give.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vid2reward.sim.metrics import dominant_frequency
from vid2reward.sim.probe import PROBE_MOTIONS, ProbeMotion, probe_episode
from vid2reward.sim.render import write_mp4
from vid2reward.tools.calibration import CalibrationPairs, clip_pairs, length_to_size
from vid2reward.tools.expert_video import measure_video

PROBED_QUANTITIES = ("lateral_velocity", "yaw_rate")
"""The quantities probe clips give points for; the others come from real learner clips only
(a carried body's gait is not a gait)."""


@dataclass
class ProbeReading:
    """One probe clip: the motion the simulator recorded and what the pixels read."""

    speed: float
    heading_deg: float
    turn_rate: float
    forward_velocity: float
    """Simulator truth over the clip (centre of mass), m/s."""
    lateral_velocity: float
    yaw_rate: float
    forward_speed: float
    """Pixel features of the clip (body lengths/s; rad/s)."""
    depth_speed: float
    turning_rate: float


def probe_pairs(env_id: str, *, motions: tuple[ProbeMotion, ...] = PROBE_MOTIONS,
                seconds: float = 6.0, seed: int = 0) -> tuple[CalibrationPairs, list[ProbeReading]]:
    """Render and measure the probe clips of ``env_id``: their calibration points (only
    :data:`PROBED_QUANTITIES`) and one :class:`ProbeReading` per clip."""
    pairs = CalibrationPairs()
    readings = []
    with tempfile.TemporaryDirectory(prefix="vid2reward-probe-") as tmp:
        for i, motion in enumerate(motions):
            episode = probe_episode(env_id, motion, seconds=seconds, seed=seed + i)
            clip = write_mp4(episode.frames, Path(tmp) / f"probe-{i}.mp4", episode.fps)
            measured = measure_video(clip, series=True)
            details, samples = measured["details"], episode.samples
            found = clip_pairs(measured["series"], measured["features"], samples, episode.dt,
                               dominant_frequency(samples["torso_height"], episode.dt),
                               length_to_size(details["body_length_px"], details.get("body_size_px", 0.0)))
            for quantity in PROBED_QUANTITIES:
                if quantity in found.points:
                    pairs.points.setdefault(quantity, []).extend(found.points[quantity])
            com_v = {axis: float(np.mean(np.gradient(samples[f"mass_center_{axis}"], episode.dt)))
                     for axis in "xy"}
            features = measured["features"]
            readings.append(ProbeReading(
                speed=motion.speed, heading_deg=round(float(np.degrees(motion.heading)), 1),
                turn_rate=motion.turn_rate, forward_velocity=com_v["x"], lateral_velocity=com_v["y"],
                yaw_rate=float(np.mean(samples["yaw_rate"])),
                forward_speed=features.get("forward_speed", 0.0),
                depth_speed=features.get("depth_speed", 0.0),
                turning_rate=features.get("turning_rate", 0.0)))
    return pairs, readings


def readings_table(readings: list[ProbeReading]) -> list[dict[str, float]]:
    """JSON-ready rows of :func:`probe_pairs`' readings."""
    return [{k: round(v, 4) for k, v in asdict(r).items()} for r in readings]
