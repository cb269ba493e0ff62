"""Which library terms fit which body: the one table the draft, the search's added terms, the
final program's added terms and random search all read.

A term is only worth a candidate where the body can do what it pays for. Issue 38: the final
program's rule for a feature the calibration left without a lever added the ``flight`` term
(time with no foot on the floor) to an Ant's program; the rule's threshold was set on
Hopper, Walker2d and HalfCheetah tasks, and the Ant's final policy flipped onto its back.
Before this table the only such rule was "sideways, turning and heading need a body that
moves in 3D"; now every term's applicability is stated here, body by body, with the reason.
"""

from __future__ import annotations

from vid2reward.agent.engines.reward_terms import TERMS
from vid2reward.sim.envs import EnvSpec

EVERY_BODY = frozenset({"speed", "height", "upright", "lean", "smooth", "ctrl", "bob_clock"})
"""Terms on quantities every body has: its speed, torso height and tilt, its effort, a bob."""
ALIVE = frozenset({"alive"})
"""A bonus per step not fallen: only where the env ends episodes on a fall (without a health
test, as HalfCheetah's, it is the same number every step)."""
IN_3D = frozenset({"sideways", "turn", "heading"})
"""Sideways speed, turning and heading: always 0 for a body held in the x-z plane."""
AIRTIME = frozenset({"flight", "bounce"})
"""Pay for leaving the floor (no foot down; vertical speed of the torso): the gaits of hoppers,
runners and bipeds have flight phases that the pixels read as time in the air."""
HUMAN_LEGS = frozenset({"knee_bend", "stride", "gait_rhythm", "gait_clock"})
"""Read ``s.gait_angles``, a person's hip and knee angles, which only bodies with human legs
have (sim/state.py ``GAIT_JOINTS``); elsewhere they are 0 and pay for nothing."""

BODY_TERMS: dict[str, frozenset[str]] = {
    "Hopper": EVERY_BODY | ALIVE | AIRTIME,
    "Walker2d": EVERY_BODY | ALIVE | AIRTIME | HUMAN_LEGS,
    "HalfCheetah": EVERY_BODY | AIRTIME,
    # No AIRTIME for the quadruped. Its four feet sit at four depths from the side camera, so
    # "the silhouette's lowest point above the ground line" (the pixel flight_fraction) is
    # not the same thing as all four feet off the floor, and the gap the final program's rule reacts to was
    # measured on planar bodies only (numeric_engineer.UNPINNED_IMPORTANCE). Paying the
    # torso's vertical speed (bounce) asks for jumps, and Ant-v5 ends an episode when the
    # torso rises above 1.0 m: that is how random actions end its episodes.
    "Ant": EVERY_BODY | ALIVE | IN_3D,
    "Humanoid": EVERY_BODY | ALIVE | IN_3D | AIRTIME | HUMAN_LEGS,
}
"""Per env family (the env id before ``-v``): the library terms that fit its body."""


def body_terms(spec: EnvSpec) -> frozenset[str]:
    """The library terms that fit ``spec``'s body (:data:`BODY_TERMS`).

    Raises:
        KeyError: the env has no row (every registered env has one; a test checks).
    """
    return BODY_TERMS[spec.short_name]


def fits_body(term: str, spec: EnvSpec) -> bool:
    """Whether library term ``term`` may go into a program for ``spec``'s body."""
    if term not in TERMS:
        raise KeyError(f"no library term {term!r}")
    return term in body_terms(spec)
