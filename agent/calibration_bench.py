"""How well the calibration reads an expert: ``vid2reward bench calibration``.

The run fits pixels -> physical units on its learner clips (``tools/calibration.py``) and reads
the expert through the fit. Here the same code fits on the clips of policies the user names
(any trained policies of the task's env: a run's candidates, ``bench learning``'s anchors) plus
random-action rollouts, reads a bundled expert clip, and compares with the expert's simulator
truth (which the run never sees).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vid2reward.agent.expert_bundle import bundled_expert
from vid2reward.agent.nodes.candidates import measure_episode
from vid2reward.sim.envs import get_spec, steps_for_seconds
from vid2reward.sim.render import write_mp4
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.tools.calibration import (
    QUANTITIES,
    CalibrationPairs,
    episode_pairs,
    fit_calibration,
    length_to_size,
)
from vid2reward.tools.direction_probe import PROBED_QUANTITIES, probe_pairs
from vid2reward.tools.expert_video import measure_video


@dataclass
class QuantityReading:
    """One quantity: the expert read through the fit, the truth, and the fit's support."""

    quantity: str
    unit: str
    read: float | None
    truth: float
    relative_error: float | None
    points: int
    r2: float | None
    used: bool
    note: str


def calibration_accuracy(task: str, policies: list[Path], *, random_episodes: int = 3,
                         seed: int = 0, render_size: tuple[int, int] = (320, 240),
                         experts: Path | None = None) -> dict[str, Any]:
    """Fit the calibration on ``policies``' clips (one episode each) and ``random_episodes``
    random-action clips, read the bundled expert ``task`` through it, compare with the truth."""
    clip, info = bundled_expert(task, experts)
    env_id, truth = info["env_id"], info["state_metrics"]
    expert = measure_video(clip)
    details = expert["details"]
    steps = steps_for_seconds(env_id, float(info.get("clip_seconds", 8.0)))
    pairs, clips = CalibrationPairs(), 0
    sources: list[Any] = [load_policy(p, env_id) for p in policies]
    sources += [None] * (1 if random_episodes > 0 else 0)  # None: random actions
    with tempfile.TemporaryDirectory() as tmp:
        for policy in sources:
            count = random_episodes if policy is None else 1
            for k, ep in enumerate(run_episodes(env_id, policy, episodes=count, seed=seed,
                                                max_steps=steps, render_size=render_size)):
                if len(ep.frames) < 2:
                    continue
                path = write_mp4(ep.frames, Path(tmp) / f"clip-{clips}-{k}.mp4", ep.fps)
                _, measured = measure_episode(path, ep.length, steps)
                if measured is None:
                    continue
                clips += 1
                pairs.extend(episode_pairs(measured, ep.samples, ep.dt))
    probes = 0
    if not get_spec(env_id).planar:  # as a run does: the probe clips calibrate depth and turning
        probe, readings_of_probes = probe_pairs(env_id, seed=seed)
        pairs.extend(probe)
        probes = len(readings_of_probes)
    calibration = fit_calibration(pairs, expert["features"],
                                  length_to_size(details["body_length_px"], details.get("body_size_px", 0.0)),
                                  clips, upright=get_spec(env_id).upright)
    readings = []
    for spec in QUANTITIES:
        quantity = spec.quantity
        fit = calibration.fits.get(quantity)
        if truth.get(spec.metric) is None:  # an expert measured before the metric existed
            continue
        if get_spec(env_id).planar and quantity in PROBED_QUANTITIES:
            continue  # no sideways motion or turning in a plane
        true = float(truth[spec.metric])
        read = fit.expert_value if fit is not None else None
        readings.append(QuantityReading(
            quantity=quantity, unit=fit.unit if fit else "", read=read, truth=round(true, 4),
            relative_error=(round(abs(read - true) / max(abs(true), 1e-6), 4)
                            if read is not None else None),
            points=fit.points if fit else 0, r2=fit.r2 if fit else None,
            used=bool(fit and fit.usable), note=fit.note if fit else "no points"))
    return {"task": task, "env_id": env_id, "clips": clips, "probe_clips": probes,
            "policies": [str(p) for p in policies],
            "random_episodes": random_episodes, "readings": [asdict(r) for r in readings]}
