"""Reading URL query parameters without ever crashing a page.

Every page is reproducible from its URL (deep links). Values arrive as
untrusted strings; these helpers turn them into checked values, or a default
plus a message saying what was wrong, which the page shows with ``st.warning``.
Each ``*_param`` reads ``?name=`` and hands the text to its ``parse_*``, a pure
function (tested directly with every kind of hostile text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

MAX_PARAM_CHARS = 64
#: ASCII digits only (``int`` would also take ``1_000`` and other scripts' digits), short enough to parse cheaply.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,64}")


@dataclass(frozen=True)
class Param:
    value: object
    problem: str | None = None


def _shown(raw: str) -> str:
    clipped = raw[:MAX_PARAM_CHARS] + ("…" if len(raw) > MAX_PARAM_CHARS else "")
    return repr(clipped)


def int_param(name: str, low: int, high: int, default: int | None) -> Param:
    """An integer in ``[low, high]`` from ``?name=``; out-of-range or junk gives the default and a message."""
    return parse_int(name, st.query_params.get(name), low, high, default)


def parse_int(name: str, raw: str | None, low: int, high: int, default: int | None) -> Param:
    """``int_param`` of the text ``raw`` (``None``: absent)."""
    if raw is None or raw == "":
        return Param(default)
    if not _WHOLE_NUMBER.fullmatch(raw.strip()):
        return Param(default, f"`{name}` must be a whole number; got {_shown(raw)}. Showing the default instead.")
    value = int(raw.strip())
    if not low <= value <= high:
        return Param(default, f"`{name}`={value} is out of range ({low}–{high}). Showing the default instead.")
    return Param(value)


def choice_param(name: str, choices: list[str], default: str | None) -> Param:
    """One of ``choices`` from ``?name=``; anything else gives the default and a message."""
    return parse_choice(name, st.query_params.get(name), choices, default)


def parse_choice(name: str, raw: str | None, choices: list[str], default: str | None) -> Param:
    """``choice_param`` of the text ``raw`` (``None``: absent)."""
    if raw is None or raw == "":
        return Param(default)
    if raw in choices:
        return Param(raw)
    listed = ", ".join(choices[:12]) + ("…" if len(choices) > 12 else "")
    return Param(default, f"Unknown `{name}` {_shown(raw)}; choose one of: {listed}. Showing the default instead.")


def rename_param(old: str, new: str) -> None:
    """Read ``?old=`` as ``?new=`` (a parameter's earlier name, which old links carry); ``new`` wins if both."""
    if old in st.query_params:
        value = st.query_params.pop(old)
        if new not in st.query_params:
            st.query_params[new] = value


def set_params(**values: object) -> None:
    """Write values into the URL (``None`` removes a key) so the view can be shared."""
    for key, value in values.items():
        if value is None:
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)


def float_param(name: str, default: float | None, low: float = -1e12, high: float = 1e12) -> Param:
    """A finite number in ``[low, high]`` from ``?name=``; junk gives the default and a message."""
    return parse_float(name, st.query_params.get(name), default, low, high)


def parse_float(name: str, raw: str | None, default: float | None, low: float = -1e12, high: float = 1e12) -> Param:
    """``float_param`` of the text ``raw`` (``None``: absent)."""
    if raw is None or raw == "":
        return Param(default)
    try:
        value = float(raw.strip()) if len(raw) <= 32 else None
    except ValueError:
        value = None
    if value is None or not (low <= value <= high):  # also refuses nan and inf
        return Param(default, f"`{name}` must be a number between {low:g} and {high:g}; got {_shown(raw)}. "
                              "Showing the default instead.")
    return Param(value)


def position_param(name: str, size: int) -> Param:
    """A map cell ``(row, col)``, both in ``[0, size)``, from ``?name=R,C`` (absent: ``None``); junk gives
    ``None`` and a message."""
    return parse_position(name, st.query_params.get(name), size)


def parse_position(name: str, raw: str | None, size: int) -> Param:
    """``position_param`` of the text ``raw`` (``None``: absent)."""
    if raw is None or raw == "":
        return Param(None)
    parts = raw.split(",") if len(raw) <= 16 else []
    try:
        row, col = (int(part.strip()) for part in parts)
    except ValueError:
        return Param(None, f"`{name}` must be a row and a column, like `{name}=4,7`; got {_shown(raw)}. "
                           "Showing the channel at its maximum instead.")
    if not (0 <= row < size and 0 <= col < size):
        return Param(None, f"`{name}`={row},{col} is outside the {size}x{size} map (rows and columns 0–{size - 1}). "
                           "Showing the channel at its maximum instead.")
    return Param((row, col))
