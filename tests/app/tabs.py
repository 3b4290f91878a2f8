"""Opening one of the pages' tabs in AppTest (they are bound to a URL parameter by their slug: ``ui.tabs``)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.tabs import Tab


def open_tab(at: AppTest, key: str, tab: Tab, default: Tab) -> AppTest:
    """Open ``tab`` of the tabs bound to the URL parameter ``key`` (``default``: the first tab), as a click
    does: the URL names the tab by its slug, or, for the default one, leaves the parameter out.

    AppTest cannot click a tab; the URL decides which tab is open on every run, so writing it is the click.
    """
    if tab == default:
        at.query_params.pop(key, None)
    else:
        at.query_params[key] = tab.slug
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[key] == tab.label
    return at
