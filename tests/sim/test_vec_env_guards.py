"""BatchedSubprocVecEnv's generic guards: worker_init, step timeouts, dead workers."""

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from vid2reward.sim.vec_env import BatchedSubprocVecEnv, EnvWorkerError


class Misbehaving(gym.Env):
    """A trivial env whose step misbehaves once its counter reaches ``at``."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))

    def __init__(self, how: str, at: int = 3) -> None:
        self.how, self.at, self.count = how, at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.count += 1
        if self.count >= self.at:
            if self.how == "sleep":
                time.sleep(30)  # interruptible: the worker's own alarm ends it
            elif self.how == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == "unsafe-reply":  # a pickle that would run os.system in the parent
                return np.zeros(1, dtype=np.float32), 0.0, False, False, {"x": os.system}
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


def make(how):
    return Misbehaving(how)


def mark(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def step_until_failure(venv, steps=5):
    for _ in range(steps):
        venv.step(np.zeros((venv.num_envs, 1), dtype=np.float32))


def test_worker_init_runs_in_each_worker(tmp_path):
    venv = BatchedSubprocVecEnv([partial(make, "ok")] * 2, num_workers=1,
                                worker_init=partial(mark, tmp_path / "init"))
    try:
        venv.reset()
        step_until_failure(venv)
        assert int((tmp_path / "init").read_text()) == venv.processes[0].pid != os.getpid()
    finally:
        venv.close()


def test_step_timeout_interrupts_and_names_the_line():
    venv = BatchedSubprocVecEnv([partial(make, "sleep")] * 2, num_workers=1, step_timeout=0.5)
    try:
        venv.reset()
        started = time.monotonic()
        with pytest.raises(EnvWorkerError, match=r"longer than the step timeout of 0.5 s "
                                                 r"\(interrupted at .*test_vec_env_guards.py "
                                                 r"line \d+ in step\)"):
            step_until_failure(venv)
        assert time.monotonic() - started < 5
    finally:
        venv.close()


def test_a_dead_worker_is_an_error_not_a_hang():
    venv = BatchedSubprocVecEnv([partial(make, "die")] * 2, num_workers=1, step_timeout=10)
    try:
        venv.reset()
        with pytest.raises(EnvWorkerError, match=r"env worker 0 died: .*\[SIGKILL\]"):
            step_until_failure(venv)
    finally:
        venv.close()


def test_an_unsafe_reply_is_refused_and_the_worker_killed():
    venv = BatchedSubprocVecEnv([partial(make, "unsafe-reply")] * 2, num_workers=1,
                                step_timeout=10)
    try:
        venv.reset()
        with pytest.raises(EnvWorkerError, match=r"env worker 0 sent a reply that was refused "
                                                 r"\(a reply names posix.system"):
            step_until_failure(venv)
        assert not venv.processes[0].is_alive()
    finally:
        venv.close()


def test_workers_ignore_the_terminals_sigint():
    # Ctrl-C reaches the whole process group; only the main process decides what stops.
    venv = BatchedSubprocVecEnv([partial(make, "ok")] * 2, num_workers=1)
    try:
        venv.reset()
        os.kill(venv.processes[0].pid, signal.SIGINT)
        time.sleep(0.3)
        step_until_failure(venv)
        assert venv.processes[0].is_alive()
    finally:
        venv.close()


def _arrive(marker: str, seconds: float) -> str:
    """Called while a starting worker unpickles its env factories: say so (with its pid), then
    take a while, as the imports of a start-up under load do."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return marker


class SlowStartUp:
    """Unpickles, in the worker, by calling :func:`_arrive`."""

    def __init__(self, marker: Path, seconds: float) -> None:
        self.marker, self.seconds = str(marker), seconds

    def __reduce__(self):
        return _arrive, (self.marker, self.seconds)


def make_after(start_up, how):
    return Misbehaving(how)


def test_a_ctrl_c_while_workers_start_up_does_not_kill_them(tmp_path, capfd):
    """Ctrl-C while a worker is still starting (importing, unpickling its envs): it lands
    before the worker could ignore SIGINT, yet the worker neither dies nor prints a traceback."""
    marker = tmp_path / "starting"
    made: dict[str, object] = {}

    def build():
        try:
            made["venv"] = BatchedSubprocVecEnv(
                [partial(make_after, SlowStartUp(marker, 2.0), "ok")] * 2, num_workers=1)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            made["error"] = exc

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 120
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline and builder.is_alive(), made
        time.sleep(0.05)
    os.kill(int(marker.read_text()), signal.SIGINT)  # what the terminal sends the whole group
    builder.join(timeout=120)
    assert "error" not in made, made.get("error")
    venv = made["venv"]
    try:
        venv.reset()
        step_until_failure(venv)
        assert venv.processes[0].is_alive()
    finally:
        venv.close()
    assert "KeyboardInterrupt" not in capfd.readouterr().err
