"""WEIGHTS perturbations: the LLM iteration's extra candidates."""

from vid2reward.agent.engines.weight_variants import weight_variants, with_weights
from vid2reward.tools.reward_check import check_reward_source, static_weights

SOURCE = '''"""Ünïcode before the literal moves byte offsets."""
WEIGHTS = {"a": 1.0,   # first
           "b": 0.0, "c": -2.0}


def compute_reward(s, a):
    return WEIGHTS["a"], {"a": WEIGHTS["a"]}
'''


def test_variants_scale_one_nonzero_weight_each():
    variants = weight_variants(SOURCE, 4, prefer=["c"])
    assert [scaled for _, scaled in variants] == [{"c": 1.5}, {"a": 1.5}, {"c": 0.6667}, {"a": 0.6667}]
    for source, scaled in variants:
        check_reward_source(source)
        (name, factor), = scaled.items()
        weights = static_weights(source)
        assert weights[name] == static_weights(SOURCE)[name] * factor or abs(
            weights[name] - static_weights(SOURCE)[name] * factor) < 1e-4
        assert weights["b"] == 0.0 and source.endswith(SOURCE.split("}\n", 1)[1])


def test_no_weights_no_variants():
    plain = "def compute_reward(s, a):\n    return 1.0, {}\n"
    assert weight_variants(plain, 3) == []
    assert with_weights(SOURCE, {"a": 2.0}).count("WEIGHTS = {\"a\": 2.0}") == 1
