"""Streamlit glue for the Activation geometry and Feature visualisation pages.

Predictions and template scores come from ``ui.circuit_data`` (the same arrays
the circuit pages use).

Heavy results live in the on-disk cache (``mechmnistic.cache``), which is quick
to read back, so the first computation can show a real progress bar (a
Streamlit element cannot be driven from inside an ``st.cache_*`` function).
Small derived arrays are kept in memory with ``st.cache_data`` /
``st.cache_resource``; cached functions take names and settings, never a model
object, and read no globals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from mechmnistic.analysis import feature_viz as fv
from mechmnistic.analysis import geometry as g
from mechmnistic.cache import model_fingerprint

from . import loaders


def clicked_customdata(event: object) -> list | None:
    """The ``customdata`` of the one point a click selected (``None`` for no click or a box selection).

    The browser sends a typed-array row as ``{"0": v0, "1": v1, ...}``; a plain
    list or a single number arrive as such. All become a list.
    """
    selection = event["selection"] if event else None
    if not selection or selection["box"] or selection["lasso"] or len(selection["points"]) != 1:
        return None
    data = selection["points"][0].get("customdata")
    if isinstance(data, dict):
        return [data[str(i)] for i in range(len(data))]
    return list(data) if isinstance(data, list | tuple) else [data]


def with_progress(text: str, work: Callable[[Callable[[float], None]], object]) -> object:
    """Run ``work(progress)`` under a progress bar that disappears when it is done."""
    bar = st.progress(0.0, text=text)
    try:
        return work(lambda fraction: bar.progress(min(1.0, fraction), text=text))
    finally:
        bar.empty()


def layer_pca(model_name: str, layer: str) -> g.LayerPCA:
    """The layer's PCA over the training set, with a progress bar when it is computed for the first time."""
    model = loaders.load_model(model_name)
    if g.layer_pca_is_cached(model, layer):
        return g.layer_pca(model, layer)
    text = f"Computing the PCA of {layer} over 60,000 training images (once; it is cached after)…"
    return with_progress(text, lambda progress: g.layer_pca(model, layer, progress=progress))


@st.cache_resource(show_spinner="Building the direction…", max_entries=64)
def _direction(model_name: str, fingerprint: str, layer: str, spec: str) -> g.Direction:
    model = loaders.load_model(model_name)
    return g.build_direction(model, g.layer_pca(model, layer), spec)


def direction(model_name: str, layer: str, spec: str) -> g.Direction:
    """The direction a spec names (``analysis.geometry.build_direction``), kept per model weights."""
    return _direction(model_name, model_fingerprint(loaders.load_model(model_name)), layer, spec)


def directions(model_name: str, layer: str, specs: list[str]) -> tuple[list[g.Direction], list[str]]:
    """The directions the specs name, and a message for each spec that could not be built."""
    built, problems = [], []
    for spec in specs:
        try:
            built.append(direction(model_name, layer, spec))
        except g.GeometryError as exc:
            problems.append(f"`{spec[:80]}`: {exc}")
    return built, problems


def _optimise(model_name: str, objectives: fv.Objectives, config: fv.FeatureVizConfig,
              text: str) -> fv.FeatureVisualization:
    model = loaders.load_model(model_name)
    if fv.is_visualized(model, objectives, config):
        return fv.visualize(model, objectives, config)
    return with_progress(text, lambda progress: fv.visualize(model, objectives, config, progress=progress))


def unit_visualization(model_name: str, layer: str, config: fv.FeatureVizConfig) -> fv.FeatureVisualization:
    """Every unit of the layer in one batch (as ``visualize_units`` does); pages pick the units to show."""
    objectives = fv.unit_objectives(loaders.load_model(model_name), layer)
    text = f"Optimising an input for each of the {len(objectives)} units of {layer} ({config.steps} steps, one batch)…"
    return _optimise(model_name, objectives, config, text)


def direction_visualization(model_name: str, layer: str, specs: tuple[str, ...],
                            config: fv.FeatureVizConfig) -> fv.FeatureVisualization:
    """The directions the specs name, optimised together (errors as ``GeometryError``)."""
    chosen = [direction(model_name, layer, spec) for spec in specs]
    objectives = fv.direction_objectives(layer_pca(model_name, layer).space, chosen)
    text = f"Optimising an input for {len(specs)} direction(s) of {layer} ({config.steps} steps)…"
    return _optimise(model_name, objectives, config, text)


@st.cache_data(show_spinner="Finding the nearest training images…", max_entries=16)
def nearest_examples(images: np.ndarray, k: int) -> fv.NearestExamples:
    return fv.nearest_training_examples(images, k)

