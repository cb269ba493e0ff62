"""The runtime test of a reward program (``vid2reward reward test``): run it, measure it, warn.

:func:`run_reward_test` runs the program in a limited child process on a few hundred states
from a random-action and a zero-action rollout and returns a :class:`RewardTestReport`: whether
the total and the components are finite floats, whether the components add up to the total,
per-component mean/std/min/max, microseconds per call, and warnings that end with a remedy
(constant reward, a component dominating by 100x, NaN/inf, a component that never changes,
slow code). A program that cannot run at all (rejected source, an exception, a time or memory
limit) gives a report with ``ok = False`` and a one-line ``error``: this function raises only
for the caller's own mistakes (a missing file, an unknown env).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.reward import (
    MAX_COMPONENT_NAME,
    MAX_COMPONENTS,
    RewardError,
    check_component_names,
    one_line,
    read_reward_source,
)
from vid2reward.sim.state import StateTracker
from vid2reward.tools.reward_check import find_violations
from vid2reward.tools.reward_client import ProgramFailed, close_process
from vid2reward.tools.reward_isolation import require_isolation, trusted_by_user
from vid2reward.tools.reward_sandbox import (
    DEFAULT_LIMITS,
    SandboxLimits,
    load_sandboxed,
    run_in_sandbox,
)

DOMINANCE_RATIO = 100.0
"""A component whose mean |value| is this many times the next one's is said to dominate."""

TIME_BUDGET_SECONDS = 10.0
"""Total ``compute_reward`` time after which the test stops: the program is too slow to train."""


@dataclass
class SeriesStats:
    """Statistics of one reward component (or of the total) over the tested states."""

    name: str
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    mean_abs: float | None
    """Mean of the absolute value: the component's typical size."""
    nonfinite: int = 0
    """States on which the value was NaN or inf (excluded from the statistics)."""
    count: int = 0
    """States on which the value was present."""


@dataclass
class RewardTestReport:
    """What ``reward test`` found; ``to_dict()`` is the ``--json`` output."""

    name: str
    env_id: str
    ok: bool
    """True when the program ran on every state with finite float outputs (warnings allowed)."""
    error: str | None = None
    """The first problem that makes the program unusable for training, one line."""
    violations: list[str] = field(default_factory=list)
    """Static rule violations (each names its line and rule), when the source was rejected."""
    calls: int = 0
    """compute_reward calls made (states tested)."""
    total_is_float: bool = False
    total_finite: bool = False
    components_are_float: bool = False
    components_finite: bool = False
    sums_to_total: bool = False
    """The components add up to the total on every state (within 1e-6 relative)."""
    max_sum_gap: float | None = None
    total: SeriesStats | None = None
    components: list[SeriesStats] = field(default_factory=list)
    us_per_call: float | None = None
    """Mean wall time of one compute_reward call, microseconds."""
    us_per_call_max: float | None = None
    env_us_per_step: float | None = None
    """Mean wall time of one env step without the reward, microseconds (for scale)."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return asdict(self)


def run_reward_test(path_or_source: str | Path, env_id: str, *, name: str | None = None,
                    random_steps: int = 200, zero_steps: int = 100, seed: int = 0,
                    limits: SandboxLimits = DEFAULT_LIMITS,
                    trust: bool | None = None) -> RewardTestReport:
    """Test a reward program on ``random_steps`` random-action and ``zero_steps`` zero-action
    states of ``env_id``, in a sandboxed child process that the OS isolates.

    ``trust`` (default: the ``--trust-reward-code`` setting) allows running it unisolated
    where the OS cannot isolate.

    Raises:
        UserError: unknown env, a reward file that does not exist, or an OS that cannot
            isolate reward code without ``trust``.
    """
    get_spec(env_id)
    trust = trusted_by_user() if trust is None else trust
    require_isolation(trust)
    source, label = read_reward_source(path_or_source, name)
    violations = find_violations(source)
    if violations:
        return RewardTestReport(name=label, env_id=env_id, ok=False,
                                error=f"reward program rejected: {violations[0]}",
                                violations=[str(v) for v in violations])
    try:
        report = run_in_sandbox(_test_in_child, source, label, env_id, random_steps,
                                zero_steps, seed, limits, trust, limits=limits)
    except RewardError as exc:  # could not load, or the child was stopped or died
        return RewardTestReport(name=label, env_id=env_id, ok=False, error=one_line(str(exc)))
    return _checked(report, label, env_id)


def _checked(report: Any, name: str, env_id: str) -> RewardTestReport:
    """The child's report, trusted no further than its types: a child whose code escaped
    Python could send anything the safe unpickler allows."""
    def text(value: Any) -> str | None:
        return None if value is None else one_line(str(value))
    try:
        if not isinstance(report, RewardTestReport) or not isinstance(report.ok, bool):
            raise TypeError(type(report).__name__)
        comps = list(report.components)[:MAX_COMPONENTS]
        for c in [*comps, *([report.total] if report.total is not None else [])]:
            if not isinstance(c, SeriesStats):
                raise TypeError(type(c).__name__)
            c.name = one_line(str(c.name), MAX_COMPONENT_NAME)
        report.components = comps
        report.name, report.env_id = name, env_id
        report.error = text(report.error)
        report.violations = [one_line(str(v)) for v in list(report.violations)[:50]]
        report.warnings = [one_line(str(w)) for w in list(report.warnings)[:50]]
    except (TypeError, AttributeError) as exc:
        return RewardTestReport(name=name, env_id=env_id, ok=False,
                                error=f"the sandboxed test sent a malformed report ({exc})")
    return report


# -- in the child -------------------------------------------------------------------------------

class _Stop(Exception):
    """A fatal problem found at one state: ends the test with this message."""


def _test_in_child(source: str, name: str, env_id: str, random_steps: int, zero_steps: int,
                   seed: int, limits: SandboxLimits, trust: bool) -> RewardTestReport:
    env = make_env(env_id)  # trusted setup first: the isolated process cannot read model files
    tracker = StateTracker(env, get_spec(env_id))
    # its own reward process, under the same limits (memory, CPU, per-call time)
    program = load_sandboxed(source, name, limits.load_seconds, trust=trust, limits=limits)
    call_seconds = limits.call_seconds
    zero = np.zeros_like(env.action_space.sample(), dtype=np.float64)
    env.action_space.seed(seed)  # after the sample above: the same actions for the same seed
    rec = _Records()
    error = None
    try:
        for phase, steps in (("random", random_steps), ("zero", zero_steps)):
            env.reset(seed=seed + (phase == "zero"))
            tracker.reset()
            for i in range(steps):
                action = env.action_space.sample() if phase == "random" else zero.copy()
                where = f"{phase}-action state {i + 1}"
                started = time.perf_counter()
                tracker.before_step()
                _, _, terminated, truncated, _ = env.step(action)
                view = tracker.view(action, terminated)
                rec.env_seconds.append(time.perf_counter() - started)
                rec.add(_call(program, view, action, call_seconds, where), where)
                if sum(rec.call_seconds) > TIME_BUDGET_SECONDS:
                    raise _Stop(f"compute_reward is too slow: {len(rec.call_seconds)} calls took "
                                f"{sum(rec.call_seconds):.1f} s; training calls it millions of "
                                f"times")
                if terminated or truncated:
                    env.reset()
                    tracker.reset()
    except _Stop as exc:
        error = str(exc)
    finally:
        env.close()
        close_process(program)
    return rec.report(name, env_id, error)


def _call(program: Any, view: Any, action: np.ndarray, call_seconds: float,
          where: str) -> tuple[Any, float]:
    """One compute_reward call in the program's reward process: (result, seconds), the
    seconds the program itself took (timed there: the round trip is the harness's cost)."""
    try:
        started = time.perf_counter()
        result = program.compute(view, action)
        elapsed = time.perf_counter() - started
    except ProgramFailed as exc:
        failure = exc.failure
        if failure.code == "timeout":
            at = f" (interrupted on line {failure.line})" if failure.line else ""
            raise _Stop(f"compute_reward ran longer than {call_seconds:g} s on the {where}{at}; "
                        f"look for loops that never end or loops over huge ranges") from None
        if failure.code == "raised":
            kind, _, message = failure.text.partition(": ")
            at = f" on line {failure.line}" if failure.line else ""
            raise _Stop(one_line(f"compute_reward raised {kind}{at} on the {where}: "
                                 f"{message}")) from None
        raise _Stop(one_line(f"{failure.text} on the {where}")) from None
    own = getattr(program.compute, "last_seconds", None)
    return result, elapsed if own is None else own


@dataclass
class _Records:
    totals: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)
    gaps: list[float] = field(default_factory=list)
    call_seconds: list[float] = field(default_factory=list)
    env_seconds: list[float] = field(default_factory=list)
    first_nonfinite: dict[str, str] = field(default_factory=dict)
    key_sets: set[tuple[str, ...]] = field(default_factory=set)

    def add(self, call: tuple[Any, float], where: str) -> None:
        """Check one result's types (a bad type ends the test) and record its values."""
        result, seconds = call
        self.call_seconds.append(seconds)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise _Stop(f"compute_reward returned {type(result).__name__} on the {where}, not a "
                        f"tuple (total, components)")
        total = _number(result[0], "the total", where)
        components = result[1]
        if not isinstance(components, dict):
            raise _Stop(f"the components are {type(components).__name__} on the {where}, not a "
                        f"dict of name -> float")
        try:
            check_component_names(components, where)
        except RewardError as exc:
            raise _Stop(exc.what) from None
        values = {k: _number(v, f"component '{k}'", where) for k, v in components.items()}
        self.key_sets.add(tuple(sorted(values)))
        self.totals.append(total)
        for key, value in values.items():
            self.components.setdefault(key, []).append(value)
        for key, value in [("total", total), *values.items()]:
            if not math.isfinite(value):
                self.first_nonfinite.setdefault(key, where)
        if values and math.isfinite(total) and all(math.isfinite(v) for v in values.values()):
            self.gaps.append(abs(math.fsum(values.values()) - total) / max(1.0, abs(total)))

    def report(self, name: str, env_id: str, error: str | None) -> RewardTestReport:
        """The report over everything recorded so far."""
        total = _stats("total", self.totals)
        comps = [_stats(k, v) for k, v in sorted(self.components.items())]
        total_finite = total.nonfinite == 0 and total.count > 0
        comps_finite = all(c.nonfinite == 0 for c in comps)
        if error is None and not (total_finite and comps_finite):
            bad = [k for k in ("total", *sorted(self.components)) if k in self.first_nonfinite]
            error = (f"{_label(bad[0])} was NaN or inf (first on the "
                     f"{self.first_nonfinite[bad[0]]}); training stops at the first non-finite "
                     f"reward")
        report = RewardTestReport(
            name=name, env_id=env_id, ok=error is None, error=error, calls=len(self.totals),
            total_is_float=bool(self.totals), total_finite=total_finite,
            components_are_float=bool(self.totals), components_finite=comps_finite,
            sums_to_total=bool(self.gaps) and max(self.gaps) <= 1e-6,
            max_sum_gap=max(self.gaps) if self.gaps else None, total=total, components=comps,
            us_per_call=_mean_us(self.call_seconds),
            us_per_call_max=max(self.call_seconds) * 1e6 if self.call_seconds else None,
            env_us_per_step=_mean_us(self.env_seconds))
        report.warnings = _warnings(report, self)
        return report


def _label(key: str) -> str:
    return "the total" if key == "total" else f"component '{key}'"


def _number(value: Any, what: str, where: str) -> float:
    # bool is an int: accepted as a number, like the training wrapper does.
    try:
        return float(value)
    except OverflowError:
        raise _Stop(f"{what} is too large for a float on the {where}") from None
    except Exception:  # noqa: BLE001 - whatever the value's __float__ raises
        raise _Stop(f"{what} is {type(value).__name__} on the {where}, not a number") from None


def _stats(name: str, values: list[float]) -> SeriesStats:
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return SeriesStats(name, None, None, None, None, None, int(arr.size), int(arr.size))
    return SeriesStats(name, float(finite.mean()), float(finite.std()), float(finite.min()),
                       float(finite.max()), float(np.abs(finite).mean()),
                       int(arr.size - finite.size), int(arr.size))


def _mean_us(seconds: list[float]) -> float | None:
    return float(np.mean(seconds) * 1e6) if seconds else None


def _warnings(report: RewardTestReport, rec: _Records) -> list[str]:
    out: list[str] = []
    n = report.calls
    total = report.total
    if n > 1 and total is not None and total.min is not None and total.min == total.max:
        out.append(f"the total is the same ({total.min:g}) on all {n} states: it cannot tell "
                   f"good behaviour from bad; make it depend on the state s")
    for key, where in rec.first_nonfinite.items():
        stats = total if key == "total" else next(c for c in report.components if c.name == key)
        if stats is None:
            continue
        out.append(f"{_label(key)} was NaN or inf on {stats.nonfinite} of {stats.count} states (first on "
                   f"the {where}); guard divisions, logs and exponentials, e.g. "
                   f"max(x, 1e-6) or np.clip")
    sized = sorted((c for c in report.components if c.mean_abs), key=lambda c: -(c.mean_abs or 0))
    if len(sized) >= 2 and sized[0].mean_abs >= DOMINANCE_RATIO * sized[1].mean_abs:  # type: ignore[operator]
        big, nxt = sized[0], sized[1]
        out.append(f"component '{big.name}' dominates: its mean |value| {big.mean_abs:.3g} is "
                   f"{big.mean_abs / nxt.mean_abs:.0f}x that of the next, '{nxt.name}' "  # type: ignore[operator]
                   f"({nxt.mean_abs:.3g}); the others barely affect learning, rescale them "
                   f"with WEIGHTS")
    for c in report.components:
        if n > 1 and c.count == n and c.min is not None and c.min == c.max:
            out.append(f"component '{c.name}' never changed (always {c.min:g}) on these {n} "
                       f"states: a constant only shifts the reward; keep it only as an alive "
                       f"bonus in an env whose episodes end on a fall")
    if rec.gaps and max(rec.gaps) > 1e-6:
        out.append(f"the components do not add up to the total (relative gap up to "
                   f"{max(rec.gaps):.3g}); return every term of the total as a component")
    if n and not report.components:
        out.append("no components: return each term in the dict, e.g. {'forward': ..., "
                   "'ctrl': ...}, so the engineer can see what drives the reward")
    if len(rec.key_sets) > 1:
        out.append("the component names differ between calls; return the same keys every time "
                   "(use 0.0 for a term that does not apply)")
    if report.us_per_call and report.env_us_per_step and report.us_per_call > report.env_us_per_step:
        out.append(f"compute_reward takes {report.us_per_call:.0f} us per call, more than the env "
                   f"step itself ({report.env_us_per_step:.0f} us): training will be over 2x "
                   f"slower; read each value of s once and avoid Python loops")
    return out
