"""Human as critic: words -> BehaviorDeltas through the vocabulary, what is not understood is
said, and the offline engineer steps the reward on a person's delta as on the critic's."""

from __future__ import annotations

import pytest

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import NumericEngineer, Observation
from vid2reward.agent.human_feedback import (
    HUMAN_WEIGHT,
    human_critique,
    human_deltas,
    parse_feedback,
)
from vid2reward.sim.envs import get_spec

EXPERT = {"forward_speed": 0.6, "cadence_hz": 2.0, "vertical_oscillation": 0.05, "tilt_deg": 4.0}


@pytest.mark.parametrize("words,expected", [
    ("faster", [("forward_speed", "increase")]),
    ("slower", [("forward_speed", "decrease")]),
    ("hop higher", [("vertical_oscillation", "increase"), ("flight_fraction", "increase")]),
    ("lean forward", [("tilt_deg", "increase")]),
    ("smoother", [("motion_energy", "decrease"), ("height_ratio_std", "decrease")]),
    ("stop falling", [("height_ratio", "increase")]),
    ("faster rhythm", [("cadence_hz", "increase")]),  # not forward speed
    ("hop lower", [("vertical_oscillation", "decrease"), ("flight_fraction", "decrease")]),
])
def test_vocabulary(words, expected):
    parsed = parse_feedback(words)
    assert [(r.feature, r.direction) for r in parsed.requests] == expected
    assert parsed.not_understood == []


def test_clauses_amounts_and_what_is_not_understood():
    parsed = parse_feedback("Hop higher and a bit faster, but make it look like a kangaroo!")
    assert [(r.feature, r.amount) for r in parsed.requests] == [
        ("vertical_oscillation", 1.0), ("flight_fraction", 1.0), ("forward_speed", 0.5)]
    assert parsed.not_understood == ["make it look like a kangaroo"]
    summary = parsed.summary()
    assert "not understood: 'make it look like a kangaroo'" in summary and "words I know" in summary
    assert parse_feedback("much slower").requests[0].amount == 2.0


def test_deltas_carry_a_target_in_the_features_own_scale():
    deltas = human_deltas(parse_feedback("a bit faster, more upright, hop higher"),
                          {"forward_speed": 0.2, "tilt_deg": 12.0})
    speed, tilt, bob, flight = deltas
    assert (speed.learner, speed.expert, speed.scale) == (0.2, 0.45, 0.5)  # half a scale up
    assert speed.direction == "increase" and speed.weight == HUMAN_WEIGHT
    assert tilt.expert == 0.0 and tilt.direction == "decrease"  # upright: towards 0 degrees
    assert bob.learner is None and bob.expert is None and bob.scale is None  # not measured: words only
    assert "the person said 'hop higher'" in flight.evidence


def test_the_persons_delta_replaces_the_critics_and_leads():
    critic = FeatureCritic()
    learner = {**EXPERT, "forward_speed": 0.2, "cadence_hz": 1.0}
    fb = critic.critique(EXPERT, learner, feedback_id="fb-001-00", iteration=1, candidate_id="iter-001/cand-00")
    human, merged, _ = human_critique("slower please, like a kangaroo", iteration=1,
                                      candidate_id="iter-001/cand-00", feedback=fb, learner=learner)
    assert human.id == "hf-001" and [d.feature for d in human.deltas] == ["forward_speed"]
    assert merged.id == fb.id and merged.deltas[0].direction == "decrease"  # the person wins
    assert [d.feature for d in merged.deltas].count("forward_speed") == 1
    assert {d.feature for d in merged.deltas} == {d.feature for d in fb.deltas}
    assert merged.problems[0] == "(person) slower please, like a kangaroo"
    assert "not understood" in merged.problems[1] and "kangaroo" in merged.problems[1]


def test_the_offline_engineer_steps_on_a_persons_words():
    """The learner already matches the expert's speed, so the critic asks for nothing there;
    the person says "faster": the chain-rule step must raise the speed target."""
    critic, engineer = FeatureCritic(), NumericEngineer(get_spec("Hopper-v5"), seed=0)
    proposal = engineer.draft(EXPERT, k=4)
    centre = proposal.candidates[0].weights["speed_target"]
    observations = [Observation(f"iter-001/cand-{i:02d}", 1, plan,
                                {**EXPERT, "forward_speed": 0.6 + 0.5 * (plan.weights["speed_target"] - centre)},
                                0.5)
                    for i, plan in enumerate(proposal.candidates)]
    best = observations[0]  # moves exactly like the expert
    fb = critic.critique(EXPERT, best.features, feedback_id="fb", iteration=1, candidate_id=best.candidate_id)
    plain = engineer.propose(observations, fb, 2, 4, [0.5])
    _, merged, _ = human_critique("faster", iteration=1, candidate_id=best.candidate_id,
                                  feedback=fb, learner=best.features)
    asked = engineer.propose(observations, merged, 2, 4, [0.5])
    before = best.plan.weights["speed_target"]
    assert asked.candidates[0].weights["speed_target"] > before
    assert asked.candidates[0].weights["speed_target"] > plain.candidates[0].weights["speed_target"]
    assert any("forward_speed" in e.addresses and e.expected.get("forward_speed") == "increase"
               for e in asked.edits)


def test_run_feedback_words_nobody_understands_are_refused_not_dropped(capsys, tmp_path):
    from vid2reward.agent.cli import main

    code = main(["run", "--env", "Hopper-v5", "--video", "examples/demo_expert_hopper.mp4",
                 "--feedback", "make it prettier", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "none of 'make it prettier' is in the vocabulary" in err and "hop higher" in err
    assert not (tmp_path / "r").exists()
