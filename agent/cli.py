"""The ``vid2reward`` command line: one parser, one verb module each, one place for errors.

User mistakes raise :class:`~vid2reward.sim.errors.UserError` anywhere below; :func:`main`
prints them as ``error: <what> (<where>)`` and ``fix: <how>`` and exits 2 (no traceback unless
``--debug``). A failed run exits 1, Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from vid2reward import __version__
from vid2reward.agent.commands import bench, chat, demo, fetch, render, reward, run, trace, train
from vid2reward.sim.errors import UserError

VERB_MODULES = [demo, run, chat, trace, fetch, train, render, reward, bench]
"""Each module adds its verb(s) with ``register(subparsers)`` and sets ``func`` on its parser."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every verb has ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="vid2reward",
        description="Learn a reinforcement-learning reward, as code, from a video of an expert.")
    parser.add_argument("--version", action="version", version=f"vid2reward {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for module in VERB_MODULES:
        module.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vid2reward`` console script; returns the exit code."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering on a machine with no screen
    parser = build_parser()
    args = parser.parse_args(argv)
    err = Console(stderr=True, highlight=False)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
        if exc.fix:
            err.print(f"[bold]fix:[/] {exc.fix}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
