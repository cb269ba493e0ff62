"""Expert vs learner: both vectors, normalised differences that point the right way, and the
side-by-side mp4 and contact sheet."""

import json

import imageio.v2 as imageio
import pytest

from vid2reward.sim.render import write_mp4
from vid2reward.tools.clip_compare import compare_clips, normalised_differences
from vid2reward.tools.pixel_features import FEATURE_DEFINITIONS, measure_features
from vid2reward.tools.synthetic_clips import synthetic_clip
from vid2reward.tools.video_frames import frames_from_arrays

FPS = 30


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    expert = write_mp4(synthetic_clip(3, FPS, 240, bob_hz=2.0, speed=0.8), root / "expert.mp4", FPS)
    learner = synthetic_clip(2, FPS, 240, bob_hz=3.0, speed=0.3, seed=1)
    return expert, learner


def test_differences_point_from_expert_to_learner(clips, tmp_path):
    expert, learner = clips
    result = compare_clips(expert, frames_from_arrays(learner, FPS), tmp_path)
    d = result.differences
    assert set(d) == set(FEATURE_DEFINITIONS)
    # In the critic's units (feature_scale: a clearly visible difference), not relative ones.
    assert d["cadence_hz"] == pytest.approx((3.0 - 2.0) / 0.5, abs=0.2)  # learner steps faster
    assert d["forward_speed"] == pytest.approx((0.3 - 0.8) / 0.5, abs=0.2)  # and moves slower
    assert {name for name, _ in result.largest(2)} == {"cadence_hz", "forward_speed"}
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["differences"] == pytest.approx(d) and "quality" in saved

    # side by side: 240 rows, two halves; as long as the longer clip; a sheet of 2 x 6 frames
    frames = [f for f in imageio.get_reader(result.side_by_side_mp4)]
    assert frames[0].shape[0] == 240 and frames[0].shape[1] % 2 == 0
    assert abs(len(frames) - 3 * FPS) <= 2
    sheet = imageio.imread(result.contact_sheet)
    assert sheet.shape[0] == 480 and sheet.shape[1] == 6 * frames[0].shape[1] // 2


def test_normalised_difference_uses_the_scale_near_zero():
    a = measure_features(synthetic_clip(2, FPS, 240, bob_hz=2.0, speed=0.0), FPS)
    b = measure_features(synthetic_clip(2, FPS, 240, bob_hz=2.0, speed=0.25), FPS)
    scale = FEATURE_DEFINITIONS["forward_speed"].scale
    assert normalised_differences(a, b)["forward_speed"] == pytest.approx(0.25 / scale, abs=0.1)
