"""Small inputs for the LLM engine's tests: contact sheets, an expert, trained candidates, a sink."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from vid2reward.agent.config import LLMSettings, RunConfig
from vid2reward.agent.engines.base import CandidateView, EngineerBrief, ExpertView
from vid2reward.sim import env_context

CRITIC, ENGINEER = "test-vlm", "test-llm"
EXPERT_FEATURES = {"forward_speed": 0.6, "cadence_hz": 2.0, "vertical_oscillation": 0.05}
UNITS = {"forward_speed": "body lengths/s", "cadence_hz": "Hz", "vertical_oscillation": "body lengths"}
PROGRAM = '''"""A hopper reward."""

import numpy as np

WEIGHTS = {"forward": 1.0, "healthy": 1.0, "ctrl": 0.001}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    healthy = WEIGHTS["healthy"] * float(s.is_healthy)
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    components = {"forward": forward, "healthy": healthy, "ctrl": ctrl}
    return forward + healthy + ctrl, components
'''


def sheet(path: Path, shade: int) -> Path:
    """A tiny PNG contact sheet."""
    image = np.full((24, 32, 3), shade, dtype=np.uint8)
    image[8:16, 10:20] = 255 - shade
    iio.imwrite(path, image)
    return path


def expert_view(tmp: Path) -> ExpertView:
    """An expert with a contact sheet and three measured features."""
    return ExpertView(clip=tmp / "expert.mp4", sheet=sheet(tmp / "expert.png", 40),
                      features=dict(EXPERT_FEATURES), units=dict(UNITS),
                      description="It hops forward about twice a second.")


def candidate(tmp: Path, cid: str = "iter-001/cand-00", similarity: float | None = 0.4,
              forward_speed: float = 0.1) -> CandidateView:
    """A trained and evaluated candidate directory (reward.py, metrics.json, evaluation.json)."""
    d = tmp / cid
    d.mkdir(parents=True, exist_ok=True)
    (d / "reward.py").write_text(PROGRAM)
    metrics = {"status": "finished", "failure": None, "steps": 2048, "episodes": 40,
               "return_mean": 55.0, "env_return_mean": 60.0, "episode_length_mean": 30.0,
               "weights": {"forward": 1.0, "healthy": 1.0, "ctrl": 0.001},
               "components": {"forward": {"per_step_mean": 0.1, "episode_mean": 3.0,
                                          "episode_std": 1.0, "share": 0.09},
                              "healthy": {"per_step_mean": 1.0, "episode_mean": 30.0,
                                          "episode_std": 5.0, "share": 0.9},
                              "ctrl": {"per_step_mean": -0.001, "episode_mean": -0.03,
                                       "episode_std": 0.01, "share": 0.01}},
               "curve": [{"steps": 1024.0, "return": 20.0, "env_return": 22.0, "length": 20.0},
                         {"steps": 2048.0, "return": 55.0, "env_return": 60.0, "length": 30.0}]}
    features = {**EXPERT_FEATURES, "forward_speed": forward_speed, "cadence_hz": 0.5}
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "evaluation.json").write_text(json.dumps({"features": features, "units": UNITS,
                                                   "similarity": similarity}))
    return CandidateView(id=cid, iteration=int(cid[5:8]), directory=d, source=PROGRAM,
                         metrics=metrics, clip=None, sheet=sheet(d / "sheet.png", 200),
                         features=features, similarity=similarity)


def brief(tmp: Path, *, expert: bool = True, history: list[CandidateView] | None = None,
          candidates: int = 3, iteration: int = 1) -> EngineerBrief:
    """An engineer brief for Hopper-v5."""
    return EngineerBrief(env_id="Hopper-v5", env_context=env_context("Hopper-v5"), task="hop forward",
                         candidates=candidates, iteration=iteration,
                         expert=expert_view(tmp) if expert else None, history=history or [])


def llm_config(base_url: str, **settings: Any) -> RunConfig:
    """A RunConfig for the local server, with short timeouts and backoff (``settings``:
    further LLMSettings fields)."""
    llm = LLMSettings(**{"timeout": 1.0, "backoff": 0.01, "retries": 2, **settings})
    return RunConfig(engine="llm", critic=CRITIC, engineer=ENGINEER, base_url=base_url,
                     task="hop forward", final_steps=0, llm=llm)


class Sink:
    """Stands in for the run context: collects events, usage and notes."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.tokens = 0
        self.cost = 0.0
        self.notes: list[str] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def add_usage(self, tokens: int, cost: float) -> None:
        self.tokens += tokens
        self.cost += cost

    def note(self, summary: str) -> None:
        self.notes.append(summary)

    def kinds(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


def critique_json(**overrides: Any) -> dict[str, Any]:
    """A valid critic answer (the model echoes an id, which must be ignored)."""
    answer = {"id": "made-up-by-the-model", "similarity": 0.35,
              "problems": ["1. It shuffles instead of hopping."],
              "deltas": [{"feature": "forward_speed", "learner": 9.9, "expert": 9.9,
                          "direction": "increase", "importance": 0.8, "evidence": "frames 3-6"},
                         {"feature": "knee flexion", "direction": "increase", "importance": 0.3,
                          "evidence": "the legs stay straight"}]}
    return {**answer, **overrides}


def engineer_json(source: str = "", addresses: tuple[str, ...] = ("forward_speed",)) -> dict[str, Any]:
    """A valid engineer answer: one reweight of forward, addressing ``addresses``."""
    return {"edits": [{"op": "reweight", "component": "forward", "addresses": list(addresses),
                       "expected": {a: "increase" for a in addresses},
                       "rationale": "more reward for speed", "old_value": 1.0, "new_value": 2.0}],
            "source": source, "summary": "faster"}
