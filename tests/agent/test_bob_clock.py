"""The bob clock: any body's rhythm (the torso's bob at the expert's cadence) on the gait clock."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import NumericEngineer, Observation
from vid2reward.agent.engines.reward_terms import default_params, write_program
from vid2reward.sim.envs import get_spec
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.reward import load_reward_program

CHEETAH = {"forward_speed": 0.83, "cadence_hz": 2.45, "vertical_oscillation": 0.043}
"""Pixel features of a galloping HalfCheetah (cheetah-steady's expert clip)."""


def _mean_bob_reward(compute, hz, std, phase=0.0, seconds=2.0):
    """The bob_clock term's mean over a torso height swinging as std sqrt(2) sin(2 pi hz t + phase)."""
    values = []
    for t in np.arange(0.0, seconds, 0.05):
        w = 2 * math.pi * hz
        s = SimpleNamespace(time=t, vertical_velocity=std * math.sqrt(2) * w * math.cos(w * t + phase))
        values.append(compute(s, np.zeros(6))[1]["bob_clock"])
    return float(np.mean(values))


def test_bob_clock_pays_for_bobbing_in_step_with_the_clock():
    weights = {**default_params(["bob_clock"]), "gait_clock_hz": 2.0, "bob_std": 0.07}
    source = write_program(["bob_clock"], weights, "bob")
    assert declared_clock_hz(source) == 2.0
    compute = load_reward_program(source, name="b").compute
    assert _mean_bob_reward(compute, 2.0, 0.07) > 0.99
    # out of phase, slower, faster (the learners' 4-4.5 Hz), smaller, larger, still
    for other in [(2.0, 0.07, math.pi), (1.0, 0.07), (4.5, 0.07), (2.0, 0.02), (2.0, 0.2),
                  (0.0, 0.0)]:
        assert _mean_bob_reward(compute, *other) < 0.5, other


def test_a_body_without_a_person_is_drafted_a_bob_clock_at_the_experts_cadence():
    spec = get_spec("HalfCheetah-v5")
    plans = NumericEngineer(spec, seed=0).draft(CHEETAH, 3).candidates
    assert all("bob_clock" in p.terms and p.weights["gait_clock_hz"] == pytest.approx(2.45)
               for p in plans)
    assert plans[0].weights["bob_std"] == pytest.approx(0.043 * spec.body_length)
    assert plans[1].weights["bob_std"] != plans[0].weights["bob_std"]  # searched
    still = NumericEngineer(spec, seed=0).draft({**CHEETAH, "cadence_hz": 0.0}, 1)
    assert "bob_clock" not in still.candidates[0].terms  # no rhythm seen: no clock
    person = {"forward_speed": 0.6, "pose_cadence_hz": 2.58, "cadence_hz": 2.5}
    walker = NumericEngineer(get_spec("Walker2d-v5"), seed=0).draft(person, 1).candidates[0]
    assert "gait_clock" in walker.terms and "bob_clock" not in walker.terms  # one clock


def test_the_bob_is_calibrated_but_a_clock_is_never_added_after_the_draft():
    spec = get_spec("HalfCheetah-v5")
    learner = {"forward_speed": 0.2, "cadence_hz": 4.4, "vertical_oscillation": 0.01}
    fb = FeatureCritic().critique(CHEETAH, learner, feedback_id="fb", iteration=1,
                                  candidate_id="iter-001/cand-00")
    for clocked in (True, False):
        features = CHEETAH if clocked else {**CHEETAH, "cadence_hz": 0.0}
        engineer = NumericEngineer(spec, seed=0)
        draft = engineer.draft(features, 3).candidates
        observations = [Observation(f"iter-001/cand-0{i}", 1, plan, learner, 0.2 + 0.01 * i)
                        for i, plan in enumerate(draft)]
        step = engineer.propose(observations, fb, 2, 3, [0.22],
                                calibrated={"torso_height_std": 0.074})
        centre = step.candidates[0]
        if clocked:
            assert centre.weights["bob_std"] == pytest.approx(0.074)
            assert centre.weights["gait_clock_hz"] == pytest.approx(2.45)
        else:  # a calibrated bob or a cadence delta does not bring a clock at its default
            assert all("bob_clock" not in c.terms and "gait_clock" not in c.terms
                       for c in step.candidates)


def test_a_missing_term_is_never_a_clocked_one(monkeypatch):
    """Whatever the library's order: a term that follows the clock comes only with the draft."""
    from vid2reward.agent.engines import numeric_engineer

    first = {"bob_clock": numeric_engineer.TERMS["bob_clock"],
             **{k: v for k, v in numeric_engineer.TERMS.items() if k != "bob_clock"}}
    monkeypatch.setattr(numeric_engineer, "TERMS", first)
    learner = {"forward_speed": 0.83, "cadence_hz": 2.45, "vertical_oscillation": 0.001}
    fb = FeatureCritic().critique(CHEETAH, learner, feedback_id="fb", iteration=1,
                                  candidate_id="c")
    assert any(d.feature == "vertical_oscillation" and d.importance >= 0.3 for d in fb.deltas)
    added = NumericEngineer(get_spec("HalfCheetah-v5"), seed=0)._missing_terms(fb, ["speed"])
    assert added and "bob_clock" not in added
