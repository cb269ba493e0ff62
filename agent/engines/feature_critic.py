"""The offline critic: compares pixel-feature vectors ξ of the learner's clip and the expert's.

It emits :class:`VisualFeedback` (∂L/∂ξ): one :class:`BehaviorDelta` per feature (learner minus
expert, scaled), sentences for the largest differences, and a similarity in (0, 1]. It never
looks at simulator state: the expert is a video.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vid2reward.agent.messages import BehaviorDelta, VisualFeedback
from vid2reward.tools.feature_definitions import feature_scale

PHRASES: dict[str, tuple[str, str]] = {
    "forward_speed": ("moves forward too slowly", "moves forward too fast"),
    "cadence_hz": ("moves with too slow a rhythm", "moves with too fast a rhythm"),
    # depth_speed + = away from the camera (to the body's left for a MuJoCo render)
    "depth_speed": ("moves too little away from the camera (sideways, to its left)",
                    "moves too much away from the camera (sideways, to its left)"),
    "turning_rate": ("turns too little to the left (or too much to the right)",
                     "turns too much to the left (or too little to the right)"),
    "vertical_oscillation": ("bobs up and down too little", "bobs up and down too much"),
    "height_ratio": ("holds itself too low or folded", "holds itself too tall and extended"),
    "height_ratio_std": ("stretches and folds too little", "stretches and folds too much"),
    # aspect_ratio is width / height: below the expert = narrower, above = wider.
    "aspect_ratio": ("looks too narrow (tall for its width)", "looks too flat (wide for its height)"),
    "tilt_deg": ("leans too far back", "leans too far forward"),
    "flight_fraction": ("spends too little time in the air", "spends too much time in the air"),
    "motion_energy": ("moves too little", "moves too much"),
    "survival": ("stops before the clip ends (falls)", "keeps going longer than the expert"),
    # pose features: a person's joints in the expert video vs the body's joints (sim state)
    "pose_cadence_hz": ("takes too few steps per second", "takes too many steps per second"),
    "pose_duty_factor": ("keeps each foot on the ground too briefly",
                         "keeps each foot on the ground too long"),
    "pose_step_length": ("takes too short steps", "takes too long steps"),
    "pose_lr_phase_deg": ("moves its legs too much together (not alternating)",
                          "alternates its legs more than the expert"),
    "pose_trunk_lean_deg": ("leans its trunk too far back", "leans its trunk too far forward"),
    "pose_hip_range_deg": ("swings its hips through too small a range",
                           "swings its hips through too large a range"),
    "pose_hip_max_deg": ("does not bring its thighs far enough forward",
                         "brings its thighs too far forward"),
    "pose_knee_range_deg": ("moves its knees through too small a range",
                            "moves its knees through too large a range"),
    "pose_knee_max_deg": ("bends its knees too little", "bends its knees too much"),
    "pose_ankle_range_deg": ("moves its ankles too little", "moves its ankles too much"),
}
"""feature -> (what it means when the learner is below the expert, ... above)."""


class FeatureCritic:
    """Turns two feature vectors into VisualFeedback.

    Every delta carries the scale and weight it was measured with, so the feedback alone
    defines the loss L = Σ weight · ((learner - expert) / scale)² and its gradient.

    Args:
        scales: per-feature scales overriding the vocabulary's (tests, tuned critics); every
            other feature uses :func:`~vid2reward.tools.feature_definitions.feature_scale`.
        weights: per-feature importance multipliers (default 1).
    """

    def __init__(self, scales: Mapping[str, float] | None = None,
                 weights: Mapping[str, float] | None = None) -> None:
        self.scales = dict(scales or {})
        self.weights = dict(weights or {})

    def scale(self, feature: str, expert_value: float) -> float:
        """The unit in which differences of ``feature`` are measured."""
        return feature_scale(feature, expert_value, self.scales)

    def scaled_differences(self, expert: Mapping[str, float], learner: Mapping[str, float]) -> dict[str, float]:
        """(learner - expert) / scale for every feature both vectors have."""
        return {f: (learner[f] - expert[f]) / self.scale(f, expert[f])
                for f in expert if f in learner
                and _finite(expert[f]) and _finite(learner[f])}

    def similarity(self, expert: Mapping[str, float], learner: Mapping[str, float]) -> float:
        """exp(-weighted RMS of scaled differences): 1 = identical features."""
        z = self.scaled_differences(expert, learner)
        if not z:
            return 0.0
        total_w = sum(self.weights.get(f, 1.0) for f in z)
        rms = math.sqrt(sum(self.weights.get(f, 1.0) * v * v for f, v in z.items()) / total_w)
        return math.exp(-rms)

    def critique(self, expert: Mapping[str, float], learner: Mapping[str, float], *,
                 feedback_id: str, iteration: int, candidate_id: str,
                 units: Mapping[str, str] | None = None,
                 falls: Mapping[str, Any] | None = None) -> VisualFeedback:
        """VisualFeedback for one learner clip: deltas for all features, sentences for the big
        ones; ``falls`` (the evaluation's fall record) puts a fall first, in seconds."""
        z = self.scaled_differences(expert, learner)
        deltas = []
        for f, v in sorted(z.items(), key=lambda kv: -abs(kv[1]) * self.weights.get(kv[0], 1.0)):
            unit = (units or {}).get(f, "")
            deltas.append(BehaviorDelta(
                feature=f, learner=round(learner[f], 4), expert=round(expert[f], 4),
                scale=self.scale(f, expert[f]), weight=self.weights.get(f, 1.0),
                direction="increase" if v < 0 else "decrease",
                importance=round(min(1.0, abs(v) * self.weights.get(f, 1.0) / 2.0), 3),
                evidence=f"learner {learner[f]:.3g} vs expert {expert[f]:.3g} {unit}".strip()))
        problems: list[str] = []
        if falls and falls.get("fell"):
            when = sorted(falls.get("fall_seconds") or [])
            problems.append(f"1. It falls: in {falls['fell']} of {falls['episodes']} episodes, after "
                            f"{', '.join(f'{t:.1f}' for t in when)} s (the expert keeps going for "
                            f"the whole {falls.get('clip_seconds', 0):.0f} s).")
        for d in deltas:
            if d.importance < 0.125 or d.feature == "survival" and problems:
                continue  # within a quarter of a scale: not worth a sentence (or said above)
            low, high = PHRASES.get(d.feature, (f"{d.feature} is too low", f"{d.feature} is too high"))
            problems.append(f"{len(problems) + 1}. It {low if d.direction == 'increase' else high}"
                            f" ({d.evidence}).")
        return VisualFeedback(id=feedback_id, iteration=iteration, candidate_id=candidate_id,
                              similarity=round(self.similarity(expert, learner), 4),
                              problems=problems, deltas=deltas)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
