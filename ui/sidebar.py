"""The sidebar shared by every page: the model picker, kept in step with ``?model=``."""

from __future__ import annotations

import streamlit as st

from mechmnistic.models import DEFAULT_MODEL

from . import loaders
from .params import choice_param, set_params

MODEL_KEY = "model"


def model_picker() -> str:
    """Show the model selectbox and return the chosen zoo name.

    The URL wins when it names a valid model (a deep link); otherwise the
    widget keeps its value across pages and writes it back into the URL.
    """
    names = loaders.list_models()
    if not names:
        st.error("The model zoo is empty: train one with `mechmnistic train --recipe mlp-1x64`.")
        st.stop()
    fallback = st.session_state.get(MODEL_KEY)
    if fallback not in names:
        fallback = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
    param = choice_param("model", names, fallback)
    if param.problem:
        st.warning(param.problem)
    st.session_state[MODEL_KEY] = param.value
    st.sidebar.selectbox(
        "Model",
        names,
        key=MODEL_KEY,
        help="Every page analyses this model. Bundled models and imported ones are listed.",
        on_change=lambda: set_params(model=st.session_state[MODEL_KEY]),
    )
    name = st.session_state[MODEL_KEY]
    card = loaders.load_card(name)
    st.sidebar.caption(card.config.describe())
    set_params(model=name)
    return name
