"""The LLM critic: a vision-language model compares contact sheets of the expert and the learner.

One request per candidate carries both contact sheets as images and both clips' pixel features
side by side (the same tables the critic's tools in ``tools/agent_tools.py`` return), and asks
for a :class:`CritiqueReply`. A single request rather than a tool loop: the clip is already
rendered and measured by the time the critic runs, and chat-completions tool results are text
only, so a tool could not show the model more frames than the request already does.

The reply is validated; a reply that does not validate gets one repair round quoting the error;
if that fails too, the offline FeatureCritic's feedback is used and the run log says so (the
run goes on). A model that does not accept images (the server's error says so) is detected
once: the run's notes say it, and from then on the critic sends the same request without the
contact sheets, critiquing from the measured feature tables alone. Ids, the iteration and the candidate are filled in here, never taken from the
model, and the measured values replace the numbers the model copied into its deltas.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field

from vid2reward.agent.engines.base import CandidateView, EventSink, ExpertView
from vid2reward.agent.engines.llm_client import ImagesNotSupported, RoleClient, Structured, echo
from vid2reward.agent.engines.offline import OfflineCritic
from vid2reward.agent.messages import BehaviorDelta, VisualFeedback
from vid2reward.agent.prompts import render
from vid2reward.tools.agent_tools import (
    comparison_table,
    feature_definitions_text,
    features_table,
)
from vid2reward.tools.feature_definitions import feature_scale


class CritiqueReply(BaseModel):
    """What the critic model answers: a VisualFeedback without the fields code fills in."""

    model_config = ConfigDict(extra="ignore")  # an echoed id or candidate is dropped, not trusted
    similarity: float = Field(ge=0.0, le=1.0, description="1 = indistinguishable motion")
    problems: list[str] = Field(default_factory=list,
                                description="numbered sentences, most important first")
    deltas: list[BehaviorDelta] = Field(default_factory=list,
                                        description="one per difference worth fixing")


def image_block(path: Path) -> dict[str, Any]:
    """A PNG file as a LangChain image content block (sent as a base64 ``image_url`` part)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return {"type": "image", "base64": data, "mime_type": "image/png"}


class LLMCritic:
    """The critic role played by a VLM (see the module docstring).

    Args:
        client: the critic's chat model.
        fallback: the feature critic: its similarity is shown to the model as a reference, its
            feedback replaces an answer that never validates.
        task: the user's words about the task.
    """

    def __init__(self, client: RoleClient, fallback: OfflineCritic, task: str = "") -> None:
        self.client = client
        self.fallback = fallback
        self.task = task or "(none given: imitate the expert's motion)"
        self.fallbacks = 0
        """Critiques that fell back to the feature critic."""
        self.text_only = False
        """True once the model refused images: requests then carry the feature tables only."""

    def bind_context(self, ctx: EventSink) -> None:
        """Report usage and notes to the run (called by the runner)."""
        self.client.bind(ctx)

    def _system(self) -> SystemMessage:
        return SystemMessage(content=render("critic_system", feature_definitions=feature_definitions_text()))

    def describe_expert(self, expert: ExpertView) -> str:
        """The model's description of the expert's motion (first line: a summary); the
        measured features as text if the model says nothing."""
        text = render("critic_describe", task=self.task,
                      expert_features=features_table(expert.features, expert.units))

        def request() -> list[BaseMessage]:
            content: list[Any] = [{"type": "text", "text": text}]
            if Path(expert.sheet).is_file() and not self.text_only:
                content.append(image_block(expert.sheet))
            return [self._system(), HumanMessage(content=content)]

        try:
            reply = self.client.invoke(request())
        except ImagesNotSupported as exc:
            self._go_text_only(exc)
            reply = self.client.invoke(request())
        description = reply.text.strip()
        if not description:
            self.client.note("empty description of the expert; using the measured features")
            return self.fallback.describe_expert(expert)
        return description

    def critique(self, expert: ExpertView, candidate: CandidateView, *, feedback_id: str,
                 iteration: int) -> VisualFeedback:
        """VisualFeedback on one candidate (see the module docstring for repair and fallback)."""
        reference = self.fallback.critique(expert, candidate, feedback_id=feedback_id,
                                           iteration=iteration)
        messages: list[BaseMessage] = [self._system(), self._request(expert, candidate, reference)]
        result = self._structured(messages)
        if result.value is None:
            messages += [*echo(result.raw, result.error or ""),
                         HumanMessage(content=render("critic_repair", error=result.error))]
            result = self._structured(messages)
        if result.value is None:
            self.fallbacks += 1
            self.client.note(f"{candidate.id}: no valid critique after a repair round "
                             f"({result.error}); used the feature critic's feedback")
            return reference
        reply = result.value
        assert isinstance(reply, CritiqueReply)
        return VisualFeedback(id=feedback_id, iteration=iteration, candidate_id=candidate.id,
                              similarity=reply.similarity, problems=reply.problems,
                              deltas=[self._measured(d, expert, candidate) for d in reply.deltas])

    def _structured(self, messages: list[BaseMessage]) -> Structured:
        """A CritiqueReply; if the model refuses images, the same messages without them."""
        try:
            return self.client.structured(messages, CritiqueReply)
        except ImagesNotSupported as exc:
            self._go_text_only(exc)
            messages[:] = [_without_images(m) for m in messages]
            return self.client.structured(messages, CritiqueReply)

    def _go_text_only(self, exc: ImagesNotSupported) -> None:
        """Say once that the model takes no images, and send none from now on (a model that
        refuses a text-only request too is a real failure: raised)."""
        if self.text_only:
            raise exc
        self.text_only = True
        self.client.note(f"{exc.what}; going on text-only: critiques from the measured feature "
                         "tables, no contact sheets")

    def _request(self, expert: ExpertView, candidate: CandidateView,
                 reference: VisualFeedback) -> HumanMessage:
        text = render("critic_critique", candidate_id=candidate.id, task=self.task,
                      expert_description=expert.description or "(not described)",
                      comparison=comparison_table(expert.features, candidate.features, expert.units),
                      feature_similarity=f"{reference.similarity:.3f}")
        content: list[Any] = [{"type": "text", "text": text}]
        for label, sheet in (("expert", expert.sheet), ("learner", candidate.sheet)):
            if self.text_only:
                content.append({"type": "text", "text": f"(no image of the {label}: this model "
                                                        "takes text only; judge from the table)"})
            elif sheet is not None and Path(sheet).is_file():
                content += [{"type": "text", "text": f"The {label}'s contact sheet:"}, image_block(sheet)]
            else:
                content.append({"type": "text", "text": f"(no contact sheet of the {label})"})
        return HumanMessage(content=content)

    @staticmethod
    def _measured(delta: BehaviorDelta, expert: ExpertView, candidate: CandidateView) -> BehaviorDelta:
        """The delta with measured values, and the scale they are compared in, where its
        feature was measured on both clips (the model's numbers are not trusted)."""
        if delta.feature in expert.features and delta.feature in candidate.features:
            value = expert.features[delta.feature]
            return delta.model_copy(update={"expert": round(value, 4),
                                            "learner": round(candidate.features[delta.feature], 4),
                                            "scale": feature_scale(delta.feature, value)})
        return delta


def _without_images(message: BaseMessage) -> BaseMessage:
    """``message`` with its image parts replaced by a line saying none is shown."""
    if not isinstance(message.content, list):
        return message
    parts = [part if not (isinstance(part, dict) and part.get("type") in ("image", "image_url"))
             else {"type": "text", "text": "(image left out: this model takes text only)"}
             for part in message.content]
    return message.model_copy(update={"content": parts})
