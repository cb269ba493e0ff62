"""The offline critic's sentences say which way the learner differs, per the feature's definition."""

from vid2reward.agent.engines.feature_critic import FeatureCritic
from vid2reward.tools.feature_definitions import FEATURE_DEFINITIONS


def problems(expert: dict[str, float], learner: dict[str, float]) -> str:
    fb = FeatureCritic().critique(expert, learner, feedback_id="fb", iteration=1, candidate_id="c")
    return " ".join(fb.problems)


def test_a_wider_learner_is_called_flat_and_a_narrower_one_narrow():
    # aspect_ratio is width / height: a learner with a larger one is wider than the expert.
    assert FEATURE_DEFINITIONS["aspect_ratio"].unit == "width/height"
    wider = problems({"aspect_ratio": 0.5}, {"aspect_ratio": 1.5})
    assert "too flat (wide for its height)" in wider and "narrow" not in wider
    narrower = problems({"aspect_ratio": 1.5}, {"aspect_ratio": 0.5})
    assert "too narrow (tall for its width)" in narrower and "flat" not in narrower


def test_every_phrase_pair_reads_low_then_high():
    assert problems({"forward_speed": 1.0}, {"forward_speed": 0.0}).count("too slowly") == 1
    assert "leans too far forward" in problems({"tilt_deg": 0.0}, {"tilt_deg": 20.0})
