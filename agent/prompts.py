"""Prompt templates: one text file per prompt in ``vid2reward/prompts/``, rendered strictly.

A template file starts with a header of ``#`` lines that names the prompt and lists its
variables, ends the header with a ``---`` line, and writes variables as ``$name`` or ``${name}``
(``$$`` is a literal dollar; braces need no escaping, so JSON and Python read as they are):

    # critic_describe: the critic's first look at the expert video
    # variables: task, feature_table
    ---
    Here is the expert ... $feature_table

:func:`render` raises :class:`PromptError` when a declared variable is not given, when a
variable is given that the template does not declare, or when the body uses a name the header
does not list: a prompt never goes out with a hole or a stray ``$name`` in it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PROMPT_PACKAGE = "vid2reward.prompts"
HEADER_END = "---"


class PromptError(ValueError):
    """A template that is missing, malformed, or rendered with the wrong variables (a bug)."""


@dataclass(frozen=True)
class PromptTemplate:
    """One parsed template file."""

    name: str
    summary: str
    """The header's first line: what the prompt is for."""
    variables: frozenset[str]
    """The variables the header declares."""
    body: string.Template

    def render(self, **variables: Any) -> str:
        """The body with every variable substituted (values are turned into text)."""
        missing = self.variables - variables.keys()
        extra = variables.keys() - self.variables
        if missing or extra:
            raise PromptError(f"prompt '{self.name}': missing {sorted(missing)}, "
                              f"undeclared {sorted(extra)}")
        return self.body.substitute({k: str(v) for k, v in variables.items()})


def prompt_names() -> list[str]:
    """Every template shipped in the prompts package (file names without ``.txt``)."""
    files = resources.files(PROMPT_PACKAGE).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".txt"))


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Parse ``prompts/<name>.txt`` and check that its header and body agree."""
    path = resources.files(PROMPT_PACKAGE) / f"{name}.txt"
    if not path.is_file():
        raise PromptError(f"no prompt template '{name}' (looked for {name}.txt in {PROMPT_PACKAGE})")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    try:
        end = next(i for i, line in enumerate(lines) if line.strip() == HEADER_END)
    except StopIteration:
        raise PromptError(f"prompt '{name}': no '{HEADER_END}' line ends the header") from None
    header = [line.strip().lstrip("#").strip() for line in lines[:end]]
    if not header or any(not line.startswith("#") for line in lines[:end]):
        raise PromptError(f"prompt '{name}': the header must be '#' lines")
    declared = next((h.split(":", 1)[1] for h in header if h.startswith("variables:")), None)
    if declared is None:
        raise PromptError(f"prompt '{name}': the header has no 'variables:' line")
    variables = frozenset(v.strip() for v in declared.split(",") if v.strip() and v.strip() != "none")
    body = string.Template("".join(lines[end + 1:]))
    if not body.is_valid():
        raise PromptError(f"prompt '{name}': a '$' that starts no variable (write '$$' for a dollar)")
    used = set(body.get_identifiers())
    if used != variables:
        raise PromptError(f"prompt '{name}': the body uses {sorted(used)}, the header declares "
                          f"{sorted(variables)}")
    return PromptTemplate(name=name, summary=header[0], variables=variables, body=body)


def render(name: str, **variables: Any) -> str:
    """Render prompt ``name`` with exactly its declared variables (see the module docstring)."""
    return load_prompt(name).render(**variables)
