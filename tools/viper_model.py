"""VIPER's video model, CPU-sized: trained on one expert clip, cached per clip.

VIPER (Escontrela et al., 2023; Alescontrela/viper_rl) trains a VQ-GAN (64 px, 256 codes) and a
VideoGPT (8 layers, 16-frame window) on many expert videos and rewards an agent with the
log-likelihood of its frames. Ours has the same two stages at a size that trains in about a
minute on two CPU cores from the ~250 frames of one clip:

1. a convolutional autoencoder: 64x48 RGB frame <-> a :data:`LATENT`-dim latent, standardised
   over the expert's frames;
2. an autoregressive latent model: p(z_t | z_{t-C}, ..., z_{t-1}), a diagonal Gaussian whose
   mean and log-std an MLP reads from the last :data:`CONTEXT` latents.

The reward of a frame is log p(z_t | past) -- the paper's next-frame form (the reference code
scores the joint likelihood; viper_rl issue #5) -- rescaled as the reference's
``_reward_scaler`` does, ``clip((ll - lo) / (hi - lo), 0, 1)``, with ``hi`` the median
log-likelihood of the held-out expert frames and ``lo`` that of uniform-random-action episodes
of the same env (the reference takes a per-task range; ours is measured, not tuned).

The last :data:`HELD_OUT` of the clip is never trained on: its log-likelihood is the report's
held-out figure. Models are cached under ``~/.cache/vid2reward/viper/<sha256>`` where the hash
covers the clip's bytes, the env, the frame stride and :class:`ViperConfig`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward_sources import source_renderer

LATENT = 8
"""Latent size of a frame."""
CONTEXT = 4
MIN_LOG_STD = -1.5
"""Floor of the latent model's log-std (std 0.22 of the expert's spread): one clip is too
little data to trust a sharper density, and a learner's frame a little off the clip must
not score minus thousands."""
"""Past frames the latent model conditions on."""
HELD_OUT = 0.2
"""Fraction of the clip (its end) kept out of training, for the held-out likelihood."""
FRAME_W, FRAME_H = 64, 48
"""Frame size the model sees (4:3, like the expert clips)."""
VERSION = 2
"""Bump when the model or its training changes: old cache entries are then not reused."""

LIKELIHOOD_MARGIN_NATS = 1e-3
"""How much more likely (nats per frame, median against median) the expert's held-out frames
must be than random actions' frames for the model to be used."""


@dataclass(frozen=True)
class ViperConfig:
    """Training of the video model (part of the cache key)."""

    ae_steps: int = 1500
    """Adam steps of the autoencoder (batch 32)."""
    dyn_steps: int = 2000
    """Adam steps of the latent model (batch 64)."""
    context_noise: float = 0.3
    """Std of Gaussian noise on the context latents while training (in standardised units):
    the learner's frames are never exactly the expert's."""
    random_episodes: int = 3
    """Uniform-random-action episodes rendered for the ``lo`` end of the reward scale."""
    seed: int = 0


class FrameAutoencoder(nn.Module):
    """64x48 RGB <-> LATENT numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 6 * 8, LATENT))
        self.decoder_in = nn.Linear(LATENT, 64 * 6 * 8)
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1),
            nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 3, 48, 64) in [0, 1] -> (n, LATENT)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, LATENT) -> (n, 3, 48, 64) in [0, 1]."""
        return self.decoder(self.decoder_in(z).view(-1, 64, 6, 8))


class LatentModel(nn.Module):
    """p(z_t | z_{t-CONTEXT..t-1}): a diagonal Gaussian from an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(CONTEXT * LATENT, 128), nn.SiLU(), nn.Linear(128, 128),
                                 nn.SiLU(), nn.Linear(128, 2 * LATENT))

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, CONTEXT, LATENT) -> mean and log-std, each (n, LATENT)."""
        mean, log_std = self.net(context.flatten(1)).chunk(2, dim=-1)
        return mean, log_std.clamp(MIN_LOG_STD, 2.0)

    def log_prob(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target | context) in nats, summed over the latent's dims: (n,)."""
        mean, log_std = self(context)
        z = (target - mean) / log_std.exp()
        return (-0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def resize_frames(frames: list[np.ndarray] | np.ndarray,
                  size: tuple[int, int] = (FRAME_W, FRAME_H)) -> np.ndarray:
    """Frames of any size -> uint8 (n, height, width, 3) (``size`` = width, height;
    area-averaged)."""
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                     for f in frames]).astype(np.uint8)


def subject_only(colours: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``frames`` with the pixels whose colour bin is not in ``colours`` blacked out."""
    from vid2reward.tools.subject_segmentation import colour_lookup_masks

    return frames * colour_lookup_masks(colours, frames)[..., None].astype(np.uint8)


def windows(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(contexts (n, CONTEXT, LATENT), targets (n, LATENT)) of a latent sequence (T, LATENT);
    the first frames' contexts are padded with the first latent, as an episode's are."""
    padded = torch.cat([latents[:1].expand(CONTEXT, -1), latents])
    contexts = torch.stack([padded[t:t + CONTEXT] for t in range(len(latents))])
    return contexts, latents


@dataclass
class VideoModel:
    """A trained VIPER video model: subject colours, autoencoder, latent statistics, latent
    model, reward scale."""

    subject_colours: np.ndarray
    """Per Lab colour bin, True for the subject's colours (learnt from the expert clip)."""
    autoencoder: FrameAutoencoder
    latent_mean: torch.Tensor
    latent_std: torch.Tensor
    dynamics: LatentModel
    lo: float
    """Median log-likelihood of random-action frames: reward 0 at or below it."""
    hi: float
    """Median log-likelihood of held-out expert frames: reward 1 at or above it."""
    report: dict[str, Any]
    """Training time, held-out and random-action likelihoods, the cache key."""

    def subject_only(self, frames: np.ndarray) -> np.ndarray:
        """The frames with every pixel not of the subject's colours set to black."""
        return subject_only(self.subject_colours, frames)

    @torch.no_grad()
    def latents(self, frames: np.ndarray) -> torch.Tensor:
        """Standardised latents (n, LATENT) of uint8 frames (n, FRAME_H, FRAME_W, 3)."""
        x = to_tensor(self.subject_only(frames))
        return (self.autoencoder.encode(x) - self.latent_mean) / self.latent_std

    @torch.no_grad()
    def sequence_log_prob(self, frames: np.ndarray) -> np.ndarray:
        """log p(z_t | past) of each frame of one sequence (nats)."""
        contexts, targets = windows(self.latents(frames))
        return self.dynamics.log_prob(contexts, targets).numpy()

    def scale(self, log_prob: np.ndarray) -> np.ndarray:
        """The reference's reward scaler: clip((ll - lo) / (hi - lo), 0, 1)."""
        return np.clip((log_prob - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def save(self, folder: Path) -> None:
        """Write model.pt and report.json into ``folder`` (atomically: a temporary name, then
        a rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "model.pt.partial"
        torch.save({"autoencoder": self.autoencoder.state_dict(),
                    "dynamics": self.dynamics.state_dict(), "latent_mean": self.latent_mean,
                    "latent_std": self.latent_std, "lo": self.lo, "hi": self.hi,
                    "subject_colours": torch.from_numpy(self.subject_colours)}, tmp)
        (folder / "report.json").write_text(json.dumps(self.report, indent=2), encoding="utf-8")
        tmp.rename(folder / "model.pt")

    @classmethod
    def load(cls, folder: Path) -> VideoModel:
        """Read what :meth:`save` wrote."""
        state = torch.load(folder / "model.pt", weights_only=True)
        autoencoder, dynamics = FrameAutoencoder(), LatentModel()
        autoencoder.load_state_dict(state["autoencoder"])
        dynamics.load_state_dict(state["dynamics"])
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        return cls(state["subject_colours"].numpy(), autoencoder.eval(), state["latent_mean"], state["latent_std"], dynamics.eval(),
                   float(state["lo"]), float(state["hi"]), report)


def frame_stride(env_id: str, clip_fps: float) -> int:
    """Env steps between the learner's frames so that they are as far apart in time as the
    expert clip's frames (the latent model learned the clip's frame-to-frame motion)."""
    return max(1, round(1.0 / (make_env(env_id).unwrapped.dt * clip_fps)))  # type: ignore[attr-defined]


def random_action_frames(env_id: str, every: int, episodes: int, seed: int,
                         max_steps: int = 250, size: tuple[int, int] = (FRAME_W, FRAME_H),
                         ) -> list[np.ndarray]:
    """Per episode, the frames (``size`` = width, height) of uniform random actions, every
    ``every`` steps, as the training workers render them."""
    env = make_env(env_id)
    base: Any = env.unwrapped
    renderer = source_renderer(base.model, base.data, get_spec(env_id), *size)
    out = []
    try:
        for ep in range(episodes):
            env.reset(seed=seed + ep)
            env.action_space.seed(seed + ep)
            frames = []
            for step in range(max_steps):
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                if step % every == 0:
                    frames.append(renderer.frame())
                if terminated or truncated:
                    break
            out.append(np.stack(frames))
    finally:
        env.close()
    return out


def train_video_model(expert: np.ndarray, random_episodes: list[np.ndarray],
                      config: ViperConfig) -> VideoModel:
    """Train on the expert frames (uint8 (T, FRAME_H, FRAME_W, 3)) but the last HELD_OUT;
    measure the held-out and random-action likelihoods and set the reward scale from them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: more threads only contend with the env workers
    try:
        return _train_video_model(expert, random_episodes, config)
    finally:
        torch.set_num_threads(threads)


def _train_video_model(expert: np.ndarray, random_episodes: list[np.ndarray],
                       config: ViperConfig) -> VideoModel:
    torch.manual_seed(config.seed)
    started = time.monotonic()
    split = int(round(len(expert) * (1 - HELD_OUT)))
    if split < 2 * CONTEXT or len(expert) - split < 2:
        raise UserError(f"the expert clip has {len(expert)} frames, too few for a video model",
                        fix="use a clip of at least 2 seconds")
    from vid2reward.tools.subject_segmentation import SegmentationSettings, colour_lookup

    # One clip is far too little data to learn that the scrolling floor does not matter (a
    # raw-RGB model scored the held-out frames below random actions'): the model sees only
    # the subject, found by the colour model of tools/subject_segmentation.
    colours = colour_lookup(list(expert[:split]), SegmentationSettings(method="colour"))
    train_x = to_tensor(subject_only(colours, expert[:split]))
    autoencoder = FrameAutoencoder()
    opt = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
    rng = np.random.default_rng(config.seed)
    for _ in range(config.ae_steps):
        batch = train_x[rng.integers(0, len(train_x), 32)]
        loss = ((autoencoder.decode(autoencoder.encode(batch)) - batch) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    autoencoder.eval()
    with torch.no_grad():
        recon = float(((autoencoder.decode(autoencoder.encode(train_x)) - train_x) ** 2).mean())
        raw = autoencoder.encode(train_x)
    latent_mean, latent_std = raw.mean(0), raw.std(0).clamp_min(1e-3)
    contexts, targets = windows((raw - latent_mean) / latent_std)
    dynamics = LatentModel()
    opt = torch.optim.Adam(dynamics.parameters(), lr=1e-3)
    for _ in range(config.dyn_steps):
        idx = torch.from_numpy(rng.integers(0, len(targets), 64))
        noisy = contexts[idx] + config.context_noise * torch.randn_like(contexts[idx])
        loss = -dynamics.log_prob(noisy, targets[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dynamics.eval()
    model = VideoModel(colours, autoencoder, latent_mean, latent_std, dynamics, 0.0, 1.0, {})
    # The held-out frames keep their real past (the training frames before them) as context.
    whole = model.sequence_log_prob(expert)
    train_ll, held_ll = whole[:split], whole[split:]
    random_ll = np.concatenate([model.sequence_log_prob(ep) for ep in random_episodes])
    model.lo, model.hi = float(np.median(random_ll)), float(np.median(held_ll))
    model.report = {
        "train_seconds": round(time.monotonic() - started, 1),
        "frames": {"train": split, "held_out": len(expert) - split,
                   "random": int(sum(len(e) for e in random_episodes))},
        "reconstruction_mse": round(recon, 5),
        "log_likelihood_nats_per_frame": {"train": round(float(train_ll.mean()), 2),
                                          "held_out": round(float(held_ll.mean()), 2),
                                          "random_actions": round(float(random_ll.mean()), 2)},
        "held_out_above_random": round(float(np.mean(held_ll[:, None] > random_ll[None, :])), 3),
        "scale": {"lo": round(model.lo, 3), "hi": round(model.hi, 3)},
        "config": asdict(config), "latent": LATENT, "context": CONTEXT, "version": VERSION}
    # A model that collapsed to one prediction gives every frame the same likelihood up to
    # float rounding (here 4.646 against 4.646 nats/frame): a thousandth of a nat is no margin.
    if not model.hi - model.lo > LIKELIHOOD_MARGIN_NATS:
        raise UserError("the video model gives the expert's held-out frames no higher "
                        "likelihood than random actions' frames", where="VIPER",
                        fix="use a longer or steadier expert clip (same camera as the env)")
    return model


def cache_root() -> Path:
    """Where trained video models are kept (beside the fetched clips)."""
    from vid2reward.tools.video_fetch import default_cache_dir

    return default_cache_dir().parent / "viper"


def model_key(clip: Path, env_id: str, every: int, config: ViperConfig) -> str:
    """sha256 of the clip's bytes, the env, the frame stride, the config and VERSION."""
    digest = hashlib.sha256(Path(clip).read_bytes())
    digest.update(json.dumps({"env": env_id, "every": every, "config": asdict(config),
                              "version": VERSION, "size": [FRAME_W, FRAME_H]},
                             sort_keys=True).encode())
    return digest.hexdigest()


def video_model_for_clip(clip: Path, env_id: str, every: int,
                         config: ViperConfig = ViperConfig(),  # noqa: B008 - frozen
                         cache: Path | None = None, log: Any = None) -> VideoModel:
    """The video model of ``clip``: read from the cache, or trained (and cached) now."""
    from vid2reward.tools.video_frames import read_frames

    key = model_key(clip, env_id, every, config)
    folder = (cache or cache_root()) / key
    if (folder / "model.pt").is_file():
        return VideoModel.load(folder)
    expert = resize_frames(read_frames(clip).frames)
    if log is not None:
        log(f"training the VIPER video model on {len(expert)} frames of {Path(clip).name} "
            f"(cached in {folder})")
    model = train_video_model(expert, random_action_frames(env_id, every, config.random_episodes,
                                                           seed=10_000 + config.seed), config)
    model.report["key"] = key
    model.report["clip"] = str(clip)
    model.save(folder)
    return model
