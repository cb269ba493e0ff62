"""``vid2reward export RUN_DIR --out DIR``: a run's learned reward, ready to use elsewhere.

DIR gets reward.py, the best policy (policy.zip, vecnormalize.pkl, metrics.json), its clip
and sheet when present, evaluation.json (a fresh ``evaluate`` of the policy) and a README.md
with the exact env and reward contract. It is built in a hidden sibling directory and renamed
into place, so DIR is either complete or absent; an existing non-empty DIR is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from rich.console import Console

from vid2reward.agent.commands.evaluate import evaluate_directory
from vid2reward.agent.output_dir import make_dirs, remove_created
from vid2reward.agent.reward_contract import contract_readme
from vid2reward.agent.run_record import RunRecord, read_json, write_json
from vid2reward.sim.errors import UserError
from vid2reward.sim.evaluation import EVALUATION_EPISODES
from vid2reward.sim.seeds import EVALUATION_SEED
from vid2reward.tools.reward_isolation import set_trust

EXPORTED_FILES = ("reward.py", "policy.zip", "vecnormalize.pkl", "metrics.json", "clip.mp4",
                  "sheet.png")
"""What is copied from the run's best/ (the first four must be there)."""


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "export", help="write a run's reward, policy, contract README and evaluation to a folder",
        description="Copy a run's best reward program and policy to a new folder with a "
                    "README.md stating the exact env and reward contract (env id and versions, "
                    "observation, action, termination, the state-view fields the program reads) "
                    "and evaluation.json (the policy evaluated afresh). Refuses a non-empty --out.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory")
    p.add_argument("--out", required=True, type=Path, help="a new or empty directory")
    p.add_argument("--episodes", type=int, default=EVALUATION_EPISODES,
                   help=f"episodes of the evaluation (default {EVALUATION_EPISODES}, as "
                        "`evaluate` and a run's final check)")
    p.add_argument("--seed", type=int, default=EVALUATION_SEED,
                   help=f"seed of the first episode (default {EVALUATION_SEED}, as `evaluate`)")
    p.add_argument("--trust-reward-code", action="store_true",
                   help="run the reward program even where the OS cannot isolate it; only for "
                        "code you trust")
    p.set_defaults(func=run)


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that exists and is not an empty directory (one line)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError("--out exists and is not empty; export never overwrites", where=str(out),
                        fix="choose a new directory")


def run(args: argparse.Namespace) -> int:
    set_trust(args.trust_reward_code)
    record = RunRecord(args.run_dir)
    if not record.is_run():
        raise UserError("not a run directory (no run.json)", where=str(args.run_dir),
                        fix="pass runs/<id>; `vid2reward runs` lists them")
    best = record.best_dir
    missing = [n for n in EXPORTED_FILES[:4] if not (best / n).is_file()]
    if missing:
        raise UserError(f"the run has no finished best/ ({', '.join(missing)} missing)",
                        where=str(best), fix="export a finished run, or resume this one")
    check_out(args.out)
    created = make_dirs(args.out.parent, where=args.out)
    tmp = args.out.parent / f".{args.out.name}.partial-{os.getpid()}"
    console = Console(stderr=True)
    try:
        tmp.mkdir()
        for name in EXPORTED_FILES:
            if (best / name).is_file():
                shutil.copy2(best / name, tmp / name)
        with console.status(f"evaluating the policy over {args.episodes} episodes"):
            result = evaluate_directory(best, episodes=args.episodes, seed=args.seed,
                                        trust=args.trust_reward_code)
        evaluation = result.to_dict()
        evaluation["policy"].update(path=".", reward="reward.py")
        write_json(tmp / "evaluation.json", evaluation)
        (tmp / "README.md").write_text(_readme(record, evaluation, tmp), encoding="utf-8")
        check_out(args.out)  # still free after the evaluation's minutes?
        os.rename(tmp, args.out)  # replaces an empty directory; atomic on one file system
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_created(created)
        raise
    console.print(f"exported {record.root.name}: {result.evaluation.summary()}", highlight=False)
    print(args.out)
    return 0


def _readme(record: RunRecord, evaluation: dict, folder: Path) -> str:
    info = record.read_info()
    summary = record.best_summary() or {}
    metrics = read_json(folder / "metrics.json")
    final = summary.get("final_training") or {}
    best = {"candidate": summary.get("best_candidate_id"),
            "similarity": summary.get("best_similarity"),
            "final_steps": final.get("steps"), "clip": (folder / "clip.mp4").is_file()}
    return contract_readme(run_id=str(info.get("run_id", record.root.name)),
                           env_id=record.config().env_id, versions=info.get("versions", {}),
                           source=(folder / "reward.py").read_text(encoding="utf-8"),
                           weights=metrics.get("weights") or {},
                           components=sorted(metrics.get("components") or {}),
                           evaluation=evaluation, best=best)
