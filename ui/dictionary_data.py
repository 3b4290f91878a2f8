"""Cached data behind the Dictionaries page: a layer's dictionaries, their scoreboards, and training with progress.

Keys follow ``ui.neuron_data``: the model's name and weights fingerprint, so a
model replaced in the zoo is never shown with the old one's numbers. Anything
long (training, a first scoreboard) runs outside the cached readers with a
progress bar, as the atlas does, then the readers find it on disk.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from mechmnistic.analysis.atlas import AtlasParameters
from mechmnistic.analysis.polysemanticity import (
    Scoreboard,
    latent_scoreboard,
    latent_scoreboard_is_cached,
    neuron_scoreboard,
)
from mechmnistic.cache import model_fingerprint
from mechmnistic.dictionaries.dictionary import dictionary_summaries

from . import loaders, neuron_data


@st.cache_data(ttl=10, show_spinner=False)
def summaries(model_name: str, fingerprint: str, layer: str) -> list[dict]:
    """The cards of ``layer``'s dictionaries (re-read every few seconds: one trained meanwhile appears)."""
    return dictionary_summaries(loaders.load_model(model_name), layer=layer)


def dictionaries_changed() -> None:
    """Forget cached listings and dictionaries after one was written (it may replace one of the same id)."""
    summaries.clear()
    neuron_data.bases.clear()
    neuron_data.dictionary.clear()
    _latent_board.clear()


def with_progress(label: str, work: Callable[[Callable[[int, int, str], None]], object]) -> object:
    """Run ``work(progress)`` inside a status box with a progress bar that shows each ``progress(done, total,
    message)`` (the message carries the time left where the work estimates it)."""
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="starting…")

        def progress(done: int, total: int, message: str) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=message)

        result = work(progress)
        status.update(label=f"{label.rstrip('…')}: done", state="complete", expanded=False)
    return result


@st.cache_resource(show_spinner=False, max_entries=8)
def _neuron_board(model_name: str, fingerprint: str, layer: str, params: AtlasParameters) -> Scoreboard:
    return neuron_scoreboard(loaders.load_model(model_name), layer, params)


@st.cache_resource(show_spinner=False, max_entries=8)
def _latent_board(model_name: str, fingerprint: str, layer: str, basis: str, params: AtlasParameters) -> Scoreboard:
    model = loaders.load_model(model_name)
    return latent_scoreboard(model, neuron_data.dictionary(model_name, fingerprint, layer, basis), params)


def scoreboards(model_name: str, layer: str, basis: str, params: AtlasParameters) -> tuple[Scoreboard, Scoreboard]:
    """The layer's neurons and ``basis``'s latents, scored (the first time: a progress bar per part)."""
    model = loaders.load_model(model_name)
    fingerprint = model_fingerprint(model)
    neuron_data.atlas(model_name, layer, params)  # the neurons' clusters (with its own progress the first time)
    dictionary = neuron_data.dictionary(model_name, fingerprint, layer, basis)
    if not latent_scoreboard_is_cached(model, dictionary, params):
        with_progress(f"First-time scoring of {dictionary.id}'s {dictionary.d_sae} latents: top "
                      f"{params.top_k} examples and their feature clusters (stored for next time)…",
                      lambda progress: latent_scoreboard(model, dictionary, params, progress))
    return (_neuron_board(model_name, fingerprint, layer, params),
            _latent_board(model_name, fingerprint, layer, basis, params))
