"""Static validation of reward-program source: the first gate for untrusted, LLM-written code.

:func:`find_violations` parses the source with :mod:`ast` (it never runs it) and returns every
broken rule with its line; :func:`check_reward_source` raises one :class:`RewardError` naming
them. The rules close the known ways out of a restricted Python namespace:

- imports only from ``math`` and ``numpy`` (and a few numpy submodules);
- no name or attribute starting with ``_`` (dunders like ``().__class__.__mro__``, and the
  state view's name-mangled internals such as ``s._StateView__tracker``), except a bare ``_``;
- no builtins that reach code, files or namespaces (``eval``, ``open``, ``getattr``, ``type``...);
- no numpy attributes that touch files, processes or raw memory (``np.load``, ``np.lib``,
  ``arr.ctypes``...), no ``.format``/``.format_map`` (format strings can read attributes),
  no frame and generator internals (``gi_frame``, ``f_globals``...);
- no function, generator, frame or traceback internals by any spelling (``func_globals``,
  ``gi_frame``, ``tb_next``...), no strings that look like private names (``"__builtins__"``
  as a subscript or a ``match`` mapping key), no object dtypes, no arrays over raw buffers
  (``np.ndarray(buffer=...)``, ``np.frombuffer``, ``.view``), no assignment to attributes;
- no classes, no ``async``, no bare ``except:`` or ``except BaseException`` (they would swallow
  the sandbox's time limit);
- ``compute_reward(s, a)`` defined at the top level; ``WEIGHTS``, if present, a literal dict of
  names to numbers that nothing changes afterwards; ``GAIT_CLOCK_HZ``, if present, one number
  literal of Hz at the top level that nothing changes; the source at most :data:`MAX_SOURCE_CHARS` characters.

The restricted builtins, the process limits and the OS isolation
(:mod:`vid2reward.tools.reward_isolation`) are the other gates, and the boundary that holds when
this allowlist leaks is the kernel's: this check is what turns most mistakes into precise
feedback.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from vid2reward.sim.errors import RewardError
from vid2reward.sim.gait_clock import CLOCK_NAME, clock_assignments, declared_clock_hz
from vid2reward.tools.reward_python import ALLOWED_IMPORTS

MAX_SOURCE_CHARS = 20_000
"""Longest accepted source. Reward programs are a page of code; this bounds parse cost."""


DENIED_NAMES = frozenset({
    # code execution and namespaces
    "exec", "eval", "compile", "globals", "locals", "vars", "dir", "help", "breakpoint",
    "input", "open", "exit", "quit", "memoryview", "id", "hash",
    # attribute access by string, and the type system (the root of most escapes)
    "getattr", "setattr", "delattr", "hasattr", "type", "object", "super", "classmethod",
    "staticmethod", "property", "issubclass",
    # exceptions that must never be caught or raised by a reward (they end the process)
    "BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit",
    # module handles, if they were ever reachable
    "os", "sys", "subprocess", "socket", "importlib", "builtins", "ctypes", "pickle", "shutil",
})
"""Names a reward program may not use at all (read, assign or call)."""

DENIED_ATTRIBUTES = frozenset({
    # format strings read attributes by name: "{0.__class__}".format(x)
    "format", "format_map",
    # numpy: files
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile",
    "tofile", "fromregex", "memmap", "open_memmap", "DataSource", "dump", "dumps", "mrecords",
    "fromtextfile", "openfile",
    # numpy: modules that reach files, processes, compilers or raw memory
    "lib", "ctypeslib", "ctypes", "distutils", "f2py", "testing", "os", "sys", "core",
    "show_config", "show_runtime", "get_include", "info", "lookfor", "seterrcall",
    # frames, code objects and tracebacks: a way back to unrestricted globals
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
    "ag_code", "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next",
    "with_traceback", "co_code", "co_consts",
    # generic introspection, and stdlib modules that some library module might re-export
    "mro", "cffi", "subprocess", "builtins", "importlib", "inspect", "gc", "types", "operator",
    "codecs", "tempfile", "io", "pathlib", "shutil", "socket", "pickle", "marshal", "signal",
    "resource", "threading", "multiprocessing", "platform", "fileinput",
    # stdlib modules numpy submodules re-export (np.ma.extras.warnings, ...): warnings can read
    # any file's lines through linecache (formatwarning), the rest are needless surface
    "warnings", "linecache", "formatwarning", "showwarning", "warn_explicit", "functools",
    "itertools", "abc", "re", "textwrap", "object", "ntypes", "numbers", "collections",
    # arrays over raw memory: with an object dtype, integers become object pointers (forged
    # objects); views and buffer-backed constructors are where such arrays come from
    "frombuffer", "fromstring", "from_dlpack", "ndarray", "recarray", "record", "rec",
    "chararray", "view", "getbuffer", "object_", "get_bit_generator",
    # numpy's process-wide settings, which the trusted code in the same process shares
    "seterr", "seterrobj", "setbufsize", "set_printoptions", "set_string_function",
    "attrgetter", "methodcaller", "itemgetter",
})
"""Attribute names a reward program may not read or write, on any object."""

DENIED_ATTRIBUTE_PREFIXES = ("func_", "gi_", "cr_", "ag_", "f_", "tb_", "co_", "im_")
"""Attribute prefixes of function, generator, coroutine, frame, traceback and code internals:
Cython functions expose their module globals as ``func_globals``, without underscores."""

DENIED_KEYWORDS = frozenset({"buffer", "buf", "offset", "strides"})
"""Keyword arguments that build arrays over raw memory (``np.ndarray(buffer=...)``)."""

WEIGHTS_READS = frozenset({"get", "items", "keys", "values", "copy"})
"""The only attributes a program may use on ``WEIGHTS``: it is read-only at run time."""

_OBJECT_DTYPE = re.compile(r"(^|[,\s])[|<>=]?O\d*($|[,\s])|^object_?$")

# Rule ids: stable short names that tests and agent tools can match on.
RULES = {
    "size": "source longer than the size limit",
    "syntax": "not valid Python",
    "import": "imports only from math and numpy",
    "private": "no names or attributes starting with '_'",
    "denied-name": "no builtins that reach code, files, types or namespaces",
    "denied-attribute": "no attributes that reach files, processes, frames or format strings",
    "class": "no class definitions",
    "async": "no async code",
    "broad-except": "no bare except or except BaseException",
    "signature": "compute_reward(s, a) defined once at the top level",
    "weights": "WEIGHTS, if present, a literal dict of names to numbers, never changed",
    "clock": "GAIT_CLOCK_HZ, if present, a number literal of Hz (the policy's gait clock)",
    "dunder-string": "no strings that look like private or dunder names ('__builtins__')",
    "object-dtype": "no object dtypes (arrays of Python objects)",
    "attribute-store": "no assignment to attributes (arrays' dtype, shape, strides...)",
    "raw-memory": "no arrays built over raw buffers (buffer=, offset=, strides=)",
}
"""Every rule :func:`find_violations` enforces, by id, with a one-line summary."""


@dataclass(frozen=True)
class Violation:
    """One broken rule at one place in the source."""

    line: int
    """1-based line number (0 for the whole file)."""
    rule: str
    """Rule id, a key of :data:`RULES`."""
    message: str
    """What is wrong there and how to fix it, one sentence."""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "source"
        return f"{where}: {self.message} (rule {self.rule})"


def find_violations(source: str) -> list[Violation]:
    """Every rule the source breaks, in line order; empty when it passes."""
    if len(source) > MAX_SOURCE_CHARS:
        return [Violation(0, "size", f"the source has {len(source)} characters, more than "
                                     f"{MAX_SOURCE_CHARS}; keep a reward program to one page")]
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [Violation(exc.lineno or 0, "syntax", f"syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [Violation(0, "syntax", f"cannot parse the source: {type(exc).__name__}")]
    found: list[Violation] = []
    for node in ast.walk(tree):  # iterative: deep nesting cannot overflow the checker's stack
        found.extend(_check_node(node))
    found.extend(_check_contract(tree))
    found.extend(_check_clock(tree, source))
    return sorted(set(found), key=lambda v: (v.line, v.rule, v.message))


def check_reward_source(source: str, name: str = "<reward>", *, show: int = 3) -> None:
    """Raise :class:`RewardError` listing (up to ``show``) violations; return when none.

    The message is one line: ``line 3: import of 'os' is not allowed ... (rule import); ...``.
    """
    found = find_violations(source)
    if not found:
        return
    text = "; ".join(str(v) for v in found[:show])
    more = f" (and {len(found) - show} more)" if len(found) > show else ""
    raise RewardError(f"reward program rejected: {text}{more}", where=name,
                      fix="rewrite the flagged lines: only math and numpy, plain functions, "
                          "no names starting with '_'")


def static_weights(source: str) -> dict[str, float]:
    """``WEIGHTS`` read from the source without running it ({} when absent).

    Raises:
        RewardError: ``WEIGHTS`` is not a literal dict of names to numbers.
    """
    tree = ast.parse(source)
    for node in tree.body:
        value = _weights_value(node)
        if value is not None:
            weights, problem = _literal_weights(value)
            if problem:
                raise RewardError(problem, fix='write e.g. WEIGHTS = {"forward": 1.0}')
            return weights
    return {}


# -- rules per node --------------------------------------------------------------------------

def _check_node(node: ast.AST) -> list[Violation]:
    line = getattr(node, "lineno", 0)
    out: list[Violation] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            out += _check_import(alias.name, line)
            out += _check_alias_name(alias.asname, line)
    elif isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        out += _check_import(module, line)
        for alias in node.names:
            if alias.name == "*":
                out.append(Violation(line, "import", f"'from {module} import *' hides which names "
                                                     "are used; import the names you need"))
            out += _check_name(alias.name, line)
            out += _check_attribute(alias.name, line)  # `from numpy import load` = `numpy.load`
            out += _check_alias_name(alias.asname, line)
    elif isinstance(node, ast.Name):
        out += _check_name(node.id, line)
    elif isinstance(node, ast.Attribute):
        out += _check_attribute(node.attr, line)
        if isinstance(node.ctx, ast.Store | ast.Del):
            out.append(Violation(line, "attribute-store", f"assigning to '.{node.attr}' is not "
                                                          "allowed; compute new values instead"))
    elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        out += _check_string(node.value, line)
    elif isinstance(node, ast.arg):
        out += _check_name(node.arg, line)
    elif isinstance(node, ast.keyword) and node.arg is not None:
        out += _check_name(node.arg, line)
        if node.arg in DENIED_KEYWORDS:
            out.append(Violation(line, "raw-memory", f"the keyword '{node.arg}=' builds arrays "
                                                     "over raw memory; use np.array(values)"))
    elif isinstance(node, ast.FunctionDef):
        out += _check_name(node.name, line)
    elif isinstance(node, ast.Global | ast.Nonlocal):
        for name in node.names:
            out += _check_name(name, line)
    elif isinstance(node, ast.ClassDef):
        out.append(Violation(line, "class", f"class '{node.name}' is not allowed; write plain "
                                            "functions and dicts"))
    elif isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith):
        out.append(Violation(line, "async", "async code is not allowed; compute_reward is a "
                                            "plain function"))
    elif isinstance(node, ast.ExceptHandler):
        out += _check_handler(node, line)
    elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
        out += _check_name(node.name, line)
    elif isinstance(node, ast.MatchMapping) and node.rest:
        out += _check_name(node.rest, line)
    elif isinstance(node, ast.MatchClass):
        out.append(Violation(line, "class", "class patterns in match statements are not "
                                            "allowed; compare values instead"))
    return out


def _check_import(module: str, line: int) -> list[Violation]:
    if module in ALLOWED_IMPORTS:
        return []
    return [Violation(line, "import", f"import of '{module}' is not allowed; a reward program "
                                      f"may import only {', '.join(sorted(ALLOWED_IMPORTS))}")]


def _check_alias_name(name: str | None, line: int) -> list[Violation]:
    return [] if name is None else _check_name(name, line)


def _check_name(name: str, line: int) -> list[Violation]:
    if name.startswith("_") and name != "_":
        return [Violation(line, "private", f"the name '{name}' starts with '_'; names starting "
                                           "with '_' reach interpreter internals, rename it")]
    if name in DENIED_NAMES:
        return [Violation(line, "denied-name", f"'{name}' is not allowed in a reward program; "
                                               "compute values from s and a with math and numpy")]
    return []


def _check_attribute(attr: str, line: int) -> list[Violation]:
    if attr.startswith("_"):
        return [Violation(line, "private", f"the attribute '.{attr}' starts with '_'; use the "
                                           "public names of s (see the env context)")]
    if attr in ("format", "format_map"):
        return [Violation(line, "denied-attribute", f"'.{attr}' is not allowed (format strings "
                                                    "can read attributes); use an f-string")]
    if attr in DENIED_ATTRIBUTES or attr.startswith(DENIED_ATTRIBUTE_PREFIXES):
        return [Violation(line, "denied-attribute", f"the attribute '.{attr}' is not allowed: it "
                                                    "reaches files, processes, raw memory or "
                                                    "interpreter internals")]
    return []


def _check_string(value: str | bytes, line: int) -> list[Violation]:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    shown = " ".join(text[:40].encode("unicode_escape").decode("ascii").split())
    if "__" in text or (text.startswith("_") and text != "_"):
        return [Violation(line, "dunder-string", f"the string '{shown}' looks like a private "
                                                 "name; a reward program has no use for "
                                                 "interpreter internals")]
    if _OBJECT_DTYPE.search(text):
        return [Violation(line, "object-dtype", f"the string '{shown}' names an object dtype; "
                                                "use float arrays")]
    return []


def _check_handler(node: ast.ExceptHandler, line: int) -> list[Violation]:
    caught = node.type
    names = [caught] if caught is None or not isinstance(caught, ast.Tuple) else caught.elts
    for name in names:
        if name is None or (isinstance(name, ast.Name) and name.id == "BaseException"):
            return [Violation(line, "broad-except", "a bare 'except:' (or 'except BaseException') "
                                                    "would swallow the sandbox's time limit; "
                                                    "catch specific errors such as "
                                                    "ZeroDivisionError")]
    return []


# -- the contract: compute_reward and WEIGHTS ---------------------------------------------------

def _check_contract(tree: ast.Module) -> list[Violation]:
    out: list[Violation] = []
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_reward"]
    if not defs:
        out.append(Violation(0, "signature", "no compute_reward(s, a) function at the top "
                                             "level; define `def compute_reward(s, a): return "
                                             "total, components`"))
    elif len(defs) > 1:
        out.append(Violation(defs[1].lineno, "signature", "compute_reward is defined more than "
                                                          "once; keep one definition"))
    for node in defs[:1]:
        args = node.args
        required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
        positional = len(args.posonlyargs) + len(args.args)
        kw_required = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                       if d is None]
        if required > 2 or positional < 2 or kw_required:
            out.append(Violation(node.lineno, "signature", "compute_reward must take exactly two "
                                                           "arguments: def compute_reward(s, a)"))
        if node.decorator_list:
            out.append(Violation(node.lineno, "signature", "compute_reward must not be decorated"))
    rebinds = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "compute_reward"
               and isinstance(n.ctx, ast.Store | ast.Del)]
    out += [Violation(n.lineno, "signature", "compute_reward is assigned to; define it once with "
                                             "def") for n in rebinds]
    weight_nodes = [n for n in tree.body if _weights_value(n) is not None]
    for n in weight_nodes[1:]:
        out.append(Violation(n.lineno, "weights", "WEIGHTS is assigned more than once; keep one "
                                                  "literal dict"))
    for n in weight_nodes[:1]:
        _, problem = _literal_weights(_weights_value(n))  # type: ignore[arg-type]
        if problem:
            out.append(Violation(n.lineno, "weights", problem))
    return out + _weights_changes(tree, weight_nodes[:1])


def _weights_changes(tree: ast.Module, definition: list[ast.stmt]) -> list[Violation]:
    """Every place that could change WEIGHTS after its one literal definition: metrics.json
    records the literal, so the weights in effect must be exactly those."""
    allowed = {id(t) for n in definition for t in ast.walk(n)
               if isinstance(t, ast.Name) and t.id == "WEIGHTS"}
    out = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        bound = _bound_names(node)
        changed = ((isinstance(node, ast.Name) and node.id == "WEIGHTS" and id(node) not in allowed
                    and isinstance(node.ctx, ast.Store | ast.Del)) or "WEIGHTS" in bound
                   or (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                       and node.value.id == "WEIGHTS" and isinstance(node.ctx, ast.Store | ast.Del))
                   or (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                       and node.value.id == "WEIGHTS" and node.attr not in WEIGHTS_READS))
        if changed:
            out.append(Violation(line, "weights", "WEIGHTS may only be read (WEIGHTS['x'], "
                                                  ".get, .items); change its literal instead"))
    return out


def _check_clock(tree: ast.Module, source: str) -> list[Violation]:
    """``GAIT_CLOCK_HZ``: one number literal at the top of the program, never changed. The
    observation's clock is read from that literal, so the reward's must be the same number."""
    definitions = clock_assignments(tree)
    allowed = {id(t) for n in definitions[:1]
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])}
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and node.id == CLOCK_NAME and id(node) not in allowed
                and isinstance(node.ctx, ast.Store | ast.Del)) or CLOCK_NAME in _bound_names(node):
            out.append(Violation(getattr(node, "lineno", 0), "clock",
                                 f"{CLOCK_NAME} is set once, as a number literal at the top of "
                                 f"the program; it may only be read (the policy's clock is "
                                 f"read from that literal)"))
    if definitions:
        try:
            declared_clock_hz(source)
        except RewardError as exc:
            out.append(Violation(definitions[0].lineno, "clock", exc.what))
    return out


def _bound_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Global | ast.Nonlocal):
        return set(node.names)
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {a.asname or a.name.partition(".")[0] for a in node.names}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.arg):
        return {node.arg}
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return {node.name}
    if isinstance(node, ast.MatchMapping) and node.rest:
        return {node.rest}
    return set()


def _weights_value(node: ast.stmt) -> ast.expr | None:
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "WEIGHTS"
                                            for t in node.targets):
        return node.value
    if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and node.target.id == "WEIGHTS"):
        return node.value
    return None


def _literal_weights(value: ast.expr | None) -> tuple[dict[str, float], str | None]:
    bad = 'WEIGHTS must be a literal dict of names to numbers, e.g. {"forward": 1.0}'
    if not isinstance(value, ast.Dict):
        return {}, bad
    try:
        weights = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {}, bad + " (values must be number literals, not expressions)"
    for key, number in weights.items():
        if not isinstance(key, str) or isinstance(number, bool) or not isinstance(number, int | float):
            return {}, bad + f" (entry {key!r} is not a name with a number)"
        try:
            finite = math.isfinite(float(number))
        except OverflowError:
            finite = False
        if not finite:
            return {}, bad + f" (entry {key!r} is not a finite float)"
    return {k: float(v) for k, v in weights.items()}, None
