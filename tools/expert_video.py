"""The expert's video and any clip's pixel features, as the agent's nodes need them.

A thin seam over ``video_fetch`` and ``pixel_features``: the graph asks for "the expert clip in
this directory" and "the features of this clip", in one place.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vid2reward.tools.video_frames import CropBox


EXPERT_MAX_HEIGHT = 720
"""Rows the stored expert clip keeps at most (larger videos are shrunk; never enlarged)."""


def prepare_expert(source: str, expert_dir: Path, *, start: float | None = None,
                   end: float | None = None) -> Path:
    """Fetch (URL) or read (file) the expert video, trimmed, into ``expert_dir/clip.mp4``.

    The clip keeps up to :data:`EXPERT_MAX_HEIGHT` rows: a person 80 px tall in a 576-row
    campus video shrank to 68 px at 480 rows, and the tracker then held them in 11 of 80
    frames instead of 79 (tests/data/people/vtest_walkers.mp4).
    """
    from vid2reward.tools.video_fetch import fetch_clip

    cached = fetch_clip(source, start=start, end=end, max_height=EXPERT_MAX_HEIGHT).path
    expert_dir.mkdir(parents=True, exist_ok=True)
    clip = expert_dir / "clip.mp4"
    shutil.copy2(cached, clip)
    return clip


def subject_in_clip(subject: str, source: str, clip: Path) -> str:
    """A ``--subject`` box given in pixels of the user's video file, in pixels of ``clip``.

    The stored expert clip is shrunk to at most :data:`EXPERT_MAX_HEIGHT` rows, so a box read off the source in a
    player is scaled by the clip's size over the source's. ``auto``, and a URL source (whose
    box is taken in the fetched clip's pixels), are returned unchanged.
    """
    from vid2reward.tools.person_tracking import parse_subject
    from vid2reward.tools.video_fetch import is_url
    from vid2reward.tools.video_frames import probe_video

    box = parse_subject(subject)
    if box is None or is_url(source):
        return subject
    local = source[7:] if source.startswith("file://") else source
    original = probe_video(Path(local).expanduser())
    scale = probe_video(clip).width / original.width
    if scale == 1.0:
        return subject
    return ",".join(f"{v * scale:.1f}" for v in box)


def measure_video(clip: Path, sheet: Path | None = None, forward: str = "right", *,
                  series: bool = False, crop: CropBox | None = None) -> dict[str, Any]:
    """``{"features": {name: value}, "units": {name: unit}}`` of a clip, measured from pixels;
    with ``sheet``, also save a contact sheet of the clip there.

    ``forward`` says which way in the image counts as forward: "right" for MuJoCo renders
    (learner clips, and experts rendered by the project), "left" to mirror, "auto" for the
    direction the subject moves (real footage, where the camera side is arbitrary).
    ``series=True`` adds the per-frame series (``PixelFeatures.series``) under "series".
    ``crop`` measures only that part of the frame (the tracked subject of a busy clip); it is
    returned under "crop" (fractions x0, y0, x1, y1; None: the whole frame).
    """
    from vid2reward.tools.pixel_features import (
        FEATURE_DEFINITIONS,
        FeatureSettings,
        features_from_video,
    )
    from vid2reward.tools.video_frames import read_frames, save_contact_sheet

    measured = features_from_video(clip, FeatureSettings(forward=forward, crop=crop))  # type: ignore[arg-type]
    if sheet is not None:
        save_contact_sheet(read_frames(clip, count=12), sheet)
    # Features that could not be measured (None: e.g. flight with no ground in view) are left
    # out, so the critic compares only what both clips show.
    values = {k: float(v) for k, v in measured.vector().items() if v is not None}
    return {"features": values,
            "units": {k: FEATURE_DEFINITIONS[k].unit for k in values},
            "details": measured.to_dict(series=False),
            "crop": None if crop is None else [crop.x0, crop.y0, crop.x1, crop.y1],
            **({"series": measured.series} if series else {})}
