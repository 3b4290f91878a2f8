"""Downloads of the numbers behind a view (CSV for tables, NPZ for arrays)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import streamlit as st


def csv_button(label: str, table: pd.DataFrame, filename: str, key: str) -> None:
    st.download_button(label, table.to_csv(index=False).encode(), filename, "text/csv", key=key)


def npz_button(label: str, arrays: dict[str, np.ndarray], filename: str, key: str) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    st.download_button(label, buffer.getvalue(), filename, "application/octet-stream", key=key)
