"""One setting for every Plotly figure the app shows, applied once at start-up (``app.py``)."""

from __future__ import annotations

import plotly.io as pio
import streamlit as st  # noqa: F401  (registers the "streamlit" template that st.plotly_chart themes)


def let_tick_labels_overflow() -> None:
    """Draw every tick label, even one that would reach past the figure's edge.

    For linear axes Plotly's default hides such labels, and to find them it measures every label against
    all the others as it places each one: quadratic in the labels, about a quarter of a chart's drawing
    time in Chromium here. Our figures reserve margins for their labels, so none reaches past the edge.
    Figures built later take the template that Streamlit makes Plotly's default.
    """
    layout = pio.templates["streamlit"].layout
    layout.xaxis.ticklabeloverflow = "allow"
    layout.yaxis.ticklabeloverflow = "allow"
