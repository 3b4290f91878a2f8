"""Layers and units of a model: checked names and sizes, and the one way every analysis selects units.

A *unit* of a fully connected layer is one neuron (index into the layer's
outputs). A unit of a conv layer is a channel; where a single number per image
is needed it is the channel at one position of its map (``(row, col)``), and
"the channel" alone means the channel at the position of its maximum on that
image, as in ``mechmnistic.analysis.activations``.

Selecting units. A *unit spec* is any of

* an integer: ``5``
* a sequence, range, slice or integer array: ``[3, 7]``, ``range(10)``, ``slice(0, 10)``
* a string of comma-separated items, each an index (``"5"``), an inclusive
  range (``"10-20"``), ``"all"``, or a *group name* (``"dead"``, ``"above"``,
  ``"my-group"``): ``"dead,3,10-12"``

and resolves, with ``select_units(spec, n_units, groups)`` (or
``resolve_units(model, layer, spec, groups)``), to a sorted int64 array of
distinct unit indices. Groups are a plain mapping from names to index arrays:
the layer's standard groups (``standard_groups``: ``all``, ``dead``,
``alive``), groups derived from a hypothesis (``hypothesis.derive_unit_groups``),
or groups a user typed in (``parse_groups``). Out-of-range indices and unknown
group names raise ``UnitError`` saying what is allowed.

A set of groups is written as text (for URLs, the CLI and downloads) as
``"dead:0-3,9;above:4,5;below:6-8"`` (``format_groups`` / ``parse_groups``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..models.architectures import MNISTNet
from ..models.layout import UnitError
from .activations import layer_activations

UnitSpec = int | str | Sequence[int] | range | slice | np.ndarray
Groups = Mapping[str, np.ndarray]

_INDEX = re.compile(r"^\d+$")
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
#: A group name starts with a letter and may hold letters, digits, '_', '-', '.'
#: (``anti-1``), so it can never be read as an index or a range.
_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,39}$")
MAX_SPEC_CHARS = 4000


def check_units(model: MNISTNet, layer: str, units: np.ndarray | list[int] | int | None) -> np.ndarray:
    """``units`` as int64 ``[U]`` (``None``: every unit of the layer), checked against the layer's size."""
    count = model.layout[layer].n_units
    if units is None:
        return np.arange(count, dtype=np.int64)
    array = np.atleast_1d(np.asarray(units))
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise UnitError(f"units must be a list of integer indices, got {units!r}")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= count)]
    if bad.size:
        raise UnitError(f"{layer} has units 0..{count - 1}; got {bad[:5].tolist()}")
    return array


def check_positions(model: MNISTNet, layer: str, positions: np.ndarray | None, count: int) -> np.ndarray | None:
    """``positions`` (``(row, col)`` per unit) as int64 ``[count, 2]``, checked against the conv map."""
    if positions is None:
        return None
    unit_layer = model.layout[layer]
    if not unit_layer.is_conv:
        raise UnitError(f"{layer} is fully connected: its units have no positions")
    array = np.asarray(positions)
    if array.shape == (2,):
        array = np.broadcast_to(array, (count, 2))
    if array.shape != (count, 2) or not np.issubdtype(array.dtype, np.integer):
        raise UnitError(f"positions must be integer (row, col) pairs, one per unit ({count}), got shape {array.shape}")
    size = unit_layer.map_side
    if np.any((array < 0) | (array >= size)):
        raise UnitError(f"{layer}'s map is {size}x{size}: rows and columns run 0..{size - 1}")
    return array.astype(np.int64)


# -- selecting units by spec or group ------------------------------------------------------------


def select_units(spec: UnitSpec, n_units: int, groups: Groups | None = None) -> np.ndarray:
    """Resolve ``spec`` (see the module docstring) to sorted distinct indices, int64 ``[K]``."""
    groups = groups or {}
    if isinstance(spec, str):
        parts = _split_items(spec)
        chosen = [_resolve_item(item, n_units, groups) for item in parts]
        return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    if isinstance(spec, slice):
        return np.unique(np.arange(n_units, dtype=np.int64)[spec])
    if isinstance(spec, bool):
        raise UnitError("a unit spec cannot be True/False")
    array = np.atleast_1d(np.asarray(spec))
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise UnitError(f"unit indices must be integers, got {array.dtype}")
    return _checked(array.astype(np.int64), n_units)


def _split_items(spec: str) -> list[str]:
    if len(spec) > MAX_SPEC_CHARS:
        raise UnitError(f"unit spec is too long ({len(spec)} characters)")
    items = [item.strip() for item in spec.split(",")]
    if not any(items):
        raise UnitError("no units given: use e.g. '5', '3,7', '10-20', 'all' or a group name")
    if "" in items:
        raise UnitError(f"empty item in unit spec {spec!r}")
    return items


def _resolve_item(item: str, n_units: int, groups: Groups) -> np.ndarray:
    if _INDEX.match(item):
        return _checked(np.array([int(item)]), n_units)
    match = _RANGE.match(item)
    if match:
        start, stop = int(match.group(1)), int(match.group(2))
        if start > stop:
            raise UnitError(f"range {item!r} runs backwards; write it as {stop}-{start}")
        return _checked(np.arange(start, stop + 1), n_units)
    if item == "all":
        return np.arange(n_units, dtype=np.int64)
    if item in groups:
        return _checked(np.asarray(groups[item], dtype=np.int64).reshape(-1), n_units)
    known = ", ".join(["all", *groups]) if groups else "all"
    raise UnitError(f"unknown unit group {item!r}; known groups: {known} (or indices like 3,7 or 10-20)")


def _checked(indices: np.ndarray, n_units: int) -> np.ndarray:
    bad = indices[(indices < 0) | (indices >= n_units)]
    if bad.size:
        raise UnitError(f"unit {int(bad[0])} is out of range: this layer has units 0..{n_units - 1}")
    return np.unique(indices)


def resolve_units(model: MNISTNet, layer: str, spec: UnitSpec, groups: Groups | None = None) -> np.ndarray:
    """``select_units`` for a model's layer, with its standard groups (``layer_groups``) available by name.

    The standard groups are computed (from cached training-set activations)
    only when the spec names a group that ``groups`` does not hold.
    """
    count = model.layout[layer].n_units
    groups = dict(groups or {})
    if isinstance(spec, str):
        names = {item.strip() for item in spec.split(",")} - {"all"}
        if any(name not in groups and not _INDEX.match(name) and not _RANGE.match(name) for name in names):
            groups = {**standard_groups(model, layer), **groups}
    return select_units(spec, count, groups)


def standard_groups(model: MNISTNet, layer: str) -> dict[str, np.ndarray]:
    """``layer_groups`` of ``layer`` from its activations over the training set (cached on disk)."""
    return layer_groups(layer_activations(model, layer, "train").values)


def dead_units(values: np.ndarray) -> np.ndarray:
    """Units that never fire: activation ``<= 0`` on every row of ``values`` (float ``[N, U]``), int64 ``[K]``."""
    return np.flatnonzero(np.asarray(values).max(axis=0) <= 0).astype(np.int64)


def layer_groups(values: np.ndarray) -> dict[str, np.ndarray]:
    """The standard groups of a layer from its activations over the training set (float ``[N, U]``).

    ``all``; ``dead`` (never fires on these inputs); ``alive`` (everything else).
    """
    n_units = np.asarray(values).shape[1]
    dead = dead_units(values)
    return {
        "all": np.arange(n_units, dtype=np.int64),
        "dead": dead,
        "alive": np.setdiff1d(np.arange(n_units, dtype=np.int64), dead),
    }


def check_group_name(name: str) -> str:
    if not isinstance(name, str) or not _GROUP_NAME.match(name) or name == "all":
        raise UnitError(
            f"{str(name)[:40]!r} is not a valid group name: start with a letter; letters, digits, '_', '-', '.'; "
            "at most 40 characters; not 'all'"
        )
    return name


def compress_indices(indices: np.ndarray) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (the inverse of ``select_units`` on indices)."""
    values = np.unique(np.asarray(indices, dtype=np.int64))
    if values.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    runs = np.split(values, breaks)
    return ",".join(f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def format_groups(groups: Groups) -> str:
    """Groups as one line of text: ``"dead:0-3,9;above:4,5"`` (empty groups kept as ``"name:"``)."""
    return ";".join(f"{check_group_name(name)}:{compress_indices(idx)}" for name, idx in groups.items())


def parse_groups(text: str, n_units: int, base: Groups | None = None) -> dict[str, np.ndarray]:
    """Parse ``format_groups``' text into ``{name: indices}``.

    Each group's spec may use indices, ranges and the names of ``base`` groups
    (e.g. ``"silent:dead"``), but not other groups of the same text.
    """
    if len(text) > MAX_SPEC_CHARS:
        raise UnitError(f"group text is too long ({len(text)} characters)")
    groups: dict[str, np.ndarray] = {}
    for chunk in (c.strip() for c in text.split(";")):
        if not chunk:
            continue
        name, sep, spec = chunk.partition(":")
        if not sep:
            raise UnitError(f"{chunk[:40]!r} needs a ':' between the group name and its units, "
                                     "e.g. 'above:0-3,7'")
        name = check_group_name(name.strip())
        if name in groups:
            raise UnitError(f"group {name!r} is given twice")
        spec = spec.strip()
        groups[name] = select_units(spec, n_units, base) if spec else np.zeros(0, np.int64)
    return groups


def check_disjoint(groups: Groups) -> None:
    """Raise ``UnitError`` when a unit is in two groups (sums over groups would count it twice)."""
    seen: dict[int, str] = {}
    for name, indices in groups.items():
        for unit in np.asarray(indices, dtype=np.int64).tolist():
            if unit in seen:
                raise UnitError(f"unit {unit} is in both {seen[unit]!r} and {name!r}; groups must not overlap")
            seen[unit] = name
