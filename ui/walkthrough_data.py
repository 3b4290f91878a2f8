"""The guided walkthrough's results (``mechmnistic.analysis.walkthrough``), cached for the page.

Always ``challenge-cnn``, whatever the sidebar's model. The heavy arrays
(activations, PCA, feature visualisations, the scrubbing sweep) come from the
core's disk cache; computing one for the first time shows a progress bar or a
spinner (see ``ui.circuit_data`` and ``ui.geometry``).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.analysis import walkthrough as w
from mechmnistic.analysis.scrubbing import ScrubResult
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.cache import model_fingerprint

from . import circuit_data, loaders
from .geometry import with_progress


@st.cache_resource(show_spinner="Fitting a band to the model's predictions…", max_entries=2)
def _band(fingerprint: str, _train_scores: np.ndarray, _test_scores: np.ndarray) -> w.BandStep:
    return w.fit_band(loaders.load_model(w.MODEL), _train_scores, _test_scores)


def band() -> w.BandStep:
    """The clue as a template and the band fitted to the model's training predictions."""
    model = loaders.load_model(w.MODEL)
    template = resolve_template(w.TEMPLATE).image
    return _band(model_fingerprint(model), circuit_data.scores(template, w.CENTER, "train"),
                 circuit_data.scores(template, w.CENTER, "test"))


def scrub_sweep(fitted: w.BandStep) -> ScrubResult:
    """The causal-scrubbing sweep of the fitted band's unit groups, with a progress bar the first time."""
    model = loaders.load_model(w.MODEL)
    if w.scrub_band_is_cached(model, fitted):
        return w.scrub_band(model, fitted)
    text = f"Causal scrubbing of {w.LAYER}: {len(w.TOLERANCES)} tolerances and a random baseline over 60,000 images…"
    return with_progress(text, lambda progress: w.scrub_band(model, fitted, lambda done, total: progress(done / total)))


@st.cache_resource(show_spinner="Comparing the detectors in neurons and in the dictionary's latents…", max_entries=2)
def _separation(fingerprint: str, _fitted: w.BandStep) -> tuple[w.Separation, w.Separation]:
    return w.detector_separation(loaders.load_model(w.MODEL), _fitted)


def separation(fitted: w.BandStep) -> tuple[w.Separation, w.Separation]:
    """The band's detectors measured in ``w.LAYER``'s neurons and in its bundled dictionary's latents."""
    return _separation(model_fingerprint(loaders.load_model(w.MODEL)), fitted)
