"""A drawing canvas that gives an MNIST-like 28x28 digit (``preprocess.preprocess_drawing``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.preprocess import CANVAS_SIZE, preprocess_drawing

DEFAULT_STROKE_WIDTH = 18


def canvas_key(key: str, generation: int) -> str:
    """The canvas widget's key for ``draw_digit(key, controls=True)``: Clear starts a new generation."""
    return f"{key}_{generation}"


def _clear(key: str) -> None:
    st.session_state[f"{key}_generation"] = st.session_state.get(f"{key}_generation", 0) + 1


def draw_digit(key: str, prompt: str = "Draw a digit on the canvas.", controls: bool = False) -> np.ndarray | None:
    """Show a canvas; return the drawing as uint8 ``[28, 28]``, or ``None`` (with a note) while it is blank.

    With ``controls``, a stroke-width slider (``<key>_stroke_width``) and a
    Clear button (``<key>_clear``, which swaps in a fresh canvas keyed
    ``canvas_key(key, generation)``) come above the canvas.
    """
    # Imported here: the component needs a running app (see the testing notes).
    from streamlit_drawable_canvas import st_canvas

    width, canvas = DEFAULT_STROKE_WIDTH, key
    if controls:
        columns = st.columns([3, 1], vertical_alignment="bottom")
        width = columns[0].slider("Stroke width", 5, 50, DEFAULT_STROKE_WIDTH, key=f"{key}_stroke_width")
        columns[1].button("Clear", key=f"{key}_clear", on_click=_clear, args=(key,))
        canvas = canvas_key(key, st.session_state.get(f"{key}_generation", 0))
    drawing = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000", height=CANVAS_SIZE,
                        width=CANVAS_SIZE, drawing_mode="freedraw", key=canvas, return_image_data=True)
    try:
        pixels = None if drawing is None else drawing.image_data
        result = None if pixels is None else preprocess_drawing(pixels)
    except (ValueError, OSError) as exc:  # a malformed image from the component
        st.warning(f"The drawing could not be read ({exc}); clear it and draw again.")
        return None
    if result is None:
        st.info(prompt)
        return None
    if result.image is None:
        st.info(result.message)
        return None
    return result.image
