"""How well pixels read the direction of travel: ``vid2reward bench directions``.

For each body, the probe clips (``sim/probe.py``: the body carried at a known velocity, turned
at a known rate) are measured like any clip, and the pixel features of motion across the image,
in depth and of turning are set beside the simulator's truth. Two numbers per 3D body sum it
up: how well motion in depth reads sideways speed through a calibration fitted on the *other*
probes (leave one out: the clip read is never in its own fit), and how close the turning rate
comes to the yaw rate on the turning probes. A planar body can only go forward and back; its
depth reading must stay near zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vid2reward.sim.envs import get_spec
from vid2reward.sim.probe import PLANAR_PROBE_MOTIONS, PROBE_MOTIONS
from vid2reward.tools.direction_probe import ProbeReading, probe_pairs

BODIES = ("Ant-v5", "Humanoid-v5", "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5")
"""The bodies measured by default."""


@dataclass
class DirectionSummary:
    """One body's agreement between pixels and simulator."""

    env_id: str
    lateral_slope: float | None
    """m/s of sideways speed per body length/s of depth_speed, fitted on all probes."""
    lateral_error: float | None
    """Mean relative error of the sideways speed read through the leave-one-out fit, over the
    probes that move sideways by more than 0.2 m/s."""
    turning_error: float | None
    """Mean relative error of turning_rate against the yaw rate, over the turning probes."""
    planar_depth: float | None
    """Planar bodies: the largest |depth_speed| / |forward_speed| (0 = no false depth)."""


def direction_agreement(envs: tuple[str, ...] = BODIES, *, seconds: float = 6.0,
                        seed: int = 0) -> dict[str, Any]:
    """Probe every body in ``envs``; per-clip readings and a :class:`DirectionSummary` each."""
    bodies = []
    for env_id in envs:
        planar = get_spec(env_id).planar
        _, readings = probe_pairs(env_id, motions=PLANAR_PROBE_MOTIONS if planar else PROBE_MOTIONS,
                                  seconds=seconds, seed=seed)
        bodies.append({"env_id": env_id,
                       "summary": asdict(_summary(env_id, planar, readings)),
                       "readings": [{k: round(v, 4) for k, v in asdict(r).items()} for r in readings]})
    return {"seconds": seconds, "seed": seed, "bodies": bodies}


def _summary(env_id: str, planar: bool, readings: list[ProbeReading]) -> DirectionSummary:
    if planar:
        ratios = [abs(r.depth_speed) / max(abs(r.forward_speed), 1e-6) for r in readings]
        return DirectionSummary(env_id, None, None, None, round(max(ratios), 4))
    x = np.array([r.depth_speed for r in readings])
    y = np.array([r.lateral_velocity for r in readings])
    slope = float(x @ y / (x @ x)) if x @ x > 1e-12 else None
    errors = []
    for i, r in enumerate(readings):
        if abs(r.lateral_velocity) < 0.2:
            continue
        rest = np.arange(len(readings)) != i
        if x[rest] @ x[rest] < 1e-12:
            continue
        loo = float(x[rest] @ y[rest] / (x[rest] @ x[rest]))
        errors.append(abs(loo * r.depth_speed - r.lateral_velocity) / abs(r.lateral_velocity))
    turning = [abs(r.turning_rate - r.yaw_rate) / abs(r.yaw_rate)
               for r in readings if r.turn_rate and abs(r.yaw_rate) > 0.1]
    return DirectionSummary(env_id, None if slope is None else round(slope, 4),
                            round(float(np.mean(errors)), 4) if errors else None,
                            round(float(np.mean(turning)), 4) if turning else None, None)
