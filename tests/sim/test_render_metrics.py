"""Rollouts, headless rendering to H.264 mp4, contact sheets and behaviour metrics."""

import subprocess

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pytest

from vid2reward.sim.metrics import behaviour_metrics, dominant_frequency
from vid2reward.sim.render import contact_sheet, write_mp4
from vid2reward.sim.rollout import run_episodes


def test_dominant_frequency_recovers_a_sine():
    dt = 0.008
    t = np.arange(1000) * dt
    assert dominant_frequency(1.2 + 0.1 * np.sin(2 * np.pi * 2.5 * t), dt) == pytest.approx(2.5, rel=0.05)
    assert dominant_frequency(np.full(500, 1.2), dt) == 0.0


def test_random_rollout_renders_a_playable_h264_clip(tmp_path):
    episodes = run_episodes("Hopper-v5", None, episodes=1, seed=0, max_steps=80,
                            render_size=(160, 128))
    ep = episodes[0]
    assert ep.frames and ep.frames[0].shape == (128, 160, 3)
    assert ep.fps == pytest.approx(31.25)
    # A frame shows the orange hopper on the checkered floor, not a blank image.
    assert ep.frames[0].std() > 10
    clip = write_mp4(ep.frames, tmp_path / "clip.mp4", ep.fps)
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(clip)],
                           capture_output=True, text=True)
    assert "h264" in probe.stderr and "yuv420p" in probe.stderr
    reader = imageio.get_reader(clip)
    assert sum(1 for _ in reader) == len(ep.frames)
    sheet = contact_sheet(ep.frames, tmp_path / "sheet.png", columns=3, rows=2)
    assert imageio.imread(sheet).shape == (256, 480, 3)


def test_behaviour_metrics_of_random_actions_say_it_falls():
    episodes = run_episodes("Hopper-v5", None, episodes=3, seed=0, max_steps=1000)
    m = behaviour_metrics(episodes)
    assert m.episodes == 3 and m.fall_rate == 1.0  # random actions topple the hopper
    assert m.episode_length < 200
    assert 0.7 < m.torso_height_mean < 1.4
    assert 0.0 <= m.flight_fraction <= 1.0


def test_zero_action_cheetah_stands_still():
    episodes = run_episodes("HalfCheetah-v5", lambda obs: np.zeros(6), episodes=1, max_steps=200)
    m = behaviour_metrics(episodes)
    assert abs(m.forward_velocity) < 0.05 and m.fall_rate == 0.0 and m.episode_length == 200
