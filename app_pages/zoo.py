"""Model zoo: every model with its card (hidden label functions stay hidden)."""


import pandas as pd
import streamlit as st

from mechmnistic.labels import label_function_summary
from ui import loaders

st.title("Model zoo")
st.write(
    "Every model MechMNISTic can analyse: the bundled ones, trained here from their cards, "
    "and any you import. Pick one in the sidebar; every page then works on it."
)

rows = []
for name in loaders.list_models():
    card = loaders.load_card(name)
    rows.append(
        {
            "model": name,
            "architecture": card.config.describe(),
            "trained on": label_function_summary(card.label_function),
            "test accuracy": card.metrics.get("test_accuracy"),
            "parameters": card.metrics.get("parameter_count"),
            "source": card.source,
        }
    )
table = pd.DataFrame(rows)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={"test accuracy": st.column_config.NumberColumn(format="%.4f")},
)
st.download_button("Download this table (CSV)", table.to_csv(index=False), "mechmnistic-models.csv", "text/csv",
                   on_click="ignore")

active = st.session_state["active_model"]
card = loaders.load_card(active)
st.subheader(f"Card: {active}")
st.write(card.description or "No description.")
shown = card.to_dict()
if card.label_function.get("hidden"):
    shown["label_function"] = {"hidden": True, "summary": label_function_summary(card.label_function)}
    shown["training"] = {k: v for k, v in shown["training"].items() if k != "label_function"}
st.json(shown, expanded=1)
st.caption("`mechmnistic card NAME --json` prints the full card.")
