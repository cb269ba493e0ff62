"""Write ``best/``: the best candidate's reward, policy and clip, and a summary of the run."""

from __future__ import annotations

from typing import Any

from vid2reward.agent.context import RunContext
from vid2reward.agent.state import RunState


def write_best(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Replace best/ with the best candidate (and its final training, when there is one) and
    a summary of the run."""
    best = state.get("best")
    summary: dict[str, Any] = {
        "run_id": ctx.run_id, "env_id": ctx.config.env_id, "engine": ctx.config.engine,
        "stop_reason": state.get("stop_reason"), "iterations": len(state.get("history", [])),
        "history": state.get("history", []), "best_candidate_id": best["id"] if best else None,
        "best_similarity": best.get("similarity") if best else None,
        "elapsed_seconds": round(state.get("elapsed", 0.0), 1), "usage": state.get("usage", {}),
    }
    ctx.record.write_best(best["id"] if best else None, summary)
    ctx.note(f"best/ from {summary['best_candidate_id']} (similarity {summary['best_similarity']})")
    return {}
