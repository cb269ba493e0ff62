"""``vid2reward trace RUN_DIR``: show what a run did, from its run directory alone.

Reads events.jsonl through ``read_events`` and the files the layout names (never the graph or
the runner), folds them into a RunTrace and renders it: to the terminal (default), following a
run in progress (``--follow``), as a static HTML page (``--export html``) or as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from vid2reward.agent.run_log import EVENTS_FILE
from vid2reward.agent.trace.html import export_html
from vid2reward.agent.trace.load import load_trace
from vid2reward.agent.trace.model import RunTrace
from vid2reward.agent.trace.view import render_live, render_trace
from vid2reward.sim.errors import UserError

EXIT_INTERRUPTED = 130


def register(verbs: argparse._SubParsersAction) -> None:
    """Add the ``trace`` verb."""
    p = verbs.add_parser(
        "trace", help="show a run: timeline, chain rule, reward diffs, candidates, costs",
        description="Show a run from its directory: a timeline of iterations -> nodes -> "
                    "messages and tool calls; per iteration the candidates, the critic's verdict, "
                    "the chain rule (behaviour delta -> reward edit -> audit outcome) and the "
                    "reward-code diff; the similarity per iteration; tokens and cost.")
    p.add_argument("run_dir", type=Path, help="the run directory (holds events.jsonl)")
    p.add_argument("--follow", action="store_true",
                   help="follow a run in progress until it finishes (or Ctrl-C), then show it all")
    p.add_argument("--export", choices=["html"], default=None,
                   help="write a static page (contact sheets embedded) instead of printing")
    p.add_argument("--output", type=Path, default=None, metavar="FILE",
                   help="where --export writes (default RUN_DIR/trace.html)")
    p.add_argument("--json", action="store_true", help="print the trace as JSON (the RunTrace model)")
    p.add_argument("--iteration", type=int, default=None, metavar="N",
                   help="show only iteration N (0 = set-up)")
    p.add_argument("--poll", type=float, default=0.5, metavar="SECONDS",
                   help="how often --follow looks for new events (default 0.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load (or follow) the run and render it as asked."""
    if args.output is not None and args.export is None:
        raise UserError("--output needs --export", where=f"--output {args.output}", fix="add --export html")
    if args.poll <= 0:
        raise UserError("--poll must be positive", where=f"--poll {args.poll}",
                        fix="give --poll a number of seconds above 0, e.g. 0.5")
    console = Console()
    interrupted = False
    if args.follow:
        # The live view goes to stderr when stdout carries a file format (JSON).
        live_console = Console(stderr=True) if args.json else console
        trace, interrupted = follow(args.run_dir, live_console, poll=args.poll)
    else:
        trace = load_trace(args.run_dir)
    focused = trace if args.iteration is None else only_iteration(trace, args.iteration)
    if args.json:
        sys.stdout.write(focused.model_dump_json(indent=2) + "\n")
    elif args.export == "html":
        out = export_html(trace, args.output or Path(args.run_dir) / "trace.html", iteration=args.iteration)
        n = len(focused.search_iterations)  # iteration 0 is the set-up, not an iteration
        console.print(f"wrote {out} ({n} iteration{'s' * (n != 1)})", highlight=False, soft_wrap=True)
    else:
        console.print(render_trace(trace, args.iteration))
    return EXIT_INTERRUPTED if interrupted else 0


def only_iteration(trace: RunTrace, number: int) -> RunTrace:
    """The trace with one iteration kept (run-level totals stay whole)."""
    if trace.iteration(number) is None:
        known = ", ".join(str(it.number) for it in trace.iterations) or "none yet"
        raise UserError(f"the run has no iteration {number}", where=f"--iteration {number}",
                        fix=f"choose one of: {known}")
    return trace.model_copy(update={"iterations": [trace.iteration(number)]})


def follow(run_dir: Path, console: Console, *, poll: float = 0.5,
           timeout: float | None = None) -> tuple[RunTrace, bool]:
    """Show the live view, re-reading the run whenever events.jsonl changes, until a
    run_finished event ends the last session, Ctrl-C, or ``timeout`` seconds. Returns the last
    trace and whether it stopped on Ctrl-C."""
    root = Path(run_dir)
    trace = load_trace(root, allow_empty=True)
    seen = _signature(root)
    deadline = None if timeout is None else time.monotonic() + timeout
    interrupted = False
    with Live(render_live(trace), console=console, refresh_per_second=4, transient=True) as live:
        try:
            while trace.status == "running" and (deadline is None or time.monotonic() < deadline):
                time.sleep(poll)
                now = _signature(root)
                if now != seen:  # re-read only when the log changed: folding re-reads files too
                    seen, trace = now, load_trace(root, allow_empty=True)
                    live.update(render_live(trace))
        except KeyboardInterrupt:
            interrupted = True
    return trace, interrupted


def _signature(root: Path) -> tuple[int, int]:
    """(size, mtime) of events.jsonl; the writer only appends, so this changes with every event."""
    try:
        stat = (root / EVENTS_FILE).stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)
