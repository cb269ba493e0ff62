"""Normalized Expert Score (NES): how close a learner's behaviour is to the expert's, 0..1.

    NES = clip(1 - d(learner, expert) / d(random, expert), 0, 1)

``d`` is the root mean square, over :data:`NES_METRICS`, of per-metric differences of
simulator-state behaviour metrics (sim/metrics.py), each divided by a scale that says how big a
difference is a clearly different behaviour (:func:`metric_scales`). ``random`` is a uniform-
random-action policy on the same env: 0 means "no closer than flailing", 1 "the expert's
behaviour". docs/benchmark.md explains the choices; this module only needs metric dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

NES_METRICS: dict[str, tuple[str, float, float]] = {
    # name: (how the scale is set, factor, floor) -> scale = max(factor * |expert|, floor)
    # Speeds: a difference as large as the expert's own speed (or 0.5 m/s for a slow expert)
    # is a different gait.
    "forward_velocity": ("relative", 1.0, 0.5),
    "lateral_velocity": ("relative", 1.0, 0.5),
    # Posture: 15% of the expert's torso height (a crouch vs a stand), at least 5 cm.
    "torso_height_mean": ("relative", 0.15, 0.05),
    # Bobbing: the expert's own amplitude, at least 3 cm (below that nobody sees a bob).
    "torso_height_std": ("relative", 1.0, 0.03),
    # Rhythm: the expert's own cadence, at least 0.5 Hz.
    "cadence_hz": ("relative", 1.0, 0.5),
    # Orientation: fixed physical scales (cosine 0.2 ~ 37 deg of tilt; 0.3 rad ~ 17 deg lean).
    "uprightness": ("fixed", 0.0, 0.2),
    "torso_pitch": ("fixed", 0.0, 0.3),
    # Airtime: a quarter of the time airborne more or less.
    "flight_fraction": ("fixed", 0.0, 0.25),
    # Falling in every episode vs never is one full unit, like a speed off by the expert's own.
    "fall_rate": ("fixed", 0.0, 1.0),
}
"""Metrics the distance uses, and how each one's scale is set from the expert's value."""


def metric_scales(expert: Mapping[str, float]) -> dict[str, float]:
    """Per-metric scale: ``max(factor * |expert value|, floor)`` (see :data:`NES_METRICS`)."""
    return {name: max(factor * abs(float(expert[name])), floor)
            for name, (_, factor, floor) in NES_METRICS.items()}


def behaviour_distance(metrics: Mapping[str, float], expert: Mapping[str, float]) -> float:
    """RMS over :data:`NES_METRICS` of ``(metrics - expert) / scale``."""
    scales = metric_scales(expert)
    terms = [((float(metrics[m]) - float(expert[m])) / scales[m]) ** 2 for m in NES_METRICS]
    return math.sqrt(sum(terms) / len(terms))


def per_metric_z(metrics: Mapping[str, float], expert: Mapping[str, float]) -> dict[str, float]:
    """Signed scaled difference per metric (what the distance is made of; for reports)."""
    scales = metric_scales(expert)
    return {m: (float(metrics[m]) - float(expert[m])) / scales[m] for m in NES_METRICS}


def normalized_expert_score(learner: Mapping[str, float], expert: Mapping[str, float],
                            random: Mapping[str, float]) -> float:
    """NES in [0, 1]: ``clip(1 - d(learner, expert) / d(random, expert), 0, 1)``.

    Returns 1.0 when the random policy is already at the expert (a degenerate task).
    """
    d_random = behaviour_distance(random, expert)
    if d_random < 1e-9:
        return 1.0
    return min(1.0, max(0.0, 1.0 - behaviour_distance(learner, expert) / d_random))
