"""VLM-RM: the reward's math against the reference formula, and a tiny random CLIP through the
same loading and scoring path as a real checkpoint."""

import numpy as np
import pytest
import torch
from tiny_clip import write_tiny_clip

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward_sources import FrameSpec
from vid2reward.tools.clip_reward import (
    ClipEmbedder,
    VlmRmSource,
    mean_normalised,
    projection_matrix,
    vlm_rm_reward,
)


def reference_reward(frames, goals, baselines, alpha):
    """AlignmentResearch/vlmrm src/vlmrm/reward_model.py (CLIPReward), transcribed to numpy
    float64: target/baseline = mean of normalised prompt embeddings; d = target - baseline;
    P = alpha d^T d / |d|^2 + (1 - alpha) I; y = 1 - |(x/|x| - target) P|^2 / 2."""
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    target = unit(goals).mean(axis=0, keepdims=True)
    baseline = unit(baselines).mean(axis=0, keepdims=True)
    direction = target - baseline
    projection = direction.T @ direction / np.linalg.norm(direction) ** 2
    projection = alpha * projection + (1 - alpha) * np.eye(projection.shape[0])
    x = unit(frames)
    return 1 - np.linalg.norm((x - target) @ projection, axis=-1) ** 2 / 2


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_reward_matches_the_reference_formula(alpha):
    rng = np.random.default_rng(7)
    frames, goals, baselines = rng.normal(size=(16, 24)), rng.normal(size=(3, 24)), rng.normal(size=(2, 24))
    goal, baseline = mean_normalised(torch.tensor(goals, dtype=torch.float32)), \
        mean_normalised(torch.tensor(baselines, dtype=torch.float32))
    ours = vlm_rm_reward(torch.tensor(frames, dtype=torch.float32), goal,
                         projection_matrix(goal, baseline, alpha)).numpy()
    np.testing.assert_allclose(ours, reference_reward(frames, goals, baselines, alpha), atol=1e-6)


def test_full_projection_sees_only_the_goal_direction():
    rng = np.random.default_rng(1)
    goal = mean_normalised(torch.tensor(rng.normal(size=(1, 8))))
    baseline = mean_normalised(torch.tensor(rng.normal(size=(1, 8))))
    d = (goal - baseline)[0]
    x = torch.tensor(rng.normal(size=8))
    x = x / x.norm()
    # a rotation of x within the plane orthogonal to d keeps its projection on d
    ortho = torch.tensor(rng.normal(size=8))
    ortho = ortho - (ortho @ d) / (d @ d) * d
    x_parallel = (x @ d) / (d @ d) * d
    rest = x - x_parallel
    moved = x_parallel + ortho / ortho.norm() * rest.norm()
    p = projection_matrix(goal, baseline, 1.0)
    a, b = vlm_rm_reward(torch.stack([x, moved]), goal, p)
    assert abs(float(a - b)) < 1e-9
    p_half = projection_matrix(goal, baseline, 0.5)
    a, b = vlm_rm_reward(torch.stack([x, moved]), goal, p_half)
    assert abs(float(a - b)) > 1e-4  # half a projection still sees the other directions


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_tiny_clip_scores_frames_by_text_goal(tiny_clip):
    embedder = ClipEmbedder(tiny_clip, "tiny")
    source = VlmRmSource.text_goal(embedder, ["a hopper robot hopping forward"],
                                   frames=FrameSpec(64, 48, 2), weight=0.5)
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 48, 64, 3), dtype=np.uint8)
    out = source.components(frames, np.arange(3), np.ones(3, bool))
    assert set(out) == {"vlmrm"} and out["vlmrm"].shape == (3,)
    goal = embedder.embed_text(["a hopper robot hopping forward"])
    baseline = embedder.embed_text(["a simulated robot"])
    expected = reference_reward(embedder.embed_images(frames).numpy().astype(np.float64),
                                goal.numpy().astype(np.float64),
                                baseline.numpy().astype(np.float64), 0.5)
    np.testing.assert_allclose(out["vlmrm"], expected, atol=1e-6)
    key = source.cache_key()
    assert key["mode"] == "text" and key["model"] == "tiny" and len(key["model_sha256"]) == 64
    other = VlmRmSource.text_goal(embedder, ["a hopper robot falling"]).cache_key()
    assert other != key


def test_image_goal_prefers_expert_like_frames(tiny_clip):
    embedder = ClipEmbedder(tiny_clip)
    rng = np.random.default_rng(0)
    expert = np.zeros((6, 48, 64, 3), np.uint8)
    expert[:, :, :32] = 255  # bright left half
    flailing = rng.integers(0, 255, size=(6, 48, 64, 3), dtype=np.uint8)
    source = VlmRmSource.image_goal(embedder, expert, flailing, alpha=1.0)
    scores = source.components(np.concatenate([expert[:2], flailing[:2]]), np.arange(4),
                               np.ones(4, bool))["vlmrm"]
    assert scores[:2].min() > scores[2:].max()
    assert source.cache_key()["mode"] == "image"


def test_missing_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(UserError) as err:
        ClipEmbedder(tmp_path / "nowhere")
    assert "does not exist" in str(err.value) and "huggingface-cli download" in err.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        ClipEmbedder(tmp_path / "empty")


def test_text_goal_needs_words(tiny_clip):
    with pytest.raises(UserError, match="goal prompt"):
        VlmRmSource.text_goal(ClipEmbedder(tiny_clip), ["  "])
