"""Expert vs learner: both feature vectors, their normalised differences, and side-by-side
media (an mp4 and a contact sheet) for people and vision-language models to look at.

A normalised difference is ``(learner - expert) / scale`` with the one feature scale the
critic and the audit use (:func:`~vid2reward.tools.feature_definitions.feature_scale`: the size
of a clearly visible difference), so ``vid2reward compare`` prints the numbers the critic
works with. Positive = the learner has more of it than the expert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import cv2
import numpy as np

from vid2reward.sim.render import contact_sheet, write_mp4
from vid2reward.tools.feature_definitions import feature_scale
from vid2reward.tools.pixel_features import (
    FEATURE_DEFINITIONS,
    FeatureSettings,
    PixelFeatures,
    analysis_rate,
    measure_features,
)
from vid2reward.tools.video_frames import Frames, probe_video, read_frames

ClipSource: TypeAlias = str | Path | Frames
"""A video file, or frames in memory (``video_frames.frames_from_arrays(episode.frames, fps)``)."""

DISPLAY_HEIGHT = 240
"""Rows of each half of the side-by-side media."""


@dataclass
class ClipComparison:
    """The expert's and the learner's features, how they differ, and where the media are."""

    expert: PixelFeatures
    learner: PixelFeatures
    differences: dict[str, float | None]
    """Feature name -> normalised difference (None where either value is missing)."""
    side_by_side_mp4: str
    contact_sheet: str

    def largest(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` features that differ most, largest first."""
        known = [(k, v) for k, v in self.differences.items() if v is not None]
        return sorted(known, key=lambda kv: -abs(kv[1]))[:n]

    def to_dict(self) -> dict:
        """JSON-ready (feature vectors without per-frame series)."""
        return {
            "expert": self.expert.vector(), "learner": self.learner.vector(),
            "differences": self.differences,
            "quality": {who: {k: getattr(f, k) for k in (
                "cadence_strength", "subject_coverage", "ground_coverage", "ground_visible",
                "body_length_fraction", "segmentation", "mirrored")}
                for who, f in (("expert", self.expert), ("learner", self.learner))},
            "side_by_side_mp4": self.side_by_side_mp4, "contact_sheet": self.contact_sheet,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def normalised_differences(expert: PixelFeatures, learner: PixelFeatures) -> dict[str, float | None]:
    """``(learner - expert) / feature_scale`` per feature (see module docstring)."""
    out: dict[str, float | None] = {}
    e_vec, l_vec = expert.vector(), learner.vector()
    for name in FEATURE_DEFINITIONS:
        e, v = e_vec[name], l_vec[name]
        out[name] = None if e is None or v is None else (v - e) / feature_scale(name, e)
    return out


def compare_clips(expert: ClipSource, learner: ClipSource, out_dir: str | Path, *,
                  settings: FeatureSettings | None = None,
                  expert_settings: FeatureSettings | None = None) -> ClipComparison:
    """Measure both clips the same way and write ``side_by_side.mp4``, ``side_by_side.png``
    and ``comparison.json`` into ``out_dir``.

    Args:
        expert, learner: video files or in-memory :class:`Frames`.
        settings: how to measure (the same segmentation for both clips).
        expert_settings: overrides for the expert only, e.g. ``forward="auto"`` for an
            internet clip whose subject may run leftwards; defaults to ``settings``.
    """
    settings = settings or FeatureSettings()
    expert_settings = expert_settings or settings
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    e_clip, l_clip = _load(expert, settings.max_fps), _load(learner, settings.max_fps)
    e_feat = measure_features(e_clip.frames, e_clip.fps, expert_settings)
    l_feat = measure_features(l_clip.frames, l_clip.fps, settings)
    mp4 = side_by_side_video(e_clip, l_clip, out_dir / "side_by_side.mp4")
    sheet = side_by_side_sheet(e_clip, l_clip, out_dir / "side_by_side.png")
    result = ClipComparison(expert=e_feat, learner=l_feat,
                            differences=normalised_differences(e_feat, l_feat),
                            side_by_side_mp4=str(mp4), contact_sheet=str(sheet))
    (out_dir / "comparison.json").write_text(result.to_json(), encoding="utf-8")
    return result


def _load(source: ClipSource, max_fps: float) -> Frames:
    if isinstance(source, Frames):
        return source
    return read_frames(source, fps=analysis_rate(probe_video(source).fps, max_fps),
                       max_height=DISPLAY_HEIGHT)


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``frame`` to ``height`` rows and centre it on a black ``width`` x ``height`` canvas."""
    h, w = frame.shape[:2]
    new_w = min(width, max(1, round(w * height / h)))
    scaled = cv2.resize(frame, (new_w, height), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    x = (width - new_w) // 2
    canvas[:, x:x + new_w] = scaled[..., :3]
    return canvas


def _half_width(*clips: Frames) -> int:
    widths = [round(c.frames[0].shape[1] * DISPLAY_HEIGHT / c.frames[0].shape[0]) for c in clips]
    return min(2 * DISPLAY_HEIGHT, max(widths)) // 2 * 2


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(frame, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def side_by_side_video(expert: Frames, learner: Frames, path: str | Path) -> Path:
    """Expert left, learner right, in real time at the faster clip's rate; the shorter clip
    holds its last frame once it has ended."""
    fps = max(expert.fps, learner.fps)
    seconds = max(expert.times[-1] - expert.times[0], learner.times[-1] - learner.times[0])
    width = _half_width(expert, learner)
    frames = []
    for k in range(int(seconds * fps) + 1):
        t = k / fps
        halves = []
        for name, clip in (("expert", expert), ("learner", learner)):
            rel = clip.times - clip.times[0]
            i = min(int(np.searchsorted(rel, t + 1e-9, side="right")) - 1, len(clip.frames) - 1)
            ended = t > rel[-1] + 0.5 / clip.fps
            text = f"{name} t={rel[max(i, 0)]:.1f}s" + (" (ended)" if ended else "")
            halves.append(_label(_fit(clip.frames[max(i, 0)], width, DISPLAY_HEIGHT), text))
        frames.append(np.hstack(halves))
    return write_mp4(frames, path, fps)


def side_by_side_sheet(expert: Frames, learner: Frames, path: str | Path,
                       columns: int = 6) -> Path:
    """Two rows of ``columns`` evenly spaced frames: the expert on top, the learner below."""
    width = _half_width(expert, learner)
    tiles, labels = [], []
    for name, clip in (("expert", expert), ("learner", learner)):
        picks = np.linspace(0, len(clip.frames) - 1, columns).round().astype(int)
        for i in picks:
            tiles.append(_fit(clip.frames[i], width, DISPLAY_HEIGHT))
            labels.append(f"{name} t={clip.times[i] - clip.times[0]:.1f}s")
    return contact_sheet(tiles, path, columns=columns, rows=2, labels=labels)
