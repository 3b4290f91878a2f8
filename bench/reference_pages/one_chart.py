"""A reference page for the browser benchmarks: the bare page plus one three-bar Plotly chart.

Its deep-link time is the least a page with any Plotly figure can cost on the machine: Streamlit loads and
evaluates its Plotly bundle in every new browser tab before it draws the first chart.
"""

import plotly.graph_objects as go
import streamlit as st

st.title("Reference page")
st.plotly_chart(go.Figure(go.Bar(x=[1, 2, 3], y=[1, 3, 2])))
