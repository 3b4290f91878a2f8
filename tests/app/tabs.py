"""Opening one of the explorers' tabs in AppTest (they are bound to a URL parameter: ``ui.links``)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def open_tab(at: AppTest, key: str, tab: str, default: str) -> AppTest:
    """Open the tab labelled ``tab`` of the tabs bound to the URL parameter ``key`` (``default``: the first tab),
    as a click does: the URL names the tab, or, for the default one, leaves the parameter out.

    AppTest cannot click a tab, and within a session it ignores a URL naming the default tab; so that one
    is opened through session state, with the parameter gone from the URL as a click leaves it.
    """
    if tab == default:
        at.query_params.pop(key, None)
        at.session_state[key] = tab
    else:
        at.query_params[key] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[key] == tab
    return at
