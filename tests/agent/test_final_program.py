"""The program the final training trains: the winner brought up to date with the run's last
calibration (offline engineer), or the winner as it is (random search, no calibration)."""

from pathlib import Path

import pytest

from vid2reward.agent.engines.base import CandidateView, EngineerBrief
from vid2reward.agent.engines.offline import OfflineEngineer
from vid2reward.agent.engines.random_search import RandomSearchEngineer
from vid2reward.agent.engines.reward_terms import default_params, write_program
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.reward import load_reward_program

TERMS = ["speed", "height", "ctrl", "bob_clock"]
WEIGHTS = {**default_params(TERMS), "speed_target": -2.5, "height_target": 0.31,
           "gait_clock_hz": 1.32, "bob_std": 0.02}


def _winner(plan=True) -> CandidateView:
    return CandidateView(id="iter-001/cand-01", iteration=1, directory=Path("."),
                         source=write_program(TERMS, WEIGHTS, "winner"), metrics={},
                         plan={"terms": TERMS, "weights": WEIGHTS} if plan else None)


def _brief(calibrated) -> EngineerBrief:
    return EngineerBrief(env_id="HalfCheetah-v5", env_context="", task="", candidates=3,
                         iteration=3, expert=None,
                         calibrated={q: {"value": v} for q, v in calibrated.items()})


def test_the_winner_takes_the_last_calibrations_targets_and_nothing_else():
    measured = {"forward_velocity": -3.9, "torso_height": 0.57, "torso_height_std": 0.06,
                "torso_pitch": 0.1}
    draft = OfflineEngineer("HalfCheetah-v5").final_program(_brief(measured), _winner(), None)
    assert draft is not None and draft.plan is not None
    weights = draft.plan["weights"]
    assert weights["speed_target"] == pytest.approx(-3.9)
    assert weights["height_target"] == pytest.approx(0.57)
    assert weights["bob_std"] == pytest.approx(0.06)
    assert draft.plan["terms"] == TERMS  # no lean term: the plan was judged with these terms
    assert {k: v for k, v in weights.items() if not k.endswith(("_target", "_std"))} == \
        {k: v for k, v in WEIGHTS.items() if not k.endswith(("_target", "_std"))}
    assert declared_clock_hz(draft.source) == 1.32
    assert "speed_target -2.5 -> -3.9" in draft.source.splitlines()[0]
    assert draft.summary is not None and "speed_target -2.5 -> -3.9" in draft.summary
    assert load_reward_program(draft.source, name="final").weights["speed_target"] == -3.9


def test_without_a_measurement_or_a_plan_the_winner_is_handed_out_as_it_is():
    engineer = OfflineEngineer("HalfCheetah-v5")
    assert engineer.final_program(_brief({}), _winner(), None) is None
    assert engineer.final_program(_brief({"forward_velocity": -2.5}), _winner(), None) is None
    assert engineer.final_program(_brief({"forward_velocity": -3.9}), _winner(plan=False), None) is None
    # random search never uses what the video measures
    assert RandomSearchEngineer("HalfCheetah-v5").final_program(
        _brief({"forward_velocity": -3.9}), _winner(), None) is None


def _feedback(learner_flight: float, expert_flight: float = 0.5):
    """The critic's feedback on the winner: only the time in the air differs."""
    from vid2reward.agent.engines.feature_critic import FeatureCritic
    expert = {"flight_fraction": expert_flight, "forward_speed": -4.0}
    learner = {"flight_fraction": learner_flight, "forward_speed": -4.0}
    return FeatureCritic().critique(expert, learner, feedback_id="fb", iteration=3,
                                    candidate_id="iter-001/cand-01")


def test_a_feature_whose_only_lever_the_calibration_pins_gets_a_term_of_its_own():
    """bob_std moves the bob and the time in the air; calibrated to the expert's bob it is no
    lever for the air time any more, and the critic still finds that far off."""
    engineer = OfflineEngineer("HalfCheetah-v5")
    brief = _brief({"torso_height_std": 0.06})
    brief.calibrated["torso_height_std"]["feature"] = "vertical_oscillation"
    draft = engineer.final_program(brief, _winner(), _feedback(0.0))
    assert draft is not None and draft.plan is not None
    assert draft.plan["terms"] == TERMS + ["flight"]  # flight, not bounce: it moves fewer features
    assert draft.plan["weights"]["flight"] == 1.0
    assert draft.plan["weights"]["bob_std"] == pytest.approx(0.06)
    assert "flight (weight 1) for flight_fraction" in draft.source.splitlines()[0]
    assert load_reward_program(draft.source, name="final").weights["flight"] == 1.0

    # less than two scales off (0.15 each): within the pixels' under-reading, nothing to add
    for closer in (0.40, 0.25):
        near = engineer.final_program(brief, _winner(), _feedback(closer))
        assert near is not None and near.plan is not None and "flight" not in near.plan["terms"]
    # bob_std not pinned (no bob calibrated): it is still a lever, the search's to step
    assert engineer.final_program(_brief({}), _winner(), _feedback(0.0)) is None
    # a feature the calibration reads is set by its target, never by an added term
    brief.calibrated["torso_height_std"]["feature"] = "flight_fraction"
    covered = engineer.final_program(brief, _winner(), _feedback(0.0))
    assert covered is not None and covered.plan is not None and "flight" not in covered.plan["terms"]
