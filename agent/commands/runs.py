"""``vid2reward runs [DIR]``: the runs in a folder side by side, one line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vid2reward.agent.run_list import COLUMNS, list_runs
from vid2reward.sim.errors import UserError


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "runs", help="list runs: env, engine, status, iterations, best similarity, evaluation",
        description="One line per run directory in DIR: id, env, engine and expert video, "
                    "status, iterations, best similarity (1.0 = the expert's measured "
                    "behaviour), the final policy's env return ± std and fall rate, and when it "
                    "started. A table "
                    "on a terminal, tab-separated lines otherwise. Curves: `tensorboard "
                    "--logdir DIR`.")
    p.add_argument("folder", type=Path, nargs="?", default=Path("runs"), metavar="DIR",
                   help="folder holding run directories (default runs/)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise UserError("no such folder", where=str(args.folder),
                        fix="pass the folder your runs are in (default runs/)")
    rows = list_runs(args.folder)
    out = Console()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    if not rows:
        Console(stderr=True).print(f"no runs in {args.folder}", highlight=False)
        return 0
    if not out.is_terminal:  # piped or redirected: plain lines for grep, cut and awk
        print("\t".join(COLUMNS))
        for row in rows:
            print("\t".join(row.cells()))
        return 0
    table = Table(title=f"runs in {args.folder}",
                  caption="similarity: 1.0 = the learner's measured behaviour matches the "
                          "expert's; curves: tensorboard --logdir " + str(args.folder))
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("iter", "best sim") else "left",
                         no_wrap=col != "engine · video", overflow="ellipsis")
    for row in rows:
        table.add_row(*row.cells(), style="red" if row.status == "unreadable" else None)
    out.print(table)
    return 0
