"""The LLM engine: a VLM critic and a tool-calling LLM engineer on any OpenAI-compatible API.

    make_llm_engines(config) -> (LLMCritic, LLMEngineer)

Models: ``config.critic`` (a VLM) and ``config.engineer``; either one alone serves both roles.
``--critic none`` is the Eureka-style ablation: no video, and the engineer reflects on training
statistics only. The endpoint is ``config.resolved_base_url()`` (``--base-url`` or
OPENAI_BASE_URL; None = OpenAI); the key is OPENAI_API_KEY (``--api-key`` sets it for the
process; it is never written to run.json), or a placeholder for a local server. Timeouts,
retries, the structured-output method, the engineer's round limit and probe size come from
``config.llm`` (:class:`~vid2reward.agent.config.LLMSettings`).

Both engines have ``bind_context(ctx)``: the runner calls it so that every call's usage
(``LLMUsage`` events, the run's token and money budgets), the engineer's tool calls
(``ToolCall`` events) and fallbacks (node notes) reach the run log.
"""

from __future__ import annotations

from typing import Any

from vid2reward.agent.config import RunConfig
from vid2reward.agent.engines.base import CandidateView, Critic, Engineer, EventSink, ExpertView
from vid2reward.agent.engines.llm_client import RoleClient, make_chat_model
from vid2reward.agent.engines.llm_critic import LLMCritic
from vid2reward.agent.engines.llm_engineer import LLMEngineer
from vid2reward.agent.engines.llm_replay import ReplayChatModel, ReplayLog
from vid2reward.agent.engines.offline import OfflineCritic
from vid2reward.agent.messages import VisualFeedback
from vid2reward.sim.errors import UserError


class NoVideoCritic:
    """The critic of the no-video ablation: the graph never asks it anything."""

    def bind_context(self, ctx: EventSink) -> None:
        """Nothing to report beyond the messages the graph logs: computed, not called."""

    def describe_expert(self, expert: ExpertView) -> str:
        """Not used without a video critic."""
        raise RuntimeError("--critic none: the graph must not ask for an expert description")

    def critique(self, expert: ExpertView, candidate: CandidateView, *, feedback_id: str,
                 iteration: int) -> VisualFeedback:
        """Not used without a video critic."""
        raise RuntimeError("--critic none: the graph must not ask for a critique")


def make_llm_engines(config: RunConfig, replay: ReplayLog | None = None) -> tuple[Critic, Engineer]:
    """The critic and the engineer of an ``--engine llm`` run; with ``replay``, their models
    answer from a recorded run's log instead of an endpoint (no key, no network).

    Raises:
        UserError: no model named, or no API key for the OpenAI API itself.
    """
    settings = config.llm
    base_url = config.resolved_base_url()

    def chat_model(role: str, model: str) -> Any:
        if replay is not None:
            return ReplayChatModel(replay, role)
        return make_chat_model(model, base_url, settings)
    critic_model = config.critic if config.video_critic else None
    engineer_model = config.engineer or critic_model
    if not engineer_model:
        raise UserError("the llm engine needs a model", where="--engine llm",
                        fix="pass --engineer MODEL (and --critic MODEL, a vision model, unless "
                            "--critic none)")
    engineer = LLMEngineer(RoleClient("engineer", engineer_model,
                                      chat_model("engineer", engineer_model), settings), settings)
    if not config.video_critic:
        return NoVideoCritic(), engineer
    critic_model = critic_model or engineer_model
    fallback = OfflineCritic()
    critic = LLMCritic(RoleClient("critic", critic_model, chat_model("critic", critic_model),
                                  settings), fallback, task=config.task)
    return critic, engineer
