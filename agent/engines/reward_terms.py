"""A small library of standard reward terms, and the writer of reward programs made of them.

Target terms are positive bells (largest at the target), never penalties: a reward that is
negative while the body stands still teaches it to fall over and end the episode early.

The offline engineer searches over programs built from these terms: which terms are on, and
the numbers in ``WEIGHTS`` (each term's weight, plus targets such as a speed in m/s). Each term
says which pixel features it is expected to move and in which direction: the prior the
engineer starts from before its regression over trained candidates says more. Which terms fit
which body (no sideways speed for a planar one, no flight for the Ant) is body_terms.py's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vid2reward.sim.gait_clock import CLOCK_NAME

ParamKind = Literal["weight", "target", "clock"]


@dataclass(frozen=True)
class Param:
    """One number in ``WEIGHTS``."""

    default: float
    kind: ParamKind
    """"weight": positive, searched in log space; "target": any sign, searched additively;
    "clock": the gait clock's frequency (Hz), written as the program's ``GAIT_CLOCK_HZ`` rather
    than in WEIGHTS and never searched (the policy's observation carries the clock: a program
    at another frequency is another policy's problem, not a step)."""
    scale: float = 1.0
    """A step of 1 in the search is this much (log units for weights, own units for targets)."""
    low: float = -1e9
    high: float = 1e9


@dataclass(frozen=True)
class RewardTerm:
    """A reward component: a line of code and what it is expected to do to the behaviour."""

    name: str
    code: str
    """Python expression over ``s``, ``a``, ``np`` and ``W`` (the WEIGHTS dict)."""
    params: dict[str, Param]
    moves: dict[str, dict[str, int]] = field(default_factory=dict)
    """param -> {pixel feature: +1 / -1}: the expected sign of d feature / d param."""
    description: str = ""


def _speed_code(weight: str, velocity: str, target: str) -> str:
    """A speed term's code: a bell around ``W[target]`` plus linear progress towards it (capped
    at the target; none for a target near zero), on the state-view velocity ``velocity``."""
    return (f'W["{weight}"] * (float(np.exp(-abs(s.{velocity} - W["{target}"])'
            f' / max(0.3, 0.5 * abs(W["{target}"])))) + (float(np.clip('
            f's.{velocity} / W["{target}"], -1.0, 1.0))'
            f' if abs(W["{target}"]) > 0.05 else 0.0))')


def _hip_difference(field: str) -> str:
    """Code for the left thigh's minus the right thigh's value of a gait field of the state view
    (``gait_angles``, ``gait_rates``, ``gait_accelerations``), 0 on bodies without human legs."""
    return f'(s.{field}.get("hip_left", 0.0) - s.{field}.get("hip_right", 0.0))'


_CLOCK_HZ = Param(1.0, "clock", 1.0, 0.2, 5.0)
"""The gait clock's frequency: one per program, shared by the terms that follow the clock."""
_BOB_SPEED = f'(np.sqrt(2) * W["bob_std"] * 2 * np.pi * {CLOCK_NAME})'
"""Amplitude (m/s) of the torso's vertical velocity when its height swings sinusoidally with
standard deviation ``bob_std`` at the clock's frequency."""

TERMS: dict[str, RewardTerm] = {t.name: t for t in [
    RewardTerm("alive", 'W["alive"] * float(s.is_healthy)',
               {"alive": Param(1.0, "weight", 0.5, 0.01, 20.0)},
               moves={"alive": {"survival": +1}},
               description="a bonus for every step the body has not fallen"),
    # A bell around the target plus linear progress towards it (capped at the target). The bell
    # alone, even one widening with the target, paid a body at rest e^-2 of its weight: beside
    # the alive and height terms, standing still was the better bargain, and the full method's
    # winner stood still (hopper-steady, NES 0.30); with the progress part the same program
    # hopped forward at 0.47 m/s (NES 0.58, one seed, 150k steps from scratch).
    RewardTerm("speed", _speed_code("speed", "forward_velocity", "speed_target"),
               {"speed": Param(1.0, "weight", 0.5, 0.01, 20.0),
                "speed_target": Param(1.0, "target", 0.5, -5.0, 8.0)},
               moves={"speed_target": {"forward_speed": +1, "motion_energy": +1}},
               description="forward speed near a target, and progress towards it (m/s; "
                           "negative = backward)"),
    # The sideways speed (+y; away from the side camera) in the same form as "speed".
    RewardTerm("sideways", _speed_code("sideways", "lateral_velocity", "lateral_target"),
               {"sideways": Param(1.0, "weight", 0.5, 0.01, 20.0),
                "lateral_target": Param(0.0, "target", 0.25, -3.0, 3.0)},
               moves={"lateral_target": {"depth_speed": +1, "motion_energy": +1}},
               description="sideways speed (+y, to the body's left at the start; away from the "
                           "side camera) near a target, and progress towards it (m/s)"),
    RewardTerm("turn", 'W["turn"] * float(np.exp(-abs(s.yaw_rate - W["turn_target"]) / 0.3))',
               {"turn": Param(0.5, "weight", 0.5, 0.01, 20.0),
                "turn_target": Param(0.0, "target", 0.2, -3.0, 3.0)},
               moves={"turn_target": {"turning_rate": +1}},
               description="turning rate near a target (rad/s, positive = left; 0 = straight)"),
    # Which way the body faces while it travels: not visible in pixels (an ant looks alike
    # from every side), so no feature moves it; for programs written by people or the LLM.
    RewardTerm("heading", 'W["heading"] * float(np.cos(s.torso_yaw - W["heading_target"]))',
               {"heading": Param(0.3, "weight", 0.5, 0.01, 20.0),
                "heading_target": Param(0.0, "target", 0.3, -3.2, 3.2)},
               description="face a fixed direction (rad; 0 = +x): travel at an angle to the "
                           "body (crab-like) rather than turning into it"),
    RewardTerm("height", 'W["height"] * float(np.exp(-abs(s.torso_height - W["height_target"]) / 0.1))',
               {"height": Param(0.5, "weight", 0.5, 0.01, 20.0),
                "height_target": Param(1.2, "target", 0.1, 0.1, 2.5)},
               moves={"height_target": {"height_ratio": +1, "aspect_ratio": -1}},
               description="torso near a target height (m)"),
    RewardTerm("upright", 'W["upright"] * s.uprightness',
               {"upright": Param(0.5, "weight", 0.5, 0.01, 20.0)},
               moves={"upright": {"tilt_deg": -1, "survival": +1}},
               description="keep the torso upright"),
    RewardTerm("lean", 'W["lean"] * float(np.exp(-abs(s.torso_pitch - W["lean_target"]) / 0.2))',
               {"lean": Param(0.5, "weight", 0.5, 0.01, 20.0),
                "lean_target": Param(0.0, "target", 0.1, -1.0, 1.0)},
               moves={"lean_target": {"tilt_deg": +1, "pose_trunk_lean_deg": +1}},
               description="hold the torso at a target forward lean (rad)"),
    RewardTerm("bounce", 'W["bounce"] * abs(s.vertical_velocity)',
               {"bounce": Param(0.2, "weight", 0.7, 0.001, 20.0)},
               moves={"bounce": {"vertical_oscillation": +1, "flight_fraction": +1,
                                 "motion_energy": +1}},
               description="reward vertical motion of the torso (hopping, bouncing)"),
    # Paid only right side up: a HalfCheetah on its back has no foot on the floor either, and
    # one trained with the bare airborne flag (cheetah-steady, 500k steps) flipped over and
    # waved its legs (NES 0).
    RewardTerm("flight", 'W["flight"] * float(s.airborne) * max(0.0, s.uprightness)',
               {"flight": Param(0.2, "weight", 0.7, 0.001, 20.0)},
               moves={"flight": {"flight_fraction": +1, "vertical_oscillation": +1}},
               description="reward time with no foot on the floor, right side up"),
    RewardTerm("smooth", '-W["smooth"] * float(np.sum(np.square(a - s.prev_action)))',
               {"smooth": Param(0.05, "weight", 0.7, 1e-4, 10.0)},
               moves={"smooth": {"cadence_hz": -1, "motion_energy": -1}},
               description="penalise fast changes of the action (slower, smoother gait)"),
    RewardTerm("ctrl", '-W["ctrl"] * float(np.sum(np.square(a)))',
               {"ctrl": Param(1e-3, "weight", 0.7, 1e-5, 5.0)},
               moves={"ctrl": {"motion_energy": -1}},
               description="penalise effort"),
    # Pose terms: they move the pose_* features (a person's joints in the expert video) through
    # s.gait_angles, in the same clinical conventions (rad); 0 on bodies without human legs.
    RewardTerm("knee_bend", 'W["knee_bend"] * float(np.exp(-abs(max(s.gait_angles.get("knee_left", 0.0), '
                            's.gait_angles.get("knee_right", 0.0)) - W["knee_target"]) / 0.3))',
               {"knee_bend": Param(0.3, "weight", 0.5, 0.01, 20.0),
                "knee_target": Param(0.6, "target", 0.15, 0.0, 2.0)},
               moves={"knee_target": {"pose_knee_max_deg": +1, "pose_knee_range_deg": +1}},
               description="the more bent knee near a target flexion (rad; a walking person's "
                           "swing knee reaches ~1.1)"),
    RewardTerm("stride", 'W["stride"] * float(np.exp(-abs(abs(s.gait_angles.get("hip_left", 0.0) - '
                         's.gait_angles.get("hip_right", 0.0)) - W["stride_target"]) / 0.2))',
               {"stride": Param(0.3, "weight", 0.5, 0.01, 20.0),
                "stride_target": Param(0.5, "target", 0.1, 0.0, 2.0)},
               moves={"stride": {"pose_lr_phase_deg": +1},
                      "stride_target": {"pose_step_length": +1, "pose_hip_range_deg": +1}},
               description="thighs apart by a target angle (rad): alternating legs, longer steps"),
    # A rhythm without a clock (the policy sees no time): the thighs' difference d swinging as
    # A sin(wt), w = 2 pi f, keeps (d / A)^2 + (d' / (wA))^2 = 1 (the swing's size) and
    # d'' = -w^2 d (its frequency) at every instant; the term is a bell on each. The second one
    # is what a small fast swing or a jitter of the hips fails (it reaches the circle's radius
    # part of the time), and a split held still fails it too.
    RewardTerm("gait_rhythm", f'W["gait_rhythm"] * float(np.exp(-abs(np.hypot('
                              f'{_hip_difference("gait_angles")} / W["rhythm_amplitude"], '
                              f'{_hip_difference("gait_rates")} / '
                              f'(W["rhythm_amplitude"] * 2 * np.pi * W["stride_hz"])) - 1.0) / 0.3) * '
                              f'np.exp(-abs({_hip_difference("gait_accelerations")} + '
                              f'(2 * np.pi * W["stride_hz"]) ** 2 * {_hip_difference("gait_angles")}) / '
                              f'(0.5 * W["rhythm_amplitude"] * (2 * np.pi * W["stride_hz"]) ** 2)))',
               {"gait_rhythm": Param(1.0, "weight", 0.5, 0.01, 20.0),
                "rhythm_amplitude": Param(0.6, "target", 0.1, 0.1, 1.5),
                "stride_hz": Param(1.0, "target", 0.15, 0.2, 3.0)},
               moves={"gait_rhythm": {"pose_lr_phase_deg": +1},
                      "rhythm_amplitude": {"pose_hip_range_deg": +1, "pose_step_length": +1},
                      "stride_hz": {"pose_cadence_hz": +1}},
               description="thighs swinging against each other at a target stride frequency "
                           "(Hz) and amplitude (rad): a person's rhythm"),
    # The same rhythm on a clock the policy sees (sim/gait_clock.py): the thighs' difference
    # follows A sin(2 pi f t). A target in time, not a property of the swing, so each step pays
    # for being in phase and the policy can tell which way to move its legs now.
    RewardTerm("gait_clock", f'W["gait_clock"] * float(np.exp(-abs({_hip_difference("gait_angles")} - '
                             f'W["clock_amplitude"] * np.sin(2 * np.pi * {CLOCK_NAME} * s.time)) / '
                             f'(0.4 * W["clock_amplitude"])))',
               {"gait_clock": Param(1.0, "weight", 0.5, 0.01, 20.0),
                "clock_amplitude": Param(0.6, "target", 0.1, 0.1, 1.5),
                "gait_clock_hz": _CLOCK_HZ},
               moves={"gait_clock": {"pose_lr_phase_deg": +1, "pose_hip_range_deg": +1},
                      "gait_clock_hz": {"pose_cadence_hz": +1},  # set, never stepped
                      "clock_amplitude": {"pose_hip_range_deg": +1, "pose_step_length": +1}},
               description="thighs swinging against each other in step with the gait clock "
                           "(GAIT_CLOCK_HZ, which the policy sees) at a target amplitude (rad)"),
    # Any body's rhythm on the clock: the torso's vertical velocity follows the derivative of
    # a height swinging with standard deviation bob_std at GAIT_CLOCK_HZ (the expert's cadence,
    # which NES and the pixels both read from the torso's bob). Without it, HalfCheetahs that
    # ran at the expert's speed, height and pitch did so at 4-4.5 Hz against its 1.5-2.1 Hz.
    RewardTerm("bob_clock", f'W["bob_clock"] * float(np.exp(-abs(s.vertical_velocity - {_BOB_SPEED} * '
                            f'np.cos(2 * np.pi * {CLOCK_NAME} * s.time)) / (0.5 * {_BOB_SPEED})))',
               {"bob_clock": Param(1.0, "weight", 0.5, 0.01, 20.0),
                "bob_std": Param(0.05, "target", 0.02, 0.005, 0.3),
                "gait_clock_hz": _CLOCK_HZ},
               moves={"bob_clock": {"vertical_oscillation": +1},
                      "bob_std": {"vertical_oscillation": +1, "flight_fraction": +1}},
               description="the torso bobbing up and down in step with the gait clock "
                           "(GAIT_CLOCK_HZ, which the policy sees) by a target standard "
                           "deviation of its height (m)"),
]}
"""Every term the offline engineer may use, by name."""


def default_params(terms: list[str]) -> dict[str, float]:
    """The default WEIGHTS for a set of terms."""
    return {p: spec.default for t in terms for p, spec in TERMS[t].params.items()}


def param_spec(name: str) -> Param:
    """The :class:`Param` of a plan's number (a WEIGHTS entry, or the gait clock), looked up
    across all terms."""
    for term in TERMS.values():
        if name in term.params:
            return term.params[name]
    raise KeyError(name)


def write_program(terms: list[str], weights: dict[str, float], header: str) -> str:
    """Source of a reward program made of ``terms`` with ``weights`` (a valid reward program:
    it imports only numpy and returns ``(total, components)``)."""
    lines = [f'"""{header}"""', "", "import numpy as np", ""]
    params = list(dict.fromkeys(p for t in terms for p in TERMS[t].params))  # clock: shared
    clocks = [p for p in params if param_spec(p).kind == "clock"]
    assert len(clocks) <= 1, f"one gait clock per program, not {clocks}"
    for name in clocks:
        lines += [f"{CLOCK_NAME} = {_number(weights[name])}  # Hz: the policy sees this clock", ""]
    lines.append("WEIGHTS = {")
    for name in [p for p in params if param_spec(p).kind != "clock"]:
        lines.append(f'    "{name}": {_number(weights[name])},')
    lines += ["}", "", "", "def compute_reward(s, a):", "    W = WEIGHTS", "    components = {"]
    for t in terms:
        lines.append(f'        "{t}": {TERMS[t].code},  # {TERMS[t].description}')
    lines += ["    }", "    return float(sum(components.values())), components", ""]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.6g}" if "e" not in f"{value:.6g}" else f"{value:.3e}"


FALLBACK_TERMS = ("speed", "ctrl")
"""The program every engineer falls back to when it has none that passes its test."""


def fallback_program(why: str) -> str:
    """The one fallback reward program (move forward, small effort penalty); ``why`` goes in
    its header so the run directory says why it was used."""
    terms = list(FALLBACK_TERMS)
    return write_program(terms, default_params(terms), f"Fallback program ({why}).")
