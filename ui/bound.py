"""Widgets bound to a URL parameter: seeded from ``?name=`` once per session, written back on every run.

So every setting of a page is in its URL (a deep link reproduces the view) and
a bad value in a link falls back to the default with a warning, never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from .params import Param, choice_param, float_param, int_param, set_params

MAX_TEXT_CHARS = 2000


def _seed(key: str, param: Param, valid: Sequence[Any] | None = None) -> None:
    if param.problem:
        st.warning(param.problem)
    if key not in st.session_state or (valid is not None and st.session_state[key] not in valid):
        st.session_state[key] = param.value


def select(container, label: str, options: Sequence[Any], key: str, url: str, default: Any, **kwargs) -> Any:
    """A selectbox over ``options`` (shown in the URL as ``str(option)``)."""
    by_text = {str(option): option for option in options}
    param = choice_param(url, list(by_text), str(default))
    _seed(key, Param(by_text[param.value], param.problem), options)
    value = container.selectbox(label, options, key=key, **kwargs)
    set_params(**{url: value})
    return value


def radio(container, label: str, options: Sequence[str], key: str, url: str, default: str, **kwargs) -> str:
    param = choice_param(url, list(options), default)
    _seed(key, param, options)
    value = container.radio(label, options, key=key, **kwargs)
    set_params(**{url: value})
    return value


def integer(container, label: str, low: int, high: int, key: str, url: str, default: int, **kwargs) -> int:
    param = int_param(url, low, high, default)
    _seed(key, param)
    value = container.number_input(label, low, high, key=key, step=1, **kwargs)
    set_params(**{url: value})
    return int(value)


def number(container, label: str, key: str, url: str, default: float | None, low: float | None = None,
           high: float | None = None, **kwargs) -> float | None:
    """A number input; ``None`` (empty) when the default is ``None`` and nothing was typed.

    ``low`` and ``high``, when given, bound both the link's value and the widget.
    """
    bounds = (low, high) if low is not None and high is not None else ()
    _seed(key, float_param(url, default, *bounds))
    if bounds:
        kwargs = {"min_value": low, "max_value": high, **kwargs}
    value = container.number_input(label, key=key, **kwargs)
    set_params(**{url: None if value is None else f"{value:.6g}"})
    return value


def text(container, label: str, key: str, url: str, default: str = "", max_chars: int = 200, **kwargs) -> str:
    raw = st.query_params.get(url)
    _seed(key, Param(default if raw is None else raw[:max_chars]))
    value = container.text_input(label, key=key, max_chars=max_chars, **kwargs)
    set_params(**{url: value.strip() or None})
    return value


def flag(container, label: str, key: str, url: str, toggle: bool = False, **kwargs) -> bool:
    """A checkbox (or toggle) shown in the URL as ``name=1`` when on."""
    _seed(key, Param(st.query_params.get(url) == "1"))
    value = (container.toggle if toggle else container.checkbox)(label, key=key, **kwargs)
    set_params(**{url: "1" if value else None})
    return bool(value)


def forget_on_model_change(page: str, model_name: str, bound: dict[str, str]) -> None:
    """Clear ``bound`` (widget key -> URL parameter) when the sidebar's model is not the one this page last
    showed: a layer, unit or direction of one model means nothing, or something else, on another."""
    seen_key = f"{page}_model"
    if st.session_state.get(seen_key, model_name) != model_name:
        for key, url in bound.items():
            st.session_state.pop(key, None)
            set_params(**{url: None})
    st.session_state[seen_key] = model_name
