"""Gait features from body landmarks: sagittal joint angles, cadence, duty factor, step length,
left/right phase, measured the same way from a video's pose and from a simulator's bodies.

Everything here is pure numpy over a :class:`LegKeypoints` series (side view, forward = +X,
up = +Z, any length unit). ``tools/pose_estimation.py`` fills one from video (mediapipe
landmarks); ``sim/gait.py``-style callers fill one from MuJoCo bodies. Angle conventions
(degrees, the clinical ones):

- **trunk lean**: the hip-mid -> shoulder-mid line from vertical; + = top forward.
- **hip flexion**: the thigh (hip -> knee) relative to the trunk's downward line; + = knee ahead.
- **knee flexion**: thigh direction minus shank (knee -> ankle) direction; 0 straight, + bent.
- **ankle dorsiflexion**: foot (heel -> toe) relative to the perpendicular of the shank;
  + = toes toward the shin.

Gait timing uses only the legs relative to the hip, so a panning camera does not change it:
a foot is in **stance** while it moves backward relative to the hip (a foot on the ground
slides back under a body moving forward), the **stride** frequency is the dominant frequency of
the fore-aft distance between the ankles, **cadence** is two steps per stride.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LEGS = ("left", "right")
JOINTS = ("hip", "knee", "ankle")


@dataclass(frozen=True)
class PoseFeatureDefinition:
    """What one pose feature means (the critic's and the LLM's vocabulary)."""

    name: str
    unit: str
    definition: str
    scale: float
    """A clearly visible difference, in ``unit``: how differences are normalised."""


POSE_FEATURE_DEFINITIONS: dict[str, PoseFeatureDefinition] = {d.name: d for d in [
    PoseFeatureDefinition("pose_cadence_hz", "steps/s",
                          "steps per second: twice the stride frequency, the dominant frequency "
                          "(0.15-3 Hz: a slow walk to a sprint) of the fore-aft distance between "
                          "the ankles and of the left-right differences of hip and knee angles "
                          "(feet moving together, as in a hop: the hip angle's frequency, one "
                          "step per cycle); none when the clip is too short for the stride it "
                          "shows", 0.4),
    PoseFeatureDefinition("pose_duty_factor", "fraction of stride",
                          "stance fraction: share of time a foot moves backward relative to the "
                          "hip (walking ~0.6, running < 0.5), mean of both feet", 0.1),
    PoseFeatureDefinition("pose_step_length", "leg lengths",
                          "90th percentile of the fore-aft distance between the ankles, divided "
                          "by the leg length (hip -> knee -> ankle)", 0.2),
    PoseFeatureDefinition("pose_lr_phase_deg", "degrees",
                          "phase lag between the left and right hip angles at the stride "
                          "frequency: 180 alternating (walk, run), 0 together (hop, bound)", 45.0),
    PoseFeatureDefinition("pose_trunk_lean_deg", "degrees",
                          "mean trunk lean from vertical, + = top forward", 8.0),
    PoseFeatureDefinition("pose_hip_range_deg", "degrees",
                          "hip flexion range (95th - 5th percentile), mean of both legs", 10.0),
    PoseFeatureDefinition("pose_hip_max_deg", "degrees",
                          "hip flexion 95th percentile (how far the thigh swings forward), mean "
                          "of both legs", 10.0),
    PoseFeatureDefinition("pose_knee_range_deg", "degrees",
                          "knee flexion range (95th - 5th percentile), mean of both legs", 10.0),
    PoseFeatureDefinition("pose_knee_max_deg", "degrees",
                          "knee flexion 95th percentile (deepest bend in swing), mean of both "
                          "legs", 10.0),
    PoseFeatureDefinition("pose_ankle_range_deg", "degrees",
                          "ankle dorsiflexion range (95th - 5th percentile), mean of both legs; "
                          "absent where the body has no ankle", 10.0),
]}
"""Every pose feature compared between an expert video and the learner (``PoseFeatures.vector()``)."""


def airborne_fraction(duty_factor: float, lr_phase_deg: float | None) -> float:
    """The share of time no foot is down, from one foot's duty factor d (its stance share) and
    the legs' left/right phase: an alternating gait (phase >= 90 degrees, or unknown) is
    airborne 1 - 2d of the time (0 for a walk, d >= 0.5), a hop or bound 1 - d."""
    alternating = lr_phase_deg is None or lr_phase_deg >= 90
    return max(0.0, 1.0 - (2.0 if alternating else 1.0) * float(duty_factor))


@dataclass
class LegKeypoints:
    """Side-view keypoints over time: each array is (frames, 2) of (X forward, Z up), NaN where
    not seen. ``heel``/``toe`` may be all NaN (a body without feet: no ankle angle)."""

    fps: float
    shoulder: np.ndarray
    hip: dict[str, np.ndarray]
    knee: dict[str, np.ndarray]
    ankle: dict[str, np.ndarray]
    heel: dict[str, np.ndarray]
    toe: dict[str, np.ndarray]
    confidence: np.ndarray | None = None
    """Per-frame confidence in [0, 1] (1 for simulator state)."""


@dataclass
class PoseFeatures:
    """Gait features of one subject (video or simulator), with the per-frame series behind them."""

    pose_cadence_hz: float | None
    pose_duty_factor: float | None
    pose_step_length: float | None
    pose_lr_phase_deg: float | None
    pose_trunk_lean_deg: float | None
    pose_hip_range_deg: float | None
    pose_hip_max_deg: float | None
    pose_knee_range_deg: float | None
    pose_knee_max_deg: float | None
    pose_ankle_range_deg: float | None
    detection_rate: float
    """Fraction of frames with a confident pose (confidence >= 0.5)."""
    angle_noise_deg: float | None
    """Frame-to-frame joint-angle noise: RMS second difference / sqrt(6) of the unsmoothed
    hip and knee angles, median over joints (white noise of std s gives s)."""
    fps: float
    frames: int
    series: dict[str, list[float | None]] = field(default_factory=dict)
    """Per-frame smoothed angles (``hip_left``, ``knee_right``, ..., ``trunk_lean``) in degrees and
    ``confidence``; None where not measured."""

    def vector(self) -> dict[str, float | None]:
        """The comparable features (the keys of :data:`POSE_FEATURE_DEFINITIONS`)."""
        return {k: getattr(self, k) for k in POSE_FEATURE_DEFINITIONS}

    def to_dict(self, series: bool = True) -> dict:
        """JSON-ready dict; ``series=False`` leaves out the per-frame series."""
        out = asdict(self)
        if not series:
            out.pop("series")
        return out


# -- angles ---------------------------------------------------------------------------------------
def _direction_from_vertical(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Angle (rad) of the segment top -> bottom from straight down; + = bottom ahead (+X)."""
    d = bottom - top
    return np.arctan2(d[:, 0], -d[:, 1])


def trunk_lean(hip_mid: np.ndarray, shoulder: np.ndarray) -> np.ndarray:
    """Trunk lean in radians, + = top forward."""
    d = shoulder - hip_mid
    return np.arctan2(d[:, 0], d[:, 1])


def joint_angles(k: LegKeypoints) -> dict[str, np.ndarray]:
    """Per-frame angles in degrees: ``trunk_lean`` and ``hip_/knee_/ankle_<leg>``."""
    hip_mid = _mid(k.hip["left"], k.hip["right"])
    lean = trunk_lean(hip_mid, k.shoulder)
    out = {"trunk_lean": np.degrees(lean)}
    for leg in LEGS:
        thigh = _direction_from_vertical(k.hip[leg], k.knee[leg])
        shank = _direction_from_vertical(k.knee[leg], k.ankle[leg])
        foot = k.toe[leg] - k.heel[leg]
        foot_pitch = np.arctan2(foot[:, 1], foot[:, 0])  # + = toes up
        out[f"hip_{leg}"] = np.degrees(_wrap(thigh + lean))
        out[f"knee_{leg}"] = np.degrees(_wrap(thigh - shank))
        ankle = np.degrees(_wrap(foot_pitch - shank))
        # beyond +-90 degrees the foot points backward: a foreshortened or swapped foot, not a pose
        out[f"ankle_{leg}"] = np.where(np.abs(ankle) <= 90.0, ankle, np.nan)
    return out


def leg_lengths(k: LegKeypoints) -> dict[str, np.ndarray]:
    """Per leg, per frame: hip -> knee -> ankle along the two segments (unchanged by a bent knee)."""
    return {g: np.linalg.norm(k.knee[g] - k.hip[g], axis=1) + np.linalg.norm(k.ankle[g] - k.knee[g], axis=1)
            for g in LEGS}


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Midpoint of two keypoint series (NaN where either is missing)."""
    return (a + b) / 2


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + math.pi) % (2 * math.pi) - math.pi


# -- series clean-up --------------------------------------------------------------------------------
def fill_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation over runs of NaN no longer than ``max_gap`` frames (inside the
    series only); longer gaps stay NaN, so no value is invented across a long occlusion."""
    x = np.array(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.all() or not bad.any():
        return x
    idx = np.arange(x.size)
    filled = np.interp(idx, idx[~bad], x[~bad])
    run_start = None
    for i in range(x.size + 1):
        if i < x.size and bad[i]:
            run_start = i if run_start is None else run_start
            continue
        if run_start is not None:
            inside = run_start > 0 and i < x.size
            if inside and i - run_start <= max_gap:
                x[run_start:i] = filled[run_start:i]
            run_start = None
    return x


def smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """NaN-aware Gaussian smoothing (normalised convolution); NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    if sigma_frames <= 0.3:
        return x.copy()
    radius = int(math.ceil(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    ok = np.isfinite(x)
    num = np.convolve(np.where(ok, x, 0.0), kernel, mode="same")
    den = np.convolve(ok.astype(np.float64), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~ok] = np.nan
    return out


def noise_level(x: np.ndarray) -> float:
    """Frame-to-frame noise of a series: RMS of its second difference / sqrt(6) over finite
    triples (for white noise of standard deviation s this is s; a smooth gait adds little)."""
    d2 = x[2:] - 2 * x[1:-1] + x[:-2]
    d2 = d2[np.isfinite(d2)]
    return float(np.sqrt(np.mean(d2 ** 2) / 6.0)) if d2.size >= 3 else float("nan")


# -- gait timing ------------------------------------------------------------------------------------
def stride_frequency(signal: np.ndarray | list[np.ndarray], fps: float, min_hz: float = 0.15,
                     max_hz: float = 3.0) -> tuple[float | None, float]:
    """(dominant frequency in Hz or None, its share of the band's spectral power) of a series
    with gaps, or of several series sharing one period (their band-normalised power spectra
    are summed, so one noisy signal cannot decide alone). Gaps are filled by interpolation; a
    series needs 60 % finite samples and 8 frames to count. The band reaches 3 strides/s (6
    steps/s): a sprinter's 2.4-2.5 strides/s lay above the old 2.0 and were read as a slower
    peak (1.64 steps/s for about 5)."""
    signals = signal if isinstance(signal, list) else [signal]
    n = max((len(x) for x in signals), default=0)
    pad = max(256, 1 << int(math.ceil(math.log2(4 * max(n, 1)))))  # a finer frequency grid
    freqs = np.fft.rfftfreq(pad, 1.0 / fps)
    # a period is only believed when the series holds one and a half of it
    band = (freqs >= max(min_hz, 1.5 * fps / max(n, 1))) & (freqs <= max_hz)
    total = np.zeros(freqs.size)
    for raw in signals:
        x = np.asarray(raw, dtype=np.float64)
        ok = np.isfinite(x)
        if x.size < 8 or ok.mean() < 0.6 or not band.any():
            continue
        idx = np.arange(x.size)
        x = np.interp(idx, idx[ok], x[ok])
        x = x - np.polyval(np.polyfit(idx, x, 1), idx)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), n=pad)) ** 2
        if spectrum[band].sum() > 1e-12:
            total += spectrum / spectrum[band].sum()
    if total[band].sum() <= 1e-12:
        return None, 0.0
    peak = int(np.argmax(np.where(band, total, 0.0)))
    if total[peak] < total[max(0, peak - 1)] or total[peak] < total[min(total.size - 1, peak + 1)]:
        # the band's edge cuts a slope (e.g. a clip too short for the stride it shows): the
        # strongest in-band bin is no rhythm of its own, so refuse rather than guess
        return None, 0.0
    share = float(total[max(0, peak - 2):peak + 3].sum() / total[band].sum())
    return float(freqs[peak]), share


def phase_at(x: np.ndarray, fps: float, hz: float) -> float | None:
    """Phase (rad) of the ``hz`` component of a series with gaps (finite samples only)."""
    t = np.arange(x.size) / fps
    ok = np.isfinite(x)
    if ok.sum() < 8:
        return None
    c = np.sum((x[ok] - x[ok].mean()) * np.exp(-2j * math.pi * hz * t[ok]))
    return float(np.angle(c)) if abs(c) > 1e-9 else None


def _pct_range(x: np.ndarray) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if x.size < 5:
        return None, None
    lo, hi = np.percentile(x, [5, 95])
    return float(hi - lo), float(hi)


def _mean_of(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def gait_features(k: LegKeypoints, *, smooth_seconds: float = 0.04,
                  max_gap_seconds: float = 0.25) -> PoseFeatures:
    """All pose features of one keypoint series (see the module docstring for definitions)."""
    n = k.shoulder.shape[0]
    conf = np.ones(n) if k.confidence is None else np.asarray(k.confidence, dtype=np.float64)
    confident = conf >= 0.5
    sigma = smooth_seconds * k.fps
    gap = max(1, int(round(max_gap_seconds * k.fps)))

    def clean(p: np.ndarray) -> np.ndarray:
        p = np.where(confident[:, None], p, np.nan)
        return np.stack([smooth(fill_gaps(p[:, i], gap), sigma) for i in range(2)], axis=1)

    raw = joint_angles(_masked(k, confident))
    ck = LegKeypoints(fps=k.fps, shoulder=clean(k.shoulder),
                      hip={g: clean(k.hip[g]) for g in LEGS}, knee={g: clean(k.knee[g]) for g in LEGS},
                      ankle={g: clean(k.ankle[g]) for g in LEGS},
                      heel={g: clean(k.heel[g]) for g in LEGS}, toe={g: clean(k.toe[g]) for g in LEGS},
                      confidence=conf)
    angles = joint_angles(ck)
    hip_mid = _mid(ck.hip["left"], ck.hip["right"])
    # fore-aft ankle separation: one period per stride, whatever the camera does
    separation = ck.ankle["left"][:, 0] - ck.ankle["right"][:, 0]
    lengths = np.concatenate(list(leg_lengths(ck).values()))
    lengths = lengths[np.isfinite(lengths)]
    leg_length = float(np.median(lengths)) if lengths.size else float("nan")
    steps_per_stride = 2.0
    # three views of one stride: ankles apart, thighs apart, knees apart (each one period per stride)
    stride_hz, _ = stride_frequency(
        [separation, angles["hip_left"] - angles["hip_right"],
         angles["knee_left"] - angles["knee_right"]], k.fps)
    if not np.nanstd(separation) > 0.02 * leg_length:  # feet together (hop, bound): one per cycle
        stride_hz, _ = stride_frequency(angles["hip_left"], k.fps)
        steps_per_stride = 1.0
    step = None
    if np.isfinite(separation).sum() >= 5 and np.isfinite(leg_length) and leg_length > 0:
        step = float(np.nanpercentile(np.abs(separation), 90) / leg_length)
    duty = []
    for g in LEGS:
        rel = ck.ankle[g][:, 0] - hip_mid[:, 0]
        v = np.diff(rel)
        v = v[np.isfinite(v)]
        duty.append(float(np.mean(v < 0)) if v.size >= 5 else None)
    phase = None
    if stride_hz:
        pl, pr = (phase_at(angles[f"hip_{g}"], k.fps, stride_hz) for g in LEGS)
        if pl is not None and pr is not None:
            phase = abs(math.degrees(float(_wrap(np.array(pl - pr)))))
    ranges = {j: [_pct_range(angles[f"{j}_{g}"]) for g in LEGS] for j in JOINTS}
    noise = [noise_level(raw[f"{j}_{g}"]) for j in ("hip", "knee") for g in LEGS]
    noise = [v for v in noise if math.isfinite(v)]
    lean = angles["trunk_lean"]
    series: dict[str, list[float | None]] = {
        name: [None if not math.isfinite(v) else round(float(v), 2) for v in values]
        for name, values in angles.items()}
    series["confidence"] = [round(float(c), 3) for c in conf]
    return PoseFeatures(
        pose_cadence_hz=None if stride_hz is None else steps_per_stride * stride_hz,
        pose_duty_factor=_mean_of(duty),
        pose_step_length=step,
        pose_lr_phase_deg=phase,
        pose_trunk_lean_deg=float(np.mean(lean[np.isfinite(lean)])) if np.isfinite(lean).any() else None,
        pose_hip_range_deg=_mean_of([r[0] for r in ranges["hip"]]),
        pose_hip_max_deg=_mean_of([r[1] for r in ranges["hip"]]),
        pose_knee_range_deg=_mean_of([r[0] for r in ranges["knee"]]),
        pose_knee_max_deg=_mean_of([r[1] for r in ranges["knee"]]),
        pose_ankle_range_deg=_mean_of([r[0] for r in ranges["ankle"]]),
        detection_rate=float(confident.mean()) if n else 0.0,
        angle_noise_deg=float(np.median(noise)) if noise else None,
        fps=float(k.fps), frames=int(n), series=series)


def _masked(k: LegKeypoints, keep: np.ndarray) -> LegKeypoints:
    def m(p: np.ndarray) -> np.ndarray:
        return np.where(keep[:, None], p, np.nan)

    return LegKeypoints(fps=k.fps, shoulder=m(k.shoulder), hip={g: m(k.hip[g]) for g in LEGS},
                        knee={g: m(k.knee[g]) for g in LEGS}, ankle={g: m(k.ankle[g]) for g in LEGS},
                        heel={g: m(k.heel[g]) for g in LEGS}, toe={g: m(k.toe[g]) for g in LEGS},
                        confidence=k.confidence)


# -- the learner: the same features from simulator state -----------------------------------------
class KeypointRecorder:
    """Records ``s.leg_keypoints`` at every step: pass :meth:`record` as
    ``run_episodes(on_step=...)`` (or the recorder itself as its ``reward``: it returns a zero
    reward) and read :meth:`keypoints` afterwards."""

    def __init__(self) -> None:
        self.steps: list[dict[str, np.ndarray]] = []

    def record(self, s: Any) -> None:
        """Record one step's keypoints from its state view."""
        self.steps.append({k: np.array(v) for k, v in s.leg_keypoints.items()})

    def __call__(self, s: Any, a: np.ndarray) -> tuple[float, dict[str, float]]:
        """Record one step (the reward-program signature)."""
        self.record(s)
        return 0.0, {}

    def keypoints(self, fps: float, start: int = 0, stop: int | None = None
                  ) -> LegKeypoints | None:
        """The recorded steps ``start:stop`` (default: all) as a keypoint series (None for a
        body without human legs)."""
        steps = self.steps[start:stop]
        if not steps or "shoulder" not in steps[0]:
            return None

        def series(name: str) -> np.ndarray:
            nan = np.full(2, np.nan)
            return np.array([step.get(name, nan) for step in steps], dtype=np.float64)

        return LegKeypoints(fps=fps, shoulder=series("shoulder"),
                            hip={g: series(f"hip_{g}") for g in LEGS},
                            knee={g: series(f"knee_{g}") for g in LEGS},
                            ankle={g: series(f"ankle_{g}") for g in LEGS},
                            heel={g: series(f"heel_{g}") for g in LEGS},
                            toe={g: series(f"toe_{g}") for g in LEGS})


def learner_pose_features(env_id: str, policy: Any, *, seed: int, max_steps: int
                          ) -> dict[str, float]:
    """The pose features of a policy, measured from simulator state over one episode (no
    rendering): the learner's side of the comparison with a video's pose. Empty for a body
    without human legs (only Walker2d and Humanoid have them)."""
    from vid2reward.sim.rollout import run_episodes

    recorder = KeypointRecorder()
    episode = run_episodes(env_id, policy, episodes=1, seed=seed, max_steps=max_steps,
                           reward=recorder)[0]
    keypoints = recorder.keypoints(1.0 / episode.dt)
    if keypoints is None:
        return {}
    measured = gait_features(keypoints, smooth_seconds=0.0)
    return {k: float(v) for k, v in measured.vector().items() if v is not None}
