"""A split's arrays for every page: a layer's activations, the model's logits and labels, held once per process.

The arrays come from ``mechmnistic.analysis`` (its on-disk cache, keyed by the
weights' hash); here one read-only copy per server process is shared by every
session and page (``st.cache_resource``). Keys are the model's name and its
fingerprint, so a model replaced in the zoo under the same name is never shown
with the old one's arrays. The first computation for a model says what it is
computing.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.analysis.activations import LayerActivations, activations_are_cached, layer_activations
from mechmnistic.analysis.predictions import Predictions, model_labels, predictions_are_cached, split_logits
from mechmnistic.cache import model_fingerprint
from mechmnistic.data import SIZES

from . import loaders


def read_only(*arrays: np.ndarray | None) -> None:
    """Freeze arrays a shared cache hands to every session."""
    for array in arrays:
        if array is not None:
            array.flags.writeable = False


@st.cache_resource(show_spinner=False, max_entries=16)
def _activations(model_name: str, fingerprint: str, layer: str, split: str) -> LayerActivations:
    acts = layer_activations(loaders.load_model(model_name), layer, split)
    read_only(acts.values, acts.pre, acts.argmax)
    return acts


def activations(model_name: str, layer: str, split: str = "train") -> LayerActivations:
    """``layer``'s activations over ``split`` (a pass over the split the first time, said so).

    ``.values`` float32 ``[N, U]``, ``.pre`` the pre-activations, ``.argmax`` a conv channel's
    ``(row, col)`` per image (see ``LayerActivations``); the last layer's are the logits.
    """
    model = loaders.load_model(model_name)
    message = "Reading activations…" if activations_are_cached(model, layer, split) else \
        f"Computing {layer} over all {SIZES[split]:,} {split} images (once per model, then cached)…"
    with st.spinner(message):
        return _activations(model_name, model_fingerprint(model), layer, split)


@st.cache_resource(show_spinner=False, max_entries=16)
def _logits(model_name: str, fingerprint: str, split: str) -> np.ndarray:
    logits = split_logits(loaders.load_model(model_name), split)
    read_only(logits)
    return logits


def logits(model_name: str, split: str = "test") -> np.ndarray:
    """The model's logits on every image of ``split``, float32 ``[N, C]`` (a pass the first time, said so)."""
    model = loaders.load_model(model_name)
    message = "Loading predictions…" if predictions_are_cached(model, split) else \
        f"Predicting all {SIZES[split]:,} {split} images (once per model, then cached on disk)…"
    with st.spinner(message):
        return _logits(model_name, model_fingerprint(model), split)


@st.cache_resource(show_spinner=False, max_entries=16)
def _labels(model_name: str, fingerprint: str, split: str) -> np.ndarray:
    labels = model_labels(loaders.load_model(model_name), split)
    read_only(labels)
    return labels


def predictions(model_name: str, split: str = "test") -> Predictions:
    """The model's logits on every image of ``split`` and the labels it was trained to give them (raises
    ``UnknownLabelsError`` for a model imported without a labelling function)."""
    model = loaders.load_model(model_name)
    return Predictions(split, logits(model_name, split), _labels(model_name, model_fingerprint(model), split))
