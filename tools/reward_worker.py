"""The reward process: runs one untrusted reward program, and nothing else.

Started by :class:`~vid2reward.tools.reward_client.RewardProcess` as a fresh interpreter
(``python -I -m vid2reward.tools.reward_worker --fd N ...``): nothing is inherited from the
caller's heap, its environment holds no secrets (the launcher passes a clean one), its
stdin/stdout/stderr are ``/dev/null``, it has no terminal (a new session), and its only other
descriptor is the channel ``N``. It imports only numpy and the lean modules below (no MuJoCo,
no gymnasium, no torch: the simulator lives in another process), checks that it has exactly
one thread, limits itself and is isolated by the OS (:mod:`~vid2reward.tools.reward_isolation`)
before it reads the program's source. Then it answers batches of states with numbers
(:mod:`vid2reward.sim.reward_wire`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from signal import ITIMER_REAL, setitimer
from typing import Any

import numpy as np

from vid2reward.sim import reward_wire as wire
from vid2reward.sim.errors import BUG_FIX, RewardError, UserError
from vid2reward.sim.reward_program import (
    MAX_COMPONENTS,
    RewardProgram,
    check_component_names,
    load_reward_program,
    one_line,
    real_number,
)
from vid2reward.sim.state_record import StateCopy, StateSchema, decode
from vid2reward.tools import reward_isolation
from vid2reward.tools.reward_python import SandboxTimeout, program_line, safe_builtins, time_limit

MARKER_ENV = "VID2REWARD_REWARD_PROCESS"
"""Set to 1 in the reward process's (otherwise clean) environment by its launcher."""


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vid2reward.tools.reward_worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=float, default=None)
    parser.add_argument("--trust", action="store_true")
    parser.add_argument("--unrestricted-for-tests", action="store_true",
                        help="run the program with the real builtins, as if it had escaped "
                             "the restricted Python (the tests of the OS layer)")
    return parser.parse_args(argv)


def _thread_count() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def _only_the_channel(fd: int) -> None:
    """Close every descriptor but stdio (``/dev/null``) and the channel, whatever was passed."""
    for name in os.listdir("/proc/self/fd"):
        other = int(name)
        if other > 2 and other != fd:
            try:
                os.close(other)
            except OSError:
                pass  # the listing's own descriptor, closed already


def _isolate(args: argparse.Namespace) -> wire.IsolationReport:
    # Die with the parent (checked against the pid it gave us: it may have died already).
    reward_isolation.die_with_parent()
    if os.getppid() != args.parent_pid:
        raise RuntimeError("the parent of the reward process has gone")
    _only_the_channel(args.fd)
    threads = _thread_count()
    if threads != 1 and not args.trust:
        raise RewardError(f"the reward process has {threads} threads before isolation; "
                          f"Landlock would not cover them", fix=BUG_FIX)
    reward_isolation.limit_process(args.memory_mb, args.cpu_seconds)
    reward_isolation.set_write_fds((args.fd,))
    report = reward_isolation.enter_isolation(args.trust, allow_threads=False)
    return wire.IsolationReport(bool(report["isolated"]), bool(report["seccomp"]),
                                report["landlock_abi"], int(report["uid"]),
                                bool(report["no_new_privs"]), threads)


def _load(spec: dict[str, Any], unrestricted: bool) -> RewardProgram:
    source, name = str(spec["source"]), str(spec["name"])
    load_seconds = float(spec["load_seconds"])
    exec_globals = None if unrestricted else {"__builtins__": safe_builtins()}
    try:
        with time_limit(load_seconds):
            return load_reward_program(source, name=name, exec_globals=exec_globals)
    except SandboxTimeout as exc:
        line = program_line(exc, name)
        at = f" (interrupted on line {line})" if line else ""
        raise RewardError(f"the module's top level ran longer than {load_seconds:g} s{at}",
                          where=name, fix="the top level may only import and define names; "
                                          "do the work inside compute_reward") from None


def _on_alarm(signum: int, frame: Any) -> None:
    raise SandboxTimeout()


class _BadOutput(Exception):
    pass


def _number(value: Any, what: str) -> float:
    try:
        return real_number(value)
    except OverflowError:
        raise _BadOutput(f"{what} is too large for a float") from None
    except TypeError:
        raise _BadOutput(f"{what} is {type(value).__name__}, not a number") from None


def _run_batch(program: RewardProgram, schema: StateSchema, states: np.ndarray,
               actions: np.ndarray, call_seconds: float) -> bytes:
    """The RESULT (or ERROR) payload and kind for one batch."""
    n = states.shape[0]
    totals = np.zeros(n)
    seconds = np.zeros(n)
    names: list[str] = []
    rows: list[dict[str, float]] = []
    for i in range(n):
        view = StateCopy(decode(states[i], schema))
        action = actions[i].astype(schema.action_dtype)  # a copy: the program may change it
        try:
            try:  # the SIGALRM handler is installed once (serve): two setitimer calls a state
                setitimer(ITIMER_REAL, call_seconds)
                started = time.perf_counter()
                result = program.compute(view, action)
                seconds[i] = time.perf_counter() - started
            finally:
                setitimer(ITIMER_REAL, 0)
        except SandboxTimeout as exc:
            return _error(wire.ERR_TIMEOUT, f"ran longer than {call_seconds:g} s", i,
                          program_line(exc, program.name))
        except Exception as exc:  # noqa: BLE001 - the program's own bug, reported with its line
            return _error(wire.ERR_RAISED, one_line(f"{type(exc).__name__}: {exc}", 1000), i,
                          program_line(exc, program.name))
        try:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise _BadOutput(f"compute_reward returned {type(result).__name__}, not a "
                                 f"tuple (total, components)")
            totals[i] = _number(result[0], "the total")
            components = result[1]
            if not isinstance(components, dict):
                raise _BadOutput(f"the components are {type(components).__name__}, not a dict "
                                 f"of name -> float")
            try:
                check_component_names(components, program.name)
            except RewardError as exc:
                raise _BadOutput(exc.what) from None
            rows.append({k: _number(v, f"component '{k}'") for k, v in components.items()})
        except _BadOutput as exc:
            return _error(wire.ERR_OUTPUT, str(exc), i, None)
        for key in rows[-1]:
            if key not in names:
                names.append(key)
        if len(names) > MAX_COMPONENTS:
            return _error(wire.ERR_OUTPUT, f"compute_reward returned more than "
                                           f"{MAX_COMPONENTS} different component names", i,
                          None)
    values = np.zeros((n, len(names)))
    present = np.zeros((n, len(names)), dtype=np.uint8)
    column = {name: j for j, name in enumerate(names)}
    for i, row in enumerate(rows):
        for key, value in row.items():
            values[i, column[key]] = value
            present[i, column[key]] = 1
    return bytes([wire.RESULT]) + wire.result_payload(totals, names, values, present, seconds)


def _error(code: int, text: str, step: int | None, line: int | None) -> bytes:
    return bytes([wire.ERROR]) + wire.error_payload(code, text, step, line)


def _reply(fd: int, tagged: bytes) -> None:
    wire.send(fd, tagged[0], tagged[1:])


def serve(args: argparse.Namespace) -> None:
    """Isolate, report it, load the program and answer batches until CLOSE or EOF."""
    fd = args.fd
    try:
        report = _isolate(args)
    except (UserError, OSError, RuntimeError, ValueError) as exc:
        wire.send(fd, wire.ERROR, wire.error_payload(wire.ERR_REFUSED, one_line(str(exc))))
        return
    wire.send(fd, wire.READY, wire.ready_payload(report))
    # From here on the process is isolated: the program's source arrives only now.
    trusted_sizes = {wire.LOAD: wire.MAX_TRUSTED_BYTES, wire.SCHEMA: wire.MAX_TRUSTED_BYTES,
                     wire.BATCH: wire.MAX_TRUSTED_BYTES, wire.CLOSE: 0}
    _, payload = wire.receive(fd, {wire.LOAD: wire.MAX_TRUSTED_BYTES}, None)
    spec = json.loads(payload)
    try:
        program = _load(spec, args.unrestricted_for_tests)
    except RewardError as exc:
        text = exc.what if exc.fix is None else f"{exc.what}\n{exc.fix}"
        wire.send(fd, wire.ERROR, wire.error_payload(wire.ERR_LOAD, text))
        return
    wire.send(fd, wire.LOADED)
    call_seconds = float(spec["call_seconds"])
    signal.signal(signal.SIGALRM, _on_alarm)
    schema = StateSchema(())
    while True:
        kind, payload = wire.receive(fd, trusted_sizes, None)
        if kind == wire.CLOSE:
            return
        if kind == wire.SCHEMA:
            schema = StateSchema.from_json(json.loads(payload))
            continue
        states, actions = wire.parse_batch(payload)
        _reply(fd, _run_batch(program, schema, states, actions, call_seconds))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m vid2reward.tools.reward_worker``."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if os.environ.get(MARKER_ENV) != "1":
        print("error: the reward process is started by vid2reward itself", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        serve(args)
    except (wire.ChannelError, BrokenPipeError, ConnectionResetError):
        return 0  # the parent went away or closed the channel: nothing left to do
    return 0


if __name__ == "__main__":
    sys.exit(main())
