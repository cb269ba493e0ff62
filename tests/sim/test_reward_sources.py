"""The RewardSource seam: frames rendered in real env workers (sandboxed too), scored in a
batch in the training process, held between frames, added to the program's reward, logged."""

import json

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from vid2reward.sim.envs import make_env
from vid2reward.sim.reward import RewardWrapper, load_reward_program
from vid2reward.sim.reward_sources import FrameSpec, FrameTap, RewardSource, SourceRewardVecEnv
from vid2reward.sim.train import TrainConfig

ONE = "def compute_reward(s, a):\n    return 1.0, {'alive': 1.0}\n"


class Brightness(RewardSource):
    """Mean pixel value in [0, 1] plus the row's running frame count (to see holding)."""

    name = "bright"

    def __init__(self, every: int = 1, weight: float = 2.0) -> None:
        self.frames = FrameSpec(width=32, height=24, every=every)
        self.weight = weight
        self.calls: list[tuple[tuple[int, ...], list[int], list[bool]]] = []
        self.count: dict[int, int] = {}

    def components(self, frames, env_indices, episode_starts):
        self.calls.append((frames.shape, env_indices.tolist(), episode_starts.tolist()))
        counts = []
        for i, start in zip(env_indices.tolist(), episode_starts.tolist(), strict=True):
            self.count[i] = 1 if start else self.count.get(i, 0) + 1
            counts.append(self.count[i])
        return {"bright_mean": frames.mean(axis=(1, 2, 3)) / 255.0,
                "bright_count": np.asarray(counts, dtype=float)}

    def cache_key(self):
        return {"kind": "brightness", "weight": self.weight, "every": self.frames.every}


def _envs(every: int, n: int = 2, max_steps: int = 7) -> tuple[SourceRewardVecEnv, Brightness]:
    program = load_reward_program(ONE)

    def make():
        env = RewardWrapper(make_env("Hopper-v5", max_episode_steps=max_steps), program, "Hopper-v5")
        return FrameTap(env, "Hopper-v5", FrameSpec(width=32, height=24, every=every))

    from stable_baselines3.common.monitor import Monitor
    source = Brightness(every=every)
    venv = SourceRewardVecEnv(DummyVecEnv([lambda: Monitor(make()) for _ in range(n)]), source)
    venv.seed(0)
    return venv, source


def test_frames_every_k_steps_are_held_and_added():
    venv, source = _envs(every=3)
    venv.reset()
    actions = np.zeros((2, 3))
    rewards, infos = [], []
    for _ in range(7):  # one 7-step episode: frames on steps 1, 4 and 7
        _, r, dones, info = venv.step(actions)
        rewards.append(r)
        infos.append(info)
    assert [c[0] for c in source.calls] == [(2, 24, 32, 3)] * 3  # both envs in one batch
    assert [c[2] for c in source.calls] == [[True, True], [False, False], [False, False]]
    rewards = np.array(rewards)
    # count held for the steps in between: 1,1,1 then 2,2,2 then 3
    counts = np.array([1, 1, 1, 2, 2, 2, 3])
    bright = rewards[:, 0] - 1.0 - 2.0 * counts
    assert np.all(bright > 0) and np.all(bright < 2.0)
    assert np.allclose(bright[:3], bright[0]) and np.allclose(bright[3:6], bright[3])
    assert all(dones)
    done_info = infos[-1][0]
    comps = done_info["episode_components"]
    assert comps["alive"] == 7.0 and comps["bright_count"] == float(counts.sum())
    assert done_info["episode"]["r"] == np.float32(rewards[:, 0].sum()) or \
        abs(done_info["episode"]["r"] - rewards[:, 0].sum()) < 1e-3
    assert "source_frame" not in done_info
    calls = len(source.calls)
    while len(source.calls) == calls:  # a new episode: its first frame is flagged as such
        _, r, _, _ = venv.step(actions)
        if len(source.calls) == calls:  # no frame yet in this episode: nothing held over
            assert np.allclose(r, 1.0)
    assert source.calls[-1][2] == [True, True]
    venv.close()


def test_sandboxed_workers_render_for_the_source(tmp_path):
    from vid2reward.tools.reward_sandbox import SandboxLimits, sandboxed_program
    from vid2reward.tools.reward_training import train_sandboxed

    source = Brightness(every=2)
    config = TrainConfig(env_id="Hopper-v5", total_steps=256, n_envs=2, n_workers=1,
                         n_steps=128, batch_size=128, n_epochs=1)
    result = train_sandboxed(config, sandboxed_program(ONE, "one.py"), tmp_path / "out",
                             limits=SandboxLimits(memory_mb=1024), reward_source=source,
                             trust=True)
    assert result.status == "finished", result.metrics["failure"]
    assert source.calls and all(c[0][1:] == (24, 32, 3) for c in source.calls)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"alive", "bright_mean", "bright_count"} <= set(metrics["components"])
    assert 0 < metrics["components"]["bright_mean"]["per_step_mean"] < 1
    assert metrics["config"]["reward_source"] == source.cache_key()
    rows = sum(len(c[1]) for c in source.calls)
    # one frame per env every 2 steps of the training's clock, all envs in the same batch
    assert rows == 2 * len(source.calls) and abs(rows - metrics["steps"] / 2) <= 2
    plain = TrainConfig(env_id="Hopper-v5")
    keyed = TrainConfig(env_id="Hopper-v5", reward_source=source.cache_key())
    assert plain.cache_key() != keyed.cache_key()
