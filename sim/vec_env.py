"""A vectorised env that spreads batches of envs over a few worker processes.

SB3's SubprocVecEnv runs one process per env: on a 2-core machine with many envs the pipe
traffic and context switches cost more than they save. Here each worker holds a DummyVecEnv of
several envs, so one message per worker per step carries a whole batch, and the workers step in
parallel while the main process runs the policy. An exception inside a worker (a reward program
that raises, say) comes back and is re-raised in the main process, unchanged.

Two generic guards serve callers that run untrusted code in the envs (the reward sandbox in
``vid2reward.tools``): ``worker_init`` runs first in every worker (to set resource limits, say),
and ``step_timeout`` bounds each step and reset. A worker interrupts itself with SIGALRM when a
command overruns (so the error names the line that was running), and the main process kills a
worker that still does not answer; both, and a worker that dies, raise :class:`EnvWorkerError`.

Replies are read with :mod:`vid2reward.sim.safe_pickle` (an allowlist, a size cap): a worker
whose code went rogue cannot run code in the main process through a crafted pickle. Workers
ignore the terminal's SIGINT: Ctrl-C is the main process's to handle (it closes the workers).
They ignore it from their first instruction: SIGINT is blocked while a worker is started, so a
Ctrl-C during its start-up (seconds of imports under load) stays pending until the worker
ignores it, instead of a KeyboardInterrupt traceback from every worker and a broken pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import select
import signal
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnvIndices

from vid2reward.sim import safe_pickle


class WorkerFailure:
    """An exception raised inside a worker, carried back so the main process can re-raise it."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class EnvWorkerError(RuntimeError):
    """A worker overran the step timeout, died, or stopped answering: the message says which."""


class _StepTimeout(BaseException):
    # A BaseException so that the `except Exception` of env or reward code cannot swallow it.
    pass


# Grace the main process gives a worker past ``step_timeout`` to report its own timeout
# before it is killed (the worker cannot interrupt itself inside a long C call).
KILL_GRACE_SECONDS = 2.0

# Startup (imports, env and reward construction) gets a longer bound, when steps have one.
STARTUP_TIMEOUT_SECONDS = 120.0

_SIGNAL_REASONS = {
    signal.SIGKILL: "killed (out of memory, or by its limits)",
    signal.SIGXCPU: "over its CPU-time limit",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted (often: out of memory under its memory limit)",
    signal.SIGBUS: "crashed (bus error)",
}


def exit_reason(exitcode: int | None) -> str:
    """Why a process ended, in words, from its ``multiprocessing`` exit code."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"{_SIGNAL_REASONS.get(sig, 'killed')} [{sig.name}]"
    return f"exited with code {exitcode}"


def _on_alarm(signum: int, frame: Any) -> None:
    raise _StepTimeout()


def _where(exc: BaseException) -> str:
    """``file line N in func`` of the innermost frame an exception passed through."""
    # The innermost frame is the alarm handler itself: report the code it interrupted.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.name != "_on_alarm"]
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{last.filename} line {last.lineno} in {last.name}"


class WorkerEnvs(DummyVecEnv):
    """A worker's envs: SB3's DummyVecEnv, except that a step's infos are returned as they
    are, not deep-copied (a quarter of a Hopper step's time): in a worker they are read once
    or pickled to the main process at once, and each step's env returns new dicts."""

    def step_wait(self):  # type: ignore[override]
        # DummyVecEnv.step_wait (SB3 2.x) without its deepcopy of the infos.
        for i, env in enumerate(self.envs):
            obs, self.buf_rews[i], terminated, truncated, info = env.step(self.actions[i])
            self.buf_dones[i] = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self.buf_infos[i] = info
            self._save_obs(i, obs)
        return (self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones),
                list(self.buf_infos))


def _serve(envs: DummyVecEnv, cmd: str, data: Any) -> Any:
    """Carry out one command on the worker's envs and return the reply."""
    if cmd == "step":
        envs.step_async(data)
        return envs.step_wait()
    if cmd == "reset":
        seed, options = data
        if seed is not None:
            envs.seed(seed)
        envs.set_options(options)
        obs = envs.reset()
        return obs, envs.reset_infos
    if cmd == "call":
        method, args, kwargs, indices = data
        return envs.env_method(method, *args, indices=indices, **kwargs)
    if cmd == "get_attr":
        return envs.get_attr(data[0], indices=data[1])
    if cmd == "set_attr":
        return envs.set_attr(data[0], data[1], indices=data[2])
    if cmd == "is_wrapped":
        return envs.env_is_wrapped(data[0], indices=data[1])
    if cmd == "run":  # a function of the main process's choosing, on this worker's envs
        fn, args, _steps = data
        return fn(envs, *args)
    if cmd == "close":
        envs.close()
        return None
    raise ValueError(f"unknown worker command {cmd!r}")


_PIPE: dict[str, int] = {}


def worker_pipe_fd() -> int | None:
    """In a worker process: the descriptor of its pipe to the main process (None elsewhere).
    A sandbox that isolates the worker keeps exactly this one writable."""
    return _PIPE.get("fd")


def _worker(remote: Any, parent_remote: Any, fns_wrapper: CloudpickleWrapper,
            worker_init: Callable[[], None] | None, step_timeout: float | None) -> None:
    # Ctrl-C in the terminal reaches the whole process group; the main process stops the
    # workers itself (close), so a worker must not die mid-step with a KeyboardInterrupt.
    # SIGINT was blocked since the worker was started (_sigint_blocked): one that came during
    # the start-up is pending, and ignoring it discards it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parent_remote.close()
    _PIPE["fd"] = remote.fileno()
    try:
        if worker_init is not None:
            worker_init()
        envs = WorkerEnvs(fns_wrapper.var)
    except Exception as exc:  # e.g. a reward program that fails to load
        remote.send(WorkerFailure(exc))
        return
    if step_timeout is not None:
        signal.signal(signal.SIGALRM, _on_alarm)
    remote.send("ready")
    try:
        while True:
            cmd, data = remote.recv()
            # Two setitimer calls per batch (< 1 us): the alarm raises _StepTimeout in here.
            # A "run" of n steps may take n step timeouts.
            timed = step_timeout is not None and cmd in ("step", "reset", "run")
            bound = (step_timeout or 0.0) * (data[2] if cmd == "run" else 1)
            try:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, bound)
                try:
                    reply = _serve(envs, cmd, data)
                finally:
                    if timed:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            except _StepTimeout as exc:
                what = "env step" if cmd == "run" else f"env {cmd}"
                reply = WorkerFailure(EnvWorkerError(
                    f"an {what} took longer than the step timeout of {step_timeout:g} s "
                    f"(interrupted at {_where(exc)})"))
            except Exception as exc:  # the env or the reward failed: the caller decides
                reply = WorkerFailure(exc)
            remote.send(reply)
            if cmd == "close":
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass


@contextmanager
def _sigint_blocked(start_method: str) -> Iterator[None]:
    """SIGINT blocked in this thread while inside: a process started here inherits the mask
    (through fork and exec alike: "spawn", "fork", and the children of a forkserver first
    started here) and so cannot be interrupted before it ignores SIGINT. This process loses
    nothing: a SIGINT is handled by another thread, or on leaving."""
    if start_method != "fork":
        # The resource tracker's launch unblocks SIGINT when it is done (CPython's
        # resource_tracker): start it first, so it does not do that inside this block.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class BatchedSubprocVecEnv(VecEnv):
    """``num_workers`` processes, each stepping a contiguous slice of the envs in a DummyVecEnv.

    Args:
        env_fns: one factory per env, as for SB3's vectorised envs (must be picklable).
        num_workers: worker processes (capped at the number of envs). 2 suits a 2-core machine.
        start_method: multiprocessing start method. "spawn" is safe when the parent already
            has threads (torch, rendering); "forkserver" and "fork" start faster.
        worker_init: called first in every worker, before any env is made (must be picklable),
            e.g. to set resource limits.
        step_timeout: seconds one step or reset of a worker's batch of envs may take; None =
            no bound. A worker that overruns it raises :class:`EnvWorkerError` naming where it
            was interrupted; one that does not answer ``KILL_GRACE_SECONDS`` later is killed.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_workers: int = 2,
                 start_method: str = "spawn", worker_init: Callable[[], None] | None = None,
                 step_timeout: float | None = None) -> None:
        n = len(env_fns)
        num_workers = max(1, min(num_workers, n))
        bounds = np.linspace(0, n, num_workers + 1).round().astype(int)
        self._slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        ctx = mp.get_context(start_method)
        self.remotes: list[Any] = []
        self.processes: list[Any] = []
        self._pollers: list[Any] = []
        self.closed = False
        self.step_timeout = step_timeout
        for sl in self._slices:
            remote, work_remote = ctx.Pipe()
            # daemon: a worker left unclosed (an exception before close()) is ended at exit
            # instead of waiting for commands for ever, which kept the interpreter from exiting.
            proc = ctx.Process(target=_worker, daemon=True,  # type: ignore[attr-defined]  # typeshed's BaseContext lacks Process
                               args=(work_remote, remote, CloudpickleWrapper(list(env_fns[sl])),
                                     worker_init, step_timeout))
            with _sigint_blocked(start_method):
                proc.start()
            work_remote.close()
            self.remotes.append(remote)
            self.processes.append(proc)
            # A select.poll per pipe: ~10x cheaper per step than Connection.poll (which builds
            # a selector each call). Connections buffer nothing, so fd readiness = a reply.
            poller = select.poll()
            poller.register(remote.fileno(), select.POLLIN)
            self._pollers.append(poller)
        try:
            # Wait for "ready" (or a load failure); bounded only when steps are.
            startup = None if step_timeout is None else max(STARTUP_TIMEOUT_SECONDS, step_timeout)
            self._gather(range(len(self.remotes)), timeout=startup)
            spaces = self._gather_one(0, ("get_attr", ("observation_space", [0])))[0], \
                self._gather_one(0, ("get_attr", ("action_space", [0])))[0]
        except BaseException:
            self.close()
            raise
        super().__init__(n, spaces[0], spaces[1])

    # -- messaging ------------------------------------------------------------------------
    def _recv(self, worker: int, timeout: float | None = None) -> Any:
        """The worker's reply; waits at most ``timeout`` seconds (None = for ever)."""
        remote = self.remotes[worker]
        if timeout is not None and not self._pollers[worker].poll(timeout * 1000):
            self.processes[worker].kill()  # hung where its own alarm cannot reach (a C call)
            self.processes[worker].join(timeout=5)
            raise EnvWorkerError(f"env worker {worker} did not answer within {timeout:g} s and "
                                 f"was killed")
        try:
            reply = safe_pickle.recv(remote)
        except EOFError:
            proc = self.processes[worker]
            proc.join(timeout=5)
            raise EnvWorkerError(f"env worker {worker} died: {exit_reason(proc.exitcode)}") from None
        except safe_pickle.UnsafePickleError as exc:  # never unpickled: the worker is rogue
            self.processes[worker].kill()
            self.processes[worker].join(timeout=5)
            raise EnvWorkerError(f"env worker {worker} sent a reply that was refused ({exc}) "
                                 f"and was killed") from None
        if isinstance(reply, WorkerFailure):
            raise reply.exc
        return reply

    def _gather(self, workers: Sequence[int] | range, timeout: float | None = None) -> list[Any]:
        # Receive from every worker before raising, so no reply is left in a pipe.
        replies, failure = [], None
        for w in workers:
            try:
                replies.append(self._recv(w, timeout))
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failure = failure or exc
        if failure is not None:
            raise failure
        return replies

    def _gather_one(self, worker: int, message: tuple[str, Any]) -> Any:
        self.remotes[worker].send(message)
        return self._recv(worker)

    # -- stepping -------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        for remote, sl in zip(self.remotes, self._slices, strict=True):
            remote.send(("step", actions[sl]))

    def _command_timeout(self, steps: int = 1) -> float | None:
        if self.step_timeout is None:
            return None
        return self.step_timeout * steps + KILL_GRACE_SECONDS

    @property
    def slices(self) -> list[slice]:
        """The envs each worker steps, in worker order."""
        return list(self._slices)

    def run_in_workers(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                       steps: int = 1) -> list[Any]:
        """``fn(envs, *args[w])`` in every worker ``w`` at once, on its DummyVecEnv; the
        replies in worker order. ``fn`` must be picklable (a module-level function); ``steps``
        is how many env steps it takes, for the step timeout. Replies are read as every reply
        is: with an allowlist (plain data and numpy arrays)."""
        for remote, worker_args in zip(self.remotes, args, strict=True):
            remote.send(("run", (fn, worker_args, steps)))
        return self._gather(range(len(self.remotes)), timeout=self._command_timeout(steps))

    def step_wait(self):  # type: ignore[override]
        parts = self._gather(range(len(self.remotes)), timeout=self._command_timeout())
        obs = np.concatenate([p[0] for p in parts])
        rews = np.concatenate([p[1] for p in parts])
        dones = np.concatenate([p[2] for p in parts])
        infos = [info for p in parts for info in p[3]]
        return obs, rews, dones, infos

    def reset(self):  # type: ignore[override]
        for remote, sl in zip(self.remotes, self._slices, strict=True):
            # The worker's DummyVecEnv seeds its envs seed, seed+1, ...: the same seeds a
            # single DummyVecEnv over all envs would give.
            opts = self._options[sl.start] if self._options else {}
            remote.send(("reset", (self._seeds[sl.start], opts)))
        parts = self._gather(range(len(self.remotes)), timeout=self._command_timeout())
        self.reset_infos = [info for p in parts for info in p[1]]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate([p[0] for p in parts])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for remote in self.remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    # -- attribute access, routed to the worker that owns each index ----------------------
    def _route(self, indices: VecEnvIndices) -> list[tuple[int, list[int]]]:
        wanted = self._get_indices(indices)
        routes = []
        for w, sl in enumerate(self._slices):
            local = [i - sl.start for i in wanted if sl.start <= i < sl.stop]
            if local:
                routes.append((w, local))
        return routes

    def _ask(self, cmd: str, payload: Callable[[list[int]], tuple], indices: VecEnvIndices) -> list[Any]:
        routes = self._route(indices)
        for w, local in routes:
            self.remotes[w].send((cmd, payload(local)))
        return [x for reply in self._gather([w for w, _ in routes]) for x in reply]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._ask("get_attr", lambda local: (attr_name, local), indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        routes = self._route(indices)
        for w, local in routes:
            self.remotes[w].send(("set_attr", (attr_name, value, local)))
        self._gather([w for w, _ in routes])

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return self._ask("call", lambda local: (method_name, method_args, method_kwargs, local),
                         indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return self._ask("is_wrapped", lambda local: (wrapper_class, local), indices)
