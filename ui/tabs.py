"""Tabs whose open one is named in the URL by a short, stable slug, so that a page builds and draws only what
is on screen.

A ``Tab`` has a ``slug`` (``view=input``: what links carry, so it never
changes) and a ``label`` (what the tab shows, free to change). A link with a
tab's old label (``view=On+one+input``, as links made before slugs carry)
still opens that tab and the URL is rewritten to the slug. The page then builds
only the open tab's figures (each Plotly chart costs the browser about 0.1 s to
draw, and a page drawing a dozen at once took seconds to appear).

Streamlit's own ``bind="query-params"`` would put the label in the URL, so the
tabs track their state with a callback instead: a click writes the slug, and
the URL, read before the tabs are drawn, opens the tab it names (so a link or
``st.query_params`` change opens another tab as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from .params import choice_param, set_params


@dataclass(frozen=True)
class Tab:
    slug: str  #: in URLs: lowercase words joined by '-', never changed once links carry it
    label: str  #: on screen


def open_tab(tabs: Sequence[Tab], key: str) -> tuple[Tab, str | None]:
    """The tab ``?key=`` names (by slug, or by label for old links), else the first; and a message when the URL
    names none of them."""
    by_name = {tab.slug: tab for tab in tabs} | {tab.label: tab for tab in tabs}
    param = choice_param(key, list(by_name), tabs[0].slug)
    if param.problem:  # list the slugs only: they are what a link should carry
        param = choice_param(key, [tab.slug for tab in tabs], tabs[0].slug)
    return by_name[param.value], param.problem


def url_tabs(tabs: Sequence[Tab], key: str) -> dict[Tab, st.delta_generator.DeltaGenerator]:
    """One Streamlit tab per ``Tab``, the open one from ``?key=`` (default: the first), by ``Tab``.

    A name in the URL that is none of the tabs gets a message, like any bad
    parameter, and the first tab opens. The URL carries the open tab's slug,
    and nothing for the first. ``key`` is also the tabs' session-state key, which every
    page shares: it must differ between pages and from every other key. Use as
    ``if tabs[TAB].open: with tabs[TAB]: ...``.
    """
    by_label = {tab.label: tab for tab in tabs}
    chosen, problem = open_tab(tabs, key)
    if problem:
        st.warning(problem)
    _write(key, chosen, tabs[0])
    st.session_state[key] = chosen.label  # before the widget: the URL decides which tab is open
    containers = st.tabs([tab.label for tab in tabs], key=key, on_change=_clicked, args=(key, by_label, tabs[0]))
    return dict(zip(tabs, containers, strict=True))


def _clicked(key: str, by_label: dict[str, Tab], first: Tab) -> None:
    _write(key, by_label[st.session_state[key]], first)


def _write(key: str, tab: Tab, first: Tab) -> None:
    set_params(**{key: None if tab == first else tab.slug})
