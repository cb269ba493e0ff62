"""Reading frames: evenly spaced or at a fixed rate, resized, cropped; contact sheets; files
that are not videos."""

import imageio.v2 as imageio
import numpy as np
import pytest

from vid2reward.sim.errors import UserError
from vid2reward.sim.render import write_mp4
from vid2reward.tools.video_frames import (
    CropBox,
    frames_from_arrays,
    probe_video,
    read_frames,
    save_contact_sheet,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s at 30 fps, 320x240; frame i has grey level 2 i in its left half."""
    frames = []
    for i in range(90):
        f = np.zeros((240, 320, 3), np.uint8)
        f[:, :160] = 2 * i
        frames.append(f)
    return write_mp4(frames, tmp_path_factory.mktemp("frames") / "clip.mp4", 30)


def test_probe_reports_size_rate_and_length(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.frame_count) == (320, 240, 30, 90)
    assert info.duration == pytest.approx(3.0)


def test_evenly_spaced_frames_include_first_and_last(clip):
    got = read_frames(clip, count=7)
    assert len(got.frames) == 7 and got.times[0] == 0 and got.times[-1] == pytest.approx(89 / 30)
    levels = [f[120, 40, 0] for f in got.frames]
    assert abs(int(levels[-1]) - 178) <= 3 and levels == sorted(levels)


def test_fixed_rate_crop_and_resize(clip):
    got = read_frames(clip, fps=10, max_height=60, crop=CropBox(0.0, 0.0, 0.5, 1.0), start=1.0)
    assert len(got.frames) == 20 and got.fps == pytest.approx(10)
    assert got.frames[0].shape == (60, 40, 3)  # left half, 160x240 -> 40x60
    assert abs(int(got.frames[0][30, 20, 0]) - 60) <= 3  # frame 30 at t = 1 s


def test_crop_box_text_and_bounds():
    assert CropBox.parse("0.25,0.1,0.75,0.9") == CropBox(0.25, 0.1, 0.75, 0.9)
    for bad in ("0.5,0.5,0.2,0.9", "1,2,3", "a,b,c,d"):
        with pytest.raises(UserError):
            CropBox.parse(bad)


def test_contact_sheet_is_a_labelled_grid(clip, tmp_path):
    sheet = save_contact_sheet(read_frames(clip, count=12, max_height=60), tmp_path / "s.png")
    assert imageio.imread(sheet).shape == (180, 320, 3)


def test_frames_in_memory(clip):
    got = frames_from_arrays([np.zeros((240, 320, 3), np.uint8)] * 4, 20, max_height=120)
    assert got.frames[0].shape == (120, 160, 3) and got.times[-1] == pytest.approx(0.15)


def test_a_still_image_is_not_a_video(tmp_path):
    image = tmp_path / "still.png"
    imageio.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(UserError, match="single image"):
        probe_video(image)
