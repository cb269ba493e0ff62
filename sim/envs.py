"""The env registry: which Gymnasium MuJoCo envs vid2reward knows, and what each one is.

An :class:`EnvSpec` holds what the rest of the code needs to know about one env beyond its
Gymnasium id: which body is the torso, which geoms are feet, whether it moves in a plane,
how its own reward measures forward motion, and a short description for the env context.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import mujoco

from vid2reward.sim.errors import UserError
from vid2reward.sim.gait_clock import GaitClock


def _mujoco_warning(message: str) -> None:
    # Gymnasium's Humanoid model uses a compiler attribute MuJoCo 4 deprecates; MuJoCo prints
    # that to stderr (and MUJOCO_LOG.TXT) every time a worker builds the model. Drop that one,
    # pass every other MuJoCo warning on as a Python warning.
    if "settotalmass" not in message:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


mujoco.set_mju_user_warning(_mujoco_warning)

ForwardFrom = Literal["root_qpos", "torso_xpos", "mass_center"]


@dataclass(frozen=True)
class EnvSpec:
    """What vid2reward knows about one Gymnasium MuJoCo env."""

    env_id: str
    """Gymnasium id, e.g. ``"Hopper-v5"``."""
    description: str
    """One paragraph for people and LLMs: the body, its actuators, how it moves."""
    planar: bool
    """True when the body moves in the x-z plane only (Hopper, Walker2d, HalfCheetah)."""
    torso_body: str
    """Name of the torso body in the MJCF model."""
    foot_geoms: dict[str, str]
    """Foot name (as shown to reward programs) -> geom name in the model."""
    forward_from: ForwardFrom
    """How the env's own reward measures forward velocity: from the root joint's x position,
    from the torso body's world position, or from the whole-body centre of mass."""
    typical_height: tuple[float, float]
    """Typical torso height range in metres while the body moves normally."""
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``gymnasium.make``."""
    camera_distance: float = 4.0
    """Distance in metres of the tracking render camera from the torso."""
    ends_on_fall: bool = True
    """Whether an unhealthy body (fallen, flipped) ends the episode; False for HalfCheetah,
    which has no health, so a reward for staying alive means nothing there."""
    upright: bool = True
    """Whether the torso stands vertical on the legs (Hopper, Walker2d, Humanoid). A body that
    carries it horizontally (HalfCheetah, Ant) has no upper body in its silhouette, so the
    image's tilt says nothing of its pitch."""

    @property
    def body_length(self) -> float:
        """Metres per "body length", the pixel features' unit of length, as a first guess
        (the top of the torso's typical range, plus its upper half); the calibration on the
        learner's own clips measures it better."""
        return self.typical_height[1] + 0.1

    @property
    def short_name(self) -> str:
        """``"Hopper"`` for ``"Hopper-v5"``."""
        return self.env_id.split("-")[0]



ENV_SPECS: dict[str, EnvSpec] = {
    spec.env_id: spec
    for spec in [
        EnvSpec(
            env_id="Hopper-v5",
            description=(
                "A one-legged hopper in a vertical plane: a torso, a thigh, a leg and a foot, "
                "with three actuated hinges (hip, knee, ankle). It moves by hopping; it falls "
                "when the torso drops below 0.7 m or tilts more than 0.2 rad."),
            planar=True, torso_body="torso", foot_geoms={"foot": "foot_geom"},
            forward_from="root_qpos", typical_height=(0.8, 1.4),
            camera_distance=3.0,
        ),
        EnvSpec(
            env_id="Walker2d-v5",
            description=(
                "A two-legged walker in a vertical plane: a torso and two legs, each with an "
                "actuated hip, knee and ankle (six actuators). It falls when the torso drops "
                "below 0.8 m, rises above 2 m, or tilts more than 1 rad."),
            planar=True, torso_body="torso",
            foot_geoms={"right_foot": "foot_geom", "left_foot": "foot_left_geom"},
            forward_from="root_qpos", typical_height=(0.9, 1.4),
            camera_distance=4.0,
        ),
        EnvSpec(
            env_id="HalfCheetah-v5",
            description=(
                "A planar cat-like runner: a horizontal torso with a back leg and a front leg, "
                "each with an actuated thigh, shin and foot (six actuators). It never falls over "
                "(no termination); it can flip onto its back."),
            planar=True, torso_body="torso",
            foot_geoms={"back_foot": "bfoot", "front_foot": "ffoot"},
            forward_from="root_qpos", typical_height=(0.3, 0.8),
            camera_distance=4.0, ends_on_fall=False, upright=False,
        ),
        EnvSpec(
            env_id="Ant-v5",
            description=(
                "A four-legged ant moving in 3D: a round torso and four legs with two actuated "
                "joints each (hip and ankle, eight actuators). It falls when the torso leaves the "
                "0.2-1.0 m height band."),
            planar=False, torso_body="torso",
            foot_geoms={"front_left_foot": "left_ankle_geom", "front_right_foot": "right_ankle_geom",
                        "back_left_foot": "third_ankle_geom", "back_right_foot": "fourth_ankle_geom"},
            forward_from="torso_xpos", typical_height=(0.3, 0.9),
            camera_distance=5.0, upright=False,
        ),
        EnvSpec(
            env_id="Humanoid-v5",
            description=(
                "A 3D humanoid: torso, abdomen, pelvis, two legs (hip, knee) and two arms "
                "(shoulder, elbow), 17 actuators. It falls when the torso leaves the 1.0-2.0 m "
                "height band."),
            planar=False, torso_body="torso",
            foot_geoms={"right_foot": "right_foot", "left_foot": "left_foot"},
            forward_from="mass_center", typical_height=(1.1, 1.5),
            camera_distance=4.0,
        ),
    ]
}


def get_spec(env_id: str) -> EnvSpec:
    """Look up a registered env; an unknown id is a user error listing the known ones."""
    try:
        return ENV_SPECS[env_id]
    except KeyError:
        raise UserError(f"unknown env '{env_id}'", where="--env",
                        fix="use one of: " + ", ".join(ENV_SPECS)) from None


def make_env(env_id: str, gait_clock_hz: float | None = None, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for a registered env (rendering is done by sim.render, not the env).

    Args:
        env_id: a registered id (see :data:`ENV_SPECS`).
        gait_clock_hz: append a gait clock at this frequency to the observation (the
            ``GAIT_CLOCK_HZ`` of the reward program the policy is trained with; see
            ``vid2reward.sim.gait_clock``); None = the env's own observation.
        kwargs: passed to ``gymnasium.make`` after the spec's own ``make_kwargs``.
    """
    spec = get_spec(env_id)
    env = gym.make(env_id, **{**spec.make_kwargs, **kwargs})
    return env if gait_clock_hz is None else GaitClock(env, gait_clock_hz)


def steps_for_seconds(env_id: str, seconds: float) -> int:
    """How many env steps (control steps, ``dt`` each) last ``seconds`` of simulated time."""
    env = make_env(env_id)
    try:
        dt = float(env.unwrapped.dt)  # type: ignore[attr-defined]  # every registered env is a MujocoEnv
    finally:
        env.close()
    return max(1, int(round(seconds / dt)))
