"""Check a reward before paying for it: does its return rank rollouts the way the critic does?

Training a program costs minutes; scoring it on rollouts the run already has costs a second.
The run keeps every evaluation episode of every candidate as (seed, actions): MuJoCo is
deterministic, so replaying the actions from the seeded reset reproduces the episode exactly,
and the program under test is run on each replayed state, in the same OS sandbox as a reward
test. Random-action rollouts join them as the "unlike the expert" end of the scale.

A program whose returns rank the rollouts against the critic's similarity (the expert-like
ones low, flailing high) rewards something the expert does not do: it is sent back before any
training (the verification step of VLM-CaR, applied to the whole reward).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.reward import RewardError, one_line
from vid2reward.sim.segment_reward import BatchReward, StateRecorder
from vid2reward.tools.reward_client import close_process
from vid2reward.tools.reward_isolation import require_isolation, trusted_by_user
from vid2reward.tools.reward_sandbox import (
    DEFAULT_LIMITS,
    SandboxLimits,
    load_sandboxed,
    run_in_sandbox,
)

DISAGREES_BELOW = -0.2
"""Rank correlation below which a program is said to disagree with the critic."""
MIN_ROLLOUTS = 5
"""Fewer rollouts than this give no verdict ("unknown")."""
RANDOM_SIMILARITY = 0.0
"""What a random-action rollout counts as: the far end of the critic's scale."""


@dataclass
class Rollout:
    """One rollout to score a program on: the seeded reset and the actions that replay it."""

    seed: int
    actions: np.ndarray
    similarity: float
    """The critic's similarity of this rollout to the expert."""
    label: str


@dataclass
class AgreementReport:
    """How a program's returns rank the rollouts against the critic's similarity."""

    agreement: float | None
    """Spearman rank correlation of return and similarity, -1..1 (None: no verdict)."""
    verdict: Literal["agrees", "disagrees", "unknown"]
    rollouts: int
    returns: list[float] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def evidence(self, top: int = 3) -> str:
        """The numbers for the engineer: the rollouts it pays most and what the critic thinks."""
        order = np.argsort(self.returns)[::-1][:top]
        paid = "; ".join(f"{self.labels[i]} (similarity {self.similarities[i]:.2f}) earns "
                         f"{self.returns[i]:.1f}" for i in order)
        return (f"its return ranks {self.rollouts} known rollouts against the critic's similarity "
                f"(rank correlation {self.agreement:+.2f}); it pays most for: {paid}")


def random_rollouts(env_id: str, count: int, seed: int, max_steps: int) -> list[Rollout]:
    """``count`` seeded uniform-random-action rollouts (actions drawn here, replayed anywhere)."""
    env = make_env(env_id, max_episode_steps=max_steps)
    out = []
    try:
        for k in range(count):
            env.reset(seed=seed + k)
            env.action_space.seed(seed + k)
            actions = []
            for _ in range(max_steps):
                action = env.action_space.sample()
                actions.append(action)
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            out.append(Rollout(seed=seed + k, actions=np.array(actions),
                               similarity=RANDOM_SIMILARITY, label=f"random actions #{k + 1}"))
    finally:
        env.close()
    return out


def check_agreement(source: str, name: str, env_id: str, rollouts: list[Rollout], *,
                    limits: SandboxLimits = DEFAULT_LIMITS,
                    trust: bool | None = None) -> AgreementReport:
    """Score ``source`` on every rollout in the sandbox and compare the ranking with the
    critic's. Never raises for the program's faults: a program that cannot run gets
    ``unknown`` with the reason (its reward test says more)."""
    get_spec(env_id)
    trust = trusted_by_user() if trust is None else trust
    require_isolation(trust)
    if len(rollouts) < MIN_ROLLOUTS:
        return AgreementReport(None, "unknown", len(rollouts),
                               detail=f"only {len(rollouts)} rollouts known")
    seeds = [r.seed for r in rollouts]
    actions = [np.asarray(r.actions) for r in rollouts]
    try:
        returns = run_in_sandbox(_returns_in_child, source, name, env_id, seeds, actions,
                                 limits, trust, limits=limits,
                                 what="reward agreement check")
    except RewardError as exc:
        return AgreementReport(None, "unknown", len(rollouts), detail=one_line(str(exc)))
    if isinstance(returns, str):
        return AgreementReport(None, "unknown", len(rollouts), detail=one_line(returns))
    values = [float(v) for v in returns][:len(rollouts)]
    sims = [r.similarity for r in rollouts]
    rho = spearman(values, sims)
    verdict: Literal["agrees", "disagrees", "unknown"]
    verdict = "unknown" if rho is None else ("disagrees" if rho < DISAGREES_BELOW else "agrees")
    return AgreementReport(None if rho is None else round(rho, 4), verdict, len(rollouts),
                           returns=[round(v, 4) for v in values], similarities=sims,
                           labels=[r.label for r in rollouts])


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either side is constant
    or any value is not finite."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    ra, rb = _ranks(a), _ranks(b)
    if np.std(ra) < 1e-12 or np.std(rb) < 1e-12:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size)
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _returns_in_child(source: str, name: str, env_id: str, seeds: list[int],
                      actions: list[np.ndarray], limits: SandboxLimits,
                      trust: bool) -> list[float] | str:
    """In the sandboxed child: each rollout's return under the program (or why it failed).

    The replay copies out the fields the program reads, step by step, as a training worker
    does (:class:`~vid2reward.sim.segment_reward.StateRecorder`), and the program scores a
    whole rollout in one message to its reward process: one round trip per rollout, not per
    step (a round trip costs more than most programs)."""
    base = make_env(env_id)  # trusted setup first: the isolated process cannot read model files
    # its own reward process, under the same limits
    program = load_sandboxed(source, name, limits.load_seconds, trust=trust, limits=limits)
    compute = program.compute
    assert isinstance(compute, BatchReward)  # a sandboxed program scores batches
    env = StateRecorder(base, list(compute.fields), env_id)
    returns = []
    try:
        for seed, acts in zip(seeds, actions, strict=True):
            env.reset(seed=seed)
            rows, taken = [], []
            for action in acts:
                _, _, terminated, truncated, info = env.step(action)
                rows.append(info["reward_row"])
                taken.append(action)
                if terminated or truncated:
                    break
            if not rows:
                returns.append(0.0)
                continue
            assert env.schema is not None  # set by the first step
            try:
                batch = compute.compute_rows(env.schema, np.stack(rows), np.stack(taken))
            except RewardError as exc:  # the program's own failure: its reward test says more
                return exc.what
            totals = batch.totals
            returns.append(float(totals[np.isfinite(totals)].sum()))
    finally:
        env.close()
        close_process(program)
    return returns
