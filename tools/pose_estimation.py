"""Body pose from real footage: mediapipe's pose landmarker on crops around the tracked subject,
mapped back to the frame, turned into gait features, and drawn on a contact sheet.

mediapipe is an optional dependency (``pip install -e ".[pose]"`` then ``pip install --no-deps
mediapipe==0.10.21``, see the README): its bundled ``pose_landmark_full`` model
(``model_complexity=1``) runs offline on the CPU; the other complexities download their models
and fail without a network. A small subject (a walker far away among others) is found by
``person_tracking`` and each frame's crop around it is enlarged to ``CROP_SIZE`` pixels before
the model sees it, so a 60-pixel person is measured like a close one.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from vid2reward.sim.errors import UserError
from vid2reward.sim.render import contact_sheet
from vid2reward.tools.person_tracking import (
    Box,
    box_per_frame,
    choose_subject,
    detect_movers,
    parse_subject,
    track,
)
from vid2reward.tools.pose_features import (
    LEGS,
    LegKeypoints,
    PoseFeatures,
    gait_features,
    leg_lengths,
)
from vid2reward.tools.video_frames import CropBox, VideoInfo, probe_video, read_frames

CROP_SIZE = 256
"""Side of the square crop (pixels) the pose model sees."""
LANDMARKS = {"nose": 0, "shoulder_left": 11, "shoulder_right": 12, "hip_left": 23, "hip_right": 24,
             "knee_left": 25, "knee_right": 26, "ankle_left": 27, "ankle_right": 28,
             "heel_left": 29, "heel_right": 30, "toe_left": 31, "toe_right": 32}
"""mediapipe BlazePose landmark indices used (the subject's own left and right)."""
REACQUIRE_FRAMES = 30
"""Frames a lost subject's last box is still searched (an occlusion of ~1 s at 30 fps)."""
CONFIDENCE_LANDMARKS = [11, 12, 23, 24, 25, 26, 27, 28]
"""A frame's confidence is the mean visibility of the shoulders, hips, knees and ankles."""
SKELETON = [(11, 12), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27), (27, 29), (29, 31),
            (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32)]
INSTALL_FIX = ('pip install -e ".[pose]" && pip install --no-deps mediapipe==0.10.21 '
               "(the README's pose install line)")


@dataclass
class PoseTrack:
    """Landmarks of the subject in every sampled frame of a clip."""

    landmarks: np.ndarray
    """(frames, 33, 3): x, y in frame pixels and visibility in [0, 1]; NaN where no pose."""
    boxes: list[Box | None]
    """The subject's box in each frame (None: the whole frame was given to the model)."""
    other_boxes: list[list[Box]]
    """Every other moving person detected in each frame."""
    fps: float
    times: np.ndarray
    subject: str
    """How the subject was chosen, in words."""

    def confidence(self) -> np.ndarray:
        """Per-frame confidence: mean visibility of the leg and trunk landmarks (0 without pose)."""
        vis = self.landmarks[:, CONFIDENCE_LANDMARKS, 2]
        return np.nan_to_num(np.mean(vis, axis=1), nan=0.0)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while mediapipe starts: its C++ side prints TensorFlow Lite and
    absl start-up lines (and protobuf a harmless AttributeError) that no flag turns off. Python
    exceptions still propagate and become our one-line errors."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def load_pose_model() -> Any:
    """mediapipe's Pose solution (video mode, bundled full model), or a one-line user error."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    with _quiet_native_stderr():
        try:
            import mediapipe as mp  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise UserError("pose features need mediapipe, which is not installed",
                            where="--pose", fix=INSTALL_FIX) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # its protobuf calls
                model = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                               smooth_landmarks=True,
                                               min_detection_confidence=0.5,
                                               min_tracking_confidence=0.5)
            return model
        except Exception as exc:  # an incompatible protobuf shows up here, not at import
            raise UserError(f"mediapipe could not start its pose model ({exc})", where="--pose",
                            fix=INSTALL_FIX) from None


def _crop_window(box: Box, frame_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(x0, y0, side) of a square 1.5x the box's longer side, centred on it."""
    x, y, w, h = box
    side = int(math.ceil(1.5 * max(w, h)))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), max(side, 8)


def _square_crop(frame: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The square window, padded with black where it leaves the frame, resized to CROP_SIZE."""
    h, w = frame.shape[:2]
    out = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)


def estimate_pose(frames: list[np.ndarray], fps: float, times: np.ndarray | None = None,
                  subject: str = "auto", subject_time: float = 0.0) -> PoseTrack:
    """Find the subject (``subject``: "auto" or "x,y,w,h" pixels at ``subject_time`` s into
    ``frames``) and measure its landmarks in every frame."""
    n = len(frames)
    times = np.arange(n) / fps if times is None else times
    box = parse_subject(subject)
    at = int(np.clip(round(subject_time * fps), 0, max(0, n - 1)))
    detections = detect_movers(frames)
    tracks = track(detections, frames=frames)
    chosen = choose_subject(tracks, box, at)
    boxes: list[Box | None]
    if chosen is not None:
        boxes = box_per_frame(chosen, n)
        how = (f"track {chosen.id}: {chosen.length} of {n} frames, median height "
               f"{chosen.median_height():.0f} px, of {len(tracks)} moving blobs")
        how = ("the track under the given box, " if box else "most persistent large mover, ") + how
    elif box is not None:  # an untracked person: the pose found in each frame places the next crop
        boxes = [box] + [None] * (n - 1)
        how = "the given box, followed by its pose (no moving track overlaps it)"
    else:
        boxes = [None] * n
        how = "whole frame (no moving person found: a following camera, or one still subject)"
    marks = _landmarks(frames, boxes, whole_frame=chosen is None and box is None,
                       follow=chosen is not None or box is not None)
    if chosen is not None and box is None and _found(marks) < 0.3:
        # the auto track holds no body the model recognises (a fragment, a bag, a bicycle):
        # the whole frame, where the model picks the most prominent person, does better
        whole = _landmarks(frames, [None] * n, whole_frame=True)
        if _found(whole) > _found(marks):
            marks, boxes = whole, [None] * n
            how = f"whole frame (the auto track, {how}, held a pose in under 30 % of frames)"
    others = [[d for d in detections[i] if _not_subject(d, boxes[i])] for i in range(n)]
    return PoseTrack(landmarks=marks, boxes=boxes, other_boxes=others, fps=fps, times=times,
                     subject=how)


def _found(marks: np.ndarray) -> float:
    """Fraction of frames with landmarks."""
    return float(np.isfinite(marks[:, 0, 0]).mean()) if len(marks) else 0.0


def _landmarks(frames: list[np.ndarray], boxes: list[Box | None], whole_frame: bool,
               follow: bool = False) -> np.ndarray:
    """(frames, 33, 3) landmarks from crops around ``boxes`` (frames without a box are skipped,
    or given whole when ``whole_frame``). With ``follow``, a frame after one with a pose is
    cropped around that pose instead (``boxes`` is updated in place): the pose stays on its
    person where a motion track breaks (an occlusion, a still moment) or jumps to a neighbour;
    the track's box takes over only while the pose is lost."""
    model = load_pose_model()
    marks = np.full((len(frames), 33, 3), np.nan)
    good: list[tuple[int, Box]] = []  # (frame, box) of the confident poses so far
    tracked = list(boxes)  # the motion track's boxes (``boxes`` becomes the crops used)
    try:
        # the graph's own threads print start-up lines at the first detections
        with _quiet_native_stderr():
            for i, frame in enumerate(frames):
                if follow and i > 0:
                    pose_box = _landmark_box(marks[i - 1])
                    # the same body as the motion track or as the last accepted pose (either:
                    # a first wrong pose must not become the only reference, and a track box
                    # that merges two people must not veto a good pose)
                    before = tracked[i - 1]
                    refs = ([(i - 1, before)] if before is not None else []) + good[-1:]
                    if pose_box is not None and refs and \
                            not any(_same_body(r, (i - 1, pose_box)) for r in refs):
                        marks[i - 1] = np.nan  # the model jumped to a passer-by: not our subject
                        pose_box = None
                    if pose_box is not None:
                        good.append((i - 1, pose_box))
                        boxes[i] = _steady(good, i)
                    elif tracked[i] is None and good and i - good[-1][0] <= REACQUIRE_FRAMES:
                        boxes[i] = _steady(good, i)  # lost behind a post: where it was heading
                    else:
                        boxes[i] = tracked[i]
                b = boxes[i]
                if b is None and not whole_frame:
                    continue  # outside the subject's track
                if b is None:
                    h, w = frame.shape[:2]
                    x0, y0, side = (w - max(h, w)) // 2, (h - max(h, w)) // 2, max(h, w)
                else:
                    x0, y0, side = _crop_window(b, frame.shape)
                result = model.process(_square_crop(frame, x0, y0, side))
                if result.pose_landmarks is None:
                    continue
                for j, lm in enumerate(result.pose_landmarks.landmark):
                    marks[i, j] = (x0 + lm.x * side, y0 + lm.y * side, lm.visibility)
    finally:
        model.close()
    return marks


def _same_body(before: tuple[int, Box], after: tuple[int, Box]) -> bool:
    """Whether a pose box can be the same person as an earlier one: its centre moved less than
    40 % of the body height per frame and its height changed by less than 40 %."""
    (f0, a), (f1, b) = before, after
    frames = max(1, f1 - f0)
    moved = np.hypot(a[0] + a[2] / 2 - b[0] - b[2] / 2, a[1] + a[3] / 2 - b[1] - b[3] / 2)
    return bool(moved <= 0.4 * a[3] * frames and 1 / 1.4 <= b[3] / a[3] <= 1.4)


def _steady(good: list[tuple[int, Box]], i: int) -> Box:
    """The crop box for frame ``i`` from the last confident poses: their median size (a pose
    half hidden behind something has a shrunken box) at the centre they were moving to."""
    recent = good[-5:]
    size = np.median([[b[2], b[3]] for _, b in recent], axis=0)
    centres = np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for _, b in recent])
    frames = np.array([f for f, _ in recent], dtype=np.float64)
    velocity = np.zeros(2)
    if len(recent) >= 2 and frames[-1] > frames[0]:
        velocity = (centres[-1] - centres[0]) / (frames[-1] - frames[0])
    cx, cy = centres[-1] + velocity * (i - frames[-1])
    return (float(cx - size[0] / 2), float(cy - size[1] / 2), float(size[0]), float(size[1]))


def _landmark_box(m: np.ndarray) -> Box | None:
    """The box around one frame's visible landmarks (None without a confident pose: a pose the
    model is unsure of drifts, and its box would lead the next crop away)."""
    if not np.isfinite(m[:, 0]).any() or np.nanmean(m[CONFIDENCE_LANDMARKS, 2]) < 0.5:
        return None
    seen = m[m[:, 2] >= 0.5]
    x0, y0 = seen[:, 0].min(), seen[:, 1].min()
    x1, y1 = seen[:, 0].max(), seen[:, 1].max()
    return (float(x0), float(y0), float(max(x1 - x0, 4.0)), float(max(y1 - y0, 4.0)))


def _not_subject(a: Box, b: Box | None) -> bool:
    """True when box ``a`` is not the subject's box ``b`` (their centres are apart)."""
    if b is None:
        return True
    return abs((a[0] + a[2] / 2) - (b[0] + b[2] / 2)) > b[2] / 2 or \
        abs((a[1] + a[3] / 2) - (b[1] + b[3] / 2)) > b[3] / 2


def facing_sign(marks: np.ndarray) -> float:
    """+1 when the subject faces image-right, -1 image-left: toes ahead of heels (median over
    both feet and all frames), else the hips' motion, else +1."""
    foot = np.concatenate([marks[:, 31, 0] - marks[:, 29, 0], marks[:, 32, 0] - marks[:, 30, 0]])
    foot = foot[np.isfinite(foot)]
    if foot.size >= 5 and abs(np.median(foot)) > 1e-6:
        return float(np.sign(np.median(foot)))
    hips = (marks[:, 23, 0] + marks[:, 24, 0]) / 2
    ok = np.isfinite(hips)
    if ok.sum() >= 2:
        return 1.0 if hips[ok][-1] >= hips[ok][0] else -1.0
    return 1.0


def keypoints_from_landmarks(pt: PoseTrack) -> LegKeypoints:
    """Side-view keypoints (X forward, Z up, pixels) of a pose track."""
    sign = facing_sign(pt.landmarks)

    def xz(i: int) -> np.ndarray:
        return np.stack([sign * pt.landmarks[:, i, 0], -pt.landmarks[:, i, 1]], axis=1)

    shoulder = (xz(11) + xz(12)) / 2
    side = {"left": 0, "right": 1}
    return LegKeypoints(fps=pt.fps, shoulder=shoulder,
                        hip={g: xz(23 + side[g]) for g in LEGS},
                        knee={g: xz(25 + side[g]) for g in LEGS},
                        ankle={g: xz(27 + side[g]) for g in LEGS},
                        heel={g: xz(29 + side[g]) for g in LEGS},
                        toe={g: xz(31 + side[g]) for g in LEGS},
                        confidence=pt.confidence())


def draw(frame: np.ndarray, pt: PoseTrack, i: int) -> np.ndarray:
    """One frame with the other movers (grey), the subject's box (green) and skeleton
    (left side blue, right side red, trunk white)."""
    out = frame.copy()
    scale = max(1, frame.shape[0] // 240)
    for b in pt.other_boxes[i]:
        cv2.rectangle(out, (int(b[0]), int(b[1])), (int(b[0] + b[2]), int(b[1] + b[3])),
                      (160, 160, 160), scale)
    subject = pt.boxes[i]
    if subject is not None:
        x, y, w, h = subject
        cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2 * scale)
    m = pt.landmarks[i]
    for a, c in SKELETON:
        if not (np.isfinite(m[a, :2]).all() and np.isfinite(m[c, :2]).all()):
            continue
        colour = (80, 140, 255) if a % 2 and c % 2 else (255, 80, 80) if not a % 2 and not c % 2 \
            else (255, 255, 255)
        cv2.line(out, (int(m[a, 0]), int(m[a, 1])), (int(m[c, 0]), int(m[c, 1])), colour,
                 scale, cv2.LINE_AA)
    return out


def pose_contact_sheet(frames: list[np.ndarray], pt: PoseTrack, path: str | Path) -> Path:
    """A 4x3 PNG grid of evenly spaced frames with the boxes and skeleton drawn."""
    conf = pt.confidence()
    drawn = [draw(f, pt, i) for i, f in enumerate(frames)]
    labels = [f"t={t:.1f}s conf {c:.2f}" for t, c in zip(pt.times, conf, strict=True)]
    return contact_sheet(drawn, path, labels=labels)


def pose_features_from_video(path: str | Path, *, start: float = 0.0, end: float | None = None,
                             subject: str = "auto", subject_time: float = 0.0,
                             sheet: str | Path | None = None, max_fps: float = 30.0,
                             ) -> tuple[PoseFeatures, PoseTrack]:
    """Pose features of the subject of a clip (``subject_time`` counts from ``start``), and the
    pose track behind them; with ``sheet``, the contact sheet is written there."""
    rate = min(max_fps, probe_video(path).fps)
    clip = read_frames(path, fps=rate, start=start, end=end)
    if len(clip.frames) < 8:
        raise UserError(f"only {len(clip.frames)} frames between {start:g}s and {end}s",
                        where=str(path), fix="measure at least 8 frames (widen --start/--end)")
    pt = estimate_pose(clip.frames, clip.fps, clip.times, subject=subject, subject_time=subject_time)
    features = gait_features(keypoints_from_landmarks(pt))
    if sheet is not None:
        pose_contact_sheet(clip.frames, pt, sheet)
    return features, pt


def subject_crop(pt: PoseTrack, info: VideoInfo, margin: float = 0.25) -> CropBox | None:
    """The part of the frame the subject's crops covered (widened by ``margin`` of its median
    height), as a crop for the pixel features; None when the whole frame was measured."""
    boxes = np.array([b for b in pt.boxes if b is not None])
    if boxes.size == 0:
        return None
    pad = margin * float(np.median(boxes[:, 3]))
    x0, y0 = max(0.0, boxes[:, 0].min() - pad), max(0.0, boxes[:, 1].min() - pad)
    x1 = min(float(info.width), (boxes[:, 0] + boxes[:, 2]).max() + pad)
    y1 = min(float(info.height), (boxes[:, 1] + boxes[:, 3]).max() + pad)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return CropBox(x0 / info.width, y0 / info.height, x1 / info.width, y1 / info.height)


NOSE_TO_HEEL_OF_HEIGHT = 0.93
"""A standing adult's nose-to-heel distance as a share of their height (head top to sole)."""


class TravelSpeed(NamedTuple):
    """A person's walking speed across the image, in two units (see :func:`travel_speed`)."""

    per_height: float
    """Body heights/s: the pixel feature ``forward_speed``'s unit."""
    per_leg: float
    """Leg lengths/s (hip-knee-ankle): the unit in which gaits of different bodies compare."""


def travel_speed(pt: PoseTrack, forward: str = "auto") -> TravelSpeed | None:
    """The subject's walking speed across the image: the slope of the hips' horizontal
    position over time (a least-squares line through the confident frames) over the body's
    height, and over its leg's length.

    Only for a still camera, where the person was tracked (None when the whole frame was given
    to the model: a following camera moves the hips in the image as much as the person does),
    and when at least half of the frames hold a confident pose. ``forward`` as in
    ``FeatureSettings``: ``right`` positive left to right, ``left`` mirrored, ``auto`` the
    direction walked (always >= 0).
    """
    if all(b is None for b in pt.boxes):
        return None
    ok = pt.confidence() >= 0.5
    if ok.sum() < max(8, 0.5 * ok.size):
        return None
    marks, times = pt.landmarks[ok], pt.times[ok]
    hips_x = np.nanmean(marks[:, [LANDMARKS["hip_left"], LANDMARKS["hip_right"]], 0], axis=1)
    heels_y = np.nanmax(marks[:, [LANDMARKS["heel_left"], LANDMARKS["heel_right"]], 1], axis=1)
    heights = (heels_y - marks[:, LANDMARKS["nose"], 1]) / NOSE_TO_HEEL_OF_HEIGHT
    good = np.isfinite(hips_x) & np.isfinite(heights) & (heights > 0)
    if good.sum() < 8:
        return None
    legs = np.nanmean([length[ok] for length in leg_lengths(keypoints_from_landmarks(pt)).values()],
                      axis=0)
    hips_x, heights, legs, times = hips_x[good], heights[good], legs[good], times[good]
    # the longest stretch of one body: a gap over 0.5 s or a jump over half a body length
    # between confident frames is the tracker handing over to someone else
    breaks = (np.diff(times) > 0.5) | (np.abs(np.diff(hips_x)) > 0.5 * heights[1:])
    bounds = np.flatnonzero(np.r_[True, breaks, True])
    longest = int(np.argmax(np.diff(bounds)))
    run = slice(bounds[longest], bounds[longest + 1])
    if run.stop - run.start < 8:
        return None
    slope = float(np.polyfit(times[run], hips_x[run], 1)[0])
    slope = abs(slope) if forward == "auto" else (-slope if forward == "left" else slope)
    # the 90th percentile, as the pixel features' body length: a stride's bent knees shorten it
    return TravelSpeed(per_height=slope / float(np.percentile(heights[run], 90)),
                       per_leg=slope / float(np.nanpercentile(legs[run], 90)))


MIN_DETECTION_RATE = 0.5
"""Below this share of frames with a confident pose, a clip's pose features are not used."""


def expert_pose_measurement(clip: str | Path, sheet: str | Path | None = None,
                            subject: str = "auto", subject_time: float = 0.0,
                            forward: str = "auto") -> tuple[dict[str, Any] | None, str]:
    """Pose features of an expert clip in the shape ``measure_video`` returns
    (``{"features", "units", "details"}``), or None with the reason: mediapipe is missing, or
    no person was found in at least half of the frames (a rendered robot, an animal).
    ``details["travel_speed"]`` and ``details["travel_leg_lengths"]`` are :func:`travel_speed`'s
    two units (None: not measurable)."""
    from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS

    try:
        feats, pt = pose_features_from_video(clip, subject=subject, subject_time=subject_time,
                                             sheet=sheet)
    except UserError as exc:
        return None, exc.args[0] if exc.args else str(exc)
    if feats.detection_rate < MIN_DETECTION_RATE:
        return None, (f"a person's pose was found in {feats.detection_rate:.0%} of frames "
                      f"(under {MIN_DETECTION_RATE:.0%}): pose features not used")
    values = {k: float(v) for k, v in feats.vector().items() if v is not None}
    crop = subject_crop(pt, probe_video(clip))
    travel = travel_speed(pt, forward)
    return ({"features": values,
             "units": {k: POSE_FEATURE_DEFINITIONS[k].unit for k in values},
             "details": {**feats.to_dict(series=False), "subject": pt.subject,
                         "travel_speed": None if travel is None else travel.per_height,
                         "travel_leg_lengths": None if travel is None else travel.per_leg,
                         "subject_crop": None if crop is None else
                         [crop.x0, crop.y0, crop.x1, crop.y1]}},
            f"pose found in {feats.detection_rate:.0%} of frames ({pt.subject})")
