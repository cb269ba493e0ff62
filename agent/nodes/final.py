"""Train the winner again: the best candidate's reward, from scratch, for ``final_steps``
steps, so that ``best/`` holds a policy that has learned the behaviour, not one stopped at a
candidate's short search budget.

Search candidates are trained briefly (their job is to rank rewards); a policy a user wants to
keep needs more. The final training starts from a fresh policy rather than the candidate's, so
it also verifies what the run hands out: the reward itself, trained from nothing, must produce
the behaviour (a warm start could carry a lucky candidate's policy past a reward that does not
teach it). It is measured honestly, as ``evaluate`` measures a policy (tools/policy_evaluation.py:
the same seeded full-length episodes, falls with their interval, the gait of a body with human
legs), so the run's summary and ``evaluate`` of best/ show the same numbers. The
engineer may first bring the winner up to date with what the run measured after it was
written (the offline engineer: the last calibration's targets, and a term for a feature those
targets leave without a lever; see ``Engineer.final_program``);
final/reward.py is the program trained, and best/ hands it out with its policy. An update is
verified: if its policy falls, the winner's own program is trained the same way (in
``final/winner/``) and whichever falls in fewer episodes is handed out — calibrated targets can
ask a body for more than it learns to do upright in the final budget (a hopper asked to hop
faster folds), and a fall is what a user can least use. Its output lives in ``final/``;
``final/train_key.json``, written last, marks it complete, so a resumed run never trains it
twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vid2reward.agent.context import RunContext
from vid2reward.agent.nodes.programs import brief
from vid2reward.agent.state import RunState
from vid2reward.sim.envs import get_spec, steps_for_seconds
from vid2reward.sim.falls import describe_falls
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.render import write_clip_and_sheet
from vid2reward.sim.reward import RewardProgram
from vid2reward.sim.rollout import load_policy, run_episodes
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.sim.train import ProgressFn, TrainConfig
from vid2reward.tools.gait_comparison import cadence_text, compare_with_person
from vid2reward.tools.policy_evaluation import evaluate_for_user
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed


def final_config(ctx: RunContext) -> TrainConfig:
    """The final training's settings: the env's preset, from scratch."""
    cfg = ctx.config
    overrides = {} if cfg.n_envs is None else {"n_envs": cfg.n_envs}
    return TrainConfig.for_env(cfg.env_id, total_steps=cfg.final_steps, seed=cfg.seed,
                               n_workers=cfg.n_workers, **overrides)


def train_final(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Train the best candidate's reward from scratch; write ``final/``."""
    best = state.get("best")
    if best is None or ctx.config.final_steps <= 0:
        return {}
    record = ctx.record
    config = final_config(ctx)
    program, update = final_program(state, ctx, best["id"])
    key = json.loads(json.dumps({"candidate": best["id"], "reward_sha256": program.sha256,
                                 **config.cache_key()}))
    if record.final_done(key):
        ctx.note(f"final training of {best['id']} already done")
        return {}
    ctx.stop.check()  # a safe point: nothing of the final training exists yet
    result = train_sandboxed(config, program, record.final_dir,
                             on_progress=_progress_as(ctx, "final"))
    if result.status == "failed":
        ctx.note(f"final training failed: {result.metrics['failure']}; best/ keeps the candidate")
        return {}
    evaluation = _render_and_measure(ctx, record.final_dir)
    summary: dict[str, Any] = {"candidate": best["id"], "steps": result.metrics["steps"],
                               "wall_seconds": result.metrics["wall_seconds"],
                               "evaluation": evaluation, **({"updated": update} if update else {})}
    if update and evaluation["fall_rate"] > 0:
        summary = _verify_update(ctx, config, best["id"], summary)
    record.write_final(summary, key)
    ev = summary["evaluation"]
    ctx.note(f"final training of {best['id']}'s reward{' (updated)' if 'updated' in summary else ''} "
             f"from scratch: {summary['steps']:,} steps; "
             + describe_falls(ev["fall_rate"], ev["episodes"], ev.get("fall_seconds") or [])
             + (f", {cadence}" if (cadence := cadence_text(ev.get("metrics") or {})) else ""))
    return {}


def _progress_as(ctx: RunContext, label: str) -> ProgressFn | None:
    """The run's progress callback for a training shown as ``label`` (None: no display)."""
    progress = ctx.progress
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)


def handed_out(update: dict[str, Any], winner: dict[str, Any]) -> str:
    """Which final policy a run hands out, from two evaluations: the one that falls in fewer
    episodes; on a tie the update (it carries what the run measured last)."""
    return "winner" if winner["fall_rate"] < update["fall_rate"] else "update"


def _verify_update(ctx: RunContext, config: TrainConfig, winner: str,
                   summary: dict[str, Any]) -> dict[str, Any]:
    """Train the winner's own program as well (``final/winner/``) and hand out whichever of the
    two falls less; the other's files stay beside it (``final/update/`` or ``final/winner/``).
    Returns the final summary of the one handed out, with both evaluations."""
    record = ctx.record
    own_dir = record.final_winner_dir  # inside final/, which the update's training replaced
    ev = summary["evaluation"]
    ctx.note(f"the updated reward's policy {describe_falls(ev['fall_rate'], ev['episodes'], ev.get('fall_seconds') or [])}; "
             f"training {winner}'s own reward to compare")
    result = train_sandboxed(config, sandboxed_program(record.program_path(winner)), own_dir,
                             on_progress=_progress_as(ctx, "final check"))
    if result.status == "failed":
        ctx.note(f"the winner's own reward failed to train: {result.metrics['failure']}")
        return summary
    own = _render_and_measure(ctx, own_dir)
    choice = handed_out(summary["evaluation"], own)
    verification = {"update": _brief_evaluation(summary["evaluation"]),
                    "winner": _brief_evaluation(own), "handed_out": choice,
                    "update_program": summary.get("updated")}
    if choice == "update":
        return {**summary, "verification": verification}
    record.hand_out_final_winner()  # the winner's own program falls less
    return {"candidate": winner, "steps": result.metrics["steps"],
            "wall_seconds": summary["wall_seconds"] + result.metrics["wall_seconds"],
            "evaluation": own, "verification": verification}


def _brief_evaluation(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the verification compares, for final.json and the trace."""
    return {k: evaluation[k] for k in ("fall_rate", "fall_seconds", "episodes", "length_mean",
                                       "env_return_mean") if k in evaluation}


def final_program(state: RunState, ctx: RunContext, winner: str) -> tuple[RewardProgram, str | None]:
    """The program the final training trains: the engineer's update of the winner, or the
    winner's own; and the update's summary (None: the winner as it is)."""
    view = ctx.record.candidate_view(winner)
    draft = ctx.engineer.final_program(brief(state, ctx, state.get("iteration", view.iteration)),
                                       view, ctx.record.feedback(winner))
    if draft is None:
        return sandboxed_program(ctx.record.program_path(winner)), None
    return (sandboxed_program(draft.source, name="final/reward.py"),
            draft.summary or "the engineer's update of the winner")


def _render_and_measure(ctx: RunContext, directory: Path) -> dict[str, Any]:
    """A final policy's clip and sheet (like a candidate's: the first evaluation episode's first
    ``clip_seconds``), its state metrics, and the evaluation ``evaluate`` makes of a policy
    (:func:`evaluate_for_user`'s defaults) with its gait beside the person's in the expert
    video, if any (``person``: tools/gait_comparison.py); ``directory`` holds the policy."""
    cfg = ctx.config
    policy = load_policy(directory, cfg.env_id)
    shown = run_episodes(cfg.env_id, policy, episodes=1, seed=EVALUATION_SEED,
                         max_steps=steps_for_seconds(cfg.env_id, cfg.clip_seconds),
                         render_size=cfg.render_size)
    ep = shown[0]
    write_clip_and_sheet(ep.frames, ep.fps, directory / "clip.mp4", directory / "sheet.png")
    ctx.record.write_final_state_metrics(directory, behaviour_metrics(shown).to_dict())
    evaluation = evaluate_for_user(cfg.env_id, policy).to_dict()
    person = compare_with_person(evaluation, ctx.record.expert_measured(),
                                 get_spec(cfg.env_id).body_length)
    return {**evaluation, **({"person": [row.to_dict() for row in person]} if person else {})}
