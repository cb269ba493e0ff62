"""The bi-level search as a LangGraph state machine: wiring only.

    ingest_expert -> describe_expert -> draft_reward -> test_rewards
    test_rewards -> repair_rewards -> test_rewards          (a program failed its test; bounded)
    test_rewards -> train_candidates -> evaluate_candidates -> critique -> audit -> keep_best
    keep_best -> engineer -> test_rewards                   (next iteration)
    keep_best -> train_final -> write_best -> END           (budget, patience or iterations spent)

Nodes live in ``vid2reward.agent.nodes``; the two routers below are the only decisions here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from vid2reward.agent.context import RunContext
from vid2reward.agent.nodes import candidates, expert, final, finish, judge, programs
from vid2reward.agent.run_log import NodeFinished, NodeStarted
from vid2reward.agent.state import RunState

NodeFn = Callable[[RunState, RunContext], dict[str, Any]]


def route_after_test(state: RunState, max_repairs: int) -> Literal["repair_rewards", "train_candidates", "keep_best"]:
    """Back to the engineer while a program fails its test and repairs are left; then train
    what passed (or, when nothing passed, close the iteration)."""
    statuses = [c["status"] for c in state["candidates"]]
    if "rejected" in statuses and state.get("repairs", 0) < max_repairs:
        return "repair_rewards"
    return "train_candidates" if "tested" in statuses else "keep_best"


def route_after_iteration(state: RunState) -> Literal["engineer", "train_final"]:
    """Another iteration unless keep_best found a reason to stop."""
    return "train_final" if state.get("stop_reason") else "engineer"


def _instrumented(name: str, fn: NodeFn, ctx: RunContext) -> Callable[[RunState], dict[str, Any]]:
    """Run a node with its start/finish events, and add its time and LLM usage to the state."""

    def node(state: RunState) -> dict[str, Any]:
        iteration = state.get("iteration", 0)
        start = NodeStarted(node=name, iteration=iteration)
        ctx.emit(start)
        ctx.take_notes()
        started = time.monotonic()
        with ctx.inside(start):
            update = fn(state, ctx)
        seconds = time.monotonic() - started
        update["elapsed"] = state.get("elapsed", 0.0) + seconds
        if ctx.usage:
            usage = dict(state.get("usage", {}))
            for key, value in ctx.usage.items():
                usage[key] = usage.get(key, 0) + value
            update["usage"] = usage
            ctx.usage.clear()
        ctx.emit(NodeFinished(node=name, iteration=update.get("iteration", iteration),
                              seconds=round(seconds, 3), summary=ctx.take_notes(), parent=start.id))
        return update

    return node


def build_graph(ctx: RunContext, checkpointer: Any = None) -> Any:
    """Compile the run's graph; ``checkpointer`` makes it durable (SqliteSaver for runs)."""
    nodes: dict[str, NodeFn] = {
        "ingest_expert": expert.ingest_expert,
        "describe_expert": expert.describe_expert,
        "draft_reward": programs.draft_reward,
        "test_rewards": programs.test_rewards,
        "repair_rewards": programs.repair_rewards,
        "train_candidates": candidates.train_candidates,
        "evaluate_candidates": candidates.evaluate_candidates,
        "critique": judge.critique,
        "audit": judge.audit,
        "keep_best": judge.keep_best,
        "engineer": programs.engineer,
        "train_final": final.train_final,
        "write_best": finish.write_best,
    }
    graph: StateGraph[Any] = StateGraph(RunState)
    for name, fn in nodes.items():
        graph.add_node(name, _instrumented(name, fn, ctx))  # type: ignore[call-overload]  # stub overloads miss plain callables

    graph.add_edge(START, "ingest_expert")
    graph.add_edge("ingest_expert", "describe_expert")
    graph.add_edge("describe_expert", "draft_reward")
    graph.add_edge("draft_reward", "test_rewards")
    # A failing program goes back to the engineer with its report, a bounded number of times.
    graph.add_conditional_edges("test_rewards",
                                lambda s: route_after_test(s, ctx.config.max_repairs),
                                ["repair_rewards", "train_candidates", "keep_best"])
    graph.add_edge("repair_rewards", "test_rewards")
    # The inner loop: RL on each program, then the clip of what it learned.
    graph.add_edge("train_candidates", "evaluate_candidates")
    # Upper level: the critic judges the clips; the audit checks last iteration's predictions.
    graph.add_edge("evaluate_candidates", "critique")
    graph.add_edge("critique", "audit")
    graph.add_edge("audit", "keep_best")
    # Lower level: the engineer edits the reward, unless a budget says stop.
    graph.add_conditional_edges("keep_best", route_after_iteration, ["engineer", "train_final"])
    graph.add_edge("engineer", "test_rewards")
    # The winner's reward trains on (when final_steps > 0) before best/ is written.
    graph.add_edge("train_final", "write_best")
    graph.add_edge("write_best", END)

    interrupt = ["train_candidates"] if ctx.config.approve_rewards else None
    return graph.compile(checkpointer=checkpointer, interrupt_before=interrupt)
