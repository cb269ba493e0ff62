"""Behaviour metrics from simulator state: the ground truth that evaluation compares.

These read the state the simulator recorded during a rollout (sim/rollout.py); they are never
computed for an expert video (an internet clip has no simulator state: tools/ measures pixels).

Two rhythms, not to be confused: the **cadence** (``cadence_steps_per_s``) counts steps, each
foot's touchdown on the floor (a biped's left and right steps, a hopper's hops, every footfall
of a quadruped), per second; the **torso bob frequency** (``cadence_hz``, the name the pixel
feature it is compared with carries) is the dominant frequency of the torso's height, which a
clip's pixels can see. A walker bobs once per step, so the two agree when its gait is even; an
uneven gait bobs once per stride, at half the cadence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from vid2reward.sim.envs import get_spec
from vid2reward.sim.falls import fall_rate
from vid2reward.sim.rollout import Episode

MIN_SWING_SECONDS = 0.05
"""A foot's contact is a new step (a touchdown) only after the foot was seen on the floor, then
off it for at least this long: contact flickering within one stance is not a step (a walking
foot swings ~0.4 s, a hopper's flight lasts ~0.3 s)."""


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
    """Torso bob frequency: the dominant frequency of the torso's height, Hz (0 when it does not
    oscillate); what the pixel feature ``cadence_hz`` estimates. Not the step cadence."""
    uprightness: float
    """Mean cosine between torso up axis and world up (1 upright)."""
    torso_pitch: float
    """Mean forward lean of the torso, rad."""
    flight_fraction: float
    """Fraction of time steps with no foot on the floor."""
    fall_rate: float
    """Fraction of episodes in which the body fell (sim/falls.py)."""
    episode_length: float
    """Mean episode length, steps."""
    episodes: int
    cadence_steps_per_s: float = 0.0
    """Cadence: steps per second of simulated time, a step being one foot's touchdown (see
    :func:`touchdowns`), over all episodes' time together."""
    double_support_fraction: float = 0.0
    """Fraction of time steps with two or more feet on the floor (a walk's double support)."""

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


def touchdowns(contact: np.ndarray, dt: float,
               min_swing_seconds: float = MIN_SWING_SECONDS) -> int:
    """How many steps one foot took: the times its per-time-step ``contact`` series (True =
    on the floor, sampled every ``dt`` s) comes back on after the foot was on the floor and
    then off it for at least ``min_swing_seconds``. The first landing of a body dropped into
    the episode is not a step (no lift-off was seen before it)."""
    need = max(1, math.ceil(min_swing_seconds / dt - 1e-9))
    count, off, was_on = 0, 0, False
    for on in np.asarray(contact, dtype=bool):
        if on:
            if was_on and off >= need:
                count += 1
            was_on, off = True, 0
        else:
            off += 1
    return count


def foot_contacts(episode: Episode) -> np.ndarray:
    """Per time step and foot (the env's ``foot_geoms`` order), whether it touches the floor:
    shape (length, feet)."""
    mask = np.asarray(episode.samples["foot_contact_mask"]).astype(np.int64)
    feet = len(get_spec(episode.env_id).foot_geoms)
    return np.stack([(mask >> i) & 1 for i in range(feet)], axis=1).astype(bool)


def cadence_steps_per_s(episodes: list[Episode]) -> float:
    """Steps (every foot's touchdowns, :func:`touchdowns`) per second of the episodes' simulated
    time, all episodes together."""
    steps = sum(touchdowns(column, e.dt) for e in episodes for column in foot_contacts(e).T)
    seconds = sum(e.length * e.dt for e in episodes)
    return float(steps / seconds) if seconds > 0 else 0.0


def behaviour_metrics(episodes: list[Episode]) -> BehaviourMetrics:
    """Summarise rollout episodes; the torso bob frequency is averaged over episodes weighted by
    length, the cadence counts all episodes' steps over all their time."""
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
        cadence_steps_per_s=cadence_steps_per_s(episodes),
        double_support_fraction=float(np.mean(pooled("feet_in_contact") >= 2)),
    )
