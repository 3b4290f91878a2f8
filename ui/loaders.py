"""Cached access to models and data, shared by every session of the server.

``st.cache_resource`` holds one read-only copy per process: models are put in
eval mode and never mutated by pages, and MNIST arrays are read-only numpy
arrays, so sharing them between sessions is safe.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import mechmnistic
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.models.card import ModelCard


@st.cache_resource(show_spinner="Loading model…")
def load_model(name: str) -> MNISTNet:
    model = mechmnistic.load_model(name)
    for param in model.parameters():
        param.requires_grad_(False)
    return model


@st.cache_data(ttl=10, show_spinner=False)
def list_models() -> list[str]:
    return mechmnistic.list_models()


@st.cache_data(ttl=10, show_spinner=False)
def load_card(name: str) -> ModelCard:
    return mechmnistic.load_card(name)


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist(split: str) -> mechmnistic.MNIST:
    return mechmnistic.load_mnist(split)


def test_image(index: int) -> np.ndarray:
    return mnist("test").images[index]
