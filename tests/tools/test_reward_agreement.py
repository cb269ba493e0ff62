"""The agreement check: a program scored on replayed rollouts, in the sandbox, before training."""

import numpy as np
import pytest

from vid2reward.sim.reward import load_reward_program
from vid2reward.sim.rollout import run_episodes
from vid2reward.tools.reward_agreement import (
    Rollout,
    check_agreement,
    random_rollouts,
    spearman,
)

FORWARD = """
import numpy as np

def compute_reward(s, a):
    return float(s.forward_velocity), {"forward": float(s.forward_velocity)}
"""
BACKWARD = FORWARD.replace("float(s.forward_velocity)", "-float(s.forward_velocity)")


def test_spearman_is_rank_correlation_with_tied_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)  # scipy's value
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, float("nan")], [1, 2]) is None


@pytest.fixture(scope="module")
def rollouts():
    """Six recorded Walker2d episodes; the 'critic' likes the ones that went furthest forward."""
    episodes = run_episodes("Walker2d-v5", None, episodes=6, seed=40, max_steps=120)
    travelled = [float(ep.samples["x_position"][-1] - ep.samples["x_position"][0]) for ep in episodes]
    return [Rollout(seed=40 + k, actions=ep.actions, similarity=travelled[k], label=f"ep {k}")
            for k, ep in enumerate(episodes)]


def test_replayed_returns_rank_like_the_critic_for_a_program_that_wants_the_same(rollouts):
    report = check_agreement(FORWARD, "forward", "Walker2d-v5", rollouts)
    # replay is exact: the summed forward velocity orders the episodes as their travel does
    assert report.verdict == "agrees" and report.agreement == pytest.approx(1.0)
    assert report.rollouts == 6 and len(report.returns) == 6
    assert "rank correlation +1.00" in report.evidence()


def test_replayed_returns_are_the_programs_own_step_by_step(rollouts):
    # the replay scores each rollout in one batch; its return must be the sum of the program's
    # step-by-step rewards on the recorded episode (each step's state and action, in order)
    mixed = FORWARD.replace("float(s.forward_velocity), {",
                            "float(s.forward_velocity) + 0.1 * float(a[0]) + 0.01 * s.step, {")
    report = check_agreement(mixed, "mixed", "Walker2d-v5", rollouts)
    program = load_reward_program(mixed, name="mixed")
    expected = []
    for r in rollouts:
        actions = iter(r.actions)
        (ep,) = run_episodes("Walker2d-v5", lambda obs, actions=actions: next(actions),
                             seed=r.seed, max_steps=len(r.actions), reward=program.compute)
        expected.append(ep.program_return)
    assert report.returns == pytest.approx(expected, abs=1e-3)


def test_a_program_that_wants_the_opposite_disagrees(rollouts):
    report = check_agreement(BACKWARD, "backward", "Walker2d-v5", rollouts)
    assert report.verdict == "disagrees" and report.agreement == pytest.approx(-1.0)


def test_a_broken_program_or_too_few_rollouts_gives_no_verdict(rollouts):
    broken = FORWARD.replace("return float", "return 1 / 0 + float")
    report = check_agreement(broken, "broken", "Walker2d-v5", rollouts)
    assert report.verdict == "unknown" and "ZeroDivisionError" in report.detail
    assert check_agreement(FORWARD, "f", "Walker2d-v5", rollouts[:2]).verdict == "unknown"


def test_random_rollouts_are_seeded_and_replayable():
    a = random_rollouts("Hopper-v5", 2, seed=5, max_steps=50)
    b = random_rollouts("Hopper-v5", 2, seed=5, max_steps=50)
    assert [r.seed for r in a] == [5, 6]
    assert all(np.array_equal(x.actions, y.actions) for x, y in zip(a, b, strict=True))
    assert all(r.similarity == 0.0 for r in a)
