"""The offline critic and numeric engineer, on feature vectors with a known answer."""

import math

import numpy as np
import pytest

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import CandidatePlan, NumericEngineer, Observation
from vid2reward.agent.engines.reward_terms import TERMS, default_params, write_program
from vid2reward.agent.messages import EditAudit
from vid2reward.sim.envs import get_spec
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.reward import load_reward_program

EXPERT = {"forward_speed": 0.6, "cadence_hz": 2.0, "vertical_oscillation": 0.05}
SCALES = {"forward_speed": 0.5, "cadence_hz": 0.5, "vertical_oscillation": 0.03}


def test_critic_similarity_and_deltas():
    critic = FeatureCritic(SCALES)
    assert critic.similarity(EXPERT, EXPERT) == pytest.approx(1.0)
    learner = {"forward_speed": 0.1, "cadence_hz": 2.0, "vertical_oscillation": 0.05}
    fb = critic.critique(EXPERT, learner, feedback_id="fb", iteration=1, candidate_id="c")
    assert 0.0 < fb.similarity < 1.0
    top = fb.deltas[0]
    assert top.feature == "forward_speed" and top.direction == "increase" and top.importance > 0.4
    assert len(fb.problems) == 1 and "too slowly" in fb.problems[0]
    closer = {**learner, "forward_speed": 0.4}
    assert critic.similarity(EXPERT, closer) > fb.similarity


def test_every_library_term_writes_a_valid_program():
    source = write_program(list(TERMS), default_params(list(TERMS)), "all terms")
    program = load_reward_program(source)
    assert set(program.weights) == {p for t in TERMS.values() for p, spec in t.params.items()
                                     if spec.kind != "clock"}
    assert declared_clock_hz(source) == TERMS["gait_clock"].params["gait_clock_hz"].default


def test_the_flight_term_pays_only_right_side_up():
    """A HalfCheetah on its back has no foot on the floor either (one trained on the bare
    airborne flag flipped over and waved its legs)."""
    from types import SimpleNamespace
    source = write_program(["flight"], {"flight": 2.0}, "flight only")
    namespace: dict = {}
    exec(compile(source, "flight.py", "exec"), namespace)
    pay = [namespace["compute_reward"](SimpleNamespace(airborne=air, uprightness=up), np.zeros(6))[0]
           for air, up in [(True, 1.0), (True, -1.0), (True, 0.5), (False, 1.0)]]
    assert pay == [2.0, 0.0, 1.0, 0.0]


def _simulated_features(weights):
    """A stand-in for train+render+measure whose features respond to the weights smoothly:
    speed follows the target; bounce raises oscillation; smooth lowers cadence."""
    return {"forward_speed": 0.5 * weights.get("speed_target", 0.0),
            "cadence_hz": 3.0 / (1.0 + 5 * weights.get("smooth", 0.0)),
            "vertical_oscillation": 0.02 + 0.1 * weights.get("bounce", 0.0)}


def test_numeric_engineer_raises_similarity_on_a_known_response():
    critic = FeatureCritic(SCALES)
    engineer = NumericEngineer(get_spec("Hopper-v5"), seed=0)
    proposal = engineer.draft({**EXPERT, "forward_speed": 0.2}, k=4)
    observations, best_history = [], []
    for iteration in range(1, 6):
        for index, plan in enumerate(proposal.candidates):
            feats = _simulated_features(plan.weights)
            observations.append(Observation(f"iter-{iteration:03d}/cand-{index:02d}", iteration, plan,
                                            feats, critic.similarity(EXPERT, feats)))
        best_history.append(max(o.score for o in observations))
        best = max(observations, key=lambda o: o.score)
        feedback = critic.critique(EXPERT, best.features, feedback_id="fb", iteration=iteration,
                                   candidate_id=best.candidate_id)
        proposal = engineer.propose(observations, feedback, iteration + 1, 4, best_history)
    assert best_history[-1] > best_history[0] + 0.2
    # The gradient step moved the speed target towards the value that matches the expert (1.2).
    best = max(observations, key=lambda o: o.score)
    assert abs(best.plan.weights["speed_target"] - 1.2) < abs(0.2 / 0.5 * 1.0 - 1.2)
    # An unaddressed delta (vertical oscillation, cadence) brought in a library term that moves it.
    assert {"bounce", "flight", "smooth"} & set(best.plan.terms)


def test_proposals_are_deterministic():
    a = NumericEngineer(get_spec("Hopper-v5"), seed=3).draft(EXPERT, k=3)
    b = NumericEngineer(get_spec("Hopper-v5"), seed=3).draft(EXPERT, k=3)
    assert [c.weights for c in a.candidates] == [c.weights for c in b.candidates]
    assert all(math.isfinite(v) for c in a.candidates for v in c.weights.values())
    plan = CandidatePlan(["speed", "ctrl"], default_params(["speed", "ctrl"]))
    assert np.isfinite(list(plan.weights.values())).all()


def _first_iteration():
    """An engineer, its one trained draft (as an observation) and the critic's feedback on it."""
    critic = FeatureCritic(SCALES)
    engineer = NumericEngineer(get_spec("Hopper-v5"), seed=0)
    plan = engineer.draft(EXPERT, k=1).candidates[0]
    feats = _simulated_features(plan.weights)
    observations = [Observation("iter-001/cand-00", 1, plan, feats, critic.similarity(EXPERT, feats))]
    feedback = critic.critique(EXPERT, feats, feedback_id="fb", iteration=1,
                               candidate_id="iter-001/cand-00")
    return engineer, observations, feedback


def test_the_gradient_is_read_from_the_feedback_message():
    """The engineer holds no critic: the scale and weight each delta carries define ∂L/∂ξ, so
    changing them in the message (and nothing else) changes the step."""
    engineer, observations, feedback = _first_iteration()
    assert {d.feature: d.scale for d in feedback.deltas} == SCALES
    step = engineer.propose(observations, feedback, 2, 1, [observations[0].score])
    muted = feedback.model_copy(update={"deltas": [
        d.model_copy(update={"weight": 0.0 if d.feature == "forward_speed" else d.weight})
        for d in feedback.deltas]})
    muted_step = engineer.propose(observations, muted, 2, 1, [observations[0].score])
    gradient, muted_gradient = step.notes["gradient"], muted_step.notes["gradient"]
    assert isinstance(gradient, dict) and isinstance(muted_gradient, dict)
    assert gradient["speed_target"] != 0.0 and muted_gradient["speed_target"] == 0.0


def test_audits_that_moved_away_from_the_expert_shorten_the_next_step():
    """The engineer reads the audits it is handed: a step whose features ended farther from the
    expert (an overshoot) halves the trust radius; one that moved closer leaves it."""
    engineer, observations, feedback = _first_iteration()

    def audit(closer):
        return EditAudit(iteration=1, reward_feedback_id="rf-001", edit_index=0, component="speed",
                         feature="forward_speed", expected="increase", before=0.1, after=0.9,
                         expert=0.6, outcome="moved_as_expected", closer_to_expert=closer)

    history = [observations[0].score]
    plain = engineer.propose(observations, feedback, 2, 1, history)
    held = engineer.propose(observations, feedback, 2, 1, history, [audit(True)])
    overshot = engineer.propose(observations, feedback, 2, 1, history, [audit(False), audit(False)])
    assert plain.notes["radius"] == held.notes["radius"] == 1.0
    assert overshot.notes["radius"] == 0.5 and "2/2" in str(overshot.notes["audits"])


def test_calibrated_targets_are_set_outright_and_said_so():
    """A target the calibration measured replaces the gradient's step on it (one edit, naming the
    calibration); perturbations barely move it; a quantity whose term is absent adds the term."""
    engineer, observations, feedback = _first_iteration()
    history = [observations[0].score]
    plain = engineer.propose(observations, feedback, 2, 3, history)
    calibrated = engineer.propose(observations, feedback, 2, 3, history,
                                  calibrated={"forward_velocity": -2.4, "torso_pitch": 0.3})
    centre = calibrated.candidates[0]
    assert centre.weights["speed_target"] == -2.4 != plain.candidates[0].weights["speed_target"]
    assert "lean" in centre.terms and centre.weights["lean_target"] == 0.3
    speed_edits = [e for e in calibrated.edits if e.component == "speed_target"]
    assert len(speed_edits) == 1 and "calibration" in speed_edits[0].rationale
    assert speed_edits[0].expected == {"forward_speed": "decrease", "motion_energy": "decrease"}
    spread = [abs(c.weights["speed_target"] + 2.4) for c in calibrated.candidates[1:]]
    plain_spread = [abs(c.weights["speed_target"] - plain.candidates[0].weights["speed_target"])
                    for c in plain.candidates[1:]]
    assert max(spread) < max(plain_spread)


def test_motion_in_depth_brings_a_sideways_term_only_to_a_3d_body():
    """An expert moving away from the camera (depth_speed) is a sideways walker for the Ant:
    the draft rewards sideways speed, and a calibrated sideways speed or turning rate sets the
    targets; a planar body, which cannot move sideways, never gets those terms."""
    expert = {**EXPERT, "forward_speed": 0.02, "depth_speed": 0.4}
    ant = NumericEngineer(get_spec("Ant-v5"), seed=0).draft(expert, k=2).candidates[0]
    assert "sideways" in ant.terms and ant.weights["lateral_target"] == pytest.approx(0.4, rel=0.01)
    assert abs(ant.weights["speed_target"]) < 0.05
    hopper = NumericEngineer(get_spec("Hopper-v5"), seed=0).draft(expert, k=2).candidates[0]
    assert "sideways" not in hopper.terms

    for env_id, expected in (("Ant-v5", True), ("Hopper-v5", False)):
        critic = FeatureCritic({**SCALES, "depth_speed": 0.25})
        engineer = NumericEngineer(get_spec(env_id), seed=0)
        plan = CandidatePlan(["speed", "ctrl"], default_params(["speed", "ctrl"]))
        feats = {"forward_speed": 0.3, "cadence_hz": 2.0, "vertical_oscillation": 0.05,
                 "depth_speed": 0.0}
        goal = {**EXPERT, "depth_speed": 0.4}
        observations = [Observation("iter-001/cand-00", 1, plan, feats, critic.similarity(goal, feats))]
        feedback = critic.critique(goal, feats, feedback_id="fb", iteration=1,
                                   candidate_id="iter-001/cand-00")
        step = engineer.propose(observations, feedback, 2, 2, [observations[0].score],
                                calibrated={"lateral_velocity": 0.45, "yaw_rate": 0.6})
        centre = step.candidates[0]
        assert ("sideways" in centre.terms) is expected
        assert ("turn" in centre.terms) is expected
        if expected:
            assert centre.weights["lateral_target"] == 0.45 and centre.weights["turn_target"] == 0.6
