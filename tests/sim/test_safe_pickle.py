"""Replies from workers are unpickled with an allowlist: data passes, code and forged
objects do not."""

import os
import pickle

import numpy as np
import pytest

from vid2reward.sim import safe_pickle
from vid2reward.sim.envs import make_env
from vid2reward.sim.reward import RewardError
from vid2reward.sim.vec_env import EnvWorkerError, WorkerFailure


class _Shell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_what_workers_send_round_trips():
    env = make_env("Hopper-v5")
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    replies = [
        (np.zeros((2, 11), np.float32), np.ones(2), np.array([True, False]),
         [info, {"episode": {"r": 1.0, "l": 3, "t": 0.1}, "terminal_observation": obs}]),
        env.observation_space, env.action_space, np.float64(2.5), {1, 2}, 1 + 2j,
        WorkerFailure(RewardError("boom", where="r.py", fix="x")),
        WorkerFailure(ZeroDivisionError("z")), WorkerFailure(EnvWorkerError("e")),
    ]
    back = [safe_pickle.loads(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL))
            for r in replies]
    assert [type(b) for b in back] == [type(r) for r in replies]
    assert np.array_equal(back[0][3][1]["terminal_observation"], obs)
    assert back[0][3][0].keys() == info.keys() and back[1] == env.observation_space
    assert str(back[6].exc) == str(replies[6].exc) and back[6].exc.fix == "x"


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps(_Shell(f"touch {marker}"))
    with pytest.raises(safe_pickle.UnsafePickleError, match="posix.system"):
        safe_pickle.loads(data)
    assert not marker.exists()
    pickle.loads(data)  # the plant: plain pickle runs it, which is why workers never get it
    assert marker.exists()


@pytest.mark.parametrize("protocol", [4, 5])
def test_object_arrays_are_refused(protocol):
    data = pickle.dumps(np.array([1, "x"], dtype=object), protocol=protocol)
    with pytest.raises(safe_pickle.UnsafePickleError, match="objects"):
        safe_pickle.loads(data)


def test_an_oversized_reply_is_refused():
    import multiprocessing as mp
    import threading
    receiver, sender = mp.Pipe(duplex=False)

    def send():
        try:
            sender.send_bytes(b"x" * (safe_pickle.MAX_MESSAGE_BYTES + 1))
        except OSError:  # the receiver closed after refusing the size
            pass
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    with pytest.raises(safe_pickle.UnsafePickleError, match="over"):
        safe_pickle.recv(receiver)
    receiver.close()
    thread.join(timeout=10)
