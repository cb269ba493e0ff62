"""When a body has fallen: the one definition every reader of a rollout uses.

The env's own health test is not enough. Ant-v5's healthy range is torso height only, so an
Ant on its back waving its legs is "healthy" for as long as the clip lasts; HalfCheetah has no
health test at all. Counting only the episodes the env ended early, a run's summary said an Ant
that flipped at 5 s "fell in 0% of 5 episodes" (issue 38). Here a body has fallen at the first
step where any of these holds:

- the env ended the episode early (its own health test failed);
- its torso is upside down: ``uprightness`` (torso up axis · world up) below the body's limit;
- its torso is on the floor: the torso's origin lower than the body's limit.

The limits are per body plan (:data:`FALL_RULES`) because "upright" means a vertical trunk for
a walker and a level back for a runner. They come from the bodies' geometry and what a normal
gait does, not from any benchmark's numbers. The evaluation (sim/evaluation.py), the behaviour
metrics (sim/metrics.py), the critic's survival feature, the final check, the trace and the
benchmarks all count falls through :func:`first_fall_step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # numpy only at run time: the trace viewer words falls without torch or MuJoCo
    from vid2reward.sim.rollout import Episode


@dataclass(frozen=True)
class FallRule:
    """The state in which one body plan counts as fallen, whatever its env says."""

    min_uprightness: float
    """Below this cosine between the torso's up axis and world up the torso is upside down (or,
    for an upright walker, lying down): fallen."""
    floor_height: float
    """Below this height (m) of the torso's origin the torso lies on the floor: fallen."""


FALL_RULES: dict[str, FallRule] = {
    # Upright walkers (torso vertical over the legs): a trunk more than 60 deg from vertical
    # (cos 0.5) is lying down, about Walker2d's own 1 rad limit. Their torso is a capsule
    # 0.4 m long, radius 0.05, origin at its middle: at 0.3 m its lower end is on the floor
    # even held vertical. Hopper's own test (0.7 m, 0.2 rad) is stricter and ends the episode
    # first; these limits matter when it does not.
    "Hopper": FallRule(min_uprightness=0.5, floor_height=0.3),
    "Walker2d": FallRule(min_uprightness=0.5, floor_height=0.3),
    # A planar runner with a horizontal back: rearing on its hind legs passes through vertical
    # (random actions rear it to ~107 deg, uprightness -0.3, and it drops back on its feet);
    # beyond 120 deg (-0.5) it is going over onto its back, where it stays. Its torso is a
    # capsule of radius 0.046 running between its hips (0.3-0.8 m up while it runs): at
    # 0.15 m it lies on the floor.
    "HalfCheetah": FallRule(min_uprightness=-0.5, floor_height=0.15),
    # A quadruped whose legs hang below a round torso: with its top facing sideways or down
    # (uprightness < 0) no leg can hold it up; random actions never tip it past 0.7. Its torso
    # is a sphere of radius 0.25: an origin below 0.3 m is its belly on the floor.
    "Ant": FallRule(min_uprightness=0.0, floor_height=0.3),
    # An upright walker like the planar ones (60 deg from vertical is lying down). Its torso's
    # origin is at the chest, 1.4 m up standing and ~0.5 m sitting on the floor; below 0.4 m
    # the chest is on the floor. Its own test (torso below 1.0 m) usually ends the episode
    # first.
    "Humanoid": FallRule(min_uprightness=0.5, floor_height=0.4),
}
"""Per env family (the env id before ``-v``): when its body has fallen."""


def fall_rule(env_id: str) -> FallRule:
    """The :class:`FallRule` of ``env_id``'s body.

    Raises:
        KeyError: the env has no rule (every registered env has one; a test checks).
    """
    return FALL_RULES[env_id.split("-v")[0]]


def fallen_state(env_id: str, uprightness: np.ndarray | float,
                 torso_height: np.ndarray | float) -> np.ndarray:
    """Per step, whether the body's state alone says it has fallen (upside down or torso on
    the floor); the env's own test is :func:`first_fall_step`'s other half."""
    rule = fall_rule(env_id)
    return ((np.asarray(uprightness, dtype=np.float64) < rule.min_uprightness)
            | (np.asarray(torso_height, dtype=np.float64) < rule.floor_height))


def first_fall_step(episode: Episode) -> int | None:
    """How many steps into ``episode`` the body first counted as fallen (the step's number,
    1 for the first), or None when it never fell. An episode the env ended early fell at its
    last step at the latest."""
    down = np.flatnonzero(fallen_state(episode.env_id, episode.samples["uprightness"],
                                       episode.samples["torso_height"]))
    if down.size:
        return int(down[0]) + 1
    return episode.length if episode.terminated else None


def fall_seconds(episode: Episode) -> float | None:
    """When ``episode``'s body first fell, in seconds of simulated time (None: it never fell)."""
    step = first_fall_step(episode)
    return None if step is None else step * episode.dt


def fall_rate(episodes: Sequence[Episode]) -> float:
    """The fraction of ``episodes`` in which the body fell."""
    if not episodes:
        raise ValueError("no episodes to count falls in")
    return float(np.mean([first_fall_step(e) is not None for e in episodes]))


CONFIDENCE_Z = 1.96
"""The normal quantile of a two-sided 95% interval: every fall rate is reported with one."""
NEVER_FALLS_BELOW = 0.2
"""A policy "never fell" only when none of its episodes fell *and* the upper bound of its fall
rate's 95% Wilson interval is below this: 16 fall-free episodes or more (20 give 16%). Five
fall-free episodes are compatible with a fall rate of 43%, and are reported as 0 of 5, with
that bound, not as "never"."""


def wilson_interval(falls: int, episodes: int, z: float = CONFIDENCE_Z) -> tuple[float, float]:
    """The Wilson score interval of a fall rate of ``falls`` in ``episodes`` (95% by default):
    unlike the normal approximation it is not empty at 0 or ``episodes`` falls."""
    if episodes < 1 or not 0 <= falls <= episodes:
        raise ValueError(f"no fall rate of {falls} in {episodes} episodes")
    p, n = falls / episodes, episodes
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def never_falls(falls: int, episodes: int) -> bool:
    """Whether ``falls`` in ``episodes`` is enough to say a policy never falls
    (:data:`NEVER_FALLS_BELOW`)."""
    return falls == 0 and wilson_interval(0, episodes)[1] < NEVER_FALLS_BELOW


def fall_count(rate: float, episodes: int) -> str:
    """``"2 of 20 (95% CI 3-30%)"``: a fall rate as a count with its interval, for a table cell
    (``vid2reward runs``)."""
    falls = round(rate * episodes)
    low, high = wilson_interval(falls, episodes)
    return f"{falls} of {episodes} (95% CI {low * 100:.0f}-{high:.0%})"


LISTED_FALLS = 5
"""Up to this many falls are dated one by one; more as their range and median."""


def describe_falls(rate: float, episodes: int | str, seconds: Sequence[float] = ()) -> str:
    """A fall rate with its 95% Wilson interval and when the falls came, as every report
    (evaluate, the final check, the trace, the dashboard, an export's README) words it:
    ``"fell in 2 of 20 episodes (10%, 95% CI 3-30%; at 4.9, 5.2 s)"`` (more than
    :data:`LISTED_FALLS` falls: ``"at 0.9-1.4 s, median 1.0 s"``),
    ``"never fell in 20 episodes (fall rate below 16%, 95% CI)"``, or
    ``"fell in 0 of 5 episodes (95% CI 0-43%: too few to say it never falls)"``."""
    if not isinstance(episodes, int) or episodes < 1:  # an old or partial record
        return f"fell in {rate:.0%} of {episodes} episodes"
    falls = round(rate * episodes)
    low, high = wilson_interval(falls, episodes)
    if falls == 0:
        if never_falls(0, episodes):
            return f"never fell in {episodes} episodes (fall rate below {high:.0%}, 95% CI)"
        return (f"fell in 0 of {episodes} episodes (95% CI 0-{high:.0%}: too few to say it "
                f"never falls)")
    when = ""
    if len(seconds) > LISTED_FALLS:
        when = (f"; at {min(seconds):.1f}-{max(seconds):.1f} s, median "
                f"{float(np.median(seconds)):.1f} s")
    elif seconds:
        when = f"; at {', '.join(f'{t:.1f}' for t in seconds)} s"
    return (f"fell in {falls} of {episodes} episodes ({falls / episodes:.0%}, 95% CI "
            f"{low * 100:.0f}-{high:.0%}{when})")
