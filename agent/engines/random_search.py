"""Random reward search: the benchmark's baseline for the chain-rule step.

Every iteration it writes K fresh programs from the offline engineer's term library
(reward_terms.py) with random weights, ignoring the critic's feedback. The graph still renders
every candidate and the video critic still scores it, and the run keeps the most similar one:
so against the full offline method, the only difference is how the next programs are chosen
(at random here, by the chain rule there). Select it with ``RunConfig.search = "random"``.
"""

from __future__ import annotations

import math

import numpy as np

from vid2reward.agent.engines.base import (
    CandidateView,
    EngineerAnswer,
    EngineerBrief,
    EventSink,
    ProgramDraft,
)
from vid2reward.agent.engines.body_terms import fits_body
from vid2reward.agent.engines.reward_terms import TERMS, fallback_program, write_program
from vid2reward.agent.messages import EditAudit, VisualFeedback
from vid2reward.sim.envs import get_spec

ALWAYS = ("alive", "ctrl")
"""Terms in every program, as in the offline engineer's draft (each where it fits the body,
body_terms.py: "alive" only where the env ends episodes on a fall): both methods start from the
same structural prior."""
OPTIONAL = ("speed", "height", "upright", "lean", "bounce", "flight", "smooth")
"""Terms each switched on with probability 1/2 (at least one), those that fit the body."""
WEIGHT_SPAN = 10.0
"""A weight is drawn log-uniformly within [default / span, default * span]."""
SPEED_RANGE = (-3.0, 3.0)
"""Target speeds (m/s) are uniform in this range; height targets span the env's typical
torso heights; lean targets span ±0.5 rad."""


class RandomSearchEngineer:
    """An Engineer that proposes random programs (see module docstring)."""

    def __init__(self, env_id: str, seed: int = 0) -> None:
        self.spec = get_spec(env_id)
        self.seed = seed

    def bind_context(self, ctx: EventSink) -> None:
        """Nothing to report beyond the messages the graph logs: computed, not called."""

    def draft(self, brief: EngineerBrief) -> EngineerAnswer:
        """Iteration 1: K random programs."""
        return self._random(brief.candidates, 1)

    def repair(self, brief: EngineerBrief, source: str, report: str) -> str:
        """Library programs pass their tests; fall back to the default terms."""
        return fallback_program("repair")

    def propose(self, brief: EngineerBrief, feedback: VisualFeedback | None,
                audits: list[EditAudit]) -> EngineerAnswer:
        """The next iteration: K new random programs (feedback is ignored on purpose)."""
        return self._random(brief.candidates, brief.iteration + 1)

    def final_program(self, brief: EngineerBrief, winner: CandidateView,
                      feedback: VisualFeedback | None) -> ProgramDraft | None:
        """The winner as it is: random search's programs never use what the video measures."""
        return None

    def _random(self, k: int, iteration: int) -> EngineerAnswer:
        rng = np.random.default_rng([self.seed, iteration, 7])
        programs = []
        for index in range(k):
            terms = [t for t in ALWAYS if fits_body(t, self.spec)]
            library = [t for t in OPTIONAL if fits_body(t, self.spec)]  # e.g. no flight for the Ant
            optional = [t for t in library if rng.random() < 0.5] or [str(rng.choice(library))]
            terms += optional
            weights = {p: self._sample(p, spec.default, spec.kind, spec.low, spec.high, rng)
                       for t in terms for p, spec in TERMS[t].params.items()}
            header = (f"Reward program by vid2reward's random search: iteration {iteration}, "
                      f"candidate {index} (random terms and weights).")
            programs.append(ProgramDraft(source=write_program(terms, weights, header),
                                         plan={"terms": terms, "weights": weights}))
        return EngineerAnswer(edits=[], programs=programs, notes={"mode": "random"})

    def _sample(self, name: str, default: float, kind: str, low: float, high: float,
                rng: np.random.Generator) -> float:
        if kind == "weight":
            value = default * math.exp(rng.uniform(-1.0, 1.0) * math.log(WEIGHT_SPAN))
        elif name == "speed_target":
            value = rng.uniform(*SPEED_RANGE)
        elif name == "height_target":
            value = rng.uniform(*self.spec.typical_height)
        else:
            value = rng.uniform(-0.5, 0.5)
        return float(min(high, max(low, value)))
