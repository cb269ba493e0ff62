"""The ``vid2reward`` command line: one parser, one verb module each, one place for errors.

User mistakes raise :class:`~vid2reward.sim.errors.UserError` anywhere below; :func:`main`
prints them as ``error: <what> (<where>)`` and ``fix: <how>`` and exits 2 (no traceback unless
``--debug``). A failed run exits 1, Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from vid2reward import __version__
from vid2reward.sim.errors import UserError

VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the offline demo end to end on the bundled expert clip"),
    "run": ("run", "learn a reward from an expert video (the bi-level search)"),
    "resume": ("run", "continue a run after a crash, kill or stop"),
    "chat": ("chat", "steer a run: approve rewards, give feedback, roll back"),
    "trace": ("trace", "show a run: timeline, chain rule, reward diffs, candidates, costs"),
    "fetch": ("fetch", "fetch a video (URL or file), trim it and cache the clip"),
    "features": ("fetch", "measure behaviour features of a clip from its pixels"),
    "compare": ("fetch", "compare an expert clip with a learner clip"),
    "train": ("train", "train a PPO policy on a reward program"),
    "render": ("render", "render a trained policy to an mp4 with a contact sheet"),
    "evaluate": ("evaluate", "mean ± std return, episode length, falls and behaviour of a policy"),
    "export": ("export", "write a run's reward, policy, contract README and evaluation to a folder"),
    "runs": ("runs", "list runs: env, engine, status, iterations, best similarity, evaluation"),
    "reward": ("reward", "test, check or diff reward programs"),
    "bench": ("bench", "run benchmarks and print their numbers"),
}
"""verb -> (module in vid2reward.agent.commands that registers it, one-line help). Only the
module of the verb being run is imported: the others pull in torch, MuJoCo and LangGraph, and
`vid2reward --help` or `vid2reward trace` should not wait for them."""


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``verb``'s module registers its full options, the other verbs get
    a placeholder carrying their help line (every verb's own ``--help`` is complete)."""
    parser = argparse.ArgumentParser(
        prog="vid2reward",
        description="Learn a reinforcement-learning reward, as code, from a video of an expert.")
    parser.add_argument("--version", action="version", version=f"vid2reward {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    if verb in VERBS:
        importlib.import_module(f"vid2reward.agent.commands.{VERBS[verb][0]}").register(verbs)
    for name, (_, help_line) in VERBS.items():
        if name not in verbs.choices:
            verbs.add_parser(name, help=help_line)
    return parser


def _verb_in(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vid2reward`` console script; returns the exit code."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering on a machine with no screen
    if argv is None:  # a real process (not a test calling main): a late Ctrl-C still exits 130
        from vid2reward.agent.interrupts import exit_on_repeated_ctrl_c

        signal.signal(signal.SIGINT, exit_on_repeated_ctrl_c)
        # Registered before the verb's imports: atexit runs last what was registered first.
        atexit.register(_ignore_ctrl_c_from_now_on)
        try:
            return _main(sys.argv[1:])
        except KeyboardInterrupt:  # a Ctrl-C between _main's own handler and here
            return 130
        finally:
            _late_ctrl_c_exits_130()
    return _main(argv)


def _main(argv: Sequence[str]) -> int:
    argv = list(argv)
    parser = build_parser(_verb_in(argv))
    args = parser.parse_args(argv)
    err = Console(stderr=True, highlight=False)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        # Messages quote user input and code ("[1.0]", "x[0]"): never read them as markup.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
        if exc.fix:
            err.print(f"[bold]fix:[/] {escape(exc.fix)}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def _late_ctrl_c_exits_130() -> None:
    # A second Ctrl-C that lands after the command ended, while the interpreter shuts down
    # (joining worker processes), would otherwise end in a traceback and exit status -2.
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def _ignore_ctrl_c_from_now_on() -> None:
    # The end of the shutdown: Python then restores SIGINT's default action (death, status -2)
    # while it frees its modules, which takes a while with torch loaded. The command's exit
    # status is decided and its clean-up done; a Ctrl-C now can only lose that status.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
