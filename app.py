"""MechMNISTic: the Streamlit entry point.

Sets the page up, shows the shared sidebar (the model picker), and routes to the
pages. Run with ``make run`` (or ``streamlit run app.py``).

The page scripts live in ``app_pages/``, not ``pages/``: when a folder named
``pages/`` exists, Streamlit runs a deep-linked page script directly (its old
multipage mode, skipping this file) for every request until some session has
called ``st.navigation``, so a server whose first visitor follows a deep link
would show that visitor a page without its sidebar and state.
"""

import streamlit as st

from ui.page_list import PAGES
from ui.plotly_setup import let_tick_labels_overflow
from ui.sidebar import model_picker

st.set_page_config(page_title="MechMNISTic", page_icon="🔬", layout="wide")
let_tick_labels_overflow()

navigation = st.navigation([
    st.Page(page.path, title=page.title, icon=f":material/{page.icon}:", url_path=page.url_path,
            default=page.url_path is None)
    for page in PAGES
])
st.session_state["active_model"] = model_picker()
navigation.run()
