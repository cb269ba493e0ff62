"""Running untrusted reward code: restricted builtins, time and resource limits, child processes.

Four gates stand between an LLM-written reward program and the machine:

1. :mod:`vid2reward.tools.reward_check` rejects source that reaches for imports, dunders,
   files or namespaces, without running it;
2. :func:`load_sandboxed` runs the module through the one loader
   (:func:`vid2reward.sim.reward.load_reward_program`) with a curated builtins dict whose
   ``__import__`` hands out only the program's own copies of math and numpy, and a time limit
   on the module's top level;
3. the code runs only in child processes with memory and CPU-time limits
   (:func:`apply_limits`) and a wall-time bound enforced from outside
   (:func:`run_in_sandbox` for one-off jobs such as ``reward test``; training workers get the
   same limits through :mod:`vid2reward.tools.reward_training`);
4. before the first line of reward code runs, the process is isolated by the OS
   (:mod:`vid2reward.tools.reward_isolation`: seccomp, Landlock, no privileges, nobody), and
   its replies are unpickled with an allowlist (:mod:`vid2reward.sim.safe_pickle`).

The calling process never runs reward code: :func:`sandboxed_program` gives it a
:class:`RewardProgram` built from the checked source and its literal ``WEIGHTS`` whose
``compute`` refuses to run.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vid2reward.sim import safe_pickle
from vid2reward.sim.errors import CHECK_FIX, UserError
from vid2reward.sim.reward import (
    RewardError,
    RewardProgram,
    one_line,
    read_reward_source,
)
from vid2reward.sim.vec_env import exit_reason
from vid2reward.tools.reward_check import check_reward_source, static_weights
from vid2reward.tools.reward_client import ProcessSettings, remote_program
from vid2reward.tools.reward_isolation import limit_process, set_write_fds
from vid2reward.tools.reward_python import (  # noqa: F401 - re-exported: the sandbox's API
    SandboxTimeout,
    program_line,
    safe_builtins,
    time_limit,
)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for a process that runs reward code. Times in seconds, memory in MiB."""

    memory_mb: int = 2048
    """Address space the process may add to what it had when the limits were set (RLIMIT_AS):
    numpy and MuJoCo are already mapped by then, so this is the reward's (and envs') budget."""
    cpu_seconds: float | None = 120.0
    """CPU time the process may use from when the limits were set (RLIMIT_CPU); None = none."""
    wall_seconds: float = 120.0
    """Wall time of a :func:`run_in_sandbox` job before the caller kills the child."""
    load_seconds: float = 5.0
    """Wall time the module's top level may take while loading."""
    call_seconds: float = 1.0
    """Wall time one ``compute_reward`` call may take in ``reward test`` and the pre-check."""
    step_seconds: float = 10.0
    """Training: wall time one step of a worker's batch of envs (physics + reward) may take."""


DEFAULT_LIMITS = SandboxLimits()
"""The limits ``reward test`` and sandboxed training use unless told otherwise."""


# -- loading ------------------------------------------------------------------------------------

def _settings(limits: SandboxLimits, trust: bool, call_seconds: float | None,
              cpu: bool) -> ProcessSettings:
    return ProcessSettings(memory_mb=limits.memory_mb,
                           cpu_seconds=limits.cpu_seconds if cpu else None,
                           load_seconds=limits.load_seconds,
                           call_seconds=limits.call_seconds if call_seconds is None
                           else call_seconds, trust=trust)


def load_sandboxed(source: str, name: str,
                   load_seconds: float = DEFAULT_LIMITS.load_seconds, *,
                   trust: bool = False, limits: SandboxLimits = DEFAULT_LIMITS,
                   call_seconds: float | None = None) -> RewardProgram:
    """Check ``source`` statically and load it in a reward process of its own (started now,
    isolated by the OS before it is sent the source; see
    :mod:`~vid2reward.tools.reward_client`); ``compute`` sends it the state and returns its
    numbers. This process runs none of the program's code, so it may be any process.

    ``trust`` lets the reward process run unisolated where the OS cannot isolate;
    ``call_seconds`` (default ``limits.call_seconds``) bounds one ``compute`` call.

    Raises:
        RewardError: the source breaks a rule, the OS cannot isolate and ``trust`` is false,
            the top level raises or runs longer than ``load_seconds``, or it lacks a proper
            ``compute_reward`` or ``WEIGHTS``.
    """
    limits = dataclasses.replace(limits, load_seconds=load_seconds)
    program = remote_program(source, name, _settings(limits, trust, call_seconds, cpu=True))
    program.compute.process()  # type: ignore[attr-defined]  # start it: load errors surface here
    return program


def load_deferred(source: str, name: str, *, load_seconds: float = DEFAULT_LIMITS.load_seconds,
                  trust: bool = False, limits: SandboxLimits = DEFAULT_LIMITS,
                  call_seconds: float | None = None) -> RewardProgram:
    """The ``loader`` for training workers: checks now; the reward process starts at the
    first ``compute`` call and is shared by every env of the worker (one process per program).

    A module that fails to load fails that step with a RewardError.
    """
    limits = dataclasses.replace(limits, load_seconds=load_seconds)
    return remote_program(source, name, _settings(limits, trust, call_seconds, cpu=True))


def _refuse(s: Any, a: Any) -> tuple[float, dict[str, float]]:
    raise RewardError("a sandboxed reward program runs only inside the sandbox",
                      fix="train with vid2reward.tools.reward_training.train_sandboxed, or test "
                          "with vid2reward.tools.reward_runtime.run_reward_test")


def sandboxed_program(path_or_source: str | Path, name: str | None = None) -> RewardProgram:
    """The calling process's handle on an untrusted program, built without running it.

    Source, name, sha256 and ``WEIGHTS`` (read as a literal) are real; ``compute`` raises,
    so the program cannot run here by mistake.

    Raises:
        RewardError: the file is missing or the source breaks a rule of reward_check.
    """
    source, label = read_reward_source(path_or_source, name)
    check_reward_source(source, label)
    try:
        weights = static_weights(source)
    except RewardError as exc:
        raise RewardError(exc.what, where=label, fix=exc.fix) from None
    return RewardProgram(source=source, name=label, compute=_refuse, weights=weights)


# -- process limits -----------------------------------------------------------------------------

def apply_limits(limits: SandboxLimits = DEFAULT_LIMITS) -> None:
    """Limit this process by ``limits`` (memory, CPU time, no core dumps; see
    :func:`~vid2reward.tools.reward_isolation.limit_process`)."""
    limit_process(limits.memory_mb, limits.cpu_seconds)


# -- one-off jobs in a child process ------------------------------------------------------------

_CONTEXT: Any = None


def forkserver_context() -> Any:
    """The multiprocessing context sandboxed processes start from (jobs here, and the workers
    of :mod:`vid2reward.tools.reward_env`)."""
    # A forkserver that has already imported numpy, MuJoCo and this package forks each job in
    # milliseconds, and forks a clean single-threaded process (not this one, which may run
    # torch threads). The first job pays for starting it once.
    global _CONTEXT
    if _CONTEXT is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["vid2reward.tools.reward_runtime",
                                   "vid2reward.tools.reward_training"])
        _CONTEXT = ctx
    return _CONTEXT


def _child(conn: Any, limits: SandboxLimits, fn: Callable[..., Any], args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; it stops the child
    set_write_fds((conn.fileno(),))  # once isolated, the only descriptor it may write
    try:
        apply_limits(limits)
        reply: tuple[str, Any] = ("ok", fn(*args))
    except UserError as exc:
        reply = ("error", (exc.what, exc.where, exc.fix))
    except BaseException as exc:  # noqa: BLE001 - any failure is the reply
        reply = ("error", (one_line(f"{type(exc).__name__}: {exc}"), None, None))
    try:
        conn.send(reply)
    except BaseException as exc:  # noqa: BLE001 - e.g. a reply that cannot be pickled
        conn.send(("error", (one_line(f"cannot send the result: {exc}"), None, None)))
    finally:
        conn.close()


def run_in_sandbox(fn: Callable[..., Any], *args: Any, limits: SandboxLimits = DEFAULT_LIMITS,
                   what: str = "reward program") -> Any:
    """Run ``fn(*args)`` in a limited child process and return its (picklable) result.

    ``fn`` must be a module-level function. The calling process survives whatever happens in
    the child: a :class:`UserError` raised there is raised here unchanged; any other exception,
    a child that dies (memory, CPU-time limit) or one still running after
    ``limits.wall_seconds`` (it is killed) becomes a :class:`RewardError` with a one-line
    reason. ``what`` names the job in those messages.
    """
    ctx = forkserver_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, limits, fn, args), daemon=True)
    proc.start()
    sender.close()
    replied = False
    try:
        if not receiver.poll(limits.wall_seconds):
            proc.kill()
            raise RewardError(f"the {what} did not finish within {limits.wall_seconds:g} s of "
                              f"wall time and was stopped",
                              fix="make compute_reward cheap: no loops over large ranges")
        try:
            reply = safe_pickle.recv(receiver)
        except safe_pickle.UnsafePickleError as exc:
            proc.kill()
            raise RewardError(f"the process running the {what} sent a reply that was refused: "
                              f"{exc}", fix=CHECK_FIX) from None
        except EOFError:
            proc.join(timeout=5)
            raise RewardError(f"the process running the {what} ended: "
                              f"{exit_reason(proc.exitcode)}",
                              fix=f"stay within {limits.memory_mb} MiB of memory and "
                                  f"{limits.cpu_seconds} s of CPU time") from None
        replied = True
    finally:
        receiver.close()
        # A child that replied is exiting; any other (Ctrl-C here: it ignores SIGINT) is
        # stopped at once.
        proc.join(timeout=5 if replied else 0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
    if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] in ("ok", "error")):
        raise RewardError(f"the process running the {what} sent a malformed reply", fix=CHECK_FIX)
    kind, payload = reply
    if kind == "error":
        what_, where, fix = (payload + (None, None, None))[:3] if isinstance(payload, tuple) \
            else (payload, None, None)
        raise RewardError(one_line(str(what_)), where=None if where is None else str(where),
                          fix=None if fix is None else one_line(str(fix)))
    return payload
