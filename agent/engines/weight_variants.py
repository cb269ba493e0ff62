"""The other K-1 candidates of an LLM iteration: the engineer's program with one weight scaled.

The LLM engineer writes one program per iteration (candidate 0, the one its edits describe and
the next audit checks). The rest of the iteration's budget measures the response around it, as
the offline engineer does: candidate k scales one ``WEIGHTS`` entry up (x1.5) or down (/1.5),
the weights the edits touched first. That costs no tokens, keeps every candidate a valid
program (only numbers in a literal change), and tells the next iteration which weight moves
which feature. Eureka instead samples K independent programs; with K of 2-4 the perturbations
say more per training.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence

from vid2reward.tools.reward_check import static_weights

FACTOR = 1.5
"""How much one weight is scaled up (then down) in a variant."""


def weights_span(source: str) -> tuple[int, int] | None:
    """Character offsets of the top-level ``WEIGHTS = {...}`` dict literal (None if absent)."""
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "WEIGHTS" and isinstance(value, ast.Dict):
            assert value.end_lineno is not None and value.end_col_offset is not None
            return (_offset(lines, value.lineno, value.col_offset),
                    _offset(lines, value.end_lineno, value.end_col_offset))
    return None


def _offset(lines: list[str], lineno: int, byte_col: int) -> int:
    """The str offset of (1-based line, UTF-8 byte column), as ast reports positions."""
    return sum(len(line) for line in lines[:lineno - 1]) + len(lines[lineno - 1].encode()[:byte_col].decode())


def with_weights(source: str, weights: dict[str, float], comment: str = "") -> str:
    """``source`` with its WEIGHTS literal replaced by ``weights`` (and a comment line on top)."""
    span = weights_span(source)
    if span is None:
        raise ValueError("the program has no top-level WEIGHTS = {...} literal")
    literal = "{" + ", ".join(f"{json.dumps(k)}: {v!r}" for k, v in weights.items()) + "}"
    new = source[:span[0]] + literal + source[span[1]:]
    return (f"# {comment}\n" if comment else "") + new


def weight_variants(source: str, count: int, prefer: Sequence[str] = ()) -> list[tuple[str, dict[str, float]]]:
    """Up to ``count`` variants of ``source``: (variant source, {weight name: factor}).

    Variant i scales one non-zero weight by FACTOR (first pass over the weights) or 1/FACTOR
    (second pass), taking the names in ``prefer`` first. Fewer variants come back when the
    program has no non-zero weights, or fewer than ``count`` distinct ones to try.
    """
    try:
        weights = static_weights(source)
    except Exception:  # no parseable WEIGHTS literal: nothing to perturb
        return []
    names = [n for n in prefer if weights.get(n)] + [n for n in weights if weights[n] and n not in prefer]
    plan = [(n, f) for f in (FACTOR, 1 / FACTOR) for n in names][:count]
    variants = []
    for name, factor in plan:
        changed = {**weights, name: float(f"{weights[name] * factor:.6g}")}
        note = f"variant: WEIGHTS[{name!r}] x{factor:.3g}, to measure how that weight moves the behaviour"
        variants.append((with_weights(source, changed, note), {name: round(factor, 4)}))
    return variants
