"""A drawing canvas that gives an MNIST-like 28x28 digit (``preprocess.preprocess_drawing``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mechmnistic.preprocess import preprocess_drawing


def draw_digit(key: str, prompt: str = "Draw a digit on the canvas.") -> np.ndarray | None:
    """Show a canvas; return the drawing as uint8 ``[28, 28]``, or ``None`` (with a note) while it is blank."""
    # Imported here: the component needs a running app (see the testing notes).
    from streamlit_drawable_canvas import st_canvas

    drawing = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", height=280,
                        width=280, drawing_mode="freedraw", key=key, return_image_data=True)
    if drawing is None or drawing.image_data is None:
        st.info(prompt)
        return None
    result = preprocess_drawing(drawing.image_data)
    if result.image is None:
        st.info(result.message)
        return None
    return result.image
