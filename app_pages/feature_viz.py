"""Feature visualisation: inputs that maximise a layer's units or directions, beside their nearest training images."""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis import feature_viz as fv
from mechmnistic.analysis import geometry as g
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz.feature_viz import feature_grid
from ui import geometry as data
from ui import loaders
from ui.downloads import csv_button, npz_button
from ui.links import CLASSIFY_PAGE, NEURON_PAGE, classify_href, neuron_href
from ui.params import choice_param, float_param, int_param, set_params, text_param, url_bound

TARGETS = {"units": "units", "directions": "directions (PCA, logit difference, templates, fits)"}
INITS = {"zeros": "zeros", "noise": "uniform noise", "example": "a training image"}

st.title("Feature visualisation")
st.write(
    "For each unit (or direction) of a layer, the input that maximises it, found by gradient ascent on the pixels "
    "with Adam; every target is optimised at once, in one batch. Beside each result: the training images most "
    "similar to it (cosine similarity of the pixels). Click a result to open its unit in the Neuron Explorer, or a "
    "training image to open it in the Classification Explorer."
)

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
layers = list(model.layer_names)
if st.session_state.get("features_model", model_name) != model_name:
    set_params(layer=None, units=None, dirs=None)
st.session_state["features_model"] = model_name

layer_column, target_column = st.columns([1, 2])
default_layer = layers[-2] if len(layers) > 1 else layers[0]
on_layer = url_bound("features_layer", "layer", choice_param("layer", layers, default_layer))
layer = layer_column.selectbox("Layer", layers, key="features_layer", on_change=on_layer)
on_target = url_bound("features_target", "target", choice_param("target", list(TARGETS), "units"))
target = target_column.radio("Maximise", list(TARGETS), format_func=TARGETS.get, horizontal=True,
                             key="features_target", on_change=on_target)
if target == "units":
    on_units = url_bound("features_units", "units", text_param("units", "all", 200))
    units_text = st.text_input("Units", key="features_units", on_change=on_units,
                               help="all, or a list with ranges: 0-9, 17, 42")
else:
    on_dirs = url_bound("features_dirs", "dirs", text_param("dirs", "logit:1-0;pc1;pc2"))
    dirs_text = st.text_input("Directions (separate with ;)", key="features_dirs", on_change=on_dirs,
                              help=g.SPEC_HELP)

with st.expander("Optimisation settings", expanded=False):
    columns = st.columns(4)
    on_steps = url_bound("features_steps", "steps", int_param("steps", 1, 1000, 100))
    steps = columns[0].number_input("Adam steps", 1, 1000, key="features_steps", on_change=on_steps)
    on_lr = url_bound("features_lr", "lr", float_param("lr", 0.05, 1e-4, 1.0))
    lr = columns[1].number_input("Learning rate", 1e-4, 1.0, key="features_lr", on_change=on_lr, format="%.4f")
    on_init = url_bound("features_init", "init", choice_param("init", list(INITS), "zeros"))
    init = columns[2].selectbox("Start from", list(INITS), format_func=INITS.get, key="features_init",
                                on_change=on_init)
    on_start = url_bound("features_start", "start", int_param("start", 0, 59_999, 6))
    start = columns[3].number_input("Training image", 0, 59_999, key="features_start", on_change=on_start,
                                    disabled=init != "example")
    on_l2 = url_bound("features_l2", "l2", float_param("l2", 0.0, 0.0, 100.0))
    l2 = columns[0].number_input("L2 penalty", 0.0, 100.0, key="features_l2", on_change=on_l2, format="%.4f")
    on_blur = url_bound("features_blur", "blur", float_param("blur", 0.0, 0.0, 5.0))
    blur = columns[1].number_input("Blur (pixels)", 0.0, 5.0, key="features_blur", on_change=on_blur, step=0.25)
    on_jitter = url_bound("features_jitter", "jitter", int_param("jitter", 0, 8, 0))
    jitter = columns[2].number_input("Jitter (pixels)", 0, 8, key="features_jitter", on_change=on_jitter)
    on_seed = url_bound("features_seed", "seed", int_param("seed", 0, 2**31 - 1, 0))
    seed = columns[3].number_input("Seed", 0, 2**31 - 1, key="features_seed", on_change=on_seed)
    on_clamp = url_bound("features_clamp", "clamp", choice_param("clamp", ["1", "0"], "1"))
    clamp = columns[0].radio("Pixels", ["1", "0"], key="features_clamp", on_change=on_clamp, horizontal=True,
                             format_func={"1": "clamped to [0, 1]", "0": "free"}.get)
    on_nearest = url_bound("features_nearest", "nearest", int_param("nearest", 0, 10, 3))
    nearest_k = columns[1].number_input("Nearest training images", 0, 10, key="features_nearest",
                                        on_change=on_nearest)
    on_columns = url_bound("features_columns", "columns", int_param("columns", 1, 12, 5))
    grid_columns = columns[2].number_input("Results per row", 1, 12, key="features_columns", on_change=on_columns)

try:
    config = fv.FeatureVizConfig(steps=int(steps), lr=float(lr), init=f"train:{start}" if init == "example" else init,
                                 l2=float(l2), blur=float(blur), jitter=int(jitter), clamp=clamp == "1",
                                 seed=int(seed))
    if target == "units":
        result = data.unit_visualization(model_name, layer, config)
        chosen = data.parse_units(units_text, len(result.names))
        result = result.subset(chosen)
    else:
        specs = tuple(s.strip() for s in dirs_text.split(";") if s.strip())
        if not specs:
            st.info("Type at least one direction, e.g. `logit:1-0;pc1`.")
            st.stop()
        result = data.direction_visualization(model_name, layer, specs, config)
except MechMNISTicError as exc:
    st.error(str(exc))
    st.stop()

nearest = data.nearest_examples(result.images, nearest_k) if nearest_k else None
train_images = loaders.mnist("train").images
st.caption(
    f"{len(result.names)} result(s), {config.steps} Adam steps (learning rate {config.lr:g}) from {config.init}; "
    + ("pixels clamped to [0, 1] after every step, shown in greys (ink dark)." if result.clamped else
       "pixels NOT clamped: shown on a diverging scale shared by all results (blue negative, white 0, red positive).")
    + " Nearest: cosine similarity of the flattened pixels."
)
grid = feature_grid(
    result.images, result.names, result.clamped, result.units,
    nearest_images=train_images[nearest.indices] if nearest else None,
    nearest_indices=nearest.indices if nearest else None,
    nearest_similarity=nearest.similarity if nearest else None,
    columns=int(grid_columns),
)
event = st.plotly_chart(grid, key="features_grid", on_select="rerun", selection_mode="points", width="content",
                        config={"displayModeBar": False})
if (clicked := data.clicked_customdata(event)) is not None:
    kind, value = int(clicked[0]), int(clicked[1])
    if kind == 1:
        data.open_page(CLASSIFY_PAGE, f"Open training image #{value} in the Classification Explorer",
                       model=model_name, train_index=value)
    elif value >= 0:
        data.open_page(NEURON_PAGE, f"Open {layer} unit {value} in the Neuron Explorer",
                       model=model_name, layer=layer, neuron=value)

rows = []
for k, name in enumerate(result.names):
    row = {"target": name, "objective at start": result.initial[k], "objective at end": result.final[k]}
    if result.units[k] >= 0:
        row["Neuron Explorer"] = neuron_href(model_name, layer, result.units[k])
    if nearest:
        row["nearest (similarity)"] = ", ".join(
            f"#{i} ({s:.2f})" for i, s in zip(nearest.indices[k], nearest.similarity[k], strict=True))
        row["closest image"] = classify_href(model_name, train_index=int(nearest.indices[k, 0]))
    rows.append(row)
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, key="features_table", column_config={
    "Neuron Explorer": st.column_config.LinkColumn(display_text="open unit"),
    "closest image": st.column_config.LinkColumn(display_text="open image"),
})
download_csv, download_npz = st.columns(2)
with download_csv:
    csv_button("Objectives and nearest images (CSV)",
               table.drop(columns=[c for c in ("Neuron Explorer", "closest image") if c in table]),
               f"{model_name}-{layer}-features.csv", "features_dl_csv")
with download_npz:
    arrays = {"images": result.images, "objective_start": result.initial, "objective_end": result.final,
              "history": result.history, "names": np.array(result.names)}
    if nearest:
        arrays |= {"nearest_indices": nearest.indices, "nearest_similarity": nearest.similarity}
    npz_button("Images and history (NPZ)", arrays, f"{model_name}-{layer}-features.npz", "features_dl_npz")
