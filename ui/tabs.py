"""Tabs whose open one is named in the URL, so that a page builds and draws only what is on screen.

Streamlit's ``st.tabs(..., bind="query-params")`` keeps the open tab in
``?key=<label>`` and tells each tab whether it is open; the page then builds
only the open tab's figures (each Plotly chart costs the browser about 0.1 s
to draw, and a page drawing a dozen at once took seconds to appear).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from .params import choice_param


def url_tabs(labels: Sequence[str], key: str) -> dict[str, st.delta_generator.DeltaGenerator]:
    """One tab per label, the open one from ``?key=`` (default: the first), by label.

    A label in the URL that is not one of ``labels`` gets a message, like any
    bad parameter (Streamlit then opens the first tab and drops it from the URL).
    Use as ``if tabs[label].open: with tabs[label]: ...``.
    """
    problem = choice_param(key, list(labels), None).problem
    if problem:
        st.warning(problem)
    return dict(zip(labels, st.tabs(list(labels), key=key, bind="query-params"), strict=True))
