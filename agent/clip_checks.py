"""Clips too short to say anything about a gait are refused, with the minimum in the message.

A 0.2 s clip gives numbers (a speed of 48 body lengths/s, similarity 0.000) that look like
measurements and are noise; the critic and the user would both be misled.
"""

from __future__ import annotations

from pathlib import Path

from vid2reward.sim.errors import UserError
from vid2reward.tools.video_frames import probe_video

MIN_CLIP_SECONDS = 1.0
"""Shortest clip measured: about one stride of the slower gaits here (a hopper's ~1 Hz hop, a
walker's stride), and the frames that speed, cadence and height estimates need."""


def check_clip_length(clip: str | Path, what: str = "the video") -> float:
    """The clip's length in seconds.

    Raises:
        UserError: it is shorter than :data:`MIN_CLIP_SECONDS` (or not a readable video).
    """
    seconds = probe_video(clip).duration
    if seconds < MIN_CLIP_SECONDS:
        raise UserError(f"{what} is {seconds:.2f} s long, too short to measure a gait "
                        f"(at least {MIN_CLIP_SECONDS:g} s)", where=str(clip),
                        fix="use a longer clip, or widen --start/--end")
    return seconds
