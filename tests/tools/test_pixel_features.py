"""Behaviour features from pixels: synthetic clips with known cadence and speed (a following
camera and a still one, coloured and grey subjects), MuJoCo renders checked against the
simulator's own metrics, and the typed / JSON results."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vid2reward.sim.envs import get_spec
from vid2reward.sim.metrics import behaviour_metrics
from vid2reward.sim.render import write_mp4
from vid2reward.sim.rollout import run_episodes
from vid2reward.tools.pixel_features import (
    FEATURE_DEFINITIONS,
    FeatureSettings,
    features_from_video,
    measure_features,
)
from vid2reward.tools.subject_segmentation import SegmentationSettings
from vid2reward.tools.synthetic_clips import bench_pixel_features, synthetic_clip

FPS = 30


def close(value, truth, rel):
    return abs(value - truth) <= rel * abs(truth)


@pytest.mark.parametrize("bob_hz, speed", [(1.5, 0.8), (3.0, -0.5)])
def test_following_camera_recovers_cadence_and_speed(bob_hz, speed):
    feats = measure_features(synthetic_clip(4, FPS, 240, bob_hz=bob_hz, speed=speed), FPS)
    assert feats.segmentation == "colour" and feats.subject_coverage == 1.0
    assert close(feats.cadence_hz, bob_hz, 0.10) and feats.cadence_strength > 0.5
    assert close(feats.forward_speed, speed, 0.10)
    # the figure bobs by 6 % of its height: a sine of amplitude 0.03, std 0.03 / sqrt(2)
    assert close(feats.vertical_oscillation, 0.03 / math.sqrt(2), 0.2)
    assert close(feats.height_ratio, 1.0, 0.05) and feats.ground_visible


def test_still_camera_subject_crossing_the_frame():
    feats = measure_features(synthetic_clip(4, FPS, 240, bob_hz=2.5, speed=0.4, follow=False), FPS)
    assert close(feats.cadence_hz, 2.5, 0.10) and close(feats.forward_speed, 0.4, 0.10)


@pytest.mark.parametrize("follow", [False, True])
def test_grey_subject_falls_back_to_motion_segmentation(follow):
    frames = synthetic_clip(4, FPS, 240, bob_hz=2.0, speed=0.6, follow=follow, colour=(120, 120, 120))
    feats = measure_features(frames, FPS)
    assert feats.segmentation == "motion" and feats.subject_coverage > 0.9
    assert close(feats.cadence_hz, 2.0, 0.10) and close(feats.forward_speed, 0.6, 0.15)


def test_a_subject_that_does_not_bob_has_no_cadence():
    feats = measure_features(synthetic_clip(5, FPS, 240, speed=0.5, bob_height=0.0), FPS)
    assert feats.cadence_hz == 0.0 and feats.vertical_oscillation < 0.005
    assert close(feats.forward_speed, 0.5, 0.10) and feats.flight_fraction == 0.0


def test_forward_direction_for_a_leftward_runner():
    frames = synthetic_clip(3, FPS, 240, bob_hz=2.0, speed=-0.5)
    as_is = measure_features(frames, FPS)
    auto = measure_features(frames, FPS, FeatureSettings(forward="auto"))
    left = measure_features(frames, FPS, FeatureSettings(forward="left"))
    assert as_is.forward_speed < 0 and not as_is.mirrored
    assert auto.mirrored and left.mirrored
    assert auto.forward_speed == pytest.approx(-as_is.forward_speed) == left.forward_speed
    assert auto.series["forward_velocity"][5] == pytest.approx(-as_is.series["forward_velocity"][5])


def test_video_file_and_memory_agree_and_serialise(tmp_path):
    frames = synthetic_clip(3, FPS, 240, bob_hz=2.0, speed=0.7)
    from_file = features_from_video(write_mp4(frames, tmp_path / "c.mp4", FPS))
    in_memory = measure_features(frames, FPS)
    assert close(from_file.cadence_hz, in_memory.cadence_hz, 0.02)
    assert close(from_file.forward_speed, in_memory.forward_speed, 0.05)
    data = json.loads(from_file.to_json())
    assert set(from_file.vector()) == set(FEATURE_DEFINITIONS) <= set(data)
    assert len(data["series"]["t"]) == from_file.frames == len(data["series"]["height_ratio"])
    for definition in FEATURE_DEFINITIONS.values():
        assert definition.unit and len(definition.definition) > 40 and definition.scale > 0


def test_every_feature_is_documented_for_people():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "video.md").read_text()
    for name in FEATURE_DEFINITIONS:
        assert f"| `{name}` |" in doc


def test_segmentation_settings_are_honoured():
    frames = synthetic_clip(2, FPS, 240, bob_hz=2.0, speed=0.5)
    colour_only = FeatureSettings(segmentation=SegmentationSettings(method="colour"))
    motion_only = FeatureSettings(segmentation=SegmentationSettings(method="motion"))
    assert measure_features(frames, FPS, colour_only).segmentation == "colour"
    assert measure_features(frames, FPS, motion_only).segmentation == "motion"


def _cheetah_gait(freq: float, phases: list[float], steps: int = 100):
    """HalfCheetah driven open-loop by sines: a gait whose cadence is the drive frequency."""
    dt, steps_taken = 0.05, [0]

    def act(obs):
        t = steps_taken[0] * dt
        steps_taken[0] += 1
        return 0.7 * np.sin(2 * np.pi * freq * t + np.asarray(phases))

    return run_episodes("HalfCheetah-v5", act, max_steps=steps, render_size=(320, 240))


@pytest.mark.parametrize("freq, phases", [
    (3.0, [3.42, 5.88, 5.13, 0.02, 5.39, 0.21]),  # runs forward, ~1.9 m/s
    (2.0, [4.12, 5.74, 0.41, 5.25, 2.4, 2.05]),   # runs backward, ~1.4 m/s
])
def test_mujoco_render_matches_the_simulator_state(freq, phases):
    episodes = _cheetah_gait(freq, phases)
    truth = behaviour_metrics(episodes)
    feats = measure_features(episodes[0].frames, episodes[0].fps)
    assert feats.segmentation == "colour" and feats.subject_coverage == 1.0
    assert close(feats.cadence_hz, freq, 0.10) and close(truth.cadence_hz, freq, 0.10)
    # body lengths/s -> m/s through the camera: pixels per metre at the tracked body's depth
    spec = get_spec("HalfCheetah-v5")
    px_per_m = 180 / (2 * spec.camera_distance * math.tan(math.radians(45 / 2)))
    metres_per_s = feats.forward_speed * feats.body_length_px / px_per_m
    assert close(metres_per_s, truth.forward_velocity, 0.15)


def test_bench_reports_time_and_recovers_the_known_answers():
    result = bench_pixel_features(seconds=3, height=240)
    assert result["seconds"] > 0 and result["frames"] == 90
    assert close(result["cadence_hz"], 2.0, 0.10) and close(result["forward_speed"], 1.0, 0.10)
