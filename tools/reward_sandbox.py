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

import importlib
import math
import multiprocessing as mp
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from vid2reward.sim import safe_pickle
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import (
    RewardError,
    RewardProgram,
    load_reward_program,
    one_line,
    read_reward_source,
)
from vid2reward.sim.vec_env import exit_reason, worker_pipe_fd
from vid2reward.tools.reward_check import ALLOWED_IMPORTS, check_reward_source, static_weights
from vid2reward.tools.reward_isolation import enter_isolation, set_write_fds


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


# -- restricted builtins --------------------------------------------------------------------------

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "complex", "dict", "divmod", "enumerate", "filter", "float",
    "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min", "next", "pow",
    "range", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip",
    # exceptions a reward may raise or catch (never BaseException: see reward_check)
    "Exception", "ArithmeticError", "AssertionError", "FloatingPointError", "IndexError",
    "KeyError", "LookupError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
)


def _private_modules() -> dict[str, ModuleType]:
    """Fresh copies of math, numpy and its allowed submodules for one reward program.

    A program that assigns ``np.isfinite = ...`` or deletes ``np.float64`` changes only its
    own copies: the trusted harness in the same process keeps computing with the real ones.
    """
    import numpy

    def copy(module: ModuleType) -> ModuleType:
        clone = ModuleType(module.__name__, module.__doc__)
        clone.__dict__.update(module.__dict__)
        return clone

    modules = {"math": copy(math), "numpy": copy(numpy)}
    for name in sorted(ALLOWED_IMPORTS):
        if name.startswith("numpy."):
            sub = copy(importlib.import_module(name))
            modules[name] = sub
            setattr(modules["numpy"], name.partition(".")[2], sub)
    return modules


def _importer(modules: dict[str, ModuleType]) -> Callable[..., ModuleType]:
    def safe_import(name: str, globals: Mapping[str, Any] | None = None,
                    locals: Mapping[str, Any] | None = None,
                    fromlist: tuple[str, ...] | None = (), level: int = 0) -> ModuleType:
        """``__import__`` for reward programs: their own copies of math and numpy only."""
        if level != 0 or name not in modules:
            raise ImportError(f"import of '{name}' is not allowed in a reward program")
        if not fromlist and "." in name:  # `import numpy.linalg` binds the name `numpy`
            return modules[name.partition(".")[0]]
        return modules[name]
    return safe_import


def _discard_print(*args: Any, **kwargs: Any) -> None:
    """``print`` for reward programs: debugging prints run, and print nothing."""


def safe_builtins() -> dict[str, Any]:
    """A fresh curated builtins dict for one reward module (nothing shared between modules),
    whose ``__import__`` hands out the module's private copies of math and numpy."""
    import builtins
    table = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table["__import__"] = _importer(_private_modules())
    table["print"] = _discard_print
    return table


# -- time limits --------------------------------------------------------------------------------

class SandboxTimeout(BaseException):  # noqa: N818 - reads like the events it reports
    """Raised in reward code when a time limit of :func:`time_limit` expires.

    A BaseException so that a reward's ``except Exception`` cannot swallow it (reward_check
    forbids bare ``except:``).
    """


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`SandboxTimeout` in the block after ``seconds`` of wall time (SIGALRM).

    Python code is interrupted between bytecodes; a single long C call is interrupted when it
    returns, which is why the caller also bounds the whole process. An alarm that was already
    armed (a training worker's step timeout) is restored afterwards. Outside the main thread,
    where signals cannot be used, the block runs unbounded (the process limits still apply).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise SandboxTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # re-arm the outer alarm with what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))


def program_line(exc: BaseException, filename: str) -> int | None:
    """The line of the reward program (compiled as ``filename``) an exception last passed."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None


# -- loading ------------------------------------------------------------------------------------

def load_sandboxed(source: str, name: str,
                   load_seconds: float = DEFAULT_LIMITS.load_seconds, *,
                   trust: bool = False) -> RewardProgram:
    """Check ``source`` statically, isolate this process, then load the program with
    restricted builtins and a time limit.

    Isolation (:func:`~vid2reward.tools.reward_isolation.enter_isolation`) is final: call this
    only in a child process, after its trusted setup (:func:`run_in_sandbox`, or training
    workers through :func:`load_deferred`). ``trust`` lets it run unisolated where the OS
    cannot isolate.

    Raises:
        RewardError: the source breaks a rule, the OS cannot isolate and ``trust`` is false,
            the top level raises or runs longer than ``load_seconds``, or it lacks a proper
            ``compute_reward`` or ``WEIGHTS``.
    """
    check_reward_source(source, name)
    enter_isolation(trust)
    try:
        with time_limit(load_seconds):
            return load_reward_program(source, name=name,
                                       exec_globals={"__builtins__": safe_builtins()})
    except SandboxTimeout as exc:
        line = program_line(exc, name)
        at = f" (interrupted on line {line})" if line else ""
        raise RewardError(f"the module's top level ran longer than {load_seconds:g} s{at}",
                          where=name, fix="the top level may only import and define names; "
                                          "do the work inside compute_reward") from None


class _LoadOnFirstCall:
    """``compute`` of a program loaded by :func:`load_deferred`: isolates and loads on the
    first call, then calls the real ``compute_reward``."""

    def __init__(self, source: str, name: str, load_seconds: float, trust: bool) -> None:
        self.source, self.name, self.load_seconds, self.trust = source, name, load_seconds, trust
        self.compute: Callable[[Any, Any], Any] | None = None

    def __call__(self, s: Any, a: Any) -> Any:
        if self.compute is None:
            fd = worker_pipe_fd()
            if fd is not None:
                set_write_fds((fd,))
            self.compute = load_sandboxed(self.source, self.name, self.load_seconds,
                                          trust=self.trust).compute
        return self.compute(s, a)


def load_deferred(source: str, name: str, *, load_seconds: float = DEFAULT_LIMITS.load_seconds,
                  trust: bool = False) -> RewardProgram:
    """The ``loader`` for training workers: checks now, runs the program's code only at its
    first ``compute`` call, after the worker has built all its envs.

    A worker builds several envs one after another, and building one reads MuJoCo model files
    that an isolated process may no longer read; so isolation and the module's top level wait
    for the first step. A module that fails to load fails that step with a RewardError.
    """
    check_reward_source(source, name)
    return RewardProgram(source=source, name=name,
                         compute=_LoadOnFirstCall(source, name, load_seconds, trust),
                         weights=static_weights(source))


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

def _address_space_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[0])
    return pages * resource.getpagesize()


def apply_limits(limits: SandboxLimits = DEFAULT_LIMITS) -> None:
    """Limit this process: memory (RLIMIT_AS) and CPU time (RLIMIT_CPU), no core dumps.

    Both are set relative to what the process already uses, and as hard limits too, so
    nothing in the process can raise them again. Memory over the limit makes allocations fail
    (MemoryError); CPU time over it sends SIGXCPU, which ends the process.
    """
    budget = _address_space_bytes() + limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpu_seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + limits.cpu_seconds)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # SIGXCPU, then SIGKILL


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
                              f"{exc}") from None
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
        raise RewardError(f"the process running the {what} sent a malformed reply")
    kind, payload = reply
    if kind == "error":
        what_, where, fix = (payload + (None, None, None))[:3] if isinstance(payload, tuple) \
            else (payload, None, None)
        raise RewardError(one_line(str(what_)), where=None if where is None else str(where),
                          fix=None if fix is None else one_line(str(fix)))
    return payload
