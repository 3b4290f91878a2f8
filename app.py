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

from ui.plotly_setup import let_tick_labels_overflow
from ui.sidebar import model_picker

st.set_page_config(page_title="MechMNISTic", page_icon="🔬", layout="wide")
let_tick_labels_overflow()


def _page(script: str, title: str, icon: str, url_path: str | None = None, default: bool = False) -> st.Page:
    # Material Symbols icons, not emoji: Streamlit bundles their font, so they show on machines without an
    # emoji font.
    return st.Page(f"app_pages/{script}.py", title=title, icon=f":material/{icon}:", url_path=url_path,
                   default=default)


PAGES = [
    _page("zoo", "Model zoo", "inventory_2", default=True),
    _page("neuron_explorer", "Neuron Explorer", "neurology", "neuron"),
    _page("classification_explorer", "Classification Explorer", "target", "classify"),
    _page("import_model", "Import a model", "upload_file", "import"),
    _page("ablations", "Attribution & ablations", "content_cut", "ablations"),
    _page("hypothesis", "Hypothesis & causal scrubbing", "science", "hypothesis"),
    _page("geometry", "Activation geometry", "scatter_plot", "geometry"),
    _page("feature_viz", "Feature visualisation", "palette", "features"),
    _page("walkthrough", "Walkthrough: the challenge", "explore", "walkthrough"),
]


navigation = st.navigation(PAGES)
st.session_state["active_model"] = model_picker()
navigation.run()
