"""A policy's gait beside the person's in the expert video, feature by feature, each with a
verdict on the critic's own scale (a clearly visible difference: ``feature_scale``).

One comparison, written where a policy is evaluated (a run's final check into final.json,
``evaluate`` of a run) and worded by one function (:func:`comparison_lines`) in the run's
summary, the trace, its HTML page and ``evaluate``, so they all say the same.

What the video gives of a person, and what it is compared with (simulator state, or the
body's joints measured by the pose code the person's video went through):

============== ================================= ===================================== =========
feature        the person (expert/features.json) the policy (its evaluation)           scale
============== ================================= ===================================== =========
cadence        pose_cadence_hz, steps/s          pose_cadence_hz (as the person); the  0.4
                                                 primary figure, foot touchdowns, and
                                                 the difference beside it
speed          person_speed.m_per_s (carried to  forward_velocity, m/s                 0.5 body
               the body's legs)                                                        lengths/s
trunk lean     pose_trunk_lean_deg               pose_trunk_lean_deg                   8 deg
flight         1 - 2 x duty factor (a walk: 0)   flight_fraction (no foot down)        0.15
double support 2 x duty factor - 1 (a run: 0)    double_support_fraction (2 feet down) 0.2
step length    pose_step_length, leg lengths     pose_step_length                      0.2
============== ================================= ===================================== =========

Speed's scale is ``forward_speed``'s (0.5 body lengths/s) in the body's metres. Double support
is 2d - 1 of the duty factor d for an alternating gait, so its scale is twice the duty factor's
(0.1). A feature the video did not give (no person found, no travel measured) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vid2reward.tools.feature_definitions import FEATURE_DEFINITIONS, feature_scale
from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS, airborne_fraction


@dataclass(frozen=True)
class GaitRow:
    """One gait feature of a policy beside the person's."""

    feature: str
    """What is compared: cadence, speed, trunk lean, flight, double support, step length."""
    unit: str
    """The unit of ``policy``, ``person``, ``compared`` and ``scale``."""
    policy: float | None
    """The policy's figure (the primary measure), None when not measured."""
    method: str
    """How the policy's figure was measured (``"foot touchdowns"``, ``"simulator"``, ...)."""
    person: float | None
    """The person's figure, from the expert video."""
    person_method: str
    """How the person's figure was measured (``"pose"``, ``"duty factor"``, ...)."""
    scale: float
    """A clearly visible difference, in ``unit`` (the critic's scale of the feature)."""
    compared: float | None = None
    """The policy's figure measured the way the person's is, where that is not the primary
    one (cadence: by pose); the verdict compares it."""
    compared_method: str = ""
    """How ``compared`` was measured ("" when there is no second figure)."""

    @property
    def judged(self) -> float | None:
        """The policy's figure the verdict compares with the person's."""
        return self.compared if self.compared is not None else self.policy

    @property
    def visible_differences(self) -> float | None:
        """(policy - person) in visible differences; None when either is unknown."""
        if self.judged is None or self.person is None:
            return None
        return (self.judged - self.person) / self.scale

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (final.json's ``person``, ``evaluate --json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaitRow:
        """The row :meth:`to_dict` wrote."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def compare_with_person(evaluation: Mapping[str, Any], expert: Mapping[str, Any] | None,
                        body_length_m: float) -> list[GaitRow]:
    """The rows of :data:`GaitRow` for a policy's ``evaluation`` (``PolicyEvaluation.to_dict()``)
    against the person in ``expert`` (expert/features.json); empty without a person's pose.

    Args:
        evaluation: the policy's evaluation (``metrics`` from simulator state, ``pose``).
        expert: what the run measured of the expert video (``features``, ``person_speed``).
        body_length_m: the learner's body length in metres (``EnvSpec.body_length``): the unit
            of the speed scale.
    """
    features = dict((expert or {}).get("features") or {})
    if "pose_cadence_hz" not in features and "pose_duty_factor" not in features:
        return []
    metrics = evaluation.get("metrics") or {}
    pose = evaluation.get("pose") or {}

    def value(source: Mapping[str, Any], key: str) -> float | None:
        v = source.get(key)
        return None if v is None else float(v)

    rows = [GaitRow("cadence", "steps/s", value(metrics, "cadence_steps_per_s"), "foot touchdowns",
                    value(features, "pose_cadence_hz"), "pose", feature_scale("pose_cadence_hz"),
                    value(pose, "pose_cadence_hz"), "pose of its joints, as the person's")]
    carried = (expert or {}).get("person_speed") or {}
    if carried.get("m_per_s") is not None:
        rows.append(GaitRow("speed", "m/s", value(metrics, "forward_velocity"), "the simulator",
                            float(carried["m_per_s"]), "hips' travel, carried to the body's legs",
                            FEATURE_DEFINITIONS["forward_speed"].scale * body_length_m))
    if "pose_trunk_lean_deg" in features:
        rows.append(GaitRow("trunk lean", "deg", value(pose, "pose_trunk_lean_deg"), "pose of its joints",
                            value(features, "pose_trunk_lean_deg"), "pose",
                            feature_scale("pose_trunk_lean_deg")))
    duty = value(features, "pose_duty_factor")
    if duty is not None:
        phase = value(features, "pose_lr_phase_deg")
        alternating = phase is None or phase >= 90
        flight = airborne_fraction(duty, phase)  # as the run read the person's flight
        rows.append(GaitRow("flight", "fraction of the time", value(metrics, "flight_fraction"),
                            "foot contacts (no foot down)", flight,
                            f"the duty factor ({duty:.2f})", feature_scale("flight_fraction")))
        if alternating:
            rows.append(GaitRow("double support", "fraction of the time",
                                value(metrics, "double_support_fraction"),
                                "foot contacts (both feet down)", max(0.0, 2.0 * duty - 1.0),
                                f"the duty factor ({duty:.2f})",
                                2.0 * POSE_FEATURE_DEFINITIONS["pose_duty_factor"].scale))
    if "pose_step_length" in features:
        rows.append(GaitRow("step length", "leg lengths", value(pose, "pose_step_length"),
                            "pose of its joints",
                            value(features, "pose_step_length"), "pose",
                            feature_scale("pose_step_length")))
    return rows


FRACTIONS = ("fraction of the time",)
"""Units shown as percentages."""


def number(value: float, unit: str) -> str:
    """``value`` as the comparison shows a figure in ``unit``, without the unit."""
    if unit in FRACTIONS:
        return f"{value:.0%}"
    if unit == "deg":
        return f"{value:+.0f}"
    return f"{value:.2f}"


def with_unit(value: float | None, unit: str) -> str:
    """``value`` with its unit ("not measured" for None)."""
    if value is None:
        return "not measured"
    return f"{value:.0%} of the time" if unit in FRACTIONS else f"{number(value, unit)} {unit}"


def verdict(row: GaitRow) -> str:
    """"within a visible difference (0.4 steps/s)" or "2.3 visible differences more (one is
    8 deg)"."""
    n = row.visible_differences
    if n is None:
        return "no verdict"
    scale = with_unit(row.scale, row.unit) if row.unit in FRACTIONS else f"{row.scale:.2g} {row.unit}"
    if abs(n) <= 1.0:
        return f"within a visible difference ({scale})"
    return f"{abs(n):.1f} visible differences {'more' if n > 0 else 'less'} (one is {scale})"


def row_line(row: GaitRow) -> str:
    """One feature in one line: the policy's figure with its method and unit (and, where the
    person is measured another way, the policy measured that way and how far apart the two
    are), the person's with its method, the verdict."""
    ours = with_unit(row.policy, row.unit) + ("" if row.policy is None else f" by {row.method}")
    if row.compared_method:
        if row.compared is None:
            ours += f" (by {row.compared_method}: not measured)"
        else:
            apart = "" if row.policy is None else \
                f": {abs(row.policy - row.compared):.2f} {row.unit} apart"
            ours += f" ({number(row.compared, row.unit)} by {row.compared_method}{apart})"
    theirs = f"{with_unit(row.person, row.unit)} by {row.person_method}"
    return f"{row.feature}: {ours}; the person {theirs}: {verdict(row)}"


def cadence_text(metrics: Mapping[str, Any]) -> str:
    """"cadence 1.95 steps/s by foot touchdowns": the primary cadence of a policy's simulator
    metrics, as every report words it ("" for an evaluation made before it was measured)."""
    value = metrics.get("cadence_steps_per_s")
    return "" if value is None else f"cadence {float(value):.2f} steps/s by foot touchdowns"


def comparison_lines(rows: list[GaitRow] | list[dict[str, Any]]) -> list[str]:
    """The comparison with the person as the summary, the trace and ``evaluate`` print it (no
    lines without a person), ending with a sentence when the person walks and the policy
    does not."""
    parsed = [r if isinstance(r, GaitRow) else GaitRow.from_dict(r) for r in rows]
    if not parsed:
        return []
    lines = ["compared with the person in the video (a verdict in clearly visible differences, "
             "the critic's scale):"]
    lines += [f"  {row_line(r)}" for r in parsed]
    flight = next((r for r in parsed if r.feature == "flight"), None)
    if flight is not None and flight.person == 0.0 and (flight.policy or 0.0) > 0.0:
        lines.append(f"  the person walks, and a walk has no flight phase: the policy has no "
                     f"foot on the floor {flight.policy:.0%} of the time")
    return lines
