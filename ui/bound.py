"""Widgets bound to a URL parameter: seeded from ``?name=``, written back on every run.

So every setting of a page is in its URL (a deep link reproduces the view) and
a bad value in a link falls back to the default with a warning, never a crash.

A widget follows the URL whenever the URL has changed since the widget last
wrote it: on a page's first run, and when a link, a click on a chart or a
callback moved the parameter (``st.query_params``) and re-ran the page. The
Neuron Explorer opens another unit that way, on whichever control it was
asked. Otherwise the widget keeps what the user set, and writes it.

``seed`` and ``write`` are the two halves, for a setting that several widgets
make up together (a conv channel's ``pos=R,C``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from .params import Param, choice_param, float_param, int_param, set_params

MAX_TEXT_CHARS = 2000
#: Session state: URL parameter -> the text a bound widget last wrote into it (``None``: left it out).
_WRITTEN = "_bound_written"


def url_moved(url: str) -> bool:
    """Whether ``?url=`` differs from what a bound widget last wrote there (a link or code changed it)."""
    written = st.session_state.get(_WRITTEN, {})
    return url in written and written[url] != st.query_params.get(url)


def seed(key: str, url: str, param: Param, valid: Callable[[Any], bool] | None = None) -> None:
    """Give widget ``key`` the URL's value ``param`` on its first run, when the URL moved, or when its value is
    no longer ``valid``; say ``param``'s problem, if any."""
    if param.problem:
        st.warning(param.problem)
    if key not in st.session_state or url_moved(url) or (valid is not None and not valid(st.session_state[key])):
        st.session_state[key] = param.value


def write(url: str, text: str | None) -> None:
    """Put a widget's value into ``?url=`` (``None``: leave it out) and remember it was the widget's."""
    set_params(**{url: text})
    st.session_state.setdefault(_WRITTEN, {})[url] = text


def _text(value: Any, default: Any, keep_default: bool) -> str | None:
    return None if value is None or (not keep_default and value == default) else str(value)


def select(container, label: str, options: Sequence[Any], key: str, url: str, default: Any,
           keep_default: bool = True, **kwargs) -> Any:
    """A selectbox over ``options`` (shown in the URL as ``str(option)``; with ``keep_default=False`` the
    default leaves the URL)."""
    by_text = {str(option): option for option in options}
    param = choice_param(url, list(by_text), str(default))
    seed(key, url, Param(by_text.get(param.value, default), param.problem), lambda value: value in options)
    value = container.selectbox(label, options, key=key, **kwargs)
    write(url, _text(value, default, keep_default))
    return value


def radio(container, label: str, options: Sequence[str], key: str, url: str, default: str, **kwargs) -> str:
    param = choice_param(url, list(options), default)
    seed(key, url, param, lambda value: value in options)
    value = container.radio(label, options, key=key, **kwargs)
    write(url, str(value))
    return value


def integer(container, label: str, low: int, high: int, key: str, url: str, default: int,
            keep_default: bool = True, **kwargs) -> int:
    param = int_param(url, low, high, default)
    seed(key, url, param, lambda value: value is not None and low <= value <= high)
    value = container.number_input(label, low, high, key=key, step=1, **kwargs)
    write(url, _text(int(value), default, keep_default))
    return int(value)


def slider(container, label: str, low: int, high: int, key: str, url: str, default: int, step: int = 1,
           keep_default: bool = True, **kwargs) -> int:
    """An integer slider (a link's value must be a whole number in ``[low, high]``)."""
    param = int_param(url, low, high, default)
    seed(key, url, param, lambda value: low <= value <= high)
    value = container.slider(label, low, high, key=key, step=step, **kwargs)
    write(url, _text(int(value), default, keep_default))
    return int(value)


def number(container, label: str, key: str, url: str, default: float | None, low: float | None = None,
           high: float | None = None, **kwargs) -> float | None:
    """A number input; ``None`` (empty) when the default is ``None`` and nothing was typed.

    ``low`` and ``high``, when given, bound both the link's value and the widget.
    """
    bounds = (low, high) if low is not None and high is not None else ()
    seed(key, url, float_param(url, default, *bounds))
    if bounds:
        kwargs = {"min_value": low, "max_value": high, **kwargs}
    value = container.number_input(label, key=key, **kwargs)
    write(url, None if value is None else f"{value:.6g}")
    return value


def text(container, label: str, key: str, url: str, default: str = "", max_chars: int = 200, **kwargs) -> str:
    raw = st.query_params.get(url)
    seed(key, url, Param(default if raw is None else raw[:max_chars]))
    value = container.text_input(label, key=key, max_chars=max_chars, **kwargs)
    write(url, value.strip() or None)
    return value


def flag(container, label: str, key: str, url: str, toggle: bool = False, **kwargs) -> bool:
    """A checkbox (or toggle) shown in the URL as ``name=1`` when on."""
    seed(key, url, Param(st.query_params.get(url) == "1"))
    value = (container.toggle if toggle else container.checkbox)(label, key=key, **kwargs)
    write(url, "1" if value else None)
    return bool(value)


def forget_on_model_change(page: str, model_name: str, bound: dict[str, str]) -> bool:
    """Clear ``bound`` (widget key -> URL parameter) when the sidebar's model is not the one this page last
    showed: a layer, unit or direction of one model means nothing, or something else, on another. Returns
    whether it did."""
    seen_key = f"{page}_model"
    changed = st.session_state.get(seen_key, model_name) != model_name
    if changed:
        for key, url in bound.items():
            st.session_state.pop(key, None)
            set_params(**{url: None})
    st.session_state[seen_key] = model_name
    return changed
