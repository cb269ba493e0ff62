"""The read-only state view ``s`` that reward programs receive, built from the simulator.

Reward programs never see the observation vector: they see named physical quantities read
from ``env.unwrapped.data`` (MuJoCo's MjData). A :class:`StateTracker` belongs to one env; it
records the few values the view needs from before a step (positions, for velocities) and then
hands out one :class:`StateView` per step. Every quantity is computed only when a reward reads
it, and arrays are copies marked read-only, so reward code can neither slow down steps it does
not use nor change the simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from vid2reward.sim.envs import EnvSpec


@dataclass(frozen=True)
class StateField:
    """Documentation of one name on the state view (rendered into the env context)."""

    name: str
    unit: str
    meaning: str
    typical: str
    """Typical values; ``{lo}``/``{hi}`` stand for the env's typical torso height band."""


STATE_FIELDS: list[StateField] = [
    StateField("dt", "s", "time between two calls of compute_reward (one env step)", "0.008-0.015"),
    StateField("time", "s", "time since the episode started", "0 to ~15"),
    StateField("step", "count", "env steps since the episode started", "0 to 1000"),
    StateField("forward_velocity", "m/s",
               "speed along +x (the direction the env's own reward calls forward), measured as "
               "the env's own reward measures it; negative means moving backward",
               "-1 to 1 standing or shuffling, 1-4 running well"),
    StateField("lateral_velocity", "m/s", "speed along +y (to the left); always 0 for planar bodies",
               "-1 to 1"),
    StateField("vertical_velocity", "m/s", "speed of the torso along +z (up)", "-3 to 3"),
    StateField("x_position", "m", "position along +x of the point used for forward_velocity",
               "grows by forward_velocity * dt each step"),
    StateField("y_position", "m", "position along +y; always 0 for planar bodies", "-5 to 5"),
    StateField("torso_height", "m", "height of the torso's origin above the floor", "{lo}-{hi}"),
    StateField("prev_torso_height", "m", "torso_height one step earlier", "{lo}-{hi}"),
    StateField("torso_pitch", "rad",
               "forward lean of the torso: positive when its top tilts toward +x",
               "-0.3 to 0.3 while upright"),
    StateField("torso_roll", "rad", "sideways lean: positive when its top tilts toward +y; 0 for "
               "planar bodies", "-0.3 to 0.3"),
    StateField("torso_yaw", "rad", "heading of the torso's forward axis in the x-y plane; 0 faces +x",
               "-pi to pi"),
    StateField("pitch_rate", "rad/s", "rate of change of torso_pitch", "-5 to 5"),
    StateField("yaw_rate", "rad/s", "rate of change of torso_yaw (turning; positive = turning "
               "left, counter-clockwise seen from above); 0 for planar bodies", "-3 to 3"),
    StateField("uprightness", "1",
               "cosine of the angle between the torso's up axis and world up: 1 upright, "
               "0 lying on its side, -1 upside down", "0.9-1.0 while upright"),
    StateField("is_healthy", "bool", "the env's own 'not fallen' test (True = still healthy); the "
               "episode ends when it turns False (never for HalfCheetah)", "True"),
    StateField("foot_contacts", "dict[str, bool]", "for each foot name, whether it touches the floor",
               "alternating True/False in a gait"),
    StateField("feet_in_contact", "count", "how many feet touch the floor", "0 to number of feet"),
    StateField("airborne", "bool", "True when no foot touches the floor (a flight phase)",
               "True for part of each hop or run stride"),
    StateField("foot_heights", "dict[str, float] (m)", "height above the floor of each foot's centre",
               "0.0-0.5"),
    StateField("body_positions", "dict[str, array(3)] (m)", "world x, y, z of every body by name",
               "-"),
    StateField("mass_center", "array(3) (m)", "whole-body centre of mass, world x, y, z", "-"),
    StateField("joint_angles", "dict[str, float] (rad)", "angle of every actuated joint by name",
               "within the joint's limits, about -1.5 to 1.5"),
    StateField("joint_velocities", "dict[str, float] (rad/s)", "angular speed of every actuated joint",
               "-10 to 10"),
    StateField("leg_keypoints", "dict[str, array(2)] (m)",
               "side-view x, z of shoulder (top of the trunk axis), hip_/knee_/ankle_/heel_/toe_ "
               "left/right: the points a video pose is measured from; empty for bodies without "
               "human legs, heel/toe absent without feet", "-"),
    StateField("gait_angles", "dict[str, float] (rad)",
               "sagittal leg angles in the clinical conventions a person's video pose is measured "
               "in (see 'Human joints' below): hip_left/right (+ = thigh ahead of the trunk), "
               "knee_left/right (0 straight, + = bent), ankle_left/right (+ = toes toward the "
               "shin; absent where the body has no ankle); empty for bodies without legs",
               "walking person: hip -0.2 to 0.5, knee 0 to 1.1, ankle -0.3 to 0.3"),
    StateField("gait_rates", "dict[str, float] (rad/s)",
               "how fast each of gait_angles changes, same names and signs (a walking person's "
               "hips swing at ~2 rad/s)", "-10 to 10"),
    StateField("gait_accelerations", "dict[str, float] (rad/s^2)",
               "how fast each of gait_rates changed over the last step (0 at an episode's first "
               "step); a swing at f Hz has acceleration -(2 pi f)^2 x angle", "-500 to 500"),
    StateField("qpos", "array", "MuJoCo generalised positions (root first, then joints)", "-"),
    StateField("qvel", "array", "MuJoCo generalised velocities", "-"),
    StateField("ctrl", "array", "actuator controls applied this step (the clipped action)", "-1 to 1"),
    StateField("prev_action", "array", "the action of the previous step (zeros at the first step)",
               "-1 to 1"),
    StateField("contact_forces", "array(nbody, 6)", "external contact force and torque on each body "
               "(MuJoCo cfrc_ext: torque xyz then force xyz, N and N*m)", "0 in flight, "
               "up to several hundred on impact"),
]
"""Every public name on :class:`StateView`, in the order the env context lists them."""


GAIT_JOINTS: dict[str, dict[str, tuple[str, float]]] = {
    # human angle -> (simulator joint, sign): human = sign * qpos. Signs checked against the
    # bodies' geometry in tests/sim/test_gait_angles.py (knee ahead of hip = hip flexion, ...).
    "Walker2d": {"hip_right": ("thigh_joint", 1.0), "knee_right": ("leg_joint", -1.0),
                 "ankle_right": ("foot_joint", 1.0), "hip_left": ("thigh_left_joint", 1.0),
                 "knee_left": ("leg_left_joint", -1.0), "ankle_left": ("foot_left_joint", 1.0)},
    "Humanoid": {"hip_right": ("right_hip_y", -1.0), "knee_right": ("right_knee", -1.0),
                 "hip_left": ("left_hip_y", -1.0), "knee_left": ("left_knee", -1.0)},
}
"""Per env family (the env id before ``-v``): the mapping human joint -> simulator joint."""

LEG_POINTS: dict[str, dict[str, tuple[str, str, str | None, str | None, str | None]]] = {
    # leg -> (hip joint, knee joint, ankle joint, foot geom, foot body): the joints' anchors are
    # the keypoints; a foot geom's ends are heel (the end at the ankle) and toe; a body without
    # an ankle joint has its foot body's origin as the ankle
    "Walker2d": {"right": ("thigh_joint", "leg_joint", "foot_joint", "foot_geom", None),
                 "left": ("thigh_left_joint", "leg_left_joint", "foot_left_joint",
                          "foot_left_geom", None)},
    "Humanoid": {"right": ("right_hip_y", "right_knee", None, None, "right_foot"),
                 "left": ("left_hip_y", "left_knee", None, None, "left_foot")},
}
"""Per env family: where the video pose's leg keypoints are on the simulated body."""
TRUNK_LENGTH = 0.5
"""Length (m) of the hip-mid -> shoulder segment drawn along the torso's up axis (only its
direction matters: trunk lean)."""


def leg_length(env_id: str) -> float | None:
    """Length in metres of the body's leg, hip to ankle along thigh and shank (the segments a
    video pose measures a person's leg by), at the env's initial pose; None without human legs."""
    from vid2reward.sim.envs import get_spec, make_env

    if not LEG_POINTS.get(env_id.split("-v")[0]):
        return None
    env = make_env(env_id)
    try:
        env.reset(seed=0)
        points = StateTracker(env, get_spec(env_id)).leg_keypoints()
    finally:
        env.close()
    return float(np.linalg.norm(points["hip_right"] - points["knee_right"])
                 + np.linalg.norm(points["knee_right"] - points["ankle_right"]))


def gait_joints(env_id: str) -> dict[str, tuple[str, float]]:
    """The human -> simulator joint map of ``env_id`` (empty for bodies without human legs)."""
    return GAIT_JOINTS.get(env_id.split("-v")[0], {})


def _read_only(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


def _angle_diff(a: float, b: float) -> float:
    return (a - b + math.pi) % (2 * math.pi) - math.pi


class StateTracker:
    """Builds a :class:`StateView` for each step of one env.

    Call :meth:`reset` after ``env.reset``, :meth:`before_step` just before ``env.step`` and
    :meth:`view` just after it.
    """

    def __init__(self, env: gym.Env, spec: EnvSpec) -> None:
        self.spec = spec
        self.base = env.unwrapped
        model: mujoco.MjModel = self.base.model  # type: ignore[attr-defined]
        self.model = model
        self.data: mujoco.MjData = self.base.data  # type: ignore[attr-defined]
        self.dt = float(self.base.dt)  # type: ignore[attr-defined]
        self.torso_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, spec.torso_body)
        self.floor_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self.foot_ids = {name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, geom)
                         for name, geom in spec.foot_geoms.items()}
        self.body_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i)
                           for i in range(1, model.nbody)]
        # Actuated joints: the hinge joints driven by an actuator (the root is never actuated).
        joint_ids = [int(model.actuator_trnid[i, 0]) for i in range(model.nu)]
        self.joint_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joint_ids]
        self.joint_qpos = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.joint_qvel = np.array([model.jnt_dofadr[j] for j in joint_ids])
        family = spec.env_id.split("-v")[0]

        def _id(kind: mujoco.mjtObj, name: str | None) -> int | None:
            return None if name is None else mujoco.mj_name2id(model, kind, name)

        self.leg_points = {
            leg: (_id(mujoco.mjtObj.mjOBJ_JOINT, hip), _id(mujoco.mjtObj.mjOBJ_JOINT, knee),
                  _id(mujoco.mjtObj.mjOBJ_JOINT, ankle), _id(mujoco.mjtObj.mjOBJ_GEOM, geom),
                  _id(mujoco.mjtObj.mjOBJ_BODY, foot))
            for leg, (hip, knee, ankle, geom, foot) in LEG_POINTS.get(family, {}).items()}
        gait = {human: (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint), sign)
                for human, (joint, sign) in gait_joints(spec.env_id).items()}
        self.gait_qpos = {human: (int(model.jnt_qposadr[j]), sign) for human, (j, sign) in gait.items()}
        self.gait_qvel = {human: (int(model.jnt_dofadr[j]), sign) for human, (j, sign) in gait.items()}
        self.gait_dofs = np.array([adr for adr, _ in self.gait_qvel.values()], dtype=int)
        self.body_mass = np.array(model.body_mass)
        self.total_mass = float(self.body_mass.sum())
        self.action_size = int(model.nu)
        self.cache: dict[str, Any] = {}
        # The env ends an episode exactly when its health test fails (unless built with
        # terminate_when_unhealthy=False), so `terminated` from step() answers is_healthy
        # without recomputing it (the env's test costs ~6 us, more than most rewards).
        self.health_from_termination = bool(getattr(self.base, "_terminate_when_unhealthy", False))
        self.terminated = False
        self._view = StateView(self)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: no previous step yet."""
        self.step_count = 0
        self.terminated = False
        self.action = np.zeros(self.action_size)
        self.prev_action = self.action
        self.before_step()
        self.cache.clear()

    def before_step(self) -> None:
        """Record the values that velocities are measured against."""
        self.prev_xy = self.forward_xy()
        self.prev_height = float(self.data.xpos[self.torso_id, 2])
        m = self.data.xmat[self.torso_id]
        self.prev_pitch = math.atan2(m[2], m[8])
        self.prev_yaw = math.atan2(m[3], m[0])
        self.prev_gait_qvel = self.data.qvel[self.gait_dofs].copy()

    def view(self, action: np.ndarray, terminated: bool = False) -> StateView:
        """The state after the step just taken with ``action`` (``terminated`` as step() said).

        The same view object is returned every step (building one per step would cost more
        than most rewards): it always shows the latest step.
        """
        self.step_count += 1
        self.prev_action = self.action
        self.action = action
        self.terminated = terminated
        self.cache.clear()
        return self._view

    # -- measurements shared by the tracker and the view -----------------------------------
    def mass_center(self) -> np.ndarray:
        """Whole-body centre of mass in world coordinates."""
        return (self.body_mass @ self.data.xipos) / self.total_mass

    def forward_xy(self) -> tuple[float, float]:
        """x, y of the point whose motion the env's own reward calls forward motion."""
        how = self.spec.forward_from
        if how == "root_qpos":
            return float(self.data.qpos[0]), 0.0
        if how == "torso_xpos":
            xy = self.data.xpos[self.torso_id]
            return float(xy[0]), float(xy[1])
        com = self.mass_center()
        return float(com[0]), float(com[1])

    def torso_angles(self) -> tuple[float, float, float]:
        """(pitch, roll, yaw) of the torso in radians, from its rotation matrix."""
        m = self.data.xmat[self.torso_id]  # row-major 3x3: columns are the local axes in world
        up_x, up_y, up_z = m[2], m[5], m[8]
        pitch = math.atan2(up_x, up_z)
        roll = math.atan2(up_y, up_z)
        yaw = math.atan2(m[3], m[0])
        return pitch, roll, yaw


    def leg_keypoints(self) -> dict[str, np.ndarray]:
        """Side-view (x, z) keypoints of the legs and trunk (see ``LEG_POINTS``)."""
        d = self.data
        out: dict[str, np.ndarray] = {}
        for leg, (hip, knee, ankle, geom, foot) in self.leg_points.items():
            out[f"hip_{leg}"] = d.xanchor[hip][[0, 2]].copy()
            out[f"knee_{leg}"] = d.xanchor[knee][[0, 2]].copy()
            ankle_at = d.xanchor[ankle] if ankle is not None else d.xpos[foot]
            out[f"ankle_{leg}"] = ankle_at[[0, 2]].copy()
            if geom is not None:
                axis = d.geom_xmat[geom].reshape(3, 3)[:, 2] * self.model.geom_size[geom, 1]
                ends = sorted((d.geom_xpos[geom] - axis, d.geom_xpos[geom] + axis),
                              key=lambda p: float(np.linalg.norm(p - ankle_at)))
                out[f"heel_{leg}"], out[f"toe_{leg}"] = ends[0][[0, 2]], ends[1][[0, 2]]
        if out:
            mid = (out["hip_left"] + out["hip_right"]) / 2
            up = d.xmat[self.torso_id].reshape(3, 3)[:, 2][[0, 2]]
            out["shoulder"] = mid + TRUNK_LENGTH * up / max(1e-9, float(np.linalg.norm(up)))
        return out


class StateView:
    """What ``compute_reward(s, a)`` receives as ``s``: named, read-only physical quantities.

    The names and their units are listed in :data:`STATE_FIELDS` (and, per env, in the env
    context that an LLM engineer is shown). A view reads the live simulator, so it is valid
    only until the next step: read what you need inside ``compute_reward``.
    """

    __slots__ = ("__tracker",)
    __tracker: StateTracker

    def __init__(self, tracker: StateTracker) -> None:
        object.__setattr__(self, "_StateView__tracker", tracker)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the state view is read-only (tried to set '{name}')")

    def __repr__(self) -> str:
        return f"StateView(env={self.__tracker.spec.env_id}, step={self.__tracker.step_count})"

    # -- time ---------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self.__tracker.dt

    @property
    def step(self) -> int:
        return self.__tracker.step_count

    @property
    def time(self) -> float:
        return self.__tracker.step_count * self.__tracker.dt

    # -- motion of the whole body ---------------------------------------------------------
    def __xy(self) -> tuple[float, float]:
        cache = self.__tracker.cache
        if "xy" not in cache:
            cache["xy"] = self.__tracker.forward_xy()
        return cache["xy"]

    @property
    def x_position(self) -> float:
        return self.__xy()[0]

    @property
    def y_position(self) -> float:
        return self.__xy()[1]

    @property
    def forward_velocity(self) -> float:
        return (self.__xy()[0] - self.__tracker.prev_xy[0]) / self.__tracker.dt

    @property
    def lateral_velocity(self) -> float:
        return (self.__xy()[1] - self.__tracker.prev_xy[1]) / self.__tracker.dt

    @property
    def vertical_velocity(self) -> float:
        return (self.torso_height - self.__tracker.prev_height) / self.__tracker.dt

    @property
    def mass_center(self) -> np.ndarray:
        return _read_only(self.__tracker.mass_center())

    # -- torso ----------------------------------------------------------------------------
    @property
    def torso_height(self) -> float:
        t = self.__tracker
        return float(t.data.xpos[t.torso_id, 2])

    @property
    def prev_torso_height(self) -> float:
        return self.__tracker.prev_height

    def __angles(self) -> tuple[float, float, float]:
        cache = self.__tracker.cache
        if "angles" not in cache:
            cache["angles"] = self.__tracker.torso_angles()
        return cache["angles"]

    @property
    def torso_pitch(self) -> float:
        return self.__angles()[0]

    @property
    def torso_roll(self) -> float:
        return self.__angles()[1]

    @property
    def torso_yaw(self) -> float:
        return self.__angles()[2]

    @property
    def pitch_rate(self) -> float:
        return _angle_diff(self.torso_pitch, self.__tracker.prev_pitch) / self.__tracker.dt

    @property
    def yaw_rate(self) -> float:
        return _angle_diff(self.torso_yaw, self.__tracker.prev_yaw) / self.__tracker.dt

    @property
    def uprightness(self) -> float:
        t = self.__tracker
        return float(t.data.xmat[t.torso_id, 8])

    @property
    def is_healthy(self) -> bool:
        t = self.__tracker
        if t.health_from_termination:
            return not t.terminated
        return bool(getattr(t.base, "is_healthy", True))

    # -- feet -----------------------------------------------------------------------------
    @property
    def foot_contacts(self) -> dict[str, bool]:
        t = self.__tracker
        pairs = t.data.contact.geom[: t.data.ncon]
        touching = set(pairs[pairs[:, 1] == t.floor_id, 0]) | set(pairs[pairs[:, 0] == t.floor_id, 1])
        return {name: gid in touching for name, gid in t.foot_ids.items()}

    @property
    def feet_in_contact(self) -> int:
        return sum(self.foot_contacts.values())

    @property
    def airborne(self) -> bool:
        return self.feet_in_contact == 0

    @property
    def foot_heights(self) -> dict[str, float]:
        t = self.__tracker
        return {name: float(t.data.geom_xpos[gid, 2]) for name, gid in t.foot_ids.items()}

    # -- bodies and joints ----------------------------------------------------------------
    @property
    def body_positions(self) -> dict[str, np.ndarray]:
        t = self.__tracker
        return {name: _read_only(t.data.xpos[i + 1]) for i, name in enumerate(t.body_names)}

    @property
    def joint_angles(self) -> dict[str, float]:
        t = self.__tracker
        return dict(zip(t.joint_names, t.data.qpos[t.joint_qpos].tolist(), strict=True))

    @property
    def leg_keypoints(self) -> dict[str, np.ndarray]:
        cache = self.__tracker.cache
        if "leg_keypoints" not in cache:
            cache["leg_keypoints"] = self.__tracker.leg_keypoints()
        return {k: _read_only(v) for k, v in cache["leg_keypoints"].items()}

    @property
    def gait_angles(self) -> dict[str, float]:
        t = self.__tracker
        return {human: sign * float(t.data.qpos[adr]) for human, (adr, sign) in t.gait_qpos.items()}

    @property
    def gait_rates(self) -> dict[str, float]:
        t = self.__tracker
        return {human: sign * float(t.data.qvel[adr]) for human, (adr, sign) in t.gait_qvel.items()}

    @property
    def gait_accelerations(self) -> dict[str, float]:
        t = self.__tracker
        if t.step_count == 0:
            return dict.fromkeys(t.gait_qvel, 0.0)
        change = (t.data.qvel[t.gait_dofs] - t.prev_gait_qvel) / self.dt
        return {human: sign * float(c) for (human, (_, sign)), c in zip(t.gait_qvel.items(), change, strict=True)}

    @property
    def joint_velocities(self) -> dict[str, float]:
        t = self.__tracker
        return dict(zip(t.joint_names, t.data.qvel[t.joint_qvel].tolist(), strict=True))

    @property
    def qpos(self) -> np.ndarray:
        return _read_only(self.__tracker.data.qpos)

    @property
    def qvel(self) -> np.ndarray:
        return _read_only(self.__tracker.data.qvel)

    @property
    def ctrl(self) -> np.ndarray:
        return _read_only(self.__tracker.data.ctrl)

    @property
    def prev_action(self) -> np.ndarray:
        return _read_only(self.__tracker.prev_action)

    @property
    def contact_forces(self) -> np.ndarray:
        return _read_only(self.__tracker.data.cfrc_ext)


def env_context(spec: EnvSpec) -> str:
    """The env context: what an LLM reward engineer is shown about one env, as Markdown text.

    It documents every name on the state view (meaning, unit, typical values) and the reward
    program contract, for a reader who has never seen MuJoCo.
    """
    lo, hi = spec.typical_height
    lines = [
        f"# Environment: {spec.env_id}",
        "",
        spec.description,
        "",
        "Coordinates: x points forward (the direction the env's own reward rewards), y to the "
        "left, z up; the floor is at z = 0. "
        + ("This body moves in the x-z plane only: everything along y is 0."
           if spec.planar else
           "This body moves freely in 3D. The video camera films it from the side, looking "
           "along +y: motion along x is across the image (+x to the right), motion along +y is "
           "away from the camera (the `depth_speed` feature; `s.lateral_velocity` in a "
           "reward), and turning (the `turning_rate` feature) is `s.yaw_rate`. Which way the "
           "torso faces (`s.torso_yaw`) is not measured from the video: a body can travel "
           "sideways (crab-like) or turn to face its travel."),
        f"Feet: {', '.join(spec.foot_geoms)}.",
        "",
        "## The state view `s`",
        "",
        "`compute_reward(s, a)` gets `s`, a read-only view of the simulator after the step, and "
        "`a`, the action (a numpy array, one value in [-1, 1] per actuator). Names on `s`:",
        "",
        "| name | unit | meaning | typical values |",
        "|---|---|---|---|",
    ]
    for f in STATE_FIELDS:
        lines.append(f"| `s.{f.name}` | {f.unit} | {f.meaning} | {f.typical.format(lo=lo, hi=hi)} |")
    joints = gait_joints(spec.env_id)
    if joints:
        lines += [
            "",
            "## Human joints",
            "",
            "A person's video is measured as sagittal angles (the `pose_*` features); "
            "`s.gait_angles` gives this body's angles in the same conventions, so a feature like "
            "`pose_knee_max_deg` can be moved by a reward on `s.gait_angles['knee_left']` "
            "(radians there, degrees in the features). Trunk lean is `s.torso_pitch` "
            "(+ = top forward).",
            "",
            "| human angle | simulator joint | human = |",
            "|---|---|---|",
        ]
        for human, (joint, sign) in joints.items():
            lines.append(f"| {human} | `{joint}` | {'+' if sign > 0 else '-'}"
                         f"s.joint_angles['{joint}'] |")
        if not any(h.startswith("ankle") for h in joints):
            lines.append("This body has no ankle joint: ankle angles are not compared.")
    lines += [
        "",
        "## Reward program contract",
        "",
        "```python",
        "import numpy as np            # only math and numpy may be imported",
        "WEIGHTS = {\"forward\": 1.0, \"alive\": 1.0, \"ctrl\": 1e-3}   # optional, named numbers",
        "",
        "def compute_reward(s, a):",
        "    forward = WEIGHTS[\"forward\"] * s.forward_velocity",
        "    alive = WEIGHTS[\"alive\"] * float(s.is_healthy)",
        "    ctrl = -WEIGHTS[\"ctrl\"] * float(np.sum(np.square(a)))",
        "    components = {\"forward\": forward, \"alive\": alive, \"ctrl\": ctrl}",
        "    return sum(components.values()), components   # float total, dict of floats",
        "```",
        "",
        "Components should add up to the total; each is logged per step so you can see which "
        "term drives the behaviour. The episode still ends when the env's own health test fails.",
        "",
        "A rhythm (steps or hops per second) is hard to pay for when the policy cannot tell the "
        "time. A program may declare a gait clock, a number literal at the top: "
        "`GAIT_CLOCK_HZ = 1.3`. The policy then sees the clock's phase "
        "(sin and cos of 2 pi GAIT_CLOCK_HZ s.time) in its observation, and the program can ask "
        "for motion in step with it, e.g. a thighs' difference near "
        "`0.6 * np.sin(2 * np.pi * GAIT_CLOCK_HZ * s.time)`. A walking stride is two steps: "
        "the clock of a gait of c steps/s runs at c / 2.",
    ]
    return "\n".join(lines)
