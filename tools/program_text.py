"""The reward program in what a model wrote: markdown fences and prose taken off.

Real models wrap a program in a ```python fence (often with a sentence before and after) even
when asked for the bare source, and a fence taken as code fails on its first line. Every place
a model hands over a program (the engineer's answer, its repair, the ``edit_reward`` and
``test_reward`` tools) passes it through :func:`extract_program` first.
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(import |from |WEIGHTS\b|def |\"\"\"|'''|#|[A-Z_][A-Z0-9_]* *=)")


def extract_program(text: str) -> str:
    """The program in ``text``.

    - fenced: the fenced block that defines ``compute_reward`` (else the first ``python`` or
      unlabelled block), without the fence or the prose around it; an unclosed fence runs to
      the end;
    - not fenced but with prose around it: from the first line that starts code (``import``,
      ``def``, ``WEIGHTS``, a docstring or comment) to the last line that keeps it parsing;
    - already a program (or nothing recognisable): ``text`` unchanged, so the static check
      reports the real problem.
    """
    if "```" in text:
        blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
        code = [body for lang, body in blocks if lang in ("", "python", "py", "python3")]
        chosen = next((b for b in code if "def compute_reward" in b), None) or next(
            (b for _, b in blocks if "def compute_reward" in b), None) or (code[0] if code else None)
        if chosen is not None:
            return chosen.strip("\n") + "\n"
    if _parses(text) or "def compute_reward" not in text:
        return text
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if first is None:
        return text
    for last in range(len(lines), first, -1):  # drop trailing prose, one line at a time
        candidate = "\n".join(lines[first:last]) + "\n"
        if "def compute_reward" in candidate and _parses(candidate):
            return candidate.rstrip("\n") + "\n"
    return text


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True
