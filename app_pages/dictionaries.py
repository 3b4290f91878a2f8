"""Dictionaries: sparse autoencoders of a layer — their quality, training, sweeps, feature splitting, and how
polysemantic the layer's neurons are against the dictionary's latents.

Deep link: ``/dictionaries?model=M&layer=L&sae=ID&section=TAB`` (``section``:
the slug of one of ``SECTIONS``; feature splitting also takes ``small``, ``large`` and
``latent``). The tabs are drawn by ``ui.dictionary_views``.
"""

import streamlit as st

from mechmnistic.analysis.atlas import AtlasParameters
from mechmnistic.cache import model_fingerprint
from ui import bound, dictionary_data, loaders
from ui import dictionary_views as views
from ui.tabs import Tab, url_tabs

QUALITY, TRAIN, SWEEP = Tab("quality", "Quality"), Tab("train", "Train"), Tab("sweep", "Sweep")
SPLITTING, SCOREBOARD = Tab("splitting", "Feature splitting"), Tab("scoreboard", "Polysemanticity scoreboard")
SECTIONS = (QUALITY, TRAIN, SWEEP, SPLITTING, SCOREBOARD)

st.title("Dictionaries")
st.write("A dictionary (a sparse autoencoder) rewrites a layer's activation as a sparse sum of learned directions, "
         "its *latents*. Where neurons answer to several ways of writing several digits, latents tend to be "
         "narrower: each one is browsable like a neuron in the Neuron Explorer, and the scoreboard measures how "
         "much narrower.")

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
layers = list(model.layout.hidden_names)
if not layers:
    st.info(f"`{model_name}` has no hidden layer, so there is nothing to train a dictionary on. Pick another model.")
    st.stop()
if loaders.is_private_name(model_name):
    st.info("Dictionaries are stored beside a model in the zoo, and this model is private to your session. Import "
            "it into the zoo with `mechmnistic import` to train dictionaries on it.")
    st.stop()
bound.forget_on_model_change("dictionaries", model_name, {"dict_layer": "layer", "dict_sae": "sae",
                                                          "dict_small": "small", "dict_large": "large",
                                                          "dict_split_latent": "latent"})

fingerprint = model_fingerprint(model)
with_dictionaries = [name for name in layers if dictionary_data.summaries(model_name, fingerprint, name)]
layer_column, sae_column = st.columns(2)
layer = bound.select(layer_column, "Layer", layers, "dict_layer", "layer", (with_dictionaries or layers)[0])
rows = dictionary_data.summaries(model_name, fingerprint, layer)
usable_rows = sorted((row for row in rows if row.get("usable")), key=lambda row: (row["d_sae"], row["id"]))
usable = [row["id"] for row in usable_rows]
if st.session_state.get(views.PENDING_SAE) in usable:
    st.session_state["dict_sae"] = st.session_state.pop(views.PENDING_SAE)
# By default the layer's first dictionary, as on every page (a bundled model's: the one its docs discuss).
first = min(usable_rows, key=lambda row: (row.get("created") or "", row["id"]))["id"] if usable else None
chosen = bound.select(sae_column, "Dictionary", usable, "dict_sae", "sae", first) if usable else None
if not usable:
    sae_column.caption(f"{layer} has no usable dictionary yet.")

tabs = url_tabs(SECTIONS, "section")
params = AtlasParameters()
if tabs[QUALITY].open:
    with tabs[QUALITY]:
        views.quality_tab(model_name, layer, rows, chosen)
if tabs[TRAIN].open:
    with tabs[TRAIN]:
        views.train_tab(model_name, layer)
if tabs[SWEEP].open:
    with tabs[SWEEP]:
        views.sweep_tab(model_name, layer, rows)
if tabs[SPLITTING].open:
    with tabs[SPLITTING]:
        views.splitting_tab(model_name, layer, rows)
if tabs[SCOREBOARD].open:
    with tabs[SCOREBOARD]:
        views.scoreboard_tab(model_name, layer, chosen, params)
