"""Rollouts: run a trained policy (or random actions) on the unmodified env, recording what
the state says each step and, optionally, rendered frames.

A policy directory is what ``train`` writes: ``policy.zip`` (SB3 PPO) plus, when present,
``vecnormalize.pkl`` (observation statistics), ``metrics.json`` (which names the env) and
``reward.py`` (whose ``GAIT_CLOCK_HZ``, if any, the policy's observations carry).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from stable_baselines3 import PPO

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.gait_clock import policy_gait_clock
from vid2reward.sim.render import ClipRenderer, frame_stride
from vid2reward.sim.reward import RewardFn
from vid2reward.sim.state import StateTracker, StateView

SAMPLED_FIELDS = ("forward_velocity", "lateral_velocity", "vertical_velocity", "torso_height",
                  "uprightness", "torso_pitch", "feet_in_contact", "airborne", "x_position",
                  "yaw_rate")
"""State-view names recorded at every step of a rollout (the inputs of behaviour metrics);
:data:`SAMPLE_NAMES` adds what is recorded beside them."""
SAMPLE_NAMES = (*SAMPLED_FIELDS, "mass_center_x", "mass_center_y", "foot_contact_mask")
"""Every per-step sample of an :class:`Episode`: :data:`SAMPLED_FIELDS`, the whole body's centre
of mass (``mass_center_x``, ``mass_center_y``) and which feet touch the floor
(``foot_contact_mask``: bit i set when the i-th foot of the env's ``foot_geoms`` touches)."""


@dataclass
class LoadedPolicy:
    """A trained policy ready to act on raw observations of its env."""

    env_id: str
    model: PPO
    obs_mean: np.ndarray | None = None
    obs_var: np.ndarray | None = None
    clip_obs: float = 10.0
    epsilon: float = 1e-8
    gait_clock_hz: float | None = None
    """The gait clock its observations carry (its reward program's ``GAIT_CLOCK_HZ``)."""

    def take_normalisation(self, vecnorm: Any) -> None:
        """Copy the observation statistics of a VecNormalize (saved or live) that normalised
        observations; one that did not leaves the policy acting on raw observations."""
        if getattr(vecnorm, "norm_obs", False):
            self.obs_mean = np.array(vecnorm.obs_rms.mean)
            self.obs_var = np.array(vecnorm.obs_rms.var)
            self.clip_obs = float(vecnorm.clip_obs)
            self.epsilon = float(vecnorm.epsilon)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action for one raw observation."""
        if self.obs_mean is not None and self.obs_var is not None:
            obs = np.clip((obs - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon),
                          -self.clip_obs, self.clip_obs)
        action, _ = self.model.predict(obs.astype(np.float32), deterministic=True)
        return action


def load_policy(policy_dir: str | Path, env_id: str | None = None) -> LoadedPolicy:
    """Load ``policy.zip`` (and ``vecnormalize.pkl``) from a training output directory; the
    gait clock its observations carry is the one ``reward.py`` declares (or, without it, the
    one ``metrics.json`` recorded).

    Raises:
        UserError: the directory or its policy.zip is missing, the env cannot be told, or the
            policy's observation is not the env's (with its clock, if any).
    """
    policy_dir = Path(policy_dir)
    if not (policy_dir / "policy.zip").is_file():
        raise UserError("no policy.zip in the policy directory", where=str(policy_dir),
                        fix="pass the --out directory of a finished `vid2reward train`")
    if env_id is None:
        metrics_path = policy_dir / "metrics.json"
        try:
            env_id = json.loads(metrics_path.read_text())["env_id"]
        except (OSError, ValueError, KeyError):
            raise UserError("cannot tell which env the policy is for (metrics.json missing)",
                            where=str(policy_dir), fix="pass --env") from None
    get_spec(env_id)
    try:
        model = PPO.load(policy_dir / "policy.zip", device="cpu")
    except Exception as exc:  # a corrupt or foreign zip
        raise UserError(f"cannot load policy.zip: {exc}", where=str(policy_dir),
                        fix="pass a directory written by `vid2reward train` or a run's best/") from None
    clock = policy_gait_clock(policy_dir)
    probe = make_env(env_id, clock)
    expected = probe.observation_space.shape
    probe.close()
    if model.observation_space.shape != expected:
        raise UserError(f"the policy observes {model.observation_space.shape} values, the env "
                        f"{expected}" + (f" with a {clock:g} Hz gait clock" if clock else ""),
                        where=str(policy_dir),
                        fix="pass --env of the env it was trained on, and keep the reward.py it "
                            "was trained with beside policy.zip (its GAIT_CLOCK_HZ)")
    policy = LoadedPolicy(env_id=env_id, model=model, gait_clock_hz=clock)
    norm_path = policy_dir / "vecnormalize.pkl"
    if norm_path.is_file():
        with norm_path.open("rb") as f:
            vecnorm = pickle.load(f)  # noqa: S301 - our own training output
        policy.take_normalisation(vecnorm)
    return policy


@dataclass
class Episode:
    """One rollout episode."""

    env_id: str
    dt: float
    length: int
    terminated: bool
    """True when the env ended the episode early (its health test failed), False at the time
    limit. Not the whole of a fall: an Ant on its back is healthy for Ant-v5 (sim/falls.py)."""
    env_return: float
    samples: dict[str, np.ndarray]
    """Per-step values of :data:`SAMPLE_NAMES`."""
    frames: list[np.ndarray] = field(default_factory=list)
    fps: float = 0.0
    """Frames per second of ``frames`` when played in real time."""
    program_return: float | None = None
    """The reward program's return, when :func:`run_episodes` was given one."""
    actions: np.ndarray | None = None
    """The actions taken, one row per step: with the episode's seed they replay it exactly
    (MuJoCo is deterministic), so a reward program can be scored on it later."""


ActFn = Callable[[np.ndarray], np.ndarray]


def new_samples() -> dict[str, list[float]]:
    """Empty per-step samples, one list per name of :data:`SAMPLE_NAMES`."""
    return {name: [] for name in SAMPLE_NAMES}


def record_sample(samples: dict[str, list[float]], view: StateView) -> None:
    """Append one step's values to ``samples`` (from :func:`new_samples`)."""
    for name in SAMPLED_FIELDS:
        samples[name].append(float(getattr(view, name)))
    com = view.mass_center
    samples["mass_center_x"].append(float(com[0]))
    samples["mass_center_y"].append(float(com[1]))
    samples["foot_contact_mask"].append(float(sum(
        1 << i for i, touching in enumerate(view.foot_contacts.values()) if touching)))


@runtime_checkable
class EpisodicReward(Protocol):
    """A reward that must know where each episode starts (e.g. one computed in another
    process that follows the same seeds and actions): ``reset(seed)`` before each episode."""

    def reset(self, seed: int) -> None:
        """Start the episode seeded ``seed``."""

    def __call__(self, view: StateView, action: np.ndarray) -> tuple[float, dict[str, float]]:
        """The reward of the step just taken."""


def run_episodes(env_id: str, policy: LoadedPolicy | ActFn | None = None, *, episodes: int = 1,
                 seed: int = 0, max_steps: int = 1000, render_size: tuple[int, int] | None = None,
                 fps: float = 30.0, reward: RewardFn | None = None,
                 on_step: Callable[[StateView], None] | None = None) -> list[Episode]:
    """Roll out ``policy`` on the unmodified env.

    Args:
        env_id: a registered env id.
        policy: a :class:`LoadedPolicy`, any ``obs -> action`` function, or None for uniform
            random actions (seeded).
        episodes: how many episodes (seeds ``seed``, ``seed + 1``, ...).
        max_steps: cap on each episode's length.
        render_size: (width, height) to record frames, or None for no frames.
        fps: target frame rate of the recorded frames (real time).
        reward: a reward program's ``compute_reward``, run in this process on each step's
            state view to report its return too (trusted programs only), or an
            :class:`EpisodicReward` such as ``vid2reward.tools.reward_env.LockstepReward``,
            which runs an untrusted one sandboxed.
        on_step: called with every step's state view, after ``reward`` (to record more than
            :data:`SAMPLE_NAMES`, e.g. a body's joint keypoints).
    """
    spec = get_spec(env_id)
    clock = policy.gait_clock_hz if isinstance(policy, LoadedPolicy) else None
    env = make_env(env_id, clock, max_episode_steps=max_steps)
    env.action_space.seed(seed)
    act: ActFn
    if policy is None:
        act = lambda obs: env.action_space.sample()  # noqa: E731
    elif isinstance(policy, LoadedPolicy):
        act = policy.act
    else:
        act = policy
    renderer = None
    tracker = StateTracker(env, spec)
    stride = frame_stride(tracker.dt, fps)
    if render_size is not None:
        mujoco_env: Any = env.unwrapped
        renderer = ClipRenderer(mujoco_env.model, mujoco_env.data, spec, *render_size)
    out = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            tracker.reset()
            if isinstance(reward, EpisodicReward):
                reward.reset(seed + ep)
            samples = new_samples()
            actions: list[np.ndarray] = []
            frames = [renderer.frame()] if renderer else []
            env_return, program_return, terminated, steps = 0.0, 0.0, False, 0
            while True:
                action = act(obs)
                tracker.before_step()
                obs, env_reward, terminated, truncated, _ = env.step(action)
                view = tracker.view(action, terminated)
                record_sample(samples, view)
                actions.append(np.array(action, copy=True))  # its own dtype: replays exactly
                env_return += float(env_reward)
                if reward is not None:
                    program_return += float(reward(view, action)[0])
                if on_step is not None:
                    on_step(view)
                steps += 1
                if renderer and steps % stride == 0:
                    frames.append(renderer.frame())
                if terminated or truncated:
                    break
            out.append(Episode(env_id=env_id, dt=tracker.dt, length=steps,
                               terminated=bool(terminated), env_return=env_return,
                               samples={k: np.asarray(v) for k, v in samples.items()},
                               frames=frames, fps=1.0 / (stride * tracker.dt),
                               program_return=program_return if reward is not None else None,
                               actions=np.array(actions)))
    finally:
        if renderer:
            renderer.close()
        env.close()
    return out
