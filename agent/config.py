"""One configuration object for a run. Precedence: explicit argument > env var > default."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Engine = Literal["offline", "llm"]
Search = Literal["chain_rule", "random"]
StructuredMethod = Literal["json_schema", "function_calling"]

LEGACY_LLM_KEYS = {"llm_timeout": "timeout", "llm_retries": "retries", "llm_backoff": "backoff",
                   "llm_max_delay": "max_delay", "structured_output": "structured_output",
                   "engineer_rounds": "engineer_rounds", "probe_steps": "probe_steps",
                   "temperature": "temperature", "prices": "prices"}
"""Keys of the old ``extra`` dict of run.json -> LLMSettings fields (older runs still open)."""


@dataclass
class LLMSettings:
    """How the LLM engine talks to its endpoint (``RunConfig.llm``)."""

    timeout: float = 180.0
    """Seconds one request may take (images and long programs make replies slow)."""
    retries: int = 3
    """Retries of a retryable error (429, 5xx, timeout, connection) before giving up."""
    backoff: float = 2.0
    """First retry delay in seconds; doubles each retry."""
    max_delay: float = 30.0
    """Longest wait between retries, even if the server asks for more."""
    structured_output: StructuredMethod = "json_schema"
    """How a structured answer is requested: a JSON-schema response format (OpenAI, vLLM,
    Ollama, llama.cpp) or a forced tool call (servers without response_format)."""
    engineer_rounds: int = 8
    """Tool-call rounds the engineer may use per answer before it must answer."""
    probe_steps: int = 0
    """Largest probe training the engineer may run (0: the probe_train tool is not offered)."""
    temperature: float | None = None
    """Sampling temperature (None: the endpoint's default)."""
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Extra or overriding prices: model prefix -> (USD/1M input, USD/1M output)."""


@dataclass
class RunConfig:
    """Everything that decides a vid2reward run (written to run.json)."""

    env_id: str = "Hopper-v5"
    """The simulated body (a registered Gymnasium MuJoCo id)."""
    video: str = ""
    """The expert: a URL yt-dlp understands, or a local video file."""
    video_start: float | None = None
    """Trim the expert video from this second."""
    video_end: float | None = None
    """Trim the expert video up to this second."""
    expert_forward: str = "right"
    """Which way the expert moves forward in its video: "right" (MuJoCo renders), "left", or
    "auto" (the way it moves: real footage)."""
    subject: str | None = None
    """Who the expert is in a busy frame: "auto" (the most persistent, largest mover) or a box
    "X,Y,W,H" in pixels at ``subject_time``; the expert's features are measured on the chosen
    subject's region (and its pose, for a person). None: the whole frame (pose: auto)."""
    subject_time: float = 0.0
    """Seconds into the (trimmed) expert clip at which the ``subject`` box is given."""
    task: str = ""
    """Optional words about the task (shown to LLM agents; the offline engine ignores it)."""
    iterations: int = 3
    """Critique -> edit -> retrain rounds."""
    candidates: int = 4
    """Reward programs trained per iteration."""
    steps: int = 150_000
    """PPO steps per candidate."""
    seed: int = 0
    engine: Engine = "offline"
    """"offline" (numeric critic and engineer, no network) or "llm" (OpenAI-compatible API)."""
    critic: str | None = None
    """Critic model in LLM mode (a VLM); "none" for the Eureka-style ablation without video."""
    engineer: str | None = None
    """Engineer model in LLM mode."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (env: OPENAI_BASE_URL)."""
    wall_clock_limit: float | None = None
    """Stop the run (cleanly, best/ written) after this many seconds of work."""
    token_budget: int | None = None
    """Stop after this many LLM tokens."""
    money_budget: float | None = None
    """Stop after this many US dollars of LLM calls."""
    patience: int = 2
    """Stop when the best similarity has not improved for this many iterations."""
    max_repairs: int = 2
    """Rounds the engineer may repair a reward program that fails its test."""
    clip_seconds: float = 8.0
    """Length of each rendered learner clip."""
    warm_start: bool = True
    """Candidates of iteration 2 on start from the run's best policy so far (more learning per
    second for the rewards being compared); the final training is from scratch regardless."""
    eval_episodes: int = 3
    """Seeded episodes rendered and measured per candidate: the critic judges their median
    features, and their spread is the critic's own noise."""
    render_size: tuple[int, int] = (320, 240)
    approve_rewards: bool = False
    """Pause before training each iteration's rewards for a person to approve (chat)."""
    n_envs: int | None = None
    """Parallel envs per training; None: the env's preset (sim/hyperparams.py)."""
    final_steps: int = 500_000
    """After the search, train the best reward again from scratch for this many steps (it
    verifies the reward, not only a candidate's policy); best/ then holds that policy
    (0: best/ keeps the candidate's). Search candidates train too briefly to be the policy a
    user wants; 500k steps is where the expert tasks' own rewards learn their gaits
    (docs/performance.md), 2-3 minutes here."""
    n_workers: int = 2
    """Worker processes that step the envs of one training (reward code runs only there)."""
    search: Search = "chain_rule"
    """How the offline engine picks the next programs: "chain_rule" (the numeric engineer) or
    "random" (the benchmark's ablation: random programs from the same term library)."""
    trust_reward_code: bool = False
    """Run reward programs even where the OS cannot isolate them (``--trust-reward-code``)."""
    ray_address: str | None = None
    """The Ray cluster candidates train on (``--ray ADDRESS`` or RAY_ADDRESS; "local": a private
    head on this machine); None: this machine, one candidate after another. ``resume`` uses it
    again unless its own ``--ray`` or RAY_ADDRESS says otherwise. Not part of any result."""
    llm: LLMSettings = field(default_factory=LLMSettings)
    """How the LLM engine talks to its endpoint (timeouts, retries, rounds, prices)."""

    @property
    def video_critic(self) -> bool:
        """False in the Eureka-style ablation (``--critic none``): no video is used."""
        return (self.critic or "").lower() != "none"

    def resolved_base_url(self) -> str | None:
        """``base_url``, else OPENAI_BASE_URL."""
        return self.base_url or os.environ.get("OPENAI_BASE_URL")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (no secrets: API keys are never stored)."""
        data = asdict(self)
        data["render_size"] = list(self.render_size)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_json`. Unknown keys are ignored, and the ``extra`` dict of
        older run.json files migrates into the typed fields."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "render_size" in known:
            known["render_size"] = tuple(known["render_size"])
        legacy = data.get("extra") or {}
        llm = dict(known.get("llm") or {})
        llm.update({LEGACY_LLM_KEYS[k]: v for k, v in legacy.items() if k in LEGACY_LLM_KEYS})
        if "prices" in llm:
            llm["prices"] = {m: (float(p[0]), float(p[1])) for m, p in llm["prices"].items()}
        known["llm"] = LLMSettings(**{k: v for k, v in llm.items() if k in LLMSettings.__dataclass_fields__})
        for name in ("search", "trust_reward_code"):
            if name in legacy and name not in known:
                known[name] = legacy[name]
        # Runs made before these settings existed resume as they were made (one clip per
        # candidate, every candidate from scratch): their finished work stays valid.
        known.setdefault("warm_start", False)
        known.setdefault("eval_episodes", 1)
        known.setdefault("final_steps", 0)
        return cls(**known)
