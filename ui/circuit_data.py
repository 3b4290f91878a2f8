"""Cached dataset-wide arrays for the circuit pages (attribution, ablations, hypotheses, scrubbing).

Keyed by the model's name and weights fingerprint (a re-imported model is never
served stale arrays); the arrays come from the core's disk cache, so a new
server process reads them in a second or two. The first computation for a
model shows a spinner saying what is being computed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.analysis.ablation import InterventionResult, ablate, patch_activations
from mechmnistic.analysis.attribution import unit_contributions
from mechmnistic.analysis.geometry import layer_pca
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.cache import model_fingerprint
from mechmnistic.hooks import run_with_cache

from . import loaders, split_data


def activations(model_name: str, layer: str, split: str) -> np.ndarray:
    """``layer``'s unit activations over ``split``, float32 ``[N, U]`` (read-only)."""
    return split_data.activations(model_name, layer, split).values


def predictions(model_name: str, split: str) -> np.ndarray:
    """The model's predicted class for every image of ``split``, int64 ``[N]``."""
    return split_data.logits(model_name, split).argmax(axis=1)


@st.cache_data(show_spinner="Scoring every image against the template…", max_entries=32)
def scores(template: np.ndarray, center: float, split: str) -> np.ndarray:
    """``s(x)`` for every image of ``split``, float64 ``[N]`` (keyed by the template's pixels)."""
    return image_scores(loaders.mnist(split).images, template, center)


def pca(model_name: str, layer: str, n_components: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Training-set activations of ``layer`` on their top components: ``([60000, k], explained ratio [k])``.

    From ``analysis.geometry.layer_pca`` (cached on disk), the Activation geometry page's PCA.
    """
    net = loaders.load_model(model_name)
    with st.spinner(f"Computing the principal components of {layer} (once per model, then cached)…"):
        fit = layer_pca(net, layer)
    k = min(n_components, fit.pca.n_components_)
    return fit.scores[:, :k], fit.pca.explained_variance_ratio_[:k]


@st.cache_data(show_spinner="Ablating over the test set…", max_entries=64)
def _ablation(model_name: str, fingerprint: str, layer: str, units: tuple[int, ...], method: str,
              seed: int) -> InterventionResult:
    return ablate(loaders.load_model(model_name), layer, list(units), method, images="test", seed=seed)


def ablation(model_name: str, layer: str, units: np.ndarray, method: str, seed: int) -> InterventionResult:
    """``ablate`` on the whole test set (with the model's own labels), cached per setting."""
    net = loaders.load_model(model_name)
    return _ablation(model_name, model_fingerprint(net), layer, tuple(int(u) for u in units), method, seed)


@st.cache_data(show_spinner="Attributing the test set's logits…", max_entries=16)
def _unit_contributions(model_name: str, fingerprint: str, target: tuple[int, int | None]) -> tuple[np.ndarray, float]:
    net = loaders.load_model(model_name)
    feeds = net.layout.feeds_logits
    if feeds is not None and not feeds.is_conv:
        values = split_data.activations(model_name, feeds.name, "test").values
    else:  # conv maps (or pixels) feed the output: not in the per-unit cache; unit_contributions says so
        hook = feeds.output_hook if feeds is not None else "input"
        values = run_with_cache(net, loaders.mnist("test").images, names=[hook])[1][hook]
    return unit_contributions(net, values, target)


def unit_contributions_on_test(model_name: str, target: tuple[int, int | None]) -> tuple[np.ndarray, float]:
    """Per-unit direct logit contributions on the test set, float64 ``[10000, U]``, and the bias term."""
    net = loaders.load_model(model_name)
    return _unit_contributions(model_name, model_fingerprint(net), target)


@st.cache_data(show_spinner="Patching every test image…", max_entries=32)
def _patching(model_name: str, fingerprint: str, layer: str, units: tuple[int, ...],
              source: np.ndarray) -> InterventionResult:
    return patch_activations(loaders.load_model(model_name), layer, list(units), source, images="test")


def patching(model_name: str, layer: str, units: np.ndarray, source: np.ndarray) -> InterventionResult:
    """``patch_activations`` of one source image into the whole test set, cached per setting."""
    net = loaders.load_model(model_name)
    return _patching(model_name, model_fingerprint(net), layer, tuple(int(u) for u in units), np.asarray(source))
