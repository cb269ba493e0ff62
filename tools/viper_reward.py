"""VIPER as a RewardSource: the video model's likelihood of the learner's frames, plus the
paper's exploration bonus.

- ``viper_density``: log p(z_t | z_{t-C..t-1}) of the learner's newest frame given its own past
  frames in this episode, scaled to [0, 1] (:meth:`VideoModel.scale`).
- ``viper_explore``: the disagreement bonus of viper_rl's DreamerV3 agent (``expl.Disag``,
  after Plan2Explore): an ensemble of next-latent predictors trained online on the learner's
  own transitions; the bonus is their standard deviation (mean over latent dims, in the
  expert's standardised latent units) times ``explore_scale``. It is large where the learner
  has not been yet, and decays as the ensemble learns the learner's transitions. (The
  reference's predictors read the world model's state and the action; ours read the same
  context latents the density does, since a held frame spans several actions.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from vid2reward.sim.reward_sources import FrameSpec, RewardSource
from vid2reward.tools.viper_model import CONTEXT, FRAME_H, FRAME_W, LATENT, VideoModel

ENSEMBLE = 5
"""Next-latent predictors of the exploration bonus."""
BUFFER = 8192
"""Learner transitions the ensemble trains on (the newest)."""
TRAIN_EVERY = 1
"""Scoring calls between two ensemble updates (one Adam step each, batch 128): every call,
so the bonus of a transition fades as soon as the learner keeps making it."""


class ViperSource(RewardSource):
    """The VIPER reward of a trained :class:`VideoModel` (components ``viper_density`` and
    ``viper_explore``)."""

    name = "viper"

    def __init__(self, model: VideoModel, every: int, *, weight: float = 1.0,
                 explore_scale: float = 0.1, num_envs_hint: int = 16, seed: int = 0) -> None:
        self.model = model
        self.frames = FrameSpec(width=FRAME_W, height=FRAME_H, every=every)
        self.weight = weight
        self.explore_scale = explore_scale
        self._history: dict[int, torch.Tensor] = {}
        torch.manual_seed(seed)
        self.ensemble = nn.ModuleList(
            nn.Sequential(nn.Linear(CONTEXT * LATENT, 64), nn.SiLU(), nn.Linear(64, LATENT))
            for _ in range(ENSEMBLE))
        self._opt = torch.optim.Adam(self.ensemble.parameters(), lr=1e-3)
        self._contexts = torch.zeros(BUFFER, CONTEXT * LATENT)
        self._targets = torch.zeros(BUFFER, LATENT)
        self._stored = 0
        self._calls = 0
        self._rng = np.random.default_rng(seed)

    def components(self, frames: np.ndarray, env_indices: np.ndarray,
                   episode_starts: np.ndarray) -> dict[str, np.ndarray]:
        """Density and exploration bonus of each env's newest frame."""
        latents = self.model.latents(frames)
        contexts = []
        for row, (env, start) in enumerate(zip(env_indices.tolist(), episode_starts.tolist(),
                                               strict=True)):
            past = self._history.get(env)
            if start or past is None:  # an episode's first frame: its past is itself
                past = latents[row:row + 1].expand(CONTEXT, -1)
            contexts.append(past)
            self._history[env] = torch.cat([past[1:], latents[row:row + 1]])
        context = torch.stack(contexts)
        with torch.no_grad():
            density = self.model.scale(self.model.dynamics.log_prob(context, latents).numpy())
            flat = context.flatten(1)
            predictions = torch.stack([net(flat) for net in self.ensemble])
            disagreement = predictions.std(0).mean(-1).numpy()
        self._remember(flat, latents)
        return {"viper_density": density.astype(np.float64),
                "viper_explore": self.explore_scale * disagreement.astype(np.float64)}

    def _remember(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        n = len(targets)
        slots = (self._stored + np.arange(n)) % BUFFER
        self._contexts[slots] = contexts
        self._targets[slots] = targets
        self._stored += n
        self._calls += 1
        if self._calls % TRAIN_EVERY == 0:
            available = min(self._stored, BUFFER)
            idx = torch.from_numpy(self._rng.integers(0, available, 128))
            x, y = self._contexts[idx], self._targets[idx]
            # each member sees its own bootstrap of the batch: disagreement where data is thin
            loss = sum(((net(x[perm]) - y[perm]) ** 2).mean() for net, perm in
                       zip(self.ensemble, (torch.randint(0, len(idx), (len(idx),))
                                           for _ in range(ENSEMBLE)), strict=True))
            self._opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            self._opt.step()

    def cache_key(self) -> dict[str, Any]:
        """The video model's key (clip, env, stride, training config), the weights and frames."""
        return {"kind": "viper", "model": self.model.report.get("key"), "weight": self.weight,
                "explore_scale": self.explore_scale,
                "frames": [self.frames.width, self.frames.height, self.frames.every]}
