"""The behaviour vocabulary measured from pixels: every feature's name, unit and scale-free
definition, written down so a MuJoCo render and real footage are read the same way.

``tools/pixel_features.py`` measures them (and re-exports this table); a critic reads a
difference between two clips through ``scale`` (the size of a clearly visible difference) and
``sim_metric`` (what the simulator would call it). L, the body length, is the 90th percentile
over the clip of the subject's longer bounding-box side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SCALE_FLOOR = 0.1
"""Smallest scale of a feature outside the vocabulary, so values near zero do not explode."""
STILL_OSCILLATION = 0.005
"""Below this vertical oscillation (body lengths) the subject does not bob: cadence is 0."""


@dataclass(frozen=True)
class FeatureDefinition:
    """What one feature means, so a critic (person or model) can read a difference."""

    name: str
    unit: str
    definition: str
    """Scale-free definition, in words."""
    scale: float
    """A difference of this size is clearly visible; used to normalise differences."""
    sim_metric: str | None = None
    """The simulator-state metric it estimates (``sim.metrics.BehaviourMetrics``), if any."""


FEATURE_DEFINITIONS: dict[str, FeatureDefinition] = {d.name: d for d in [
    FeatureDefinition(
        "forward_speed", "body lengths/s",
        "mean horizontal speed of the subject's centroid over the ground: its image motion minus "
        "the ground's image motion near its feet, divided by the body length L; positive = "
        "moving right in the image (forward in MuJoCo renders)", 0.5,
        "forward_velocity / body length"),
    FeatureDefinition(
        "depth_speed", "body lengths/s",
        "mean speed of the subject away from the camera (negative = toward it): the rate its "
        "distance changes relative to the camera's distance - the floor's expansion under a "
        "camera that follows it, the shrinking of its silhouette under a still camera - times "
        "that distance in body lengths, assuming a focal length of 1.2 frame heights (a "
        "45-degree view); sideways for a MuJoCo body filmed from the side", 0.25,
        "lateral_velocity / body length"),
    FeatureDefinition(
        "turning_rate", "rad/s",
        "how fast the direction of travel rotates (the angle of the 0.5 s-smoothed across-image "
        "and depth motion, while faster than 0.1 L/s): total rotation / clip length; positive = "
        "counter-clockwise seen from above. A full turn reads 2 pi whatever the depth's "
        "unit", 0.3, "yaw_rate"),
    FeatureDefinition(
        "cadence_hz", "Hz",
        "dominant frequency (0.3-10 Hz) of the subject's vertical position relative to the "
        "ground: steps or hops per second; 0 when that position varies by less than 0.5 % of "
        "L (standard deviation)", 0.5, "cadence_hz"),
    FeatureDefinition(
        "vertical_oscillation", "body lengths",
        "standard deviation of the subject's vertical centroid position relative to the ground "
        "(slow drift removed), divided by L: how much it bobs", 0.03,
        "torso_height_std / body length"),
    FeatureDefinition(
        "height_ratio", "fraction of L",
        "mean bounding-box height divided by L: ~1 upright and extended, small when crouched, "
        "lying or moving horizontally", 0.15, None),
    FeatureDefinition(
        "height_ratio_std", "fraction of L",
        "standard deviation of bounding-box height / L over the clip: how much the body "
        "stretches and folds", 0.05, None),
    FeatureDefinition(
        "aspect_ratio", "width/height",
        "median bounding-box width divided by height", 0.3, None),
    FeatureDefinition(
        "tilt_deg", "degrees",
        "mean lean of the upper body from vertical: the angle of the line from the mask's "
        "centroid in the rows 15-30 % down its box (chest) to its centroid in the top 15 % "
        "(head); positive = top leans right (forward in MuJoCo renders)", 5.0,
        "torso_pitch (deg)"),
    FeatureDefinition(
        "flight_fraction", "fraction of frames",
        "fraction of frames in which the subject's lowest point is more than 5 % of L above the "
        "ground line (the 90th percentile of its lowest point, ground-relative, within +-0.75 s); "
        "None when the ground is not visible. Sees clear hops, not millimetre clearances",
        0.15, "flight_fraction"),
    FeatureDefinition(
        "motion_energy", "body lengths/s",
        "mean speed of the silhouette's outline relative to the silhouette's own centroid: "
        "pixels that change between frames (centroid shift removed) / outline length / L, per "
        "second: how fast the limbs move", 0.3, None),
]}
"""Every comparable feature: name -> definition (also the keys of ``PixelFeatures.vector()``)."""

SURVIVAL = FeatureDefinition(
    "survival", "fraction of the clip",
    "how much of the intended clip the subject keeps going before it falls (the episode "
    "ends early, or the body lies upside down or on the floor: sim/falls.py), averaged over "
    "the evaluation clips; 1 for an expert video, which shows the behaviour for its whole "
    "length", 0.2, "fall time / clip length")
"""A feature of a set of evaluation clips rather than of one clip's pixels: a learner that
falls after 2 s of 8 must look unlike an expert that keeps moving, whatever its first 2 s
look like."""
EPISODE_FEATURES: dict[str, FeatureDefinition] = {SURVIVAL.name: SURVIVAL}
"""Features measured over a candidate's evaluation clips (see :data:`SURVIVAL`)."""


def feature_scale(name: str, expert_value: float | None = None,
                  overrides: Mapping[str, float] | None = None) -> float:
    """The unit a difference of feature ``name`` is measured in: the one definition every
    critic, audit, comparison table and ``vid2reward compare`` uses.

    A vocabulary feature uses its ``scale`` (a clearly visible difference, in the feature's
    own unit); ``overrides`` (tests, tuned critics) win over it; any other feature (free text
    from an LLM) uses max(|expert value|, SCALE_FLOOR).
    """
    if overrides is not None and name in overrides:
        return float(overrides[name])
    if name in FEATURE_DEFINITIONS:
        return FEATURE_DEFINITIONS[name].scale
    if name in EPISODE_FEATURES:
        return EPISODE_FEATURES[name].scale
    from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS  # numpy only, no cycle

    if name in POSE_FEATURE_DEFINITIONS:
        return POSE_FEATURE_DEFINITIONS[name].scale
    if expert_value is None or not math.isfinite(expert_value):
        return SCALE_FLOOR
    return max(abs(expert_value), SCALE_FLOOR)
