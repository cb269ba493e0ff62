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


def _walker_episode(left, right, dt=0.008):
    """A synthetic Walker2d episode whose feet touch the floor as ``left`` and ``right`` say."""
    from vid2reward.sim.rollout import SAMPLE_NAMES, Episode

    n = len(left)
    samples = {name: np.zeros(n) for name in SAMPLE_NAMES}
    samples["uprightness"], samples["torso_height"] = np.ones(n), np.full(n, 1.2)
    right_bit, left_bit = 1, 2  # Walker2d's foot_geoms: right_foot, then left_foot
    samples["foot_contact_mask"] = (np.asarray(right, bool) * right_bit
                                    + np.asarray(left, bool) * left_bit).astype(float)
    samples["feet_in_contact"] = np.asarray(right, float) + np.asarray(left, float)
    return Episode(env_id="Walker2d-v5", dt=dt, length=n, terminated=False, env_return=0.0,
                   samples=samples)


def test_cadence_counts_each_foots_touchdowns_per_second_not_contact_flicker():
    from vid2reward.sim.metrics import touchdowns

    dt = 0.008
    stance, swing = [True] * 60, [False] * 40  # 0.8 s a stride: 0.48 s down, 0.32 s up
    flicker = [True] * 25 + [False] * 2 + [True] * 33  # off for 16 ms inside a stance
    foot = (stance + swing) * 4 + flicker + swing + stance
    # the foot started on the floor; it came back after each of its 5 swings, never in between
    assert touchdowns(np.array(foot), dt) == 5
    # a body dropped into the episode: its first landing is not a step
    assert touchdowns(np.array([False] * 30 + stance + swing + stance), dt) == 1
    # 10 strides of 0.8 s, the feet half a stride apart: 20 steps in 8 s
    left = np.array((stance + swing) * 10)
    right = np.roll(left, 50)
    m = behaviour_metrics([_walker_episode(left, right, dt)])
    # the left foot lands after 9 of its 10 swings (the last runs into the end), the right
    # (which swings first) after all 10: 19 steps in 8 s, about 2 per 0.8 s stride
    assert (touchdowns(left, dt), touchdowns(right, dt)) == (9, 10)
    assert m.cadence_steps_per_s == pytest.approx(19 / 8.0)
    # both feet down 10 of every 50 steps (60 down, 40 up, half a stride apart)
    assert m.double_support_fraction == pytest.approx(0.2)


def test_rollouts_record_which_feet_touch_the_floor():
    from vid2reward.sim.metrics import foot_contacts

    for env_id in ("Walker2d-v5", "Ant-v5"):
        ep = run_episodes(env_id, None, episodes=1, seed=0, max_steps=60)[0]
        feet = foot_contacts(ep)
        assert feet.shape[0] == ep.length
        # each foot's bit agrees with the count of feet on the floor, at every step
        assert (feet.sum(axis=1) == ep.samples["feet_in_contact"]).all()
        assert feet.any()
