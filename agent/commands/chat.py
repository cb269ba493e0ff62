"""``vid2reward chat``: steer a run from the terminal (see ``vid2reward.agent.chat``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from vid2reward.agent.chat import ChatSession
from vid2reward.agent.commands.run import add_run_options, config_from_args
from vid2reward.agent.config import RunConfig
from vid2reward.agent.dashboard import PlainProgress
from vid2reward.agent.runner import RunSession, load_run, make_engines, new_run_dir
from vid2reward.sim.errors import UserError


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "chat", help="steer a run: approve rewards, give feedback, roll back",
        description="A chat session over a run. Start one with the run options (--env, --video, "
                    "...) or attach to RUN_DIR. The run pauses before each training: /approve, "
                    "/reject WHY, /feedback TEXT, /budget ..., /rollback N, /show N, /diff, "
                    "/status, /help, /quit. Free text goes to the LLM engineer when one is "
                    "configured and is taken as feedback when not.")
    p.add_argument("run_dir", nargs="?", type=Path, default=None, help="a run directory to attach to")
    add_run_options(p, required=False)
    p.set_defaults(func=run)


PIPE_FIX = "run it in a terminal, or pipe commands in: printf '/approve\\n/quit\\n' | vid2reward chat RUN_DIR"


def run(args: argparse.Namespace) -> int:
    if sys.stdin is None or sys.stdin.closed:  # `<&-`: nothing could ever be typed
        raise UserError("chat reads commands from stdin, and stdin is closed", where="vid2reward chat",
                        fix=PIPE_FIX)
    if args.run_dir is None and (not args.env or not args.video):
        raise UserError("chat needs a run directory, or --env and --video for a new run",
                        where="vid2reward chat", fix="vid2reward chat RUN_DIR, or "
                        "vid2reward chat --env Hopper-v5 --video clip.mp4")
    interactive = sys.stdin.isatty()
    console = Console(highlight=False)
    if args.run_dir is not None:
        paths, config, run_id = load_run(args.run_dir)
        first = _first_command(interactive)
        progress = _progress(config, console)  # /approve trains for minutes: say how far it is
        session = RunSession(paths, config, run_id, resume=True, approve=True,
                             listeners=[progress.on_event], progress=progress.on_progress)
    else:
        config = config_from_args(args)
        engines = make_engines(config)
        first = _first_command(interactive)
        paths = new_run_dir(config, args.out)
        progress = _progress(config, console)
        session = RunSession(paths, config, paths.root.name, engines=engines, approve=True,
                             listeners=[progress.on_event], progress=progress.on_progress)
    chat = ChatSession(session, console, ask_llm=_llm_answer(session))
    try:
        console.print(f"[bold]vid2reward chat[/] on {session.record.root} (/help for commands)")
        # A new run starts; an open one (paused, or finished: only looked at) says where it is.
        chat.cmd_approve("") if not session.state().values else chat.cmd_status("")
        while not chat.done:
            try:
                if first is not None:
                    line, first = first, None
                else:
                    line = console.input("[bold]> [/]") if interactive else sys.stdin.readline()
            except EOFError:
                break
            if not interactive and line == "":
                break  # end of a scripted session
            chat.handle(line)
    finally:
        session.close()
    return 0


def _first_command(interactive: bool) -> str | None:
    """Without a terminal the commands come from stdin: the first is read once the options are
    checked and before anything is made, so that `chat ... </dev/null` (cron, CI, nohup) says
    why in one line and creates nothing. None in a terminal (its prompt reads them)."""
    if interactive:
        return None
    first = sys.stdin.readline()
    if first == "":
        raise UserError("chat has no terminal, and stdin holds no commands", where="vid2reward chat",
                        fix=PIPE_FIX)
    return first


def _progress(config: RunConfig, console: Console) -> PlainProgress:
    """Plain progress lines between the prompts: nodes finished, candidates trained (k of N)
    and the run's ETA, a training line every 10 s."""
    return PlainProgress(config, lambda text: console.print(text, style="dim", markup=False, soft_wrap=True),
                         every=10.0)


def _llm_answer(session: RunSession) -> Callable[[str, str], str] | None:
    """Free text to the engineer's model, when the run has an LLM engineer (its own client in
    the "chat" role, so its usage counts towards the run's budgets like the engineer's)."""
    config = session.config
    model = config.engineer or (config.critic if config.video_critic else None)
    if config.engine != "llm" or not model:
        return None
    from langchain_core.messages import HumanMessage

    from vid2reward.agent.engines.llm_client import RoleClient, make_chat_model
    from vid2reward.agent.prompts import render

    client = RoleClient("chat", model, make_chat_model(model, config.resolved_base_url(), config.llm),
                        config.llm)
    client.bind(session.ctx)

    def ask(status: str, message: str) -> str:
        reply = client.invoke([HumanMessage(render("chat_reply", status=status, message=message))])
        return str(reply.content)

    return ask
