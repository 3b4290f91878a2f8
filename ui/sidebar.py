"""The sidebar shared by every page: the model picker, kept in step with ``?model=``."""

from __future__ import annotations

import streamlit as st

from mechmnistic.models import DEFAULT_MODEL

from . import loaders
from .params import choice_param, set_params

MODEL_KEY = "model"


def model_picker() -> str:
    """Show the model selectbox and return the chosen model's name.

    It lists the zoo's models and this session's private imports (marked as
    such). The URL wins when it names one of them (a deep link); otherwise the
    widget keeps its value across pages and writes it back into the URL.
    """
    names = loaders.list_models() + loaders.private_model_names()
    if not names:
        st.error("The model zoo is empty: train one with `mechmnistic train --recipe mlp-1x64`.")
        st.stop()
    _explain_other_sessions_private_model(names)
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
        format_func=_label,
        help="Every page analyses this model. The zoo's models are listed, and models you imported in this "
        "session (🔒 private: nobody else sees them unless you save them into the zoo).",
        on_change=lambda: set_params(model=st.session_state[MODEL_KEY]),
    )
    name = st.session_state[MODEL_KEY]
    card = loaders.load_card(name)
    st.sidebar.caption(card.config.describe())
    set_params(model=name)
    return name


def _label(name: str) -> str:
    return f"🔒 {name} (private)" if loaders.is_private_name(name) else name


def _explain_other_sessions_private_model(names: list[str]) -> None:
    """A deep link to a private model of another session: say why it is not here, then use the default."""
    raw = st.query_params.get("model")
    if raw and loaders.is_private_name(raw) and raw not in names:
        st.warning(
            f"`model` {raw[:80]!r} was imported privately in another browser session (or an earlier visit): "
            "private models are visible only in the session that imported them. To share a model, save it into "
            "the model zoo. Showing the default model instead."
        )
        del st.query_params["model"]
