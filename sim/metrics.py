"""Behaviour metrics from simulator state: the ground truth that evaluation compares.

These read the state the simulator recorded during a rollout (sim/rollout.py); they are never
computed for an expert video (an internet clip has no simulator state: tools/ measures pixels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vid2reward.sim.falls import fall_rate
from vid2reward.sim.rollout import Episode


@dataclass(frozen=True)
class BehaviourMetrics:
    """Summary of how a body moved over one or more episodes (means over episodes' steps)."""

    forward_velocity: float
    """Mean speed along +x, m/s (negative = backward)."""
    lateral_velocity: float
    """Mean speed along +y, m/s."""
    yaw_rate: float
    """Mean turning rate of the torso, rad/s (positive = turning left, seen from above)."""
    torso_height_mean: float
    """Mean torso height, m."""
    torso_height_std: float
    """Standard deviation of torso height within episodes, m (how much it bobs)."""
    cadence_hz: float
    """Dominant frequency of the torso's vertical oscillation, Hz (0 when it does not oscillate)."""
    uprightness: float
    """Mean cosine between torso up axis and world up (1 upright)."""
    torso_pitch: float
    """Mean forward lean of the torso, rad."""
    flight_fraction: float
    """Fraction of steps with no foot on the floor."""
    fall_rate: float
    """Fraction of episodes in which the body fell (sim/falls.py)."""
    episode_length: float
    """Mean episode length, steps."""
    episodes: int

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-ready dict."""
        return asdict(self)


def dominant_frequency(signal: np.ndarray, dt: float, min_hz: float = 0.3,
                       max_hz: float = 10.0) -> float:
    """The strongest frequency of ``signal`` (sampled every ``dt`` s) within [min_hz, max_hz].

    The mean and linear trend are removed first and a Hann window applied; returns 0.0 when
    the signal is too short or too flat to have a period.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.size < 16 or np.std(x) < 1e-6:
        return 0.0
    t = np.arange(x.size)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, dt)
    band = (freqs >= min_hz) & (freqs <= max_hz)
    if not band.any() or spectrum[band].max() <= 1e-12:
        return 0.0
    return float(freqs[band][np.argmax(spectrum[band])])


def behaviour_metrics(episodes: list[Episode]) -> BehaviourMetrics:
    """Summarise rollout episodes; cadence is averaged over episodes weighted by length."""
    if not episodes:
        raise ValueError("no episodes to measure")

    def pooled(name: str) -> np.ndarray:
        return np.concatenate([e.samples[name] for e in episodes])

    lengths = np.array([e.length for e in episodes], dtype=np.float64)
    cadences = np.array([dominant_frequency(e.samples["torso_height"], e.dt) for e in episodes])
    height_stds = np.array([np.std(e.samples["torso_height"]) for e in episodes])
    return BehaviourMetrics(
        forward_velocity=float(np.mean(pooled("forward_velocity"))),
        lateral_velocity=float(np.mean(pooled("lateral_velocity"))),
        yaw_rate=float(np.mean(pooled("yaw_rate"))),
        torso_height_mean=float(np.mean(pooled("torso_height"))),
        torso_height_std=float(np.average(height_stds, weights=lengths)),
        cadence_hz=float(np.average(cadences, weights=lengths)),
        uprightness=float(np.mean(pooled("uprightness"))),
        torso_pitch=float(np.mean(pooled("torso_pitch"))),
        flight_fraction=float(np.mean(pooled("airborne"))),
        fall_rate=fall_rate(episodes),
        episode_length=float(np.mean(lengths)),
        episodes=len(episodes),
    )
