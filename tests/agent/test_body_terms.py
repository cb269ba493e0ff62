"""Terms fit the body: the draft, the search's added terms, the final program's added term and
random search use only library terms that fit the body (agent/engines/body_terms.py), on every
registered env."""

from pathlib import Path

import pytest

from vid2reward.agent.engines.base import CandidateView, EngineerBrief
from vid2reward.agent.engines.body_terms import (
    AIRTIME,
    ALIVE,
    BODY_TERMS,
    EVERY_BODY,
    HUMAN_LEGS,
    IN_3D,
    body_terms,
    fits_body,
)
from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.agent.engines.numeric_engineer import NumericEngineer, Observation
from vid2reward.agent.engines.offline import OfflineEngineer
from vid2reward.agent.engines.random_search import RandomSearchEngineer
from vid2reward.agent.engines.reward_terms import TERMS, default_params, write_program
from vid2reward.sim.envs import ENV_SPECS, get_spec
from vid2reward.sim.state import gait_joints

ENVS = sorted(ENV_SPECS)


def test_every_env_has_a_row_and_every_term_a_group():
    assert {get_spec(e).short_name for e in ENVS} <= set(BODY_TERMS)
    assert EVERY_BODY | ALIVE | IN_3D | AIRTIME | HUMAN_LEGS == set(TERMS)
    with pytest.raises(KeyError):
        fits_body("no-such-term", get_spec("Ant-v5"))


@pytest.mark.parametrize("env_id", ENVS)
def test_the_table_agrees_with_what_the_body_is(env_id):
    spec = get_spec(env_id)
    assert fits_body("alive", spec) == spec.ends_on_fall  # a health test to stay alive for
    assert all(fits_body(t, spec) != spec.planar for t in IN_3D)  # y and yaw are 0 in a plane
    assert all(fits_body(t, spec) == bool(gait_joints(env_id)) for t in HUMAN_LEGS)
    assert all(fits_body(t, spec) for t in EVERY_BODY)


def test_no_airtime_term_for_the_quadruped_and_one_for_every_other_body():
    assert not AIRTIME & body_terms(get_spec("Ant-v5"))
    assert all(AIRTIME <= body_terms(get_spec(e)) for e in ENVS if e != "Ant-v5")


# The critic finds everything far off: each delta asks for a term if nothing moves it.
EXPERT = {"forward_speed": 1.0, "depth_speed": 1.0, "turning_rate": 0.5, "cadence_hz": 1.5,
          "vertical_oscillation": 0.05, "flight_fraction": 0.5, "tilt_deg": 10.0,
          "pose_cadence_hz": 1.8, "pose_knee_max_deg": 60.0, "pose_lr_phase_deg": 180.0,
          "height_ratio": 0.9}
LEARNER = {"forward_speed": 0.0, "depth_speed": 0.0, "turning_rate": 0.0, "cadence_hz": 4.0,
           "vertical_oscillation": 0.0, "flight_fraction": 0.0, "tilt_deg": 40.0,
           "pose_cadence_hz": 0.5, "pose_knee_max_deg": 5.0, "pose_lr_phase_deg": 0.0,
           "height_ratio": 0.3}


@pytest.mark.parametrize("env_id", ENVS)
def test_the_draft_and_the_search_add_only_terms_that_fit(env_id):
    spec = get_spec(env_id)
    engineer = NumericEngineer(spec)
    draft = engineer.draft(EXPERT, 3)
    for plan in draft.candidates:
        assert set(plan.terms) <= body_terms(spec), set(plan.terms) - body_terms(spec)
    feedback = FeatureCritic().critique(EXPERT, LEARNER, feedback_id="fb", iteration=1,
                                        candidate_id="iter-001/cand-00")
    observations = [Observation("iter-001/cand-00", 1, draft.candidates[0], LEARNER, 0.1)]
    proposal = engineer.propose(observations, feedback, 2, 3, [0.1])
    added = {e.component for e in proposal.edits if e.op == "add"}
    assert added and added <= body_terms(spec), added - body_terms(spec)
    for plan in proposal.candidates:
        assert set(plan.terms) <= body_terms(spec)


@pytest.mark.parametrize("env_id", ENVS)
def test_random_search_draws_only_terms_that_fit(env_id):
    spec = get_spec(env_id)
    answer = RandomSearchEngineer(env_id).propose(_brief(env_id, {}), None, [])
    for program in answer.programs:
        assert program.plan is not None
        assert set(program.plan["terms"]) <= body_terms(spec)


WINNER_TERMS = ["speed", "height", "ctrl", "bob_clock"]
WINNER_WEIGHTS = {**default_params(WINNER_TERMS), "speed_target": 1.0, "height_target": 0.6,
                  "gait_clock_hz": 1.5, "bob_std": 0.03}


def _brief(env_id, calibrated) -> EngineerBrief:
    return EngineerBrief(env_id=env_id, env_context="", task="", candidates=3, iteration=3,
                         expert=None, calibrated=calibrated)


@pytest.mark.parametrize("env_id", ENVS)
def test_the_final_program_adds_a_flight_term_only_where_it_fits(env_id):
    """issue 38: the winner's only lever for the time in the air (bob_std) is pinned to the
    expert's bob by the calibration, the critic finds the learner grounded: HalfCheetah gets a
    flight term (the case the rule is for), the Ant none, nor bounce in its place."""
    winner = CandidateView(id="iter-001/cand-01", iteration=1, directory=Path("."),
                           source=write_program(WINNER_TERMS, WINNER_WEIGHTS, "winner"),
                           metrics={}, plan={"terms": WINNER_TERMS, "weights": WINNER_WEIGHTS})
    feedback = FeatureCritic().critique({"flight_fraction": 0.5, "forward_speed": 1.0},
                                        {"flight_fraction": 0.0, "forward_speed": 1.0},
                                        feedback_id="fb", iteration=3, candidate_id=winner.id)
    calibrated = {"torso_height_std": {"value": 0.06, "feature": "vertical_oscillation"}}
    draft = OfflineEngineer(env_id).final_program(_brief(env_id, calibrated), winner, feedback)
    assert draft is not None and draft.plan is not None  # the bob target is set either way
    added = set(draft.plan["terms"]) - set(WINNER_TERMS)
    if env_id == "Ant-v5":
        assert added == set() and "flight" not in draft.source.splitlines()[0]
    else:
        assert added == {"flight"}
        assert "flight (weight 1) for flight_fraction" in draft.source.splitlines()[0]


@pytest.mark.parametrize("env_id", ENVS)
def test_a_calibrated_sideways_speed_adds_a_sideways_term_only_in_3d(env_id):
    spec = get_spec(env_id)
    engineer = NumericEngineer(spec)
    centre = engineer.draft({"forward_speed": 1.0}, 1).candidates[0]
    feedback = FeatureCritic().critique({"forward_speed": 1.0}, {"forward_speed": 0.5},
                                        feedback_id="fb", iteration=1, candidate_id="c")
    proposal = engineer.propose([Observation("c", 1, centre, {"forward_speed": 0.5}, 0.1)],
                                feedback, 2, 1, [0.1], calibrated={"lateral_velocity": 1.0})
    assert ("sideways" in proposal.candidates[0].terms) == (not spec.planar)
