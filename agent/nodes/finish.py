"""Write ``best/``: the best candidate's reward, policy and clip, and a summary of the run."""

from __future__ import annotations

import shutil
from typing import Any

from vid2reward.agent.context import RunContext
from vid2reward.agent.run_dir import read_json, write_json
from vid2reward.agent.state import RunState

BEST_FILES = ("reward.py", "policy.zip", "vecnormalize.pkl", "clip.mp4", "sheet.png",
              "metrics.json", "evaluation.json", "feedback.json", "state_metrics.json")
FINAL_FILES = ("policy.zip", "vecnormalize.pkl", "clip.mp4", "sheet.png", "metrics.json",
               "state_metrics.json")
"""What the final training (nodes/final.py) replaces in ``best/``: the policy and what shows it.
evaluation.json and feedback.json stay the critic's view of the search candidate."""


def write_best(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Copy the best candidate into ``best/`` (replacing an older one) with summary.json."""
    best = state.get("best")
    out = ctx.paths.best
    tmp = out.with_name(".best.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summary: dict[str, Any] = {
        "run_id": ctx.run_id, "env_id": ctx.config.env_id, "engine": ctx.config.engine,
        "stop_reason": state.get("stop_reason"), "iterations": len(state.get("history", [])),
        "history": state.get("history", []), "best_candidate_id": best["id"] if best else None,
        "best_similarity": best.get("similarity") if best else None,
        "elapsed_seconds": round(state.get("elapsed", 0.0), 1), "usage": state.get("usage", {}),
    }
    if best is not None:
        src = ctx.paths.candidate(best["id"])
        for name in BEST_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        final = ctx.paths.root / "final"
        key = final / "train_key.json"
        if key.is_file() and read_json(key).get("candidate") == best["id"]:
            for name in FINAL_FILES:
                if (final / name).is_file():
                    shutil.copy2(final / name, tmp / name)
            summary["final_training"] = read_json(final / "final.json")
        if (tmp / "state_metrics.json").is_file():
            summary["best_state_metrics"] = read_json(tmp / "state_metrics.json")
    write_json(tmp / "summary.json", summary)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    ctx.note(f"best/ from {summary['best_candidate_id']} (similarity {summary['best_similarity']})")
    return {}
