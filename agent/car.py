"""VLM-CaR (Venuto et al., 2024): a VLM writes verified sub-task checks; they are the reward.

1. The VLM sees the expert's contact sheet and the task words, splits the behaviour into
   sub-tasks and writes, per sub-task, ``completed(s)`` and ``progress(s)`` over the state view
   (prompts/car_system.txt, car_decompose.txt).
2. Each program is tested (static rules, then a sandboxed run on random and zero actions) and
   verified (tools/subtask_checks.py): its check must fire in at least
   :data:`MIN_EXPERT_RATE` of the episodes of the expert-like policies -- the best candidates,
   by video similarity, of a finished bi-level run on the same video -- and in at most
   :data:`MAX_RANDOM_RATE` of random-action episodes.
3. Rejected programs go back to the VLM with the evidence (the error, or both fire rates) for
   replacements (car_repair.txt), for a few rounds.
4. The verified programs become one dense reward program (sum over sub-tasks of
   ``(progress + completed) / 2``), which is trained like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from vid2reward.agent.config import RunConfig
from vid2reward.agent.prompts import render
from vid2reward.agent.run_record import RunRecord, write_json
from vid2reward.sim.errors import UserError

MIN_EXPERT_RATE = 0.5
"""A check must fire in at least this fraction of expert-like episodes..."""
MAX_RANDOM_RATE = 0.25
"""...and in at most this fraction of random-action episodes."""
MAX_SUBTASKS = 4
EXPERT_LIKE_POLICIES = 2
"""Best candidates of the bi-level run whose episodes count as expert-like."""


class SubtaskProgram(BaseModel):
    """One sub-task and its completion check."""

    name: str = Field(description="short name, e.g. 'upright posture'")
    description: str = Field(description="one sentence: what completes it")
    program: str = Field(description="Python source defining completed(s) and progress(s)")


class SubtaskPlan(BaseModel):
    """The VLM's answer: sub-tasks with their programs."""

    subtasks: list[SubtaskProgram] = Field(description="the sub-tasks, in the order done")


def expert_like_policies(run_dir: Path, env_id: str, count: int = EXPERT_LIKE_POLICIES) -> list[Path]:
    """The ``count`` best candidates (the run's own score: video similarity) that have a policy;
    ``run_dir`` may also be one policy directory (policy.zip: e.g. a ``vid2reward train --out``).

    Raises:
        UserError: not a run or policy directory, another env, or no trained candidate.
    """
    from vid2reward.agent.runner import load_run

    if (run_dir / "policy.zip").is_file():
        return [run_dir]
    record, config, _ = load_run(run_dir)
    if config.env_id != env_id:
        raise UserError(f"the expert-like run is of {config.env_id}, not {env_id}",
                        where=str(run_dir), fix="pass a bi-level run of the same env")
    ranked = []
    for cid in record.candidate_ids():
        if record.is_evaluated(cid) and record.has_policy(cid):
            ranked.append((record.score(cid, (record.evaluation(cid) or {}).get("similarity")), cid))
    if not ranked:
        raise UserError("the run has no evaluated candidate with a policy", where=str(run_dir),
                        fix="pass a bi-level run that finished at least one iteration")
    return [record.candidate_dir(cid) for _, cid in sorted(ranked, reverse=True)[:count]]


def _ask(client: Any, messages: list[BaseMessage], rounds: int = 2) -> tuple[SubtaskPlan, AIMessage]:
    for _ in range(rounds):
        answer = client.structured(messages, SubtaskPlan)
        if answer.value is not None and answer.value.subtasks:  # type: ignore[attr-defined]
            return answer.value, answer.raw  # type: ignore[return-value]
        error = answer.error or "the list of sub-tasks is empty"
        messages = [*messages, answer.raw,
                    HumanMessage(content=f"Your answer could not be used: {error}. Answer again "
                                         "with one JSON object {\"subtasks\": [...]}.")]
    raise UserError("the VLM gave no usable sub-task plan", where="--reward-source car",
                    fix="use a model that can answer in JSON (see --critic)")


def _test(name: str, program: str, env_id: str, trust: bool) -> str | None:
    """The reason a program cannot be used, or None."""
    from vid2reward.sim.reward import RewardError
    from vid2reward.tools.reward_runtime import run_reward_test
    from vid2reward.tools.subtask_checks import verification_program

    try:
        joined = verification_program([(name, program)])
    except RewardError as exc:
        return str(exc)
    report = run_reward_test(joined, env_id, name=name, random_steps=60, zero_steps=20,
                             trust=trust)
    return None if report.ok else (report.error or "the test failed")


def car_reward_program(config: RunConfig, opts: Any, record: RunRecord, *,
                       log: Callable[[str], None] = print,
                       client: Any = None) -> tuple[str, dict[str, Any]]:
    """Ask, test, verify and repair sub-task checks; return the dense reward program's source
    and a summary (kept and rejected sub-tasks with their fire rates)."""
    from vid2reward.agent.engines.llm_client import RoleClient, make_chat_model
    from vid2reward.agent.engines.llm_critic import image_block
    from vid2reward.sim import env_context
    from vid2reward.sim.envs import steps_for_seconds
    from vid2reward.tools.subtask_checks import dense_reward_program, fire_rates

    policies = expert_like_policies(Path(opts.car_expert_run), config.env_id)
    if client is None:
        model = str(config.critic or config.engineer)
        client = RoleClient("critic", model, make_chat_model(model, config.resolved_base_url(),
                                                             config.llm), config.llm)
    messages: list[BaseMessage] = [
        SystemMessage(content=render("car_system", env_context=env_context(config.env_id))),
        HumanMessage(content=[{"type": "text", "text": render(
            "car_decompose", task=config.task or "(none given)", max_subtasks=MAX_SUBTASKS)},
            image_block(record.expert_sheet)])]
    plan, raw = _ask(client, messages)
    pending = plan.subtasks[:MAX_SUBTASKS]
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    max_steps = steps_for_seconds(config.env_id, 4.0)
    rounds = 0
    for rounds in range(1, opts.car_rounds + 1):
        evidence = []
        runnable = []
        for sub in pending:
            problem = _test(sub.name, sub.program, config.env_id, config.trust_reward_code)
            if problem:
                evidence.append(f"- {sub.name}: the program cannot run: {problem}")
                rejected.append({**sub.model_dump(), "round": rounds, "reason": problem})
            else:
                runnable.append(sub)
        if runnable:
            rates = fire_rates([(s.name, s.program) for s in runnable], config.env_id, policies,
                               max_steps=max_steps, trust=config.trust_reward_code)
            for sub, comp in zip(runnable, rates.expert_like, strict=True):
                expert, random = rates.expert_like[comp], rates.random[comp]
                row = {**sub.model_dump(), "round": rounds, "expert_like_rate": expert,
                       "random_rate": random}
                if expert >= MIN_EXPERT_RATE and random <= MAX_RANDOM_RATE:
                    kept.append(row)
                else:
                    evidence.append(f"- {sub.name}: fired in {expert:.0%} of expert-like "
                                    f"episodes (needs >= {MIN_EXPERT_RATE:.0%}) and {random:.0%} "
                                    f"of random-action ones (needs <= {MAX_RANDOM_RATE:.0%})")
                    rejected.append({**row, "reason": "verification"})
        log(f"CaR round {rounds}: {len(kept)} check(s) kept, {len(evidence)} rejected")
        if not evidence or rounds == opts.car_rounds:
            break
        messages = [*messages, raw, HumanMessage(content=render(
            "car_repair", evidence="\n".join(evidence),
            kept=", ".join(k["name"] for k in kept) or "none"))]
        plan, raw = _ask(client, messages)
        pending = plan.subtasks[:MAX_SUBTASKS]
    summary = {"subtasks": kept, "rejected": rejected, "rounds": rounds,
               "expert_like_policies": [str(p) for p in policies]}
    write_json(record.expert_dir / "car_subtasks.json", summary)
    if not kept:
        raise UserError("no sub-task check passed verification", where=str(record.expert_dir / "car_subtasks.json"),
                        fix="try more --car-rounds, a stronger model, or more task words (--task)")
    return dense_reward_program([(k["name"], k["program"]) for k in kept]), \
        {"car": {"kept": [k["name"] for k in kept], "rejected": len(rejected), "rounds": rounds}}
