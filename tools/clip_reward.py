"""VLM-RM (Rocamonde et al., 2023): a CLIP model as a zero-shot reward, as a RewardSource.

The reward of a frame is the reference's goal-baseline regularised CLIP reward
(AlignmentResearch/vlmrm, ``src/vlmrm/reward_model.py``)::

    g = mean of the normalised goal embeddings      b = mean of the normalised baseline ones
    d = g - b         P = alpha * d^T d / |d|^2 + (1 - alpha) * I
    reward(x) = 1 - 1/2 |(x/|x| - g) P|^2

``alpha`` = 0 is plain CLIP similarity to the goal (up to a constant); 1 keeps only the part of
the frame's embedding along the baseline -> goal direction. Two goal modes:

- text: the goal prompt is the run's ``--task``; the baseline prompt is
  :data:`DEFAULT_BASELINE` ("a simulated robot") unless given;
- image: the goal embeddings are the expert video's frames, the baseline embeddings frames of
  uniform-random-action episodes of the same env rendered by the same camera (the direction
  then points from "what flailing looks like" to "what the expert looks like", in one modality).

CLIP runs through transformers' ``CLIPModel`` (pure torch, CPU) from a local Hugging
Face-format checkpoint directory: no weights can be downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward_sources import FrameSpec, RewardSource

DEFAULT_BASELINE = "a simulated robot"
"""Baseline prompt of the text mode: what every frame shows, whatever the body does."""
DEFAULT_ALPHA = 0.5
"""Projection strength (the reference's default)."""
CLIP_FRAMES = FrameSpec(width=128, height=96, every=4)
"""Default frames: 4:3 like the expert clips, upscaled to the model's input size; CLIP is the
costly part, so a frame every 4 steps (the reward is held in between)."""
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
GET_ONE = ("on a machine with internet: `huggingface-cli download openai/clip-vit-base-patch32 "
           "--local-dir DIR` (any Hugging Face CLIP), copy DIR here and pass --clip-checkpoint DIR")


def projection_matrix(goal: torch.Tensor, baseline: torch.Tensor, alpha: float) -> torch.Tensor:
    """P = alpha * d^T d / |d|^2 + (1 - alpha) I with d = goal - baseline, both (1, D)."""
    direction = goal - baseline
    outer = direction.T @ direction / torch.norm(direction) ** 2
    identity = torch.eye(outer.shape[0], dtype=outer.dtype)
    return alpha * outer + (1 - alpha) * identity


def vlm_rm_reward(embeddings: torch.Tensor, goal: torch.Tensor,
                  projection: torch.Tensor) -> torch.Tensor:
    """1 - 1/2 |(x/|x| - goal) P|^2 per row of ``embeddings`` (n, D)."""
    x = embeddings / torch.norm(embeddings, dim=-1, keepdim=True)
    return 1 - torch.norm((x - goal) @ projection, dim=-1) ** 2 / 2


def mean_normalised(embeddings: torch.Tensor) -> torch.Tensor:
    """The mean (1, D) of the rows normalised to unit length (not normalised again: as the
    reference does with several prompts)."""
    return (embeddings / embeddings.norm(dim=-1, keepdim=True)).mean(dim=0, keepdim=True)


class ClipEmbedder:
    """A Hugging Face CLIP model with its tokenizer and image normalisation, on the CPU."""

    def __init__(self, checkpoint: Path, model_name: str | None = None) -> None:
        checkpoint = Path(checkpoint)
        if not (checkpoint / "config.json").is_file():
            what = "is not a Hugging Face CLIP directory (no config.json)" if checkpoint.exists() \
                else "does not exist"
            raise UserError(f"the CLIP checkpoint {what}", where=str(checkpoint), fix=GET_ONE)
        try:
            from transformers import AutoTokenizer, CLIPModel
        except ImportError:
            raise UserError("VLM-RM needs the transformers package", where="--reward-source vlm-rm",
                            fix="pip install 'vid2reward[vlm]'") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per load would garble the dashboard
        try:
            self.model = CLIPModel.from_pretrained(str(checkpoint)).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
        except Exception as exc:  # wrong model type, missing weights or tokenizer files
            raise UserError(f"cannot load the CLIP checkpoint: {str(exc).splitlines()[0][:200]}",
                            where=str(checkpoint), fix=GET_ONE) from None
        self.checkpoint = checkpoint
        self.model_name = model_name or checkpoint.name
        vision = self.model.config.vision_config
        self.image_size = int(vision.image_size)
        pre = _read_json(checkpoint / "preprocessor_config.json")
        self.mean = torch.tensor(pre.get("image_mean", OPENAI_MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.get("image_std", OPENAI_STD)).view(1, 3, 1, 1)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)

    def content_hash(self) -> str:
        """sha256 over the checkpoint's files (names and bytes): the model's identity."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.checkpoint.rglob("*") if p.is_file()):
            digest.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    @torch.no_grad()
    def embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """(n, D) text embeddings (not normalised)."""
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt")
        return _features(self.model.get_text_features(**tokens)).float()

    @torch.no_grad()
    def embed_images(self, frames: np.ndarray) -> torch.Tensor:
        """(n, D) image embeddings (not normalised) of uint8 frames (n, H, W, 3): resized to the
        model's input size (the whole frame, no crop) and normalised as the checkpoint says."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size),
                                            mode="bilinear", antialias=True, align_corners=False)
        x = (x - self.mean) / self.std
        return _features(self.model.get_image_features(pixel_values=x)).float()


def _features(output: Any) -> torch.Tensor:
    # transformers 4 returns the projected embedding; 5 returns an output whose pooler_output is.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class VlmRmSource(RewardSource):
    """The VLM-RM reward of every rendered frame, as one component ``vlmrm``.

    Build it with :meth:`text_goal` or :meth:`image_goal`.
    """

    name = "vlmrm"

    def __init__(self, embedder: ClipEmbedder, goal: torch.Tensor, baseline: torch.Tensor, *,
                 alpha: float, goal_label: dict[str, Any], frames: FrameSpec,
                 weight: float = 1.0) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise UserError(f"alpha must be in [0, 1], not {alpha:g}", where="--clip-alpha",
                            fix="give --clip-alpha a number from 0 to 1 (default 0.5)")
        self.embedder = embedder
        self.goal = mean_normalised(goal)
        self.baseline = mean_normalised(baseline)
        self.alpha = alpha
        self.projection = projection_matrix(self.goal, self.baseline, alpha)
        self.goal_label = goal_label
        self.frames = frames
        self.weight = weight
        self._model_hash: str | None = None

    @classmethod
    def text_goal(cls, embedder: ClipEmbedder, goal_prompts: Sequence[str],
                  baseline_prompts: Sequence[str] = (DEFAULT_BASELINE,), *,
                  alpha: float = DEFAULT_ALPHA, frames: FrameSpec = CLIP_FRAMES,
                  weight: float = 1.0) -> VlmRmSource:
        """Goal from words (``--task``), baseline from words."""
        goals = [p.strip() for p in goal_prompts if p.strip()]
        if not goals:
            raise UserError("the text-goal VLM-RM needs a goal prompt", where="--task",
                            fix='pass --task "a hopper robot hopping forward", or use '
                                "--clip-goal image (the expert video's frames)")
        return cls(embedder, embedder.embed_text(goals), embedder.embed_text(list(baseline_prompts)),
                   alpha=alpha, frames=frames, weight=weight,
                   goal_label={"mode": "text", "goal": goals, "baseline": list(baseline_prompts)})

    @classmethod
    def image_goal(cls, embedder: ClipEmbedder, expert_frames: np.ndarray,
                   baseline_frames: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                   frames: FrameSpec = CLIP_FRAMES, weight: float = 1.0) -> VlmRmSource:
        """Goal from the expert video's frames, baseline from random-action frames (uint8
        arrays (n, H, W, 3) at the source's frame size)."""
        label = {"mode": "image",
                 "expert_frames": hashlib.sha256(np.ascontiguousarray(expert_frames).tobytes()).hexdigest(),
                 "baseline_frames": hashlib.sha256(np.ascontiguousarray(baseline_frames).tobytes()).hexdigest()}
        return cls(embedder, embedder.embed_images(expert_frames),
                   embedder.embed_images(baseline_frames), alpha=alpha, frames=frames,
                   weight=weight, goal_label=label)

    def components(self, frames: np.ndarray, env_indices: np.ndarray,
                   episode_starts: np.ndarray) -> dict[str, np.ndarray]:
        """``{"vlmrm": reward}`` of each frame."""
        rewards = vlm_rm_reward(self.embedder.embed_images(frames), self.goal, self.projection)
        return {"vlmrm": rewards.double().numpy()}

    def cache_key(self) -> dict[str, Any]:
        """The checkpoint's content hash, the goal and baseline, alpha, weight and frames."""
        if self._model_hash is None:
            self._model_hash = self.embedder.content_hash()
        f = self.frames
        return {"kind": "vlm-rm", "model": self.embedder.model_name, "model_sha256": self._model_hash,
                **self.goal_label, "alpha": self.alpha, "weight": self.weight,
                "frames": [f.width, f.height, f.every]}
