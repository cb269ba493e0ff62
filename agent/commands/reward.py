"""``vid2reward reward test|check|diff``: test a reward program in the sandbox, check it, diff two.

``reward test`` prints a table by default and the report as JSON with ``--json`` (for agent
tools); it exits 0 when the program is usable for training (warnings allowed) and 2 when it
is not (the reward file is the bad input), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vid2reward.sim.reward import read_reward_source
from vid2reward.tools.reward_check import find_violations
from vid2reward.tools.reward_isolation import set_trust
from vid2reward.tools.reward_runtime import RewardTestReport, SeriesStats, run_reward_test
from vid2reward.tools.reward_versions import diff_sources


def register(verbs: argparse._SubParsersAction) -> None:
    """Add the ``reward`` verb group and its sub-verbs."""
    group = verbs.add_parser("reward", help="test, check or diff reward programs",
                             description="Work with reward programs: run them in the sandbox on "
                                         "real states, check them statically, compare versions.")
    subs = group.add_subparsers(dest="reward_verb", metavar="SUBVERB")
    subs.required = True

    p = subs.add_parser("test", help="run a reward program on a few hundred states, in the sandbox",
                        description="Run FILE in the sandbox on states from a random-action and a "
                                    "zero-action rollout of ENV; report whether total and "
                                    "components are finite floats that add up, per-component "
                                    "statistics, microseconds per call and warnings.")
    p.add_argument("file", type=Path, help="reward program (.py)")
    p.add_argument("--env", required=True, help="Gymnasium MuJoCo id, e.g. Hopper-v5")
    p.add_argument("--steps", type=int, default=300,
                   help="states to test: two thirds random actions, one third zero actions "
                        "(default 300)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trust-reward-code", action="store_true",
                   help="run reward programs even where the OS cannot isolate them (no "
                        "seccomp: macOS, some containers); only for code you trust")
    p.set_defaults(func=run_test)

    p = subs.add_parser("check", help="check a reward program statically (never runs it)",
                        description="Check FILE against the sandbox's static rules; print every "
                                    "violation with its line and rule.")
    p.add_argument("file", type=Path, help="reward program (.py)")
    p.set_defaults(func=run_check)

    p = subs.add_parser("diff", help="show what changed between two reward programs",
                        description="Print a unified diff from OLD to NEW.")
    p.add_argument("old", type=Path, help="the older program (.py)")
    p.add_argument("new", type=Path, help="the newer program (.py)")
    p.set_defaults(func=run_diff)


def run_test(args: argparse.Namespace) -> int:
    """``reward test``: 0 when the program can be trained on, 2 when it cannot."""
    steps = max(1, args.steps)
    set_trust(args.trust_reward_code)
    report = run_reward_test(args.file, args.env, random_steps=steps - steps // 3,
                             zero_steps=steps // 3, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report, Console(highlight=False))
    if report.ok:
        return 0
    err = Console(stderr=True, highlight=False)
    err.print(f"[bold red]error:[/] {escape(report.error or 'the test failed')}", soft_wrap=True)
    return 2


def print_report(report: RewardTestReport, console: Console) -> None:
    """The report as tables: checks, components, warnings."""
    verdict = "[green]ok[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(f"[bold]reward test[/] {escape(report.name)} on {report.env_id}: {verdict}",
                  soft_wrap=True)
    for violation in report.violations:
        console.print(f"  {escape(violation)}", soft_wrap=True)
    if not report.calls:
        return
    checks = Table(show_header=False, box=None, pad_edge=False)
    checks.add_row("states tested", str(report.calls))
    checks.add_row("total is a finite float", _yes(report.total_is_float and report.total_finite))
    checks.add_row("components are finite floats",
                   _yes(report.components_are_float and report.components_finite))
    gap = f" (max gap {report.max_sum_gap:.2g})" if report.max_sum_gap is not None else ""
    checks.add_row("components add up to the total", _yes(report.sums_to_total) + gap)
    if report.us_per_call is not None:
        env = f", env step {report.env_us_per_step:.0f} us" if report.env_us_per_step else ""
        checks.add_row("time per call", f"{report.us_per_call:.1f} us "
                                        f"(max {report.us_per_call_max:.0f} us{env})")
    console.print(checks)
    table = Table(title=None, show_lines=False)
    for column in ("component", "mean", "std", "min", "max", "mean |x|", "NaN/inf"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for stats in [*report.components, *([report.total] if report.total else [])]:
        table.add_row(*_row(stats))
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def _row(stats: SeriesStats) -> list[str]:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"
    name = f"[bold]{escape(stats.name)}[/]" if stats.name == "total" else escape(stats.name)
    return [name, fmt(stats.mean), fmt(stats.std), fmt(stats.min), fmt(stats.max),
            fmt(stats.mean_abs), str(stats.nonfinite)]


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def run_check(args: argparse.Namespace) -> int:
    """``reward check``: 0 when the program passes every static rule, 2 otherwise."""
    source, label = read_reward_source(args.file)
    violations = find_violations(source)
    if not violations:
        print(f"ok: {label} passes the static check")
        return 0
    err = Console(stderr=True, highlight=False)
    for violation in violations:
        err.print(f"[bold red]error:[/] {escape(str(violation))} ({escape(label)})", soft_wrap=True)
    return 2


def run_diff(args: argparse.Namespace) -> int:
    """``reward diff``: the unified diff from OLD to NEW (nothing when they are equal)."""
    old, old_label = read_reward_source(args.old)
    new, new_label = read_reward_source(args.new)
    print(diff_sources(old, new, old_label, new_label), end="")
    return 0
