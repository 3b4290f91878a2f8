"""Plotly figure builders: arrays in, ``go.Figure`` out; they compute nothing an analysis could not."""
