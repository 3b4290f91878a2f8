"""The URL idiom every page shares, on a tiny page: controls bound to parameters (``ui.bound``) and tabs
named by slugs (``ui.tabs``)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def bound_page():
    import streamlit as st

    from ui import bound

    def move_the_url() -> None:  # what a click on a chart or a link on the same page does
        st.query_params["n"] = "7"

    number = bound.integer(st, "n", 0, 9, "n_key", "n", 3)
    kind = bound.select(st, "kind", ["a", "b", "c"], "kind_key", "kind", "a", keep_default=False)
    share = bound.slider(st, "share", 5, 95, "share_key", "share", 30, step=5)
    st.button("link", key="link", on_click=move_the_url)
    st.write(f"n={number} kind={kind} share={share}")


def _open(**params: str) -> AppTest:
    at = AppTest.from_function(bound_page, default_timeout=30)
    at.query_params.update(params)
    return at.run()


def _shown(at: AppTest) -> str:
    return at.markdown[-1].value


def test_a_link_seeds_the_controls_and_the_url_always_holds_them():
    at = _open(n="5", kind="c")
    assert not at.exception and not at.warning
    assert _shown(at) == "n=5 kind=c share=30"
    assert dict(at.query_params) == {"n": "5", "kind": "c", "share": "30"}


def test_a_default_can_stay_out_of_the_url():
    at = _open()
    assert _shown(at) == "n=3 kind=a share=30" and "kind" not in at.query_params and at.query_params["n"] == "3"
    at.selectbox(key="kind_key").set_value("b").run()
    assert at.query_params["kind"] == "b"
    at.selectbox(key="kind_key").set_value("a").run()
    assert "kind" not in at.query_params


def test_what_the_user_sets_stays_and_is_written():
    at = _open(n="5")
    at.number_input(key="n_key").set_value(8).run()
    assert _shown(at).startswith("n=8") and at.query_params["n"] == "8", "not put back to the link's 5"
    at.run()
    assert _shown(at).startswith("n=8")


def test_a_url_moved_by_the_page_moves_the_control():
    at = _open(n="5")
    at.number_input(key="n_key").set_value(8).run()
    at.button(key="link").click().run()
    assert _shown(at).startswith("n=7") and at.number_input(key="n_key").value == 7


def test_a_bad_value_says_so_once_and_the_url_is_corrected():
    at = _open(n="12", kind="<script>", share="x")
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "`n`=12 is out of range (0–9)" in notes and "Unknown `kind` '<script>'" in notes
    assert "`share` must be a whole number" in notes
    assert _shown(at) == "n=3 kind=a share=30"
    assert dict(at.query_params) == {"n": "3", "share": "30"}
    assert not at.run().warning


def tabs_page():
    import streamlit as st

    from ui.tabs import Tab, url_tabs

    first, second = Tab("first", "First tab"), Tab("second", "Second tab")
    tabs = url_tabs([first, second], "t")
    for tab in (first, second):
        if tabs[tab].open:
            with tabs[tab]:
                st.write(f"open: {tab.slug}")


def _tabs(**params: str) -> AppTest:
    at = AppTest.from_function(tabs_page, default_timeout=30)
    at.query_params.update(params)
    return at.run()


def test_tabs_are_named_by_slug_and_only_the_open_one_runs():
    at = _tabs()
    assert [tab.label for tab in at.tabs] == ["First tab", "Second tab"]
    assert [m.value for m in at.markdown] == ["open: first"] and "t" not in at.query_params
    at = _tabs(t="second")
    assert [m.value for m in at.markdown] == ["open: second"] and at.query_params["t"] == "second"
    at.query_params.pop("t")
    assert [m.value for m in at.run().markdown] == ["open: first"], "the URL decides on every run"


def test_a_link_made_with_a_tabs_label_opens_it_and_is_rewritten_to_the_slug():
    at = _tabs(t="Second tab")
    assert not at.warning and [m.value for m in at.markdown] == ["open: second"]
    assert at.query_params["t"] == "second"


def test_an_unknown_tab_opens_the_first_with_a_message_naming_the_slugs():
    at = _tabs(t="second tab")
    assert [m.value for m in at.markdown] == ["open: first"] and "t" not in at.query_params
    assert "Unknown `t` 'second tab'; choose one of: first, second" in at.warning[0].value
