"""Downloads of the numbers behind a view (CSV for tables, NPZ for arrays).

Either pass the data itself, or a function that makes it: then it is only
made when the user clicks (Streamlit's deferred download), so a large array
costs nothing on every re-run of the page. A download never re-runs the page
(``on_click="ignore"``): nothing on it changes, and a re-run would redraw every chart.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st


def csv_button(label: str, table: pd.DataFrame | Callable[[], pd.DataFrame], filename: str, key: str) -> None:
    def payload() -> bytes:
        return (table() if callable(table) else table).to_csv(index=False).encode()

    st.download_button(label, payload if callable(table) else payload(), filename, "text/csv", key=key,
                       on_click="ignore")


def npz_button(label: str, arrays: dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]], filename: str,
               key: str) -> None:
    def payload() -> bytes:
        buffer = io.BytesIO()
        found = arrays() if callable(arrays) else arrays
        np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in found.items()})
        return buffer.getvalue()

    st.download_button(label, payload if callable(arrays) else payload(), filename, "application/octet-stream",
                       key=key, on_click="ignore")
