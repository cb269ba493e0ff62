"""The offline reward engineer: a literal chain rule over reward weights.

It searches programs made of standard terms (``reward_terms``). Each iteration trains K
candidates, perturbations of the WEIGHTS around a centre. From every candidate measured so far
it fits a linear model of how pixel features ξ respond to the parameters θ (∂ξ/∂θ, ridge
regression pulled towards the terms' declared effects), then steps θ against the critic's
gradient ∂L/∂ξ, read from the VisualFeedback it answers (each BehaviorDelta carries the
expert's value, the scale and the weight of its feature: L = Σ w·((ξ - ξ*)/s)²), inside a trust
region that grows after an improving iteration, shrinks after one that did not improve, and
shrinks again when the last step's EditAudits say it moved the learner away from the expert.
A feature the critic flags that no active
term moves gets a new term from the library. Everything it knows comes from the message and the
observations it is given, so a resumed run proposes exactly what the interrupted one would have.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from vid2reward.agent.engines.body_terms import fits_body
from vid2reward.agent.engines.reward_terms import TERMS, default_params, param_spec
from vid2reward.agent.messages import EditAudit, RewardEdit, VisualFeedback
from vid2reward.sim.envs import EnvSpec

CALIBRATED_TARGETS: dict[str, tuple[str, str]] = {
    "forward_velocity": ("speed", "speed_target"),
    "torso_height": ("height", "height_target"),
    "torso_pitch": ("lean", "lean_target"),
    "lateral_velocity": ("sideways", "lateral_target"),
    "yaw_rate": ("turn", "turn_target"),
    "torso_height_std": ("bob_clock", "bob_std"),
}
"""Calibrated quantity (``tools/calibration.py``) -> the (term, target) it sets."""
CALIBRATED_SPREAD = 0.25
"""Perturbations move a calibrated target by this fraction of the usual spread: the
calibration's residual is small, but not zero."""
UNPINNED_IMPORTANCE = 1.0
"""A feature the critic finds this far from the expert gets a term of its own at the final
training when the calibration pinned its only levers. Importance is |z| / 2 capped at 1, so
this is a gap of two scales or more: the pixels under-read a learner's time in the air (feet
that skim the floor by a few cm look grounded: final learners airborne 0.4-0.58 of the time
read 0.04-0.17), and a smaller gap is within that bias (a flight term added for one, on
cheetah-steady, made the body bound too high: NES 0.61 -> 0.27)."""
UNPINNED_WEIGHT = 1.0
"""That term's weight: the weight the draft gives its main terms (speed, the bob clock)."""
PRIOR_GAIN = 0.3
"""Prior |∂z/∂θ| (scaled feature units per search unit) for a declared term effect."""
RIDGE = 1.0
"""Pull of the regression towards the prior (in units of observations)."""


@dataclass
class CandidatePlan:
    """One reward program to train: which terms, with which numbers."""

    terms: list[str]
    weights: dict[str, float]


@dataclass
class Observation:
    """A trained and measured candidate."""

    candidate_id: str
    iteration: int
    plan: CandidatePlan
    features: dict[str, float]
    score: float
    """Its selection score (similarity, else training return)."""


@dataclass
class Proposal:
    """The engineer's answer: edits (for RewardFeedback) and the next iteration's candidates."""

    edits: list[RewardEdit]
    candidates: list[CandidatePlan]
    notes: dict[str, object] = field(default_factory=dict)


class NumericEngineer:
    """Proposes reward programs from feature observations (see module docstring)."""

    def __init__(self, spec: EnvSpec, seed: int = 0, base_radius: float = 1.0) -> None:
        self.spec = spec
        self.seed = seed
        self.base_radius = base_radius

    # -- the first program --------------------------------------------------------------
    def draft(self, expert: dict[str, float], k: int) -> Proposal:
        """Initial candidates: alive + target speed + target height + effort, targets guessed
        from the expert's pixel features, and K-1 perturbations around them."""
        terms = [t for t in ("speed", "height", "ctrl", "alive") if fits_body(t, self.spec)]
        weights = default_params(terms)
        lo, hi = self.spec.typical_height
        body = self.spec.body_length  # metres per body length, the pixel features' unit
        if "forward_speed" in expert:
            weights["speed_target"] = _clip_param("speed_target", expert["forward_speed"] * body)
        weights["height_target"] = _clip_param("height_target", (lo + hi) / 2)
        sideways = float(expert.get("depth_speed") or 0.0) * body
        if fits_body("sideways", self.spec) and abs(sideways) >= param_spec("lateral_target").scale:
            # depth_speed shares forward_speed's unit (an assumed focal length): a first guess
            terms.insert(1, "sideways")
            weights.update(default_params(["sideways"]))
            weights["lateral_target"] = _clip_param("lateral_target", sideways)
        if "pose_cadence_hz" in expert and fits_body("gait_clock", self.spec):  # a person's gait
            terms.append("gait_clock")
            weights.update(default_params(["gait_clock"]))
            weights["gait_clock_hz"] = _clip_param("gait_clock_hz", expert["pose_cadence_hz"] / 2)  # 2 steps
            if "pose_hip_range_deg" in expert:  # hips in antiphase: their difference swings +- one range
                weights["clock_amplitude"] = _clip_param("clock_amplitude",
                                                         math.radians(expert["pose_hip_range_deg"]))
        elif expert.get("cadence_hz", 0.0) > 0:  # any other body's bob (0: no rhythm seen)
            terms.append("bob_clock")
            weights.update(default_params(["bob_clock"]))
            weights["gait_clock_hz"] = _clip_param("gait_clock_hz", expert["cadence_hz"])
            weights["bob_std"] = _clip_param("bob_std", expert.get("vertical_oscillation", 0.0) * body)
        centre = CandidatePlan(terms, weights)
        edits = [RewardEdit(op="add", component=t, addresses=sorted(
            {f for effects in TERMS[t].moves.values() for f in effects}),
            expected={}, rationale=f"starting term: {TERMS[t].description}") for t in terms]
        rng = np.random.default_rng([self.seed, 0])
        return Proposal(edits, [centre] + [self._perturb(centre, self.base_radius, rng)
                                           for _ in range(k - 1)],
                        notes={"radius": self.base_radius})

    # -- every later program ------------------------------------------------------------
    def propose(self, observations: list[Observation], feedback: VisualFeedback, iteration: int,
                k: int, run_best_history: list[float], audits: list[EditAudit] | None = None,
                calibrated: Mapping[str, float] | None = None) -> Proposal:
        """Step from the judged candidate against ∂L/∂ξ (from ``feedback``) through the fitted
        ∂ξ/∂θ. ``audits`` of the last step shorten this one when they say it overshot.
        ``calibrated`` (quantity -> the expert's value in physical units, read through the
        calibration on the learner clips) sets the targets it covers outright: a measured
        target beats a step towards it."""
        judged = [o for o in observations if o.candidate_id == feedback.candidate_id]
        best = judged[0] if judged else max(observations, key=lambda o: o.score)
        loss = _Loss.of(feedback)
        terms = list(best.plan.terms)
        weights = dict(best.plan.weights)
        edits: list[RewardEdit] = []
        for term in self._missing_terms(feedback, terms):
            terms.append(term)
            weights.update({p: spec.default for p, spec in TERMS[term].params.items()})
            features = sorted({f for eff in TERMS[term].moves.values() for f in eff})
            edits.append(RewardEdit(op="add", component=term, addresses=features,
                                    expected={f: ("increase" if s > 0 else "decrease")
                                              for eff in TERMS[term].moves.values()
                                              for f, s in eff.items()},
                                    rationale=f"no active term moves {', '.join(features)}: "
                                              f"{TERMS[term].description}"))
        names = [p for t in terms for p, spec in TERMS[t].params.items() if spec.kind != "clock"]
        feats = sorted(f for f in loss.expert if f in best.features)
        z_best = np.array([loss.z(best.features, f) for f in feats])
        w_feat = np.array([loss.weight[f] for f in feats])
        jac = self._fit_jacobian(loss, observations, best, names, feats)
        grad = jac.T @ (2.0 * w_feat * z_best)  # ∂L/∂θ = (∂ξ/∂θ)ᵀ ∂L/∂ξ
        radius, audit_note = _audited_radius(self._radius(run_best_history), audits or [])
        norm = float(np.linalg.norm(grad))
        step = -radius * grad / norm if norm > 1e-9 else np.zeros(len(names))
        theta_best = np.array([_to_search(p, weights[p]) for p in names])
        centre_w = {p: weights[p] for t in terms for p in TERMS[t].params if p not in names}
        centre_w.update({p: _clip_param(p, _from_search(p, theta_best[i] + step[i]))
                         for i, p in enumerate(names)})  # the clock (not searched) as it was
        centre = CandidatePlan(terms, centre_w)
        for i, p in enumerate(names):
            if abs(step[i]) < 0.05 or weights.get(p) == centre_w[p]:
                continue
            effect = jac[:, i] * step[i]
            moved = [f for j, f in enumerate(feats) if abs(effect[j]) > 0.02]
            edits.append(RewardEdit(
                op="reweight", component=p, old_value=round(weights[p], 6),
                new_value=round(centre_w[p], 6), addresses=moved,
                expected={f: ("increase" if effect[feats.index(f)] > 0 else "decrease") for f in moved},
                rationale=f"∂L/∂{p} = {grad[i]:+.3f} (regression over {len(observations)} "
                          f"candidates); step {step[i]:+.2f} within trust radius {radius:.2f}"))
        fixed = self._set_calibrated_targets(centre, weights, calibrated or {}, edits)
        rng = np.random.default_rng([self.seed, iteration])
        candidates = [centre] + [self._perturb(centre, radius / 2, rng, fixed) for _ in range(k - 1)]
        return Proposal(edits, candidates, notes={
            "calibrated": {p: centre.weights[p] for p in fixed},
            "radius": radius, "gradient": dict(zip(names, np.round(grad, 4).tolist(), strict=True)),
            "audits": audit_note,
            "base": best.candidate_id})

    def explore(self, observations: list[Observation], iteration: int, k: int,
                run_best_history: list[float]) -> Proposal:
        """Without a video critic there is no ∂L/∂ξ: perturb around the best observation
        (ranked by the caller's score) inside the trust region (random search)."""
        best = max(observations, key=lambda o: o.score)
        radius = self._radius(run_best_history)
        rng = np.random.default_rng([self.seed, iteration])
        centre = CandidatePlan(list(best.plan.terms), dict(best.plan.weights))
        return Proposal([], [self._perturb(centre, radius / 2, rng) for _ in range(k)],
                        notes={"radius": radius, "base": best.candidate_id, "mode": "explore"})

    def calibrated_plan(self, plan: CandidatePlan, calibrated: Mapping[str, float],
                        feedback: VisualFeedback | None = None,
                        covered: Collection[str] = (),
                        ) -> tuple[CandidatePlan, list[RewardEdit]] | None:
        """``plan`` with its terms' targets set to the calibrated expert, and the edits that
        did it; None when nothing changes. No term is added for a calibrated quantity (the
        plan was judged with these terms), only for a feature the pins leave without a lever
        (:meth:`_unpinned_terms`; ``feedback``: the critic's on the plan, ``covered``: the
        features the calibration reads)."""
        update = CandidatePlan(list(plan.terms), dict(plan.weights))
        edits: list[RewardEdit] = []
        pinned = self._set_calibrated_targets(update, dict(plan.weights), calibrated, edits,
                                              add_terms=False)
        if feedback is not None:
            self._unpinned_terms(update, feedback, pinned, covered, edits)
        return (update, edits) if edits else None

    # -- pieces -------------------------------------------------------------------------
    def _set_calibrated_targets(self, centre: CandidatePlan, before: dict[str, float],
                                calibrated: Mapping[str, float],
                                edits: list[RewardEdit], add_terms: bool = True) -> set[str]:
        """Set each target a calibrated quantity measures (adding its term, if ``add_terms``,
        when the expert differs from the term's default); the targets set (held nearly still
        in the perturbations)."""
        fixed: set[str] = set()
        for quantity, (term, param) in CALIBRATED_TARGETS.items():
            if quantity not in calibrated or not fits_body(term, self.spec):
                continue
            value = _clip_param(param, float(calibrated[quantity]))
            if term not in centre.terms:
                if (not add_terms or _clocked(term)
                        or abs(value - param_spec(param).default) < param_spec(param).scale):
                    continue  # not asked to add, the term needs the draft's clock, or the default is close
                centre.terms.append(term)
                centre.weights.update(default_params([term]))
                edits.append(RewardEdit(op="add", component=term, addresses=[],
                                        rationale=f"the calibrated expert has {quantity} "
                                                  f"{value:.3g}: {TERMS[term].description}"))
            old = centre.weights[param]
            centre.weights[param] = round(value, 4)
            fixed.add(param)
            # the gradient's step on this target is replaced, and so is its edit
            edits[:] = [e for e in edits if not (e.op == "reweight" and e.component == param)]
            if abs(old - value) > 1e-6:
                features = sorted(TERMS[term].moves.get(param, {}))
                edits.append(RewardEdit(
                    op="reweight", component=param, old_value=round(before.get(param, old), 6),
                    new_value=round(value, 6), addresses=features,
                    expected={f: ("increase" if (value - before.get(param, old)) * sign > 0 else "decrease")
                              for f, sign in TERMS[term].moves.get(param, {}).items()},
                    rationale=f"the expert's {quantity}, read from its pixel features through "
                              f"the calibration fitted on the learner clips: {value:.3g}"))
        return fixed

    def _unpinned_terms(self, plan: CandidatePlan, feedback: VisualFeedback, pinned: set[str],
                        covered: Collection[str], edits: list[RewardEdit]) -> None:
        """Add to ``plan`` the library term that moves a feature whose only levers in it are
        targets the calibration pinned to another quantity (``pinned``), when the critic still
        finds the feature far from the expert's (importance >= UNPINNED_IMPORTANCE) and no
        calibration reads it (``covered``).

        The case it is for: the bob target moves the bob and the time in the air, the
        calibration sets it to the expert's bob, and a HalfCheetah that runs backward at the
        expert's speed, height and bob still skims the floor (airborne 0.54-0.58 of the time
        against the expert's 0.73; 30k-step candidates barely move, so the search never saw
        what a flight term does). The term enters at UNPINNED_WEIGHT."""
        for delta in feedback.deltas:
            if delta.importance < UNPINNED_IMPORTANCE or delta.feature in covered:
                continue
            levers = [p for t in plan.terms for p, effects in TERMS[t].moves.items()
                      if delta.feature in effects]
            if not levers or any(p not in pinned for p in levers):
                continue  # no lever at all is the search's case (_missing_terms); a free one works
            want = +1 if delta.direction == "increase" else -1
            # the term whose own weight moves the feature the right way and moves the fewest
            # others (flight, not bounce, for the time in the air), of those that fit the body
            # (body_terms.py: neither for the Ant, whose air time the pixels do not read)
            fits = [t for t in TERMS.values()
                    if t.name not in plan.terms and t.moves.get(t.name, {}).get(delta.feature) == want
                    and fits_body(t.name, self.spec) and not _clocked(t.name)]
            for term in sorted(fits, key=lambda t: len(t.moves[t.name]))[:1]:
                plan.terms.append(term.name)
                plan.weights.update(default_params([term.name]))
                plan.weights[term.name] = UNPINNED_WEIGHT
                edits.append(RewardEdit(
                    op="add", component=term.name, addresses=[delta.feature],
                    expected={delta.feature: delta.direction},
                    rationale=f"{delta.feature}: learner {delta.learner:.3g} vs expert "
                              f"{delta.expert:.3g}, and its only levers ({', '.join(levers)}) are "
                              f"set by the calibration: {term.description}"))

    def _missing_terms(self, feedback: VisualFeedback, active: list[str]) -> list[str]:
        """Library terms to add: for each important delta no active term moves, the first
        inactive term that moves it in the needed direction."""
        added: list[str] = []
        for delta in feedback.deltas:
            if delta.importance < 0.3:
                continue
            moved_by_active = any(delta.feature in eff for t in active + added
                                  for eff in TERMS[t].moves.values())
            if moved_by_active:
                continue
            want = +1 if delta.direction == "increase" else -1
            for t in TERMS.values():
                if (t.name in active or t.name in added or not fits_body(t.name, self.spec)
                        or _clocked(t.name)):  # a clock is set from the expert in the draft
                    continue
                signs = [eff[delta.feature] for eff in t.moves.values() if delta.feature in eff]
                if signs and (signs[0] == want or t.params[next(iter(t.params))].kind == "target"):
                    added.append(t.name)
                    break
        return added

    def _fit_jacobian(self, loss: _Loss, observations: list[Observation],
                      best: Observation, names: list[str], feats: list[str]) -> np.ndarray:
        """∂z/∂θ (features x params) by ridge regression around the best observation,
        pulled towards the terms' declared effects."""
        prior = np.zeros((len(feats), len(names)))
        for i, p in enumerate(names):
            for term in TERMS.values():
                for f, sign in term.moves.get(p, {}).items():
                    if f in feats:
                        prior[feats.index(f), i] = sign * PRIOR_GAIN
        theta_b = np.array([_to_search(p, best.plan.weights.get(p, param_spec(p).default)) for p in names])
        z_b = np.array([loss.z(best.features, f) for f in feats])
        rows_x, rows_y = [], []
        for o in observations:
            if o is best or not all(f in o.features for f in feats):
                continue
            theta = np.array([_to_search(p, o.plan.weights.get(p, param_spec(p).default)) for p in names])
            rows_x.append(theta - theta_b)
            rows_y.append(np.array([loss.z(o.features, f) for f in feats]) - z_b)
        if not rows_x:
            return prior
        x, y = np.array(rows_x), np.array(rows_y)
        lhs = x.T @ x + RIDGE * np.eye(len(names))
        rhs = x.T @ y + RIDGE * prior.T
        return np.linalg.solve(lhs, rhs).T

    def _radius(self, run_best_history: list[float]) -> float:
        """Trust radius: grows by 1.3 after an improving iteration, shrinks by 0.6 otherwise."""
        radius = self.base_radius
        for before, after in zip(run_best_history, run_best_history[1:], strict=False):
            radius *= 1.3 if after > before + 1e-6 else 0.6
        return float(min(2.0, max(0.2, radius)))

    def _perturb(self, plan: CandidatePlan, sigma: float, rng: np.random.Generator,
                 fixed: set[str] | None = None) -> CandidatePlan:
        weights = {}
        for p, v in plan.weights.items():
            if param_spec(p).kind == "clock":  # the policy's input, not a searched number
                weights[p] = v
                continue
            spread = sigma * (CALIBRATED_SPREAD if fixed and p in fixed else 1.0)
            weights[p] = _clip_param(p, _from_search(p, _to_search(p, v) + spread * rng.standard_normal()))
        return CandidatePlan(list(plan.terms), weights)


@dataclass
class _Loss:
    """The critic's loss as its VisualFeedback states it: per numeric delta, the expert's
    value, the scale and the weight (L = Σ w·((ξ - ξ*)/s)²)."""

    expert: dict[str, float]
    scale: dict[str, float]
    weight: dict[str, float]

    @classmethod
    def of(cls, feedback: VisualFeedback) -> _Loss:
        """The loss of the deltas that carry numbers (free-text deltas have none)."""
        numeric = [d for d in feedback.deltas if d.expert is not None and d.scale is not None]
        return cls(expert={d.feature: float(d.expert) for d in numeric if d.expert is not None},
                   scale={d.feature: float(d.scale) for d in numeric if d.scale is not None},
                   weight={d.feature: d.weight for d in numeric})

    def z(self, features: dict[str, float], f: str) -> float:
        """Feature ``f``'s difference from the expert in units of its scale."""
        return (features[f] - self.expert[f]) / self.scale[f]


OVERSHOOT_SHRINK = 0.5
"""Trust-radius factor after a step whose audited features mostly moved away from the expert."""


def _audited_radius(radius: float, audits: list[EditAudit]) -> tuple[float, str]:
    """The trust radius after reading the last step's audits: when more of its audited features
    ended farther from the expert than closer (it overshot, or the fit's sign was wrong), the
    next step is shorter; the note says what the audits showed."""
    judged = [a.closer_to_expert for a in audits if a.closer_to_expert is not None]
    closer, away = sum(judged), len(judged) - sum(judged)
    if away > closer:
        shrunk = max(0.2, radius * OVERSHOOT_SHRINK)
        return shrunk, (f"{away}/{len(judged)} audited features moved away from the expert: "
                        f"radius {shrunk:.2f}")
    return radius, f"{closer}/{len(judged)} audited features moved closer to the expert"


def _to_search(name: str, value: float) -> float:
    spec = param_spec(name)
    if spec.kind == "weight":
        return math.log(max(value, 1e-12)) / spec.scale
    return value / spec.scale


def _from_search(name: str, theta: float) -> float:
    spec = param_spec(name)
    return math.exp(theta * spec.scale) if spec.kind == "weight" else theta * spec.scale


def _clocked(term: str) -> bool:
    """Whether a term follows the gait clock (its frequency comes from the expert's cadence
    when drafting; a term added later would bring the default clock)."""
    return any(p.kind == "clock" for p in TERMS[term].params.values())


def _clip_param(name: str, value: float) -> float:
    spec = param_spec(name)
    return float(min(spec.high, max(spec.low, value)))
