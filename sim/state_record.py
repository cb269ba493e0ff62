"""The state view as numbers: what crosses from the simulator to the reward process.

Reward code never shares an address space with the physics. The simulator side reads the
fields a program uses from its :class:`~vid2reward.sim.state.StateView` and packs them into one
float64 row per step (:func:`encode`), laid out by a :class:`StateSchema` sent once; the reward
process rebuilds a read-only :class:`StateCopy` from each row, so ``compute_reward(s, a)`` reads
the same names, types and values as it would on the live view.

Which fields a program uses is read from its source (:func:`fields_read`): every attribute
name or string constant that names a field. Reward programs cannot compute attribute names
(``getattr`` is not among their builtins), so a field they read is always spelled out; a field
outside the record is an ``AttributeError`` in the reward process, never a hole.

Only numpy and the standard library: the reward process imports this module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_KINDS = ("float", "int", "bool", "array")


@dataclass(frozen=True)
class FieldSlot:
    """Where one field of the view sits in a row, and how to rebuild it."""

    name: str
    kind: str
    """float, int, bool or array for a value; for a dict, the kind of its values."""
    shape: tuple[int, ...]
    """The shape of an array value (of each value, for a dict of arrays); () otherwise."""
    keys: tuple[str, ...] | None
    """The keys, in row order, when the field is a dict; None when it is a single value."""
    offset: int
    """The field's first column in the row."""

    @property
    def item_size(self) -> int:
        return int(np.prod(self.shape)) if self.kind == "array" else 1

    @property
    def size(self) -> int:
        return self.item_size * (1 if self.keys is None else len(self.keys))


@dataclass(frozen=True)
class StateSchema:
    """The layout of a row: its fields in order, and the row's width."""

    fields: tuple[FieldSlot, ...]
    action_dtype: str = "float64"
    """The dtype the program receives ``a`` in (the env's action dtype, float32 for MuJoCo):
    actions cross as float64, and float32 -> float64 -> float32 is exact."""

    @property
    def width(self) -> int:
        return sum(f.size for f in self.fields)

    def to_json(self) -> dict[str, Any]:
        """The form sent in a SCHEMA message."""
        return {"action_dtype": self.action_dtype,
                "fields": [{"name": f.name, "kind": f.kind, "shape": list(f.shape),
                            "keys": None if f.keys is None else list(f.keys)}
                           for f in self.fields]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StateSchema:
        """The schema a SCHEMA message describes."""
        action_dtype = str(data["action_dtype"])
        if action_dtype not in ("float32", "float64"):
            raise ValueError(f"unknown action dtype {action_dtype!r}")
        slots, offset = [], 0
        for item in data["fields"]:
            if item["kind"] not in _KINDS:
                raise ValueError(f"unknown field kind {item['kind']!r}")
            keys = None if item["keys"] is None else tuple(str(k) for k in item["keys"])
            slot = FieldSlot(str(item["name"]), item["kind"], tuple(int(n) for n in item["shape"]),
                             keys, offset)
            slots.append(slot)
            offset += slot.size
        return cls(tuple(slots), action_dtype)


def _kind(value: Any) -> tuple[str, tuple[int, ...]]:
    if isinstance(value, bool | np.bool_):
        return "bool", ()
    if isinstance(value, int | np.integer):
        return "int", ()
    if isinstance(value, np.ndarray):
        return "array", tuple(value.shape)
    return "float", ()


def schema_for(values: Mapping[str, Any], action: Any = None) -> StateSchema:
    """The schema of one step's field values (``{name: value}`` read from a state view) and
    of its action."""
    slots, offset = [], 0
    for name, value in values.items():
        if isinstance(value, dict):
            keys = tuple(value)
            kind, shape = _kind(next(iter(value.values()))) if value else ("float", ())
            slot = FieldSlot(name, kind, shape, keys, offset)
        else:
            kind, shape = _kind(value)
            slot = FieldSlot(name, kind, shape, None, offset)
        slots.append(slot)
        offset += slot.size
    dtype = getattr(action, "dtype", None)
    return StateSchema(tuple(slots), "float32" if dtype == np.float32 else "float64")


def encode(values: Mapping[str, Any], schema: StateSchema, row: np.ndarray) -> None:
    """Write one step's field values into ``row`` (float64, ``schema.width`` long).

    Raises:
        ValueError: a value whose keys or shape differ from the schema's.
    """
    for f in schema.fields:
        value = values[f.name]
        if f.keys is None:
            if f.kind == "array":
                row[f.offset: f.offset + f.size] = np.asarray(value, dtype=np.float64).ravel()
            else:
                row[f.offset] = value
            continue
        if tuple(value) != f.keys:
            raise ValueError(f"the keys of s.{f.name} changed between steps")
        if f.kind == "array":
            if f.keys:
                row[f.offset: f.offset + f.size] = np.concatenate(
                    [np.asarray(v, dtype=np.float64).ravel() for v in value.values()])
        else:
            row[f.offset: f.offset + f.size] = list(value.values())


def _read_only(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = values.reshape(shape).copy()
    out.flags.writeable = False
    return out


def _item(kind: str, column: Any) -> Any:
    if kind == "bool":
        return bool(column)
    if kind == "int":
        return int(column)
    return float(column)


def decode(row: np.ndarray, schema: StateSchema) -> dict[str, Any]:
    """The field values one row holds, as the state view would give them (dicts fresh,
    arrays read-only copies)."""
    out: dict[str, Any] = {}
    for f in schema.fields:
        part = row[f.offset: f.offset + f.size]
        if f.keys is None:
            out[f.name] = _read_only(part, f.shape) if f.kind == "array" else _item(f.kind, part[0])
        elif f.kind == "array":
            n = f.item_size
            out[f.name] = {k: _read_only(part[i * n:(i + 1) * n], f.shape)
                           for i, k in enumerate(f.keys)}
        else:
            out[f.name] = {k: _item(f.kind, part[i]) for i, k in enumerate(f.keys)}
    return out


class StateCopy:
    """What ``compute_reward(s, a)`` receives as ``s`` in the reward process: the fields the
    program reads, copied out of the simulator; read-only, like the live view."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"the state view has no field '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the state view is read-only (tried to set '{name}')")

    def __repr__(self) -> str:
        return f"StateCopy(step={self._fields.get('step', '?')})"


def fields_read(source: str, field_names: Iterable[str]) -> list[str]:
    """The fields of ``field_names`` that ``source`` may read, in ``field_names``' order:
    those spelled as an attribute (``s.torso_height``) or a string constant anywhere in it.

    Raises:
        SyntaxError: the source does not parse (the static check reports that first).
    """
    spelled: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            spelled.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            spelled.add(node.value)
    return [name for name in field_names if name in spelled]
