"""The agents' tools: thin LangChain wrappers over tools/ and sim/, written for the model.

Each wrapper's docstring is what the model reads. Results are bounded text; expected failures
(an edit that does not apply, a program that fails its test, an unknown candidate) come back as
text starting with ``error:`` and a way forward, never as exceptions; only our own bugs raise.

- the **engineer's** tools act on an :class:`EngineerWorkspace` (a working draft of the reward
  program plus the run's candidates): ``env_context``, ``read_reward``, ``edit_reward``,
  ``test_reward``, ``training_stats``, and ``probe_train`` when probes are allowed;
- the **critic's** tools read the measured pixel features: ``pixel_features`` and
  ``compare_clips``. The LLM critic puts the same tables (:func:`features_table`,
  :func:`comparison_table`) straight into its one request with the contact sheets, so a
  critic that can call no tools sees them too.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool, tool

from vid2reward.sim import env_context as sim_env_context
from vid2reward.sim.errors import UserError
from vid2reward.tools.feature_definitions import feature_scale
from vid2reward.tools.program_text import extract_program
from vid2reward.tools.reward_check import find_violations
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_versions import (
    CodeEdit,
    ReplaceAll,
    RewardStore,
    SearchReplace,
    UnifiedDiff,
    apply_edit,
    diff_sources,
    sha256_of,
)

MAX_RESULT_CHARS = 6000
"""Longest tool result sent back to the model (the rest is cut with a note)."""


def bounded(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}\n... ({len(text) - limit} more characters cut)"


def _error(exc: UserError) -> str:
    fix = getattr(exc, "fix", None)
    return f"error: {exc}" + (f". fix: {fix}" if fix else "")


# -- the engineer ----------------------------------------------------------------------------------

@dataclass
class CandidateFacts:
    """What the engineer's tools may say about one trained candidate: the agent fills it in
    from its run record, so these tools never open a run directory's files."""

    source: str
    """The candidate's reward program."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Its training statistics (``sim.train`` metrics: status, returns, components, curve)."""
    similarity: float | None = None
    features: dict[str, float] = field(default_factory=dict)
    """Pixel features of its clip."""
    units: dict[str, str] = field(default_factory=dict)


@dataclass
class EngineerWorkspace:
    """What the engineer's tools act on during one answer."""

    env_id: str
    store: RewardStore
    """Every version of the draft, by content hash."""
    candidates: dict[str, CandidateFacts] = field(default_factory=dict)
    """Candidate id (``iter-001/cand-00``) -> what is known about it."""
    draft: str = ""
    """The working draft's source ("" until the engineer writes one)."""
    probe_steps: int = 0
    """Largest probe training allowed (0: no ``probe_train`` tool)."""
    tests: int = 0
    """test_reward calls so far."""
    last_test_ok: bool | None = None
    """Whether the draft as it is now passed test_reward (None: not tested since the last edit)."""


def engineer_tools(ws: EngineerWorkspace) -> list[BaseTool]:
    """The engineer's tools, bound to ``ws``."""

    @tool(parse_docstring=True)
    def env_context() -> str:
        """The simulated body: every name on the state view `s` (meaning, unit, typical values)
        and the reward program contract."""
        return bounded(sim_env_context(ws.env_id), 12000)

    @tool(parse_docstring=True)
    def read_reward(version: str = "draft") -> str:
        """Read a reward program.

        Args:
            version: "draft" (your working draft), a candidate id like "iter-001/cand-00", or a
                version id (8+ hex digits) that edit_reward returned.
        """
        if version == "draft":
            return ws.draft or "error: there is no draft yet; write one with edit_reward(kind='replace_all')"
        if version in ws.candidates:
            return bounded(ws.candidates[version].source)
        try:
            return bounded(ws.store.get(version))
        except UserError as exc:
            return _error(exc) + f"; candidates: {', '.join(ws.candidates) or 'none'}"

    @tool(parse_docstring=True)
    def edit_reward(kind: Literal["replace_all", "search_replace", "unified_diff"],
                    source: str = "", search: str = "", replace: str = "", diff: str = "") -> str:
        """Edit the working draft; returns the new version id, the static check and the diff.

        Args:
            kind: "replace_all" (give source), "search_replace" (give search and replace: the
                search text must occur exactly once, whitespace included) or "unified_diff"
                (give diff, a `diff -u` patch against the draft).
            source: the complete new program (replace_all).
            search: the exact text to replace (search_replace).
            replace: the text to put in its place (search_replace).
            diff: the unified diff (unified_diff).
        """
        source = extract_program(source) if source else source  # a ```python fence is not code
        edit: CodeEdit = (ReplaceAll(source) if kind == "replace_all" else
                          SearchReplace(search, replace) if kind == "search_replace" else
                          UnifiedDiff(diff))
        if kind == "replace_all" and not source.strip():
            return "error: replace_all needs the complete program in `source`"
        try:
            new = apply_edit(ws.draft, edit)
        except UserError as exc:
            return _error(exc)
        version = ws.store.put(new, parent=sha256_of(ws.draft) if ws.draft else None, kind=kind)
        old, ws.draft, ws.last_test_ok = ws.draft, new, None
        violations = find_violations(new)
        check = ("static check: ok" if not violations else
                 "static check: REJECTED\n" + "\n".join(f"- {v}" for v in violations[:5]))
        changes = diff_sources(old, new, "draft (before)", "draft (after)") or "(no change)"
        return bounded(f"draft is now version {version.id} ({len(new.splitlines())} lines)\n"
                       f"{check}\n{bounded(changes, 2500)}")

    @tool(parse_docstring=True)
    def test_reward(source: str = "") -> str:
        """Run a reward program on a few hundred states of the env in a sandbox; returns JSON:
        ok, error, warnings (each with its remedy), and per-component mean/std/min/max.

        Args:
            source: a complete program to test; "" tests the working draft.
        """
        source = extract_program(source) if source else source
        program = source or ws.draft
        if not program.strip():
            return "error: there is no draft yet; write one with edit_reward(kind='replace_all')"
        if "\n" not in program.strip():  # a one-liner would be read as a file path
            return "error: give the complete program (several lines), or \"\" for the draft"
        ws.tests += 1
        report = run_reward_test(program, ws.env_id, name="draft" if not source else "source")
        if not source or source == ws.draft:
            ws.last_test_ok = report.ok
        return bounded(json.dumps(_compact_report(report.to_dict())))

    @tool(parse_docstring=True)
    def training_stats(candidate_id: str) -> str:
        """How a trained candidate did: status, returns, episode length, each reward
        component's per-step mean and share of the total, the learning curve, its weights,
        and (with a video critic) its similarity to the expert and pixel features.

        Args:
            candidate_id: e.g. "iter-001/cand-00".
        """
        facts = ws.candidates.get(candidate_id)
        if facts is None or not facts.metrics:
            return (f"error: no trained candidate '{candidate_id}'; known: "
                    f"{', '.join(ws.candidates) or 'none'}")
        return bounded(training_summary(facts.metrics, facts.similarity, facts.features, facts.units))

    tools: list[BaseTool] = [env_context, read_reward, edit_reward, test_reward, training_stats]
    if ws.probe_steps > 0:
        tools.append(_probe_tool(ws))
    return tools


def _probe_tool(ws: EngineerWorkspace) -> BaseTool:
    @tool(parse_docstring=True)
    def probe_train(steps: int) -> str:
        """Train PPO briefly on the working draft and report its training statistics (as
        training_stats does). Slow (about a minute per 10k steps): use it to check that a new
        term is learnable, not to compare candidates.

        Args:
            steps: PPO steps (capped by the run's probe limit).
        """
        from vid2reward.sim.train import TrainConfig
        from vid2reward.tools.reward_sandbox import sandboxed_program
        from vid2reward.tools.reward_training import train_sandboxed

        if not ws.draft.strip():
            return "error: there is no draft yet; write one with edit_reward(kind='replace_all')"
        steps = max(1024, min(int(steps), ws.probe_steps))
        config = TrainConfig(env_id=ws.env_id, total_steps=steps, n_envs=4, n_steps=256,
                             batch_size=256, n_workers=1)
        with tempfile.TemporaryDirectory(prefix="vid2reward-probe-") as tmp:
            try:
                program = sandboxed_program(ws.draft, "draft")
                result = train_sandboxed(config, program, Path(tmp) / "probe")
            except UserError as exc:
                return _error(exc)
            return bounded(f"probe of {steps} steps:\n" + training_summary(result.metrics))

    return probe_train


def _compact_report(report: dict[str, Any]) -> dict[str, Any]:
    """The test report without the fields a model does not need, numbers rounded."""
    keep = ("ok", "error", "violations", "warnings", "calls", "sums_to_total", "total",
            "components", "us_per_call", "env_us_per_step")
    return {k: _rounded(report[k]) for k in keep if report.get(k) not in (None, [])}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def training_summary(metrics: Mapping[str, Any], similarity: float | None = None,
                     features: Mapping[str, float] | None = None,
                     units: Mapping[str, str] | None = None) -> str:
    """A training's statistics (and, with a video critic, its clip's similarity and pixel
    features) as a short text report."""
    lines = [f"status: {metrics.get('status')}" + (f" ({metrics['failure']})" if metrics.get("failure") else ""),
             f"steps: {metrics.get('steps')}, episodes: {metrics.get('episodes')}",
             f"return under its own reward: {_num(metrics.get('return_mean'))}; env's own return: "
             f"{_num(metrics.get('env_return_mean'))}; episode length: {_num(metrics.get('episode_length_mean'))}",
             f"weights: {json.dumps(_rounded(metrics.get('weights') or {}))}",
             "components (per-step mean, episode mean +- std, share of the total):"]
    components = metrics.get("components") or {}
    for name, c in sorted(components.items(), key=lambda kv: -kv[1].get("share", 0.0)):
        lines.append(f"- {name}: {_num(c.get('per_step_mean'))} per step, "
                     f"{_num(c.get('episode_mean'))} +- {_num(c.get('episode_std'))} per episode, "
                     f"share {c.get('share', 0.0):.0%}")
    curve = metrics.get("curve") or []
    if curve:
        picks = [curve[i] for i in sorted({0, len(curve) // 2, len(curve) - 1})]
        lines.append("learning curve (steps: return / episode length): " + "; ".join(
            f"{int(p['steps'])}: {_num(p['return'])} / {_num(p['length'])}" for p in picks))
    if similarity is not None:
        lines.append(f"similarity to the expert: {similarity:.3f}")
    if features:
        lines.append("pixel features of its clip:\n" + features_table(features, units or {}))
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# -- the critic ------------------------------------------------------------------------------------

def feature_definitions_text() -> str:
    """Every pixel feature: name, unit and definition, one per line."""
    from vid2reward.tools.pixel_features import FEATURE_DEFINITIONS

    return "\n".join(f"- {d.name} ({d.unit}): {d.definition}" for d in FEATURE_DEFINITIONS.values())


def features_table(features: Mapping[str, float], units: Mapping[str, str]) -> str:
    """One line per feature: ``- name: value unit``."""
    return "\n".join(f"- {k}: {v:.4g} {units.get(k, '')}".rstrip() for k, v in features.items()) or "(none measured)"


def comparison_table(expert: Mapping[str, float], learner: Mapping[str, float],
                     units: Mapping[str, str]) -> str:
    """Expert and learner side by side, with the difference in units of a visible difference
    (:func:`feature_scale`, as the critic measures it; features only one clip has are listed
    as such)."""
    rows = ["| feature | expert | learner | learner - expert | in visible units | unit |",
            "|---|---|---|---|---|---|"]
    for name in list(expert) + [k for k in learner if k not in expert]:
        e, lr = expert.get(name), learner.get(name)
        if e is None or lr is None:
            rows.append(f"| {name} | {_num(e)} | {_num(lr)} | n/a | n/a | {units.get(name, '')} |")
            continue
        scale = feature_scale(name, e)
        rows.append(f"| {name} | {e:.4g} | {lr:.4g} | {lr - e:+.3g} | {(lr - e) / scale:+.2f} | "
                    f"{units.get(name, '')} |")
    return "\n".join(rows)


def critic_tools(expert: Mapping[str, float], units: Mapping[str, str],
                 candidates: Mapping[str, Mapping[str, float]]) -> list[BaseTool]:
    """The critic's tools over measured features: the expert's and each candidate clip's."""

    @tool(parse_docstring=True)
    def pixel_features(clip: str = "expert") -> str:
        """The behaviour features measured from a clip's pixels, with units.

        Args:
            clip: "expert" or a candidate id like "iter-001/cand-00".
        """
        if clip == "expert":
            return features_table(expert, units)
        if clip not in candidates:
            return f"error: no clip '{clip}'; known: expert, {', '.join(candidates) or 'no candidates'}"
        return features_table(candidates[clip], units)

    @tool(parse_docstring=True)
    def compare_clips(candidate_id: str) -> str:
        """The expert's and a candidate's features side by side, with each difference in units
        of a clearly visible difference (|x| >= 1 is large).

        Args:
            candidate_id: e.g. "iter-001/cand-00".
        """
        if candidate_id not in candidates:
            return f"error: no clip '{candidate_id}'; known: {', '.join(candidates) or 'none'}"
        return comparison_table(expert, candidates[candidate_id], units)

    return [pixel_features, compare_clips]
