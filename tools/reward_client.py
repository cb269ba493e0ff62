"""The caller's side of a reward process: start it, hand it a program, send it states.

:class:`RewardProcess` starts :mod:`vid2reward.tools.reward_worker` as a fresh interpreter with
a clean environment, ``/dev/null`` for stdin/stdout/stderr, a session of its own (no terminal)
and one socket as its only other descriptor; it isolates itself before it is sent the
program. Everything it sends back is parsed by :mod:`vid2reward.sim.reward_wire` as untrusted
numbers, with a cap on every message's size and a deadline on every whole reply: a reply that
is malformed, too large or late, or a process that dies, is one :class:`RewardError` line and
the process is killed. Nothing it sends is ever unpickled.

:func:`remote_program` wraps one as a :class:`~vid2reward.sim.reward_program.RewardProgram`
whose ``compute(s, a)`` copies the fields the program reads out of the live state view and
returns the reward process's numbers: the simulator (``RewardWrapper``, training workers,
evaluation) stays in a process that runs no reward code.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from vid2reward.sim import reward_wire as wire
from vid2reward.sim.errors import CHECK_FIX, RAISED_FIX, STOPPED_FIX, RewardError
from vid2reward.sim.reward_program import (
    MAX_COMPONENT_NAME,
    RewardProgram,
    one_line,
)
from vid2reward.sim.state_record import StateSchema, encode, fields_read, schema_for
from vid2reward.sim.vec_env import exit_reason
from vid2reward.tools.reward_check import check_reward_source, static_weights
from vid2reward.tools.reward_worker import MARKER_ENV

STARTUP_SECONDS = 60.0
"""Wall time a reward process may take to start and isolate itself (an interpreter and numpy
on a busy 2-core machine)."""

GRACE_SECONDS = 2.0
"""Wall time a reply may take beyond the time its calls were allowed."""

_PASSED_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""The caller's variables the reward process gets: OpenBLAS needs these on some processors to
compute right. Everything else (API keys included) stays behind."""


def _clean_environment() -> dict[str, str]:
    env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8", MARKER_ENV: "1",
           # one thread: no BLAS thread pool exists when Landlock is applied
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in _PASSED_VARIABLES if k in os.environ})
    return env


def valid_component_name(name: str) -> bool:
    """Whether a component name from a reward process may be shown: 1-64 printable characters."""
    return 0 < len(name) <= MAX_COMPONENT_NAME and one_line(name, MAX_COMPONENT_NAME) == name


_Parsed = TypeVar("_Parsed")

_LIVE: weakref.WeakSet[RewardProcess] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for process in list(_LIVE):
        process.close()


class RewardProcess:
    """One reward process running one program.

    Args:
        source: the program (already passed by the static check).
        name: its label in messages (compiled under this name, so line numbers refer to it).
        memory_mb: address space the process may add to what it uses once started.
        cpu_seconds: CPU time it may use in all (None: no bound).
        load_seconds: wall time the module's top level may take.
        call_seconds: wall time one ``compute_reward`` call may take.
        trust: run unisolated where the OS cannot isolate (``--trust-reward-code``).
        unrestricted_for_tests: run the program with the real builtins, as if it had
            escaped the restricted Python (only the OS layer's tests use it).

    Raises:
        RewardError: the process could not start or isolate itself, or the program fails to
            load (the message says why in one line).
    """

    def __init__(self, source: str, name: str, *, memory_mb: int = 2048,
                 cpu_seconds: float | None = None, load_seconds: float = 5.0,
                 call_seconds: float = 1.0, trust: bool = False,
                 unrestricted_for_tests: bool = False) -> None:
        self.name = name
        self.call_seconds = call_seconds
        self.schema: StateSchema | None = None
        self.isolation: wire.IsolationReport | None = None
        self._closed = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        self._fd = ours.fileno()
        argv = [sys.executable, "-I", "-m", "vid2reward.tools.reward_worker",
                "--fd", str(theirs.fileno()), "--parent-pid", str(os.getpid()),
                "--memory-mb", str(memory_mb)]
        if cpu_seconds is not None:
            argv += ["--cpu-seconds", str(cpu_seconds)]
        if trust:
            argv.append("--trust")
        if unrestricted_for_tests:
            argv.append("--unrestricted-for-tests")
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), close_fds=True,
                start_new_session=True, env=_clean_environment(), cwd="/")
        except OSError as exc:
            ours.close()
            raise RewardError(f"cannot start the reward process: {exc}", where=name,
                              fix="free memory or processes (ulimit -u) and try again") from None
        finally:
            theirs.close()
        _LIVE.add(self)
        try:
            kind, payload = self._receive({wire.READY: wire.READY_BYTES,
                                           wire.ERROR: wire.ERROR_CAP}, STARTUP_SECONDS,
                                          "start")
            if kind == wire.ERROR:
                raise RewardError(f"the reward process refused to start: "
                                  f"{one_line(self._parse(wire.parse_error, payload).text)}",
                                  where=name, fix=CHECK_FIX)
            self.isolation = self._parse(wire.parse_ready, payload)
            if not self.isolation.isolated and not trust:
                raise RewardError("the reward process was not isolated", where=name,
                                  fix="run on Linux with seccomp and Landlock, or pass --trust-reward-code for code you trust")
            wire.send(self._fd, wire.LOAD, wire.json_payload(
                {"source": source, "name": name, "load_seconds": load_seconds,
                 "call_seconds": call_seconds}))
            kind, payload = self._receive({wire.LOADED: 0, wire.ERROR: wire.ERROR_CAP},
                                          load_seconds + GRACE_SECONDS, "load")
            if kind == wire.ERROR:
                text = self._parse(wire.parse_error, payload).text
                what, _, fix = text.partition("\n")
                raise RewardError(one_line(what), where=name,
                                  fix=one_line(fix) or FAILURE_FIXES["load"])
        except BaseException:
            self.close()
            raise

    # -- the exchange ---------------------------------------------------------------------
    def _fail(self, why: str) -> RewardError:
        """Kill the process and the error that says why (one line)."""
        self.close()
        return RewardError(one_line(why), where=self.name, fix=CHECK_FIX)

    def _receive(self, accept: dict[int, int], seconds: float, what: str) -> tuple[int, bytes]:
        if self._closed:
            raise RewardError("the reward process was stopped", where=self.name, fix=STOPPED_FIX)
        try:
            return wire.receive(self._fd, accept, time.monotonic() + seconds)
        except wire.ChannelClosed:
            self._proc.wait(timeout=5)
            raise self._fail(f"the reward process ended during {what}: "
                             f"{exit_reason(self._proc.returncode)}") from None
        except wire.ChannelError as exc:
            if "deadline" in str(exc):
                raise self._fail(f"compute_reward ran longer than {seconds:g} s (the reward "
                                 f"process was stopped during {what})") from None
            raise self._fail(f"the reward process sent a reply that was refused ({exc}) and "
                             f"was stopped") from None
        except BaseException:  # e.g. a step timeout's alarm mid-reply: the channel is lost
            self.close()
            raise

    def _parse(self, parse: Callable[..., _Parsed], *args: Any) -> _Parsed:
        """A reply read by one of reward_wire's parsers; a malformed one kills the process."""
        try:
            return parse(*args)
        except wire.ChannelError as exc:
            raise self._fail(f"the reward process sent a reply that was refused ({exc}) and "
                             f"was stopped") from None

    def set_schema(self, schema: StateSchema) -> None:
        """Declare the layout of the rows every later :meth:`compute` sends."""
        wire.send(self._fd, wire.SCHEMA, wire.json_payload(schema.to_json()))
        self.schema = schema

    def compute(self, states: np.ndarray, actions: np.ndarray) -> wire.RewardBatch:
        """The program's outputs on a batch of states (rows laid out by the schema).

        Raises:
            RewardError: the program raised, ran too long or returned a bad value on some
                state (the message names the call: "on batch row i"; :attr:`last_failure`
                has the details), or the process died or sent a malformed reply.
        """
        if self._closed:
            raise RewardError("the reward process was stopped", where=self.name, fix=STOPPED_FIX)
        n = int(states.shape[0])
        try:
            wire.send(self._fd, wire.BATCH, wire.batch_payload(states, actions))
        except OSError:
            raise self._fail("the reward process is gone (its channel is closed)") from None
        kind, payload = self._receive({wire.RESULT: wire.result_cap(n),
                                       wire.ERROR: wire.ERROR_CAP},
                                      n * self.call_seconds + GRACE_SECONDS, "a batch")
        if kind == wire.ERROR:
            raise ProgramFailed(self._parse(wire.parse_error, payload), self.name)
        return self._parse(wire.parse_result, payload, n, valid_component_name)

    def close(self) -> None:
        """Stop the process (at once: it holds nothing worth a goodbye) and close the channel."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        wire.forget(self._fd)
        try:
            self._sock.close()
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> RewardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FAILURE_FIXES = {
    "raised": RAISED_FIX,
    "timeout": "make compute_reward faster: each call has a time limit (no long loops)",
    "output": "return (total, {name: number, ...}) with finite numbers",
    "load": "keep the module's top level to imports, WEIGHTS and functions",
}
"""The fix line of a :class:`ProgramFailed`, by the reward process's failure code."""


def describe_failure(failure: wire.ProgramFailure, step: int | None = None) -> str:
    """One line for what the program did wrong, with the episode step and the program line."""
    text = one_line(failure.text, 300)
    at_step = f" at episode step {step}" if step is not None else ""
    at_line = f" (line {failure.line})" if failure.line is not None else ""
    if failure.code == "raised":
        kind, _, message = text.partition(": ")
        return f"compute_reward raised {kind}{at_step}{at_line}: {message}"
    if failure.code == "timeout":
        at_line = f" (interrupted on line {failure.line})" if failure.line is not None else ""
        return f"compute_reward {text}{at_step}{at_line}"
    if failure.code == "output":
        return f"{text}{at_step}"
    return f"the reward process failed: {text}"


class ProgramFailed(RewardError):
    """The program itself failed on a state (raised, overran its time, returned a bad value).

    ``failure`` is the reward process's report (code, batch row, program line, cleaned text).
    """

    def __init__(self, failure: wire.ProgramFailure, name: str, step: int | None = None) -> None:
        super().__init__(describe_failure(failure, step), where=name,
                         fix=FAILURE_FIXES.get(failure.code, CHECK_FIX))
        self.failure = wire.ProgramFailure(failure.code, failure.step, failure.line,
                                           one_line(failure.text, 300))
        self.program_name = name

    def __reduce__(self):  # crosses to another process (an env worker's reply) as its message
        return (RewardError, (self.what, self.where, self.fix, self.exit_code))

    @property
    def row(self) -> int | None:
        """The batch row of the state it failed on."""
        return self.failure.step

    def at_step(self, step: int) -> ProgramFailed:
        """The same failure, said at an episode step (``sim.segment_reward.RowFailure``)."""
        return ProgramFailed(self.failure, self.program_name, step)


# -- a program whose compute runs in a reward process ---------------------------------------------

@dataclass(frozen=True)
class ProcessSettings:
    """How the reward process of a :func:`remote_program` is started (see RewardProcess)."""

    memory_mb: int = 2048
    cpu_seconds: float | None = None
    load_seconds: float = 5.0
    call_seconds: float = 1.0
    trust: bool = False


_SHARED: dict[tuple[str, str, ProcessSettings], RewardProcess] = {}


class RemoteCompute:
    """``compute(s, a)`` of a :func:`remote_program`: one reward process per program and
    settings in this process (the envs of a training worker share it), started at the first
    call (a worker builds its envs first)."""

    def __init__(self, source: str, name: str, settings: ProcessSettings) -> None:
        from vid2reward.sim.state import STATE_FIELDS  # the simulator side only

        self.source, self.name, self.settings = source, name, settings
        self.fields = fields_read(source, [f.name for f in STATE_FIELDS])
        self._row: np.ndarray | None = None
        self.last_seconds: float | None = None
        """The last call's own time, as the reward process timed it (the round trip excluded)."""

    def process(self) -> RewardProcess:
        """The running reward process (started, or restarted after a failure, on demand)."""
        key = (self.source, self.name, self.settings)
        proc = _SHARED.get(key)
        if proc is None or proc._closed:
            s = self.settings
            proc = RewardProcess(self.source, self.name, memory_mb=s.memory_mb,
                                 cpu_seconds=s.cpu_seconds, load_seconds=s.load_seconds,
                                 call_seconds=s.call_seconds, trust=s.trust)
            _SHARED[key] = proc
        return proc

    def __call__(self, s: Any, a: Any) -> tuple[float, dict[str, float]]:
        values = {name: getattr(s, name) for name in self.fields}
        proc = self.process()
        if proc.schema is None:
            proc.set_schema(schema_for(values, a))
        schema = proc.schema
        assert schema is not None
        if self._row is None or self._row.shape[1] != schema.width:
            self._row = np.empty((1, schema.width))
        encode(values, schema, self._row[0])
        action = np.asarray(a, dtype=np.float64).reshape(1, -1)
        try:
            batch = proc.compute(self._row, action)
        except ProgramFailed as exc:
            raise ProgramFailed(exc.failure, self.name, getattr(s, "step", None)) from None
        seconds = float(batch.seconds[0])  # a report only: bounded, never trusted further
        self.last_seconds = min(max(seconds, 0.0), proc.call_seconds) if np.isfinite(seconds) \
            else None
        return float(batch.totals[0]), batch.components(0)

    def compute_rows(self, schema: StateSchema, rows: np.ndarray,
                     actions: np.ndarray) -> wire.RewardBatch:
        """Many states in one round trip (``sim.segment_reward.BatchReward``)."""
        proc = self.process()
        if proc.schema != schema:
            proc.set_schema(schema)
        return proc.compute(rows, actions)  # ProgramFailed.row names the failing row


def remote_program(source: str, name: str, settings: ProcessSettings = ProcessSettings()
                   ) -> RewardProgram:
    """The program, statically checked, whose ``compute`` runs in a reward process.

    Raises:
        RewardError: the source breaks a rule of the static check.
    """
    check_reward_source(source, name)
    return RewardProgram(source=source, name=name, compute=RemoteCompute(source, name, settings),
                         weights=static_weights(source))


def process_isolation(program: RewardProgram) -> dict[str, Any] | None:
    """What isolated the running reward process of a :func:`remote_program` (None before its
    first call, or for another program)."""
    compute = program.compute
    if not isinstance(compute, RemoteCompute):
        return None
    proc = _SHARED.get((compute.source, compute.name, compute.settings))
    return None if proc is None or proc.isolation is None else proc.isolation.as_dict()


def close_process(program: RewardProgram) -> None:
    """Stop the reward process of a :func:`remote_program`, if it runs (it restarts on the
    next call)."""
    compute = program.compute
    if isinstance(compute, RemoteCompute):
        proc = _SHARED.pop((compute.source, compute.name, compute.settings), None)
        if proc is not None:
            proc.close()


def close_processes(source: str, name: str) -> None:
    """Stop every reward process of this program in this process, whatever its settings."""
    for key in [k for k in _SHARED if k[0] == source and k[1] == name]:
        _SHARED.pop(key).close()
