"""Cached access to the per-layer arrays behind the Neuron Explorer, with progress the first time.

The arrays come from ``mechmnistic`` (on-disk cache keyed by the weights'
hash); here they are held once per server process (``st.cache_resource``) and
made read-only, since every session shares them. Keys are the model's zoo name
and the analysis parameters: nothing is read from globals.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.analysis.activations import LayerActivations, layer_activations
from mechmnistic.analysis.atlas import AtlasParameters, NeuronAtlas, atlas_is_cached, neuron_atlas
from mechmnistic.analysis.neurons import hidden_fc_layers

from . import loaders


def _read_only(*arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            array.flags.writeable = False


@st.cache_resource(show_spinner="Reading activations over the training set…", max_entries=8)
def activations(model_name: str, layer: str) -> LayerActivations:
    acts = layer_activations(loaders.load_model(model_name), layer, "train")
    _read_only(acts.values, acts.pre, acts.argmax)
    return acts


@st.cache_resource(show_spinner=False, max_entries=16)
def _stored_atlas(model_name: str, layer: str, params: AtlasParameters) -> NeuronAtlas:
    atlas = neuron_atlas(loaders.load_model(model_name), layer, params)
    _read_only(atlas.top_indices, atlas.top_pre, atlas.cluster_labels, atlas.n_clusters, atlas.explained,
               atlas.mean_intra, atlas.mean_inter)
    return atlas


def atlas(model_name: str, layer: str, params: AtlasParameters) -> NeuronAtlas:
    """The layer's atlas; computing it for the first time shows what is happening and how far it is."""
    model = loaders.load_model(model_name)
    if not atlas_is_cached(model, layer, params):
        # Computed here rather than inside the cached reader: Streamlit would record the
        # progress updates as part of the cached result and replay them.
        units = model.layer(layer).out_features
        with st.status(f"First-time analysis of {layer}: top {params.top_k} examples and feature clusters "
                       f"of all {units} units (stored for next time)…", expanded=True) as status:
            bar = st.progress(0.0)

            def progress(done: int, total: int, message: str) -> None:
                bar.progress(done / total, text=message)

            neuron_atlas(model, layer, params, progress)
            status.update(label=f"Analysed all {units} units of {layer}", state="complete", expanded=False)
    return _stored_atlas(model_name, layer, params)


def explorable_layers(model_name: str) -> list[str]:
    """The layers the Neuron Explorer offers: every hidden layer of an MLP (CNNs come later)."""
    model = loaders.load_model(model_name)
    return hidden_fc_layers(model) if model.config.arch == "mlp" else []
