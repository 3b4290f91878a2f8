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

from ui.sidebar import model_picker

st.set_page_config(page_title="MechMNISTic", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("app_pages/zoo.py", title="Model zoo", icon="🗂️", default=True),
    st.Page("app_pages/neuron_explorer.py", title="Neuron Explorer", icon="🧠", url_path="neuron"),
    st.Page("app_pages/classification_explorer.py", title="Classification Explorer", icon="🎯", url_path="classify"),
    st.Page("app_pages/import_model.py", title="Import a model", icon="📥", url_path="import"),
    st.Page("app_pages/ablations.py", title="Attribution & ablations", icon="✂️", url_path="ablations"),
    st.Page("app_pages/hypothesis.py", title="Hypothesis & causal scrubbing", icon="🧪", url_path="hypothesis"),
    st.Page("app_pages/geometry.py", title="Activation geometry", icon="📐", url_path="geometry"),
    st.Page("app_pages/feature_viz.py", title="Feature visualisation", icon="🎨", url_path="features"),
    st.Page("app_pages/walkthrough.py", title="Walkthrough: the challenge", icon="🧭", url_path="walkthrough"),
]

navigation = st.navigation(PAGES)
st.session_state["active_model"] = model_picker()
navigation.run()
