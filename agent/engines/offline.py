"""The offline engine (the default: no key, no network): a pixel-feature critic and a numeric
reward engineer, behind the same Critic / Engineer interfaces as the LLM agents."""

from __future__ import annotations

from collections.abc import Mapping

from vid2reward.agent.engines.base import (
    CandidateView,
    EngineerAnswer,
    EngineerBrief,
    EventSink,
    ExpertView,
    ProgramDraft,
)
from vid2reward.agent.engines.feature_critic import PHRASES, FeatureCritic
from vid2reward.agent.engines.numeric_engineer import (
    CandidatePlan,
    NumericEngineer,
    Observation,
    Proposal,
)
from vid2reward.agent.engines.reward_terms import fallback_program, write_program
from vid2reward.agent.messages import EditAudit, VisualFeedback
from vid2reward.sim.envs import get_spec


class OfflineCritic:
    """The FeatureCritic playing the critic's role.

    It holds a FeatureCritic rather than extending it: the Critic interface takes views
    (expert, candidate), FeatureCritic takes feature vectors, and one method name cannot mean
    both (a subclass that narrows ``critique`` breaks every caller typed against the parent).

    Args:
        scales: per-feature scales overriding the vocabulary's (see FeatureCritic).
        weights: per-feature importance multipliers (see FeatureCritic).
    """

    def __init__(self, scales: Mapping[str, float] | None = None,
                 weights: Mapping[str, float] | None = None) -> None:
        self.features = FeatureCritic(scales, weights)
        """The feature-vector critic."""

    def bind_context(self, ctx: EventSink) -> None:
        """Nothing to report beyond the messages the graph logs: computed, not called."""

    def describe_expert(self, expert: ExpertView) -> str:
        """The expert's features as sentences (the first line is a one-line summary)."""
        lines = ["The expert, as measured from its pixels:"]
        for name, value in expert.features.items():
            unit = expert.units.get(name, "")
            lines.append(f"- {name}: {value:.3g} {unit}".rstrip())
        return "\n".join(lines)

    def critique(self, expert: ExpertView, candidate: CandidateView, *, feedback_id: str,
                 iteration: int) -> VisualFeedback:
        """FeatureCritic.critique on the two feature vectors."""
        return self.features.critique(expert.features, candidate.features, feedback_id=feedback_id,
                                      iteration=iteration, candidate_id=candidate.id,
                                      units=expert.units, falls=candidate.falls)


class OfflineEngineer:
    """The NumericEngineer playing the engineer's role: programs are written from the term
    library, and each candidate's plan (terms and WEIGHTS) is kept with it in the run record."""

    def __init__(self, env_id: str, seed: int = 0) -> None:
        self.numeric = NumericEngineer(get_spec(env_id), seed=seed)

    def bind_context(self, ctx: EventSink) -> None:
        """Nothing to report beyond the messages the graph logs: computed, not called."""

    def draft(self, brief: EngineerBrief) -> EngineerAnswer:
        """Iteration 1: the default terms with targets guessed from the expert's features."""
        features = brief.expert.features if brief.expert else {}
        return self._answer(self.numeric.draft(features, brief.candidates), 1)

    def repair(self, brief: EngineerBrief, source: str, report: str) -> str:
        """Programs written from the library pass their tests; fall back to the default terms."""
        return fallback_program("repair")

    def propose(self, brief: EngineerBrief, feedback: VisualFeedback | None,
                audits: list[EditAudit]) -> EngineerAnswer:
        """Step the weights against the gradient ``feedback`` states, shorter when ``audits``
        say the last step moved the learner away from the expert (or, without a video critic,
        explore around the best program by its own training return)."""
        observations = [Observation(candidate_id=c.id, iteration=c.iteration,
                                    plan=CandidatePlan(**c.plan),
                                    features=c.features,
                                    score=c.score)
                        for c in brief.history if c.plan is not None]
        run_best: list[float] = []
        for it in sorted({o.iteration for o in observations}):
            top = max(o.score for o in observations if o.iteration <= it)
            run_best.append(top)
        if feedback is None or not any(d.scale is not None for d in feedback.deltas):
            proposal = self.numeric.explore(observations, brief.iteration + 1, brief.candidates,
                                            run_best)
        else:
            calibrated = brief.calibrated_values()
            proposal = self.numeric.propose(observations, feedback, brief.iteration + 1,
                                            brief.candidates, run_best, audits, calibrated)
        return self._answer(proposal, brief.iteration + 1)

    def final_program(self, brief: EngineerBrief, winner: CandidateView,
                      feedback: VisualFeedback | None) -> ProgramDraft | None:
        """The winner with the targets the run's last calibration measured (a winner from an
        early iteration was written before the learner clips could read the expert in
        physical units), and a term for a feature ``feedback`` still finds far off whose only
        levers those targets pin (see ``NumericEngineer.calibrated_plan``); None when it has
        no plan or nothing changes."""
        if winner.plan is None:
            return None
        covered = {str(fit.get("feature")) for fit in brief.calibrated.values()}
        update = self.numeric.calibrated_plan(CandidatePlan(**winner.plan), brief.calibrated_values(),
                                              feedback, covered)
        if update is None:
            return None
        plan, edits = update
        changes = "; ".join(f"{e.component} {e.old_value:.3g} -> {e.new_value:.3g}"
                            for e in edits if e.op == "reweight")
        added = [f"{e.component} (weight {plan.weights[e.component]:.3g}) for {e.addresses[0]}"
                 for e in edits if e.op == "add"]
        parts = ([f"the targets of the run's last calibration ({changes})"] if changes else []) + \
                ([f"a term the calibration left no lever for: {', '.join(added)}"] if added else [])
        header = (f"Reward program by vid2reward's offline engineer: {winner.id}'s, with "
                  f"{'; and '.join(parts)}.")
        return ProgramDraft(source=write_program(plan.terms, plan.weights, header),
                            plan={"terms": plan.terms, "weights": plan.weights}, summary=header)

    @staticmethod
    def _answer(proposal: Proposal, iteration: int) -> EngineerAnswer:
        programs = []
        for index, plan in enumerate(proposal.candidates):
            header = (f"Reward program by vid2reward's offline engineer: iteration {iteration}, "
                      f"candidate {index}" + (" (the chain-rule step)." if index == 0 else
                                              " (a perturbation, to measure the response)."))
            programs.append(ProgramDraft(source=write_program(plan.terms, plan.weights, header),
                                         plan={"terms": plan.terms, "weights": plan.weights}))
        return EngineerAnswer(edits=proposal.edits, programs=programs, notes=proposal.notes)


__all__ = ["OfflineCritic", "OfflineEngineer", "PHRASES"]
