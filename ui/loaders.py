"""Access to models and data: the zoo's shared by every session, imports private to one.

Pages get every model through ``load_model(name)`` / ``load_card(name)``. These
look first in this session's private models (imported here and not saved into
the zoo), then in the zoo.

* Zoo models and MNIST live in ``st.cache_resource``: one read-only copy per
  process, shared by all sessions (models are in eval mode with frozen
  parameters and never mutated by pages; MNIST arrays are read-only).
* Private models live only in ``st.session_state``, never in a module-level
  variable or a shared cache, so no other session can reach them. Their names
  are ``<label>@<8 hex digits of the model's fingerprint>``: never a zoo name
  (zoo names have no ``@``), and never one name for two different models, so
  results that pages cache by model name cannot mix two sessions' models.
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

import mechmnistic
from mechmnistic.cache import model_fingerprint
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.models.card import ModelCard

PRIVATE_KEY = "private_models"
PRIVATE_MARK = "@"
#: Private models one session may hold at once (each up to the weights size limit): bounds memory.
MAX_PRIVATE_MODELS = 3


def load_model(name: str) -> MNISTNet:
    """The model ``name``: this session's private import of that name, else the zoo's."""
    private = _private().get(name)
    if private is not None:
        return private
    return _zoo_model(name, load_card(name).weights_sha256)


def load_card(name: str) -> ModelCard:
    private = _private().get(name)
    return private.card if private is not None else _zoo_card(name)


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _zoo_model(name: str, weights_sha256: str) -> MNISTNet:
    # Keyed by the card's weights hash too: a model re-imported under the same name is loaded afresh.
    return _frozen(mechmnistic.load_model(name))


@st.cache_data(ttl=10, show_spinner=False)
def list_models() -> list[str]:
    """The zoo's models (shared by all sessions)."""
    return mechmnistic.list_models()


@st.cache_data(ttl=10, show_spinner=False)
def _zoo_card(name: str) -> ModelCard:
    return mechmnistic.load_card(name)


def zoo_changed() -> None:
    """Forget cached zoo listings and cards after this process wrote into the zoo."""
    list_models.clear()
    _zoo_card.clear()


# -- this session's private models ----------------------------------------------------------------------


def _private() -> dict[str, MNISTNet]:
    # Read-only here: pages may call load_model from inside their cached functions.
    return st.session_state.get(PRIVATE_KEY, {})


def private_model_names() -> list[str]:
    return list(_private())


def is_private_name(name: str) -> bool:
    return PRIVATE_MARK in name


def add_private_model(model: MNISTNet, label: str) -> str:
    """Hold ``model`` (with its card) privately in this session; returns its name."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:40] or "imported"
    name = f"{base}{PRIVATE_MARK}{model_fingerprint(model)[:8]}"
    models = st.session_state.setdefault(PRIVATE_KEY, {})
    if name not in models and len(models) >= MAX_PRIVATE_MODELS:
        raise MechMNISTicError(
            f"this session already holds {MAX_PRIVATE_MODELS} private models; remove one (or save it to the zoo) first"
        )
    model.card.name = name
    models[name] = _frozen(model)
    return name


def remove_private_model(name: str) -> None:
    _private().pop(name, None)


def _frozen(model: MNISTNet) -> MNISTNet:
    for param in model.parameters():
        param.requires_grad_(False)
    return model.eval()


# -- data ---------------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist(split: str) -> mechmnistic.MNIST:
    return mechmnistic.load_mnist(split)


def test_image(index: int) -> np.ndarray:
    return mnist("test").images[index]
