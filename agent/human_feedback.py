"""Human as critic: a person's words become BehaviorDeltas, through a documented vocabulary.

"hop higher and a bit faster" is read clause by clause; each phrase of :data:`VOCABULARY`
names a pixel feature and which way it must move. With the learner's measured value, a phrase
becomes a :class:`~vid2reward.agent.messages.BehaviorDelta` whose target (the delta's
``expert`` value) lies one scale of that feature away (half a scale for "a bit", two for
"much"), so the offline engineer steps the reward towards it exactly as it does for the
critic's deltas. A clause with no phrase of the vocabulary is *not understood*, and said so:
the words still reach an LLM engineer as text, but nothing is silently dropped.

The vocabulary (also in README.md, "Chat"):

    faster / slower, speed up / slow down            forward_speed
    quicker steps / longer strides, more hops / fewer hops   cadence_hz
    hop higher / hop lower, more bounce / less bounce        vertical_oscillation, flight_fraction
    more time in the air / stay on the ground        flight_fraction
    lean forward / lean back, more upright / stand up straight   tilt_deg
    stand taller / crouch lower, stop falling / stay up      height_ratio
    smoother / less jerky / calmer, more energetic / livelier    motion_energy, height_ratio_std
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from vid2reward.agent.messages import BehaviorDelta, Direction, VisualFeedback
from vid2reward.tools.feature_definitions import feature_scale

HUMAN_WEIGHT = 2.0
"""A person's request weighs twice a measured feature in the loss: they are the critic."""


@dataclass(frozen=True)
class Phrase:
    """Words of the vocabulary and the behaviour change they ask for."""

    pattern: str
    """A regular expression matched on lower-case words."""
    moves: tuple[tuple[str, Direction], ...]
    """(feature, direction) pairs; "change" means towards zero (e.g. upright: tilt 0)."""


def _p(pattern: str, *moves: tuple[str, Direction]) -> Phrase:
    return Phrase(pattern, tuple(moves))


UP: Direction = "increase"
DOWN: Direction = "decrease"
ZERO: Direction = "change"
VOCABULARY: tuple[Phrase, ...] = (
    # Longer phrases first: "faster rhythm" is cadence, not speed; "hop lower" is not "lower".
    _p(r"quicker steps|faster (rhythm|cadence|steps)|higher cadence|more (steps|hops)|"
       r"shorter (strides|steps)", ("cadence_hz", UP)),
    _p(r"slower (rhythm|cadence|steps)|lower cadence|fewer (steps|hops)|longer (strides|steps)",
       ("cadence_hz", DOWN)),
    _p(r"more time in the air|more airborne|longer flights?", ("flight_fraction", UP)),
    _p(r"less time in the air|less airborne|stay on the ground|keep (a )?foot on the ground",
       ("flight_fraction", DOWN)),
    _p(r"(hop|jump|bounce|leap)s? higher|higher (hops|jumps)|more bounce|bounce more|more bobbing",
       ("vertical_oscillation", UP), ("flight_fraction", UP)),
    _p(r"(hop|jump|bounce|leap)s? lower|lower (hops|jumps)|less bounce|bounce less|less bobbing|"
       r"flatter", ("vertical_oscillation", DOWN), ("flight_fraction", DOWN)),
    _p(r"lean (more )?forwards?|more forward lean|bend forwards?", ("tilt_deg", UP)),
    _p(r"lean (more )?back(wards?)?|less forward lean|lean less", ("tilt_deg", DOWN)),
    _p(r"more upright|stand up straight|straighter|stay upright|less lean", ("tilt_deg", ZERO)),
    _p(r"stop falling|(do not|don't|never) fall( over)?|stay up|stand taller|taller|"
       r"less crouched|more extended", ("height_ratio", UP)),
    _p(r"crouch( lower)?|get lower|more crouched|lower (body|torso)", ("height_ratio", DOWN)),
    _p(r"smoother|less jerky|calmer|less shaking|less flailing|steadier",
       ("motion_energy", DOWN), ("height_ratio_std", DOWN)),
    _p(r"more energetic|livelier|more (leg )?movement|move (the legs )?more",
       ("motion_energy", UP), ("height_ratio_std", UP)),
    _p(r"faster|speed up|quicker|more speed|too slow(ly)?", ("forward_speed", UP)),
    _p(r"slower|slow down|less speed|too fast", ("forward_speed", DOWN)),
)
"""Every phrase a person's words are read with, most specific first."""

_AMOUNTS = ((re.compile(r"\b(a (little )?bit|slightly|a little|somewhat)\b"), 0.5),
            (re.compile(r"\b(much|a lot|way|far|lots)\b"), 2.0))
_CLAUSES = re.compile(r"[,.;/!?]+|\band\b|\bbut\b|\bthen\b")


@dataclass
class Request:
    """One understood phrase: the words, the feature, the direction and how far (in scales)."""

    words: str
    feature: str
    direction: Direction
    amount: float


@dataclass
class ParsedFeedback:
    """A person's words, read: the requests understood and the clauses that were not."""

    text: str
    requests: list[Request] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def summary(self, hint: bool = True) -> str:
        """One line: what was understood (feature and arrow) and what was not (with ``hint``,
        followed by words the vocabulary knows)."""
        arrow = {"increase": "↑", "decrease": "↓", "change": "→0"}
        parts = []
        if self.requests:
            by_words: dict[str, list[str]] = {}
            for r in self.requests:
                by_words.setdefault(r.words, []).append(f"{r.feature} {arrow[r.direction]}")
            parts.append("understood: " + ", ".join(f"'{w}' = {' and '.join(f)}"
                                                    for w, f in by_words.items()))
        if self.not_understood:
            parts.append("not understood: " + ", ".join(f"'{c}'" for c in self.not_understood)
                         + (" (words I know: " + known_words() + ")" if hint else ""))
        return "; ".join(parts) or "nothing to read"


def known_words() -> str:
    """A short list of the vocabulary's phrases, for the 'not understood' message."""
    return ("faster, slower, quicker steps, fewer hops, hop higher, hop lower, more time in the "
            "air, lean forward, lean back, more upright, stand taller, stop falling, crouch, "
            "smoother, more energetic")


def parse_feedback(text: str) -> ParsedFeedback:
    """Read ``text`` clause by clause with :data:`VOCABULARY` (see the module docstring)."""
    parsed = ParsedFeedback(text=text)
    for clause in (c.strip() for c in _CLAUSES.split(text.lower())):
        if not clause:
            continue
        amount = next((a for pattern, a in _AMOUNTS if pattern.search(clause)), 1.0)
        rest, found = clause, False
        for phrase in VOCABULARY:
            match = re.search(rf"\b({phrase.pattern})\b", rest)
            if match is None:
                continue
            found = True
            rest = rest[:match.start()] + " " + rest[match.end():]  # a word counts once
            for feature, direction in phrase.moves:
                if not any(r.feature == feature for r in parsed.requests):
                    parsed.requests.append(Request(match.group(0), feature, direction, amount))
        if not found:
            parsed.not_understood.append(clause)
    return parsed


def human_deltas(parsed: ParsedFeedback, learner: Mapping[str, float]) -> list[BehaviorDelta]:
    """The requests as BehaviorDeltas: with the learner's measured value, a numeric target
    ``amount`` scales away (or 0 for "change": upright); without one, a free-text delta."""
    deltas = []
    for r in parsed.requests:
        value = learner.get(r.feature)
        scale = feature_scale(r.feature, value)
        if value is None:
            target, direction = None, r.direction
        elif r.direction == "change":
            target = 0.0
            direction = "decrease" if value > 0 else "increase"
        else:
            target = value + (r.amount if r.direction == "increase" else -r.amount) * scale
            direction = r.direction
        evidence = f"the person said '{r.words}'" + (
            f": {r.feature} {value:.3g} -> {target:.3g}" if value is not None and target is not None
            else " (no measured value: a direction only)")
        deltas.append(BehaviorDelta(
            feature=r.feature, learner=None if value is None else round(value, 4),
            expert=None if target is None else round(target, 4),
            scale=scale if target is not None else None, weight=HUMAN_WEIGHT, direction=direction,
            importance=min(1.0, 0.5 + 0.25 * r.amount), evidence=evidence))
    return deltas


def human_critique(words: str, *, iteration: int, candidate_id: str,
                   feedback: VisualFeedback | None,
                   learner: Mapping[str, float]) -> tuple[VisualFeedback, VisualFeedback, ParsedFeedback]:
    """The person's words as a VisualFeedback of their own (``hf-NNN``, logged as the human's
    message) and merged into the critic's ``feedback``: their deltas replace the critic's for
    the same features and come first, their words (and what was not understood) lead the
    problems. Returns (human, merged, parsed)."""
    parsed = parse_feedback(words)
    deltas = human_deltas(parsed, learner)
    problems = [f"(person) {words}"] + ([f"(not understood by the vocabulary: "
                                         f"{', '.join(parsed.not_understood)})"]
                                        if parsed.not_understood else [])
    human = VisualFeedback(id=f"hf-{iteration:03d}", iteration=iteration, candidate_id=candidate_id,
                           problems=problems, deltas=deltas,
                           similarity=feedback.similarity if feedback else 0.0)
    if feedback is None:
        return human, human, parsed
    named = {d.feature for d in deltas}
    merged = feedback.model_copy(update={
        "problems": [*problems, *feedback.problems],
        "deltas": [*deltas, *(d for d in feedback.deltas if d.feature not in named)]})
    return human, merged, parsed
