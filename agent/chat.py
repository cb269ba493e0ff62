"""``vid2reward chat``: a person steers a run, one step at a time.

The run pauses before each training (a LangGraph interrupt); the person approves or rejects the
proposed rewards, gives feedback in words (human as critic: read through a vocabulary into
behaviour deltas that join the critic's, see :mod:`vid2reward.agent.human_feedback`), changes budgets, rolls back to an earlier iteration and forks from there
(checkpoint time travel), and looks at clips, contact sheets and diffs. Slash commands work
offline; free text goes to the LLM engineer when one is configured and is taken as feedback
when not. Every command is a ``cmd_*`` method whose docstring is its help line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from vid2reward.agent.config import RunConfig
from vid2reward.agent.human_feedback import parse_feedback
from vid2reward.agent.nodes.finish import write_best
from vid2reward.agent.run_log import RolledBack
from vid2reward.agent.runner import RunOutcome, RunSession
from vid2reward.agent.state import CandidateRecord
from vid2reward.agent.trace.view import similarity_meaning


class ChatSession:
    """A chat over one open :class:`RunSession`.

    Args:
        session: the run, opened with ``approve=True`` so it pauses before each training.
        console: where everything is printed (one output seam, for colour and for tests).
        ask_llm: answers free text (None: free text is taken as feedback).
    """

    def __init__(self, session: RunSession, console: Console,
                 ask_llm: Callable[[str, str], str] | None = None) -> None:
        self.session = session
        self.console = console
        self.ask_llm = ask_llm
        self.last_outcome: RunOutcome | None = None
        self.done = False
        """True once the person quits."""
        snapshot = session.state()
        self.finished = bool(snapshot.values) and not snapshot.next
        """True while the run has ended (a rollback or a bigger budget reopens it)."""
        self.pending_feedback: str | None = None
        """Feedback typed while the run had ended: given to the engineer when it goes on."""

    # -- the loop -------------------------------------------------------------------------
    def handle(self, line: str) -> None:
        """Carry out one line typed by the person."""
        line = line.strip()
        if not line:
            return
        if not line.startswith("/"):
            self._free_text(line)
            return
        name, _, rest = line[1:].partition(" ")
        method = getattr(self, f"cmd_{name.lower()}", None)
        if method is None:
            self.console.print(f"unknown command /{name}; /help lists them")
            return
        method(rest.strip())

    def _free_text(self, text: str) -> None:
        if self.ask_llm is not None:
            self.console.print(self.ask_llm(self._status_text(), text))
        else:
            self.cmd_feedback(text)

    # -- commands (docstring = help line) ---------------------------------------------------
    def cmd_help(self, _: str) -> None:
        """/help: list the commands."""
        for name in sorted(n for n in dir(self) if n.startswith("cmd_")):
            self.console.print("  " + (getattr(self, name).__doc__ or "").strip())

    def cmd_status(self, _: str) -> None:
        """/status: where the run is, its best candidate, budgets and the proposed rewards."""
        self.console.print(self._status_text())

    def cmd_approve(self, _: str) -> None:
        """/approve: train the proposed rewards and go on to the next pause (or the end)."""
        if self.finished:
            self.console.print("the run has finished; /rollback N forks from an iteration, "
                               "/budget iterations=N lets it go on")
            return
        self.last_outcome = self.session.advance()
        self._report()

    def cmd_reject(self, reason: str) -> None:
        """/reject [WHY]: send the proposed rewards back to the engineer, with your reason."""
        snap = self.session.state()
        if snap.next != ("train_candidates",):
            self.console.print("nothing to reject: no rewards are waiting for approval")
            return
        why = reason or "rejected by the person"
        records = []
        for rec in snap.values.get("candidates", []):
            rec = CandidateRecord(**rec)
            if rec["status"] == "tested":
                rec["status"], rec["problem"] = "rejected", f"the person rejected it: {why}"
            records.append(rec)
        # As if the test had failed them: the graph routes them to repair_rewards, then re-tests.
        self.session.update({"candidates": records, "repairs": 0}, as_node="test_rewards")
        self.last_outcome = self.session.advance()
        self._report()

    def cmd_feedback(self, text: str) -> None:
        """/feedback TEXT: your words on the behaviour, for the engineer's next edits."""
        if not text:
            self.console.print("say what should change, e.g. /feedback hop higher and slower")
            return
        self._say_what_was_understood(text)
        snap = self.session.state()
        if snap.values and not snap.next:  # ended: no engineer would read it at this point
            previous = self.pending_feedback
            self.pending_feedback = f"{previous} / {text}" if previous else text
            self.console.print("the run has finished, so this waits: it goes to the engineer "
                               "when the run goes on (/budget iterations=N, or /rollback N)")
            return
        previous = snap.values.get("human_feedback")
        combined = f"{previous} / {text}" if previous else text
        self.session.update({"human_feedback": combined})
        self.console.print(f"noted for the engineer: {combined}")

    def _say_what_was_understood(self, text: str) -> None:
        """The words as the vocabulary reads them (behaviour deltas the engineer acts on), and
        what it did not understand: never dropped silently."""
        parsed = parse_feedback(text)
        self.console.print(f"  {parsed.summary()}", markup=False)
        if parsed.not_understood:
            reader = ("the LLM engineer reads them as words" if self.session.config.engine == "llm"
                      else "the offline engineer cannot act on them")
            self.console.print(f"  ({reader}; README 'Chat' lists the vocabulary)", markup=False)

    def cmd_budget(self, text: str) -> None:
        """/budget iterations=N time=SECONDS tokens=N money=USD patience=N: change budgets."""
        keys = {"iterations": ("iterations", int), "time": ("wall_clock_limit", float),
                "tokens": ("token_budget", int), "money": ("money_budget", float),
                "patience": ("patience", int)}
        config = self.session.config
        for item in text.split():
            key, _, value = item.partition("=")
            if key not in keys:
                self.console.print(f"unknown budget '{key}': use {', '.join(keys)}")
                return
            field_name, kind = keys[key]
            try:
                setattr(config, field_name, kind(value))
            except ValueError:
                self.console.print(f"'{value}' is not a number for {key}")
                return
        info = self.session.record.read_info()
        self.session.record.write_info({**info, "config": config.to_json()})
        # A run that ended on a budget may go on now: fork from the end of its last iteration
        # with the reason it stopped for cleared (keep_best checks the budgets again).
        snap = self.session.state()
        if not snap.next and snap.values.get("stop_reason"):
            last = self.session.checkpoint_after_iteration(snap.values.get("iteration", 0))
            if last is not None:
                self.session.graph.update_state(last.config, {"stop_reason": None,
                                                              "human_feedback": self.pending_feedback},
                                                as_node="keep_best")
                self._feedback_delivered()
                self.finished = False
        self.console.print(f"budgets: iterations {config.iterations}, time {config.wall_clock_limit}, "
                           f"tokens {config.token_budget}, money {config.money_budget}, "
                           f"patience {config.patience}")

    def cmd_rollback(self, text: str) -> None:
        """/rollback N: fork the run from the end of iteration N (later iterations are kept aside)."""
        try:
            iteration = int(text)
        except ValueError:
            self.console.print("give an iteration number, e.g. /rollback 1")
            return
        snapshot = self.session.checkpoint_after_iteration(iteration)
        if snapshot is None:
            self.console.print(f"no finished iteration {iteration} to roll back to")
            return
        moved = self.session.record.abandon_after(iteration)  # kept aside, not lost
        # Writing at the old checkpoint forks the thread: later steps continue from here.
        self.session.graph.update_state(snapshot.config, {"stop_reason": None,
                                                          "human_feedback": self.pending_feedback},
                                        as_node="keep_best")
        self._feedback_delivered()
        self.finished = False
        best = self._rewrite_best()
        self.session.ctx.emit(RolledBack(iteration=iteration, abandoned=moved, best_candidate_id=best))
        where = f"later iterations moved to {', '.join(moved)}" if moved else "no later iteration"
        kept = (f"best/ now holds {best}, the best up to iteration {iteration}" if best else
                f"best/ removed: no candidate up to iteration {iteration} was evaluated")
        self.console.print(f"rolled back to the end of iteration {iteration}; {where}; {kept}; "
                           "/approve goes on")

    def _rewrite_best(self) -> str | None:
        """best/ from the (rolled back) state's best candidate, so it always matches the run;
        removed when there is none. Returns the best candidate's id."""
        values = self.session.state().values
        best = values.get("best")
        if best is None:
            self.session.record.remove_best()
            return None
        write_best(values, self.session.ctx)
        return str(best["id"])

    def _feedback_delivered(self) -> None:
        if self.pending_feedback:
            self.console.print(f"noted for the engineer: {self.pending_feedback}")
        self.pending_feedback = None

    def cmd_show(self, text: str) -> None:
        """/show [N]: iteration N's best candidate: clip, contact sheet, similarity, reward."""
        values = self.session.state().values
        history = values.get("history", [])
        if not history:
            self.console.print("no finished iteration yet")
            return
        n = int(text) if text.isdigit() else history[-1]["iteration"]
        point = next((h for h in history if h["iteration"] == n), None)
        if point is None or point["best_candidate_id"] is None:
            self.console.print(f"no evaluated candidate in iteration {n}")
            return
        record, cid = self.session.record, point["best_candidate_id"]
        self.console.print(f"iteration {n}: {cid} similarity "
                           f"{point['iteration_best_similarity']}\n  clip  {record.clip(cid)}\n"
                           f"  sheet {record.sheet(cid)}\n  reward {record.program_path(cid)}")

    def cmd_diff(self, _: str) -> None:
        """/diff: the proposed program (candidate 0) against the best program so far."""
        values = self.session.state().values
        pending = values.get("candidates", [])
        best = values.get("best")
        if not pending or best is None:
            self.console.print("nothing to compare yet")
            return
        record, new, old = self.session.record, pending[0]["id"], best["id"]
        diff = "".join(difflib.unified_diff(record.program(old).splitlines(True),
                                            record.program(new).splitlines(True),
                                            f"{old}/reward.py", f"{new}/reward.py"))
        self.console.print(Syntax(diff or "(identical)\n", "diff", theme="ansi_dark"))

    def cmd_quit(self, _: str) -> None:
        """/quit: leave (the run stays resumable: vid2reward resume / chat RUN_DIR)."""
        self.done = True
        self.console.print(f"bye; continue with: vid2reward chat {self.session.record.root}")

    # -- helpers ----------------------------------------------------------------------------
    def _report(self) -> None:
        outcome = self.last_outcome
        if outcome is None:
            return
        if outcome.status == "awaiting_approval":
            self.cmd_status("")
            self.console.print("/approve to train them, /reject WHY, /diff, /feedback TEXT")
        else:
            self.console.print(f"run {outcome.status}: {outcome.reason}; best similarity "
                               f"{outcome.best_similarity}")
            self.finished = outcome.status in ("finished", "budget", "failed")

    def _status_text(self) -> str:
        snap = self.session.state()
        values: dict[str, Any] = snap.values
        config: RunConfig = self.session.config
        best = values.get("best") or {}
        table = Table(show_header=True, box=None)
        for col in ("candidate", "status", "similarity", "note"):
            table.add_column(col)
        for rec in values.get("candidates", []):
            table.add_row(rec["id"], rec["status"], _fmt(rec.get("similarity")), rec.get("problem", ""))
        with self.console.capture() as cap:
            self.console.print(table)
        waiting = f"waiting before {snap.next[0]}" if snap.next else "finished"
        meaning = similarity_meaning(best.get("similarity"))
        return (f"{config.env_id}: iteration {values.get('iteration', 0)}/{config.iterations}, "
                f"{waiting}; best {best.get('id')} ({_fmt(best.get('similarity'))}); "
                f"feedback for the engineer: {values.get('human_feedback') or '-'}\n"
                + (f"  (similarity {_fmt(best.get('similarity'))}: {meaning})\n" if meaning else "")
                + cap.get())


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
