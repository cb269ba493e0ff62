"""Gait features from keypoints (exact, on a synthetic walker with known angles), person
tracking (synthetic movers), and real mediapipe pose on real footage of people."""

import builtins
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vid2reward.agent.cli import main
from vid2reward.sim.errors import UserError
from vid2reward.tools.person_tracking import choose_subject, detect_movers, parse_subject, track
from vid2reward.tools.pose_features import LEGS, LegKeypoints, gait_features, joint_angles

PEOPLE = Path(__file__).resolve().parents[1] / "data" / "people"
WALKERS = PEOPLE / "vtest_walkers.mp4"
WALKER_BOX = "356,214,26,78"
"""A pedestrian ~75 px tall walking away to the left among nine others, at t = 0."""


def synthetic_walker(stride_hz=0.9, fps=30.0, seconds=4.0, lean_deg=5.0, phase=math.pi):
    """A sagittal stick walker with known hip/knee/ankle angles (degrees) per leg."""
    t = np.arange(int(seconds * fps)) / fps
    lean = np.radians(lean_deg)
    hip_c = np.array([0.0, 0.9])
    trunk_top = hip_c + 0.5 * np.array([math.sin(lean), math.cos(lean)])
    hip, knee, ankle, heel, toe, truth = {}, {}, {}, {}, {}, {}
    for g, ph in (("left", 0.0), ("right", phase)):
        w = 2 * math.pi * stride_hz * t + ph
        hip_deg = 10 + 25 * np.sin(w)
        knee_deg = 30 + 28 * np.sin(w + 1.0)
        ankle_deg = 5 * np.sin(w - 0.5)
        thigh = np.radians(hip_deg) - lean  # from vertical-down, + = knee ahead
        shank = thigh - np.radians(knee_deg)
        foot_pitch = np.radians(ankle_deg) + shank
        hip[g] = np.tile(hip_c, (t.size, 1))
        knee[g] = hip[g] + 0.45 * np.stack([np.sin(thigh), -np.cos(thigh)], axis=1)
        ankle[g] = knee[g] + 0.45 * np.stack([np.sin(shank), -np.cos(shank)], axis=1)
        heel[g] = ankle[g] + np.array([-0.05, -0.05])
        toe[g] = heel[g] + 0.2 * np.stack([np.cos(foot_pitch), np.sin(foot_pitch)], axis=1)
        truth[g] = {"hip": hip_deg, "knee": knee_deg, "ankle": ankle_deg}
    k = LegKeypoints(fps=fps, shoulder=np.tile(trunk_top, (t.size, 1)), hip=hip, knee=knee,
                     ankle=ankle, heel=heel, toe=toe)
    return k, truth


def test_joint_angles_are_recovered_exactly_with_their_signs():
    k, truth = synthetic_walker()
    angles = joint_angles(k)
    assert np.allclose(angles["trunk_lean"], 5.0)
    for g in LEGS:
        for j in ("hip", "knee", "ankle"):
            assert np.allclose(angles[f"{j}_{g}"], truth[g][j], atol=1e-6), (j, g)


def test_gait_timing_from_a_known_walker():
    k, _ = synthetic_walker(stride_hz=0.9)
    f = gait_features(k)
    assert f.pose_cadence_hz == pytest.approx(1.8, rel=0.05)  # two steps per stride
    assert f.pose_lr_phase_deg == pytest.approx(180.0, abs=10.0)
    assert f.pose_knee_range_deg == pytest.approx(2 * 28 * 0.95, rel=0.1)
    assert f.pose_trunk_lean_deg == pytest.approx(5.0, abs=0.5)
    assert 0.3 < f.pose_duty_factor < 0.7
    assert f.pose_step_length > 0.3
    hop, _ = synthetic_walker(phase=0.0)  # both legs together: a hop or a bound
    assert gait_features(hop).pose_lr_phase_deg == pytest.approx(0.0, abs=10.0)


@pytest.mark.parametrize("stride_hz, fps", [(0.5, 30.0), (2.45, 29.0), (2.9, 60.0)])
def test_cadence_from_a_slow_walk_to_a_sprint(stride_hz, fps):
    # A sprinter touches down about every 6 frames at 29 fps: 2.45 strides, 4.9 steps a second.
    k, _ = synthetic_walker(stride_hz=stride_hz, fps=fps, seconds=5.0)
    assert gait_features(k).pose_cadence_hz == pytest.approx(2 * stride_hz, rel=0.05)


def test_a_clip_shorter_than_its_stride_gives_no_cadence():
    # 1.1 s of a 0.9 Hz walk: the band a clip that short can hold starts above the stride, and
    # its strongest bin (the band's edge) was read as a cadence of about 2.7 steps/s.
    k, _ = synthetic_walker(stride_hz=0.9, seconds=1.1)
    assert gait_features(k).pose_cadence_hz is None


def test_gaps_are_bridged_when_short_and_low_confidence_frames_are_dropped():
    k, truth = synthetic_walker(fps=30.0)
    conf = np.ones(k.shoulder.shape[0])
    conf[10:14] = 0.1  # a short occlusion: bridged
    conf[60:100] = 0.0  # a long one: left empty
    k.confidence = conf
    k.knee["left"][10:14] = 99.0  # garbage the model reported while unsure
    f = gait_features(k)
    knee = np.array([np.nan if v is None else v for v in f.series["knee_left"]])
    assert np.isfinite(knee[10:14]).all() and np.abs(knee[10:14] - truth["left"]["knee"][10:14]).max() < 8
    assert np.isnan(knee[65:95]).all()
    assert f.detection_rate == pytest.approx(1 - 44 / conf.size)


def _movers(n=40, h=240, w=320):
    """A large person-shaped box walking right for the whole clip, a small one for 10 frames."""
    frames = []
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (120, 30, 3), dtype=np.uint8)  # textured, like clothes
    small = rng.integers(0, 255, (30, 12, 3), dtype=np.uint8)
    for i in range(n):
        f = np.full((h, w, 3), 90, np.uint8) + rng.integers(0, 6, (h, w, 3), dtype=np.uint8)
        x = 20 + 6 * i
        f[60:180, x:x + 30] = big
        if 5 <= i < 15:
            f[100:130, 250 - 3 * i:262 - 3 * i] = small
        frames.append(f)
    return frames


def test_auto_subject_is_the_persistent_large_mover_and_a_box_picks_another():
    frames = _movers()
    tracks = track(detect_movers(frames))
    big = choose_subject(tracks)
    assert big is not None and big.length >= 35 and big.median_height() > 100
    small = choose_subject(tracks, parse_subject("220,98,16,34"), at_frame=10)
    assert small is not None and small.median_height() < 40
    with pytest.raises(UserError):
        parse_subject("1,2,3")


def test_subject_region_crops_the_pixel_features_to_the_chosen_mover():
    from vid2reward.tools.person_tracking import subject_region

    frames = _movers()
    crop, how = subject_region(frames)
    h, w = frames[0].shape[:2]
    # the big mover walks from x=20 to x=284, rows 60-180; the small one (rows 100-130) is
    # inside that band, so the crop is checked on the big one's extent
    assert crop is not None and "track" in how
    assert crop.x0 * w <= 20 and crop.x1 * w >= 280 and crop.y0 * h <= 60 and crop.y1 * h >= 180
    assert subject_region([np.full((120, 160, 3), 90, np.uint8)] * 10)[0] is None


def test_real_footage_a_small_walker_in_a_crowd(tmp_path):
    from vid2reward.tools.pose_estimation import pose_features_from_video

    sheet = tmp_path / "sheet.png"
    f, pt = pose_features_from_video(WALKERS, subject=WALKER_BOX, end=6.0, sheet=sheet)
    assert "track" in pt.subject and max(map(len, pt.other_boxes)) >= 3  # others seen, not measured
    assert f.detection_rate >= 0.85
    assert 1.5 <= f.pose_cadence_hz <= 3.0  # a walking person's steps per second
    assert 120 <= f.pose_lr_phase_deg <= 180  # legs alternate
    assert f.angle_noise_deg < 15
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 500
    # the subject's box is drawn in green on the sheet
    assert ((image[..., 1] > 200) & (image[..., 0] < 60) & (image[..., 2] < 60)).sum() > 100


def _walking_track(speed_px=60.0, height_px=100.0, fps=10.0, frames=60, handover_at=None):
    """A PoseTrack whose hips travel right at ``speed_px`` per second; from ``handover_at`` on
    the landmarks belong to someone standing elsewhere (a tracker handing over)."""
    from vid2reward.tools.pose_estimation import LANDMARKS, NOSE_TO_HEEL_OF_HEIGHT, PoseTrack

    times = np.arange(frames) / fps
    marks = np.full((frames, 33, 3), np.nan)
    marks[:, :, 2] = 0.9
    for i, t in enumerate(times):
        x = 100.0 + speed_px * t if handover_at is None or i < handover_at else 500.0
        marks[i, :, 0] = x
        marks[i, :, 1] = 200.0
        marks[i, LANDMARKS["nose"], 1] = 300.0 - NOSE_TO_HEEL_OF_HEIGHT * height_px
        marks[i, [LANDMARKS["heel_left"], LANDMARKS["heel_right"]], 1] = 300.0
        marks[i, [LANDMARKS["knee_left"], LANDMARKS["knee_right"]], 1] = 240.0  # legs 80 px:
        marks[i, [LANDMARKS["ankle_left"], LANDMARKS["ankle_right"]], 1] = 280.0  # hip at 200
    return PoseTrack(landmarks=marks, boxes=[(x, 0, 10, 10) for x in range(frames)],
                     other_boxes=[[] for _ in range(frames)], fps=fps, times=times, subject="test")


def test_travel_speed_is_the_hips_in_body_lengths_per_second():
    from dataclasses import replace

    from vid2reward.tools.pose_estimation import travel_speed

    assert travel_speed(_walking_track()).per_height == pytest.approx(0.6)
    assert travel_speed(_walking_track(), "left").per_height == pytest.approx(-0.6)
    assert travel_speed(_walking_track()).per_leg == pytest.approx(60.0 / 80.0)
    # the tracker handing the crop to a standing passer-by does not drag the line
    assert travel_speed(_walking_track(handover_at=45)).per_height == pytest.approx(0.6)
    # a following camera (the whole frame given to the model): hips in the image are not travel
    whole = _walking_track()
    assert travel_speed(replace(whole, boxes=[None] * len(whole.boxes))) is None


def test_real_footage_without_a_mover_falls_back_to_the_whole_frame():
    from vid2reward.tools.pose_estimation import pose_features_from_video

    f, pt = pose_features_from_video(PEOPLE / "cyclist_g1.avi")
    assert "whole frame" in pt.subject and f.detection_rate >= 0.7


def test_cli_prints_pose_features_and_writes_the_sheet(tmp_path, capsys):
    sheet = tmp_path / "pose.png"
    code = main(["features", "--pose", str(WALKERS), "--end", "6", "--subject", WALKER_BOX,
                 "--sheet", str(sheet)])
    out = capsys.readouterr().out
    assert code == 0 and "pose_cadence_hz" in out and "pose_knee_range_deg" in out
    assert sheet.is_file()


def test_cli_pixel_features_of_a_subject_in_a_crowd(capsys):
    code = main(["features", str(WALKERS), "--subject", WALKER_BOX, "--forward", "auto"])
    out = capsys.readouterr().out
    assert code == 0 and "subject: track" in out and "crop" in out


def test_cli_without_mediapipe_says_how_to_install(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name == "mediapipe":
            raise ImportError("no mediapipe")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    code = main(["features", "--pose", str(WALKERS), "--end", "2", "--sheet",
                 str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and "mediapipe" in err and "pip install" in err
    assert not (tmp_path / "s.png").exists()
