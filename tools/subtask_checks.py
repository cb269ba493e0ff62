"""VLM-CaR's sub-task programs: checking, verifying on rollouts, and joining into one reward.

A sub-task program is untrusted code (an LLM wrote it) with two functions of the state view::

    def completed(s):   # True once the sub-task is done, at this state
    def progress(s):    # 0..1, rising as the body gets closer to completing it

:func:`subtask_module` renames a program's top-level names with a per-sub-task prefix so that
several can live in one module; :func:`verification_program` joins them into a reward program
whose components are 1.0 on the steps where each check fires, and :func:`dense_reward_program`
into the dense reward trained on (per sub-task ``weight * (progress + completed) / 2``).

:func:`fire_rates` runs the verification program in the reward sandbox (a
:class:`~vid2reward.tools.reward_env.SandboxedRewardEnv`: isolated worker, limits) on episodes of
expert-like policies and of uniform random actions, and reports per sub-task the fraction of
episodes in which its check fired at least once. Verification (Venuto et al.): a check must
fire on expert-like episodes and rarely on random ones.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError

REQUIRED = ("completed", "progress")
"""Functions every sub-task program defines."""


def component_name(name: str) -> str:
    """A sub-task's name as a component and identifier: lower-case words joined by _."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return ("_".join(words) or "subtask")[:40]


def subtask_module(source: str, prefix: str) -> str:
    """``source`` with its imports dropped (the joined module imports math and numpy as np)
    and every top-level function or variable ``f`` renamed ``{prefix}f``, uses included.

    Raises:
        RewardError: the source does not parse, or lacks ``completed`` or ``progress``.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RewardError(f"syntax error on line {exc.lineno}: {exc.msg}",
                          fix="write the check as valid Python (math and numpy only)") from None
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    missing = [f for f in REQUIRED if f not in names]
    if missing:
        raise RewardError(f"the program defines no {' or '.join(missing)}(s)",
                          fix="define completed(s) -> bool and progress(s) -> float in [0, 1]")

    class Rename(ast.NodeTransformer):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            if node.name in names:
                node.name = prefix + node.name
            self.generic_visit(node)
            return node

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in names:
                node.id = prefix + node.id
            return node

    body = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    renamed = Rename().visit(ast.Module(body=body, type_ignores=[]))
    return ast.unparse(ast.fix_missing_locations(renamed))


def _joined(programs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    names, parts = [], ["import math", "import numpy as np", ""]
    for i, (name, source) in enumerate(programs):
        comp = component_name(name)
        if comp in names:
            comp = f"{comp}_{i}"
        names.append(comp)
        parts += [f"# sub-task {i}: {name}", subtask_module(source, f"st{i}_"), ""]
    return names, parts


def verification_program(programs: Sequence[tuple[str, str]]) -> str:
    """A reward program whose component ``<sub-task>`` is 1.0 on steps where its
    ``completed`` fires (0.0 otherwise); the total is their sum. ``programs``: (name, source)."""
    names, parts = _joined(programs)
    parts.append("def compute_reward(s, a):")
    parts.append("    fired = {}")
    for i, comp in enumerate(names):
        parts.append(f"    fired[{comp!r}] = 1.0 if st{i}_completed(s) else 0.0")
    parts.append("    return float(sum(fired.values())), fired")
    return "\n".join(parts) + "\n"


def dense_reward_program(programs: Sequence[tuple[str, str]]) -> str:
    """The reward trained on: per sub-task ``WEIGHTS[name] * (clip(progress, 0, 1) +
    completed) / 2``, summed."""
    names, parts = _joined(programs)
    weights = ", ".join(f"{c!r}: 1.0" for c in names)
    parts = [parts[0], parts[1], "", f"WEIGHTS = {{{weights}}}", "", *parts[2:]]
    parts.append("def compute_reward(s, a):")
    parts.append("    terms = {}")
    for i, comp in enumerate(names):
        parts.append(f"    terms[{comp!r}] = WEIGHTS[{comp!r}] * 0.5 * ("
                     f"float(np.clip(st{i}_progress(s), 0.0, 1.0)) + "
                     f"(1.0 if st{i}_completed(s) else 0.0))")
    parts.append("    return float(sum(terms.values())), terms")
    return "\n".join(parts) + "\n"


@dataclass
class FireRates:
    """Per sub-task component: fraction of episodes where the check fired at least once."""

    expert_like: dict[str, float]
    random: dict[str, float]
    episodes: tuple[int, int]
    """(expert-like, random) episodes measured."""


def fire_rates(programs: Sequence[tuple[str, str]], env_id: str, policy_dirs: Sequence[Path], *,
               episodes: int = 2, random_episodes: int = 4, max_steps: int = 250,
               seed: int = 4000, trust: bool | None = None) -> FireRates:
    """Run the checks, sandboxed, on episodes of each expert-like policy and of random actions.

    Raises:
        RewardError: a check raised or returned something that is not a truth value.
    """
    from vid2reward.sim.rollout import LoadedPolicy, load_policy
    from vid2reward.tools.reward_env import SandboxedRewardEnv

    if not policy_dirs:
        raise UserError("no expert-like policies to verify the sub-task checks on", where="--car-expert-run",
                        fix="give --car-expert-run a finished bilevel run of the same video")
    source = verification_program(programs)
    names, _ = _joined(programs)
    envs: dict[float | None, SandboxedRewardEnv] = {}

    def env_for(clock: float | None) -> SandboxedRewardEnv:
        # a policy trained with a gait clock acts on observations that carry it
        if clock not in envs:
            envs[clock] = SandboxedRewardEnv(env_id, source, max_episode_steps=max_steps,
                                             trust_reward_code=trust, gait_clock_hz=clock)
        return envs[clock]

    try:
        def measure(policy: LoadedPolicy | None, n: int, first_seed: int) -> dict[str, float]:
            env = env_for(policy.gait_clock_hz if policy else None)
            fired = dict.fromkeys(names, 0)
            for ep in range(n):
                obs, _ = env.reset(seed=first_seed + ep)
                env.action_space.seed(first_seed + ep)
                while True:
                    action = env.action_space.sample() if policy is None else policy.act(obs)
                    obs, _, terminated, truncated, info = env.step(action)
                    if terminated or truncated:
                        sums = info.get("episode_components", {})
                        for name in names:
                            fired[name] += float(sums.get(name, 0.0)) > 0
                        break
            return {k: v / n for k, v in fired.items()}

        expert = [measure(load_policy(d, env_id), episodes, seed) for d in policy_dirs]
        expert_like = {k: float(np.mean([e[k] for e in expert])) for k in names}
        random = measure(None, random_episodes, seed + 100)
    finally:
        for env in envs.values():
            env.close()
    return FireRates(expert_like, random, (episodes * len(policy_dirs), random_episodes))
