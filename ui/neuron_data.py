"""Cached access to the per-layer arrays behind the Neuron Explorer, with progress the first time.

The arrays come from ``mechmnistic`` (on-disk cache keyed by the weights'
hash); here they are held once per server process (``st.cache_resource``) and
made read-only, since every session shares them. Keys are the model's name
and its fingerprint (the weights' hash: a model replaced in the zoo under the
same name is never shown with the old one's arrays) and the analysis
parameters: nothing is read from globals.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.analysis.activations import LayerActivations
from mechmnistic.analysis.atlas import (
    AtlasParameters,
    NeuronAtlas,
    UnitClusters,
    atlas_is_cached,
    latent_clusters,
    neuron_atlas,
    position_clusters,
    unit_clusters,
)
from mechmnistic.analysis.conv import position_activations
from mechmnistic.analysis.latents import (
    NEURONS,
    latent_activations,
    latent_activations_are_cached,
    layer_bases,
    resolve_basis,
)
from mechmnistic.analysis.polysemanticity import latent_scoreboard, latent_scoreboard_is_cached
from mechmnistic.analysis.unit_behaviour import TopExamples
from mechmnistic.cache import is_cached, model_fingerprint
from mechmnistic.data import SIZES
from mechmnistic.dictionaries.dictionary import Dictionary

from . import loaders
from .split_data import read_only


@st.cache_resource(show_spinner=False, max_entries=32)
def _position_values(model_name: str, fingerprint: str, layer: str, channel: int, position: tuple[int, int],
                     split: str) -> np.ndarray:
    values = position_activations(loaders.load_model(model_name), layer, channel, position, split)
    read_only(values)
    return values


def position_values(model_name: str, layer: str, channel: int, position: tuple[int, int],
                    split: str = "train") -> np.ndarray:
    """A channel's pre-activation at one cell over ``split``, float32 ``[N]`` (a pass the first time)."""
    model = loaders.load_model(model_name)
    key = {"layer": layer, "channel": channel, "position": list(position), "split": split}
    message = "Reading activations…" if is_cached(model, "position_activations", key) else \
        f"Computing {layer} channel {channel} at {position} over all {SIZES[split]:,} {split} images " \
        "(once, then cached)…"
    with st.spinner(message):
        return _position_values(model_name, model_fingerprint(model), layer, channel, position, split)


@st.cache_resource(show_spinner=False, max_entries=16)
def _stored_atlas(model_name: str, fingerprint: str, layer: str, params: AtlasParameters) -> NeuronAtlas:
    atlas = neuron_atlas(loaders.load_model(model_name), layer, params)
    read_only(atlas.top_indices, atlas.top_pre, atlas.cluster_labels, atlas.n_clusters, atlas.explained,
               atlas.mean_intra, atlas.mean_inter, atlas.top_positions)
    return atlas


def atlas(model_name: str, layer: str, params: AtlasParameters) -> NeuronAtlas:
    """The layer's atlas; computing it for the first time shows what is happening and how far it is."""
    model = loaders.load_model(model_name)
    if not atlas_is_cached(model, layer, params):
        # Computed here rather than inside the cached reader: Streamlit would record the
        # progress updates as part of the cached result and replay them.
        units = model.layout[layer].n_units
        with st.status(f"First-time analysis of {layer}: top {params.top_k} examples, grounded in pixel space, "
                       f"and feature clusters of all {units} units (stored for next time)…", expanded=True) as status:
            bar = st.progress(0.0)

            def progress(done: int, total: int, message: str) -> None:
                bar.progress(done / total, text=message)

            neuron_atlas(model, layer, params, progress)
            status.update(label=f"Analysed all {units} units of {layer}", state="complete", expanded=False)
    return _stored_atlas(model_name, model_fingerprint(model), layer, params)


@st.cache_resource(show_spinner=False, max_entries=32)
def _unit_view(model_name: str, fingerprint: str, layer: str, unit: int, position: tuple[int, int] | None,
               params: AtlasParameters) -> tuple[TopExamples, UnitClusters]:
    model = loaders.load_model(model_name)
    if position is not None:
        return position_clusters(model, layer, unit, position, params)
    stored = _stored_atlas(model_name, fingerprint, layer, params)
    return stored.top_examples(unit), unit_clusters(model, stored, unit)


def unit_view(model_name: str, layer: str, unit: int, position: tuple[int, int] | None,
              params: AtlasParameters) -> tuple[TopExamples, UnitClusters]:
    """A unit's top examples and feature clusters: from the layer's atlas, or for a conv channel at
    one ``position``, computed for it (its activations over the split first, the first time)."""
    if position is None:
        atlas(model_name, layer, params)
    else:
        position_values(model_name, layer, unit, position, params.split)
    with st.spinner("Grounding the top examples in pixel space…"):
        return _unit_view(model_name, model_fingerprint(loaders.load_model(model_name)), layer, unit, position,
                          params)


# -- a layer's other bases: its dictionaries' latents -----------------------------------------------------


@st.cache_data(ttl=10, show_spinner=False)
def bases(model_name: str, fingerprint: str, layer: str) -> list[str]:
    """``"neurons"`` and ``"dictionary:<id>"`` for each dictionary of ``layer`` trained on these weights
    (re-read every few seconds: a dictionary trained meanwhile appears)."""
    return layer_bases(loaders.load_model(model_name), layer)


@st.cache_resource(show_spinner=False, max_entries=16)
def dictionary(model_name: str, fingerprint: str, layer: str, basis: str) -> Dictionary:
    """The dictionary a basis names, checked against the model's weights and the layer."""
    return resolve_basis(loaders.load_model(model_name), layer, basis)


# Few entries: a dictionary's latents over the training set are 60,000 x d_sae floats (491 MB for 2,048 latents),
# and the pages that read them (the explorer, the scoreboard, feature splitting) use one or two at a time.
@st.cache_resource(show_spinner=False, max_entries=4)
def _latent_values(model_name: str, fingerprint: str, layer: str, basis: str, split: str) -> LayerActivations:
    values = latent_activations(loaders.load_model(model_name), dictionary(model_name, fingerprint, layer, basis),
                                split)
    read_only(values.values, values.argmax)
    return values


def latent_values(model_name: str, layer: str, basis: str, split: str = "train") -> LayerActivations:
    """Every latent's activation over ``split`` (``values [N, d_sae]``; a pass over the split the first time)."""
    model = loaders.load_model(model_name)
    fingerprint = model_fingerprint(model)
    found = dictionary(model_name, fingerprint, layer, basis)
    message = "Reading latent activations…" if latent_activations_are_cached(model, found, split) else \
        f"Encoding {layer} over all {SIZES[split]:,} {split} images with {found.id} (once, then cached)…"
    with st.spinner(message):
        return _latent_values(model_name, fingerprint, layer, basis, split)


@st.cache_resource(show_spinner=False, max_entries=32)
def _latent_view(model_name: str, fingerprint: str, layer: str, basis: str, latent: int,
                 params: AtlasParameters) -> tuple[TopExamples, UnitClusters]:
    model = loaders.load_model(model_name)
    return latent_clusters(model, dictionary(model_name, fingerprint, layer, basis), latent, params)


def latent_view(model_name: str, layer: str, basis: str, latent: int,
                params: AtlasParameters) -> tuple[TopExamples, UnitClusters]:
    """A latent's top examples and feature clusters, as ``unit_view`` gives a unit's."""
    latent_values(model_name, layer, basis, params.split)
    with st.spinner("Grounding the latent's top examples in pixel space…"):
        return _latent_view(model_name, model_fingerprint(loaders.load_model(model_name)), layer, basis, latent,
                            params)


def stored_cluster_count(model_name: str, layer: str, basis: str, unit: int, position: tuple[int, int] | None,
                         params: AtlasParameters) -> int | None:
    """How many feature clusters the unit's top examples form, when it is already stored (a neuron or channel
    at its maximum: the layer's atlas, computed if needed; a latent: its dictionary's scoreboard, if it was
    computed); ``None`` otherwise, when only grounding and clustering the examples tells."""
    if basis == NEURONS:
        return int(atlas(model_name, layer, params).n_clusters[unit]) if position is None else None
    model = loaders.load_model(model_name)
    found = dictionary(model_name, model_fingerprint(model), layer, basis)
    if not latent_scoreboard_is_cached(model, found, params):
        return None
    board = latent_scoreboard(model, found, params)
    # A latent that never fires has no clusters on the scoreboard; its page still clusters its (zero) examples.
    return int(board.n_clusters[unit]) if board.n_firing[unit] > 0 else None


def explorable_layers(model_name: str) -> list[str]:
    """The layers the Neuron Explorer offers: every hidden layer, conv and fully connected."""
    return list(loaders.load_model(model_name).layout.hidden_names)
