"""Hypothesis & causal scrubbing: test a template-similarity labelling rule against the model.

A hypothesis is a score, s(x) = sum(x * (t - c)), plus a band or threshold
rule. The page shows how the model's predictions fall along s (histogram and a
scatter against a principal component of the layer), how often the rule agrees
with the model, the unit groups the hypothesis implies, and a causal-scrubbing
sweep that resamples every unit of the layer as the hypothesis allows. Every
number comes from ``mechmnistic.analysis.hypothesis`` / ``scrubbing``; the
same settings on the command line (``mechmnistic hypothesis`` / ``scrub``)
print the same numbers.
"""

import json

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis.hypothesis import (
    Hypothesis,
    compare,
    hypothesis_report,
    region_means,
    score_histogram,
)
from mechmnistic.analysis.scrubbing import scrub
from mechmnistic.analysis.units import compress_indices
from mechmnistic.viz.hypothesis import score_histogram_figure, score_scatter_figure, scrub_sweep_figure
from ui import bound, loaders
from ui import circuit_data as data
from ui import hypothesis_controls as controls
from ui.downloads import csv_button, npz_button
from ui.links import ablations_href
from ui.params import set_params

st.title("Hypothesis & causal scrubbing")
st.caption(
    "A hypothesis scores every input by its similarity to a template, **s(x) = sum(x · (t − c))** with pixels "
    "in [0, 1], and labels it by a band or threshold on s. Check it against the model's own predictions, "
    "see which units it implies are detectors, and test it with causal scrubbing."
)

model_name = st.session_state["active_model"]
net = loaders.load_model(model_name)

settings, preview = st.columns([3, 1], gap="large")
with settings:
    layer = controls.layer_choice(net, "Layer for unit groups and scrubbing",
                                  help="The units grouped into dead units and detectors, and scrubbed.")
    template = controls.template_choice(net)
if template is None:
    st.stop()
with preview:
    controls.template_preview(template)
with settings:
    center = controls.center_choice()

train_scores = data.scores(template.image, center, "train")
test_scores = data.scores(template.image, center, "test")
train_predictions = data.predictions(model_name, "train")
test_predictions = data.predictions(model_name, "test")

with settings:
    choice = controls.rule_choice(net.n_classes, lambda: (train_scores, train_predictions))
rule = choice.rule
thresholds = rule.thresholds if rule is not None else ()

st.subheader("Scores by model prediction")
histogram = score_histogram(train_scores, train_predictions, net.n_classes, bins=120)
st.plotly_chart(score_histogram_figure(histogram.centers, histogram.counts, thresholds,
                                       title=f"s(x) over the 60,000 training images, t = {template.label}"),
                key="hyp_histogram")

if rule is None:
    if choice.message:
        st.info(choice.message)
    st.stop()

hypothesis = Hypothesis(template, rule, center)
checks = [compare(rule, train_scores, train_predictions, "train"), compare(rule, test_scores, test_predictions, "test")]
st.markdown(f"**Rule:** {rule.describe()}" + (" — *fitted on the training set*" if choice.fitted else ""))
metrics = st.columns(4)
for column, check in zip(metrics, checks, strict=False):
    column.metric(f"Agreement with the model ({check.split})", f"{check.agreement:.2%}")
metrics[2].metric("Score range (train)", f"{train_scores.min():.2f} … {train_scores.max():.2f}")
counts = pd.DataFrame({
    "region": list(rule.region_names),
    "label": [controls.OTHER if label is None else str(label) for label in rule.region_labels],
    **{f"{c.split} images": list(c.region_counts().values()) for c in checks},
    **{f"{c.split} agreement": list(c.region_agreement().values()) for c in checks},
})
st.dataframe(counts, hide_index=True, key="hyp_counts",
             column_config={f"{s} agreement": st.column_config.NumberColumn(format="percent")
                            for s in ("train", "test")})

st.subheader("Score against a principal component of the layer")
n_components = 5
component = bound.select(st, "Component", list(range(1, n_components + 1)), "hyp_component", "component", 1,
                         help="A tight curve means the layer's geometry follows the score.")
projection, explained = data.pca(model_name, layer, n_components)
st.plotly_chart(
    score_scatter_figure(train_scores, projection[:, component - 1], train_predictions, thresholds,
                         f"{layer} PC{component} ({explained[component - 1]:.1%} of variance)"),
    key="hyp_scatter")
st.caption("Principal components of the layer's activations over the training set, as the Activation geometry "
           "page computes them (each component's sign makes its largest loading positive).")

st.subheader(f"Unit groups of {layer}")
values = data.activations(model_name, layer, "train")
groups = controls.groups_choice(values, checks[0].regions, rule)
if groups is not None:
    means = region_means(values, checks[0].regions, len(rule.region_names))
    st.dataframe(pd.DataFrame({"group": list(groups), "units": [len(g) for g in groups.values()],
                               "which": [compress_indices(g) for g in groups.values()]}),
                 hide_index=True, key="hyp_groups_table")
    unit_group = np.empty(values.shape[1], dtype=object)
    for name, indices in groups.items():
        unit_group[indices] = name
    per_unit = pd.DataFrame({"unit": np.arange(values.shape[1]), "group": unit_group,
                             **{f"mean in {r}": means[i] for i, r in enumerate(rule.region_names)}})
    csv_button("Download units with their groups (CSV)", per_unit, f"{model_name}-{layer}-groups.csv",
               key="hyp_download_units")

report = hypothesis_report(model_name, layer, hypothesis, checks, choice.fitted, groups)
downloads = st.columns(2)
with downloads[0]:
    st.download_button("Download the numbers (JSON, as the CLI prints them)", json.dumps(report, indent=1),
                       f"{model_name}-hypothesis.json", "application/json", key="hyp_download_json", on_click="ignore")
with downloads[1]:
    npz_button("Download scores and predictions (NPZ)",
               {"train_scores": train_scores, "train_predictions": train_predictions, "test_scores": test_scores,
                "test_predictions": test_predictions, "template": template.image},
               f"{model_name}-scores.npz", key="hyp_download_npz")
band = f"--band {rule.low:.6g} {rule.high:.6g}" if rule.kind == "band" else f"--threshold {rule.threshold:.6g}"
st.markdown(f"[Ablate these groups and attribute the logits to them →]"
            f"({ablations_href(model_name, **controls.hypothesis_params())})")
st.code(f"mechmnistic hypothesis {model_name} --layer {layer} --template {template.source} --center {center:g} "
        f"{band}{' --invert' if template.inverted else ''} --json", language="bash")

st.subheader("Causal scrubbing")
st.caption(
    "Every unit of the layer is resampled at once, as the hypothesis allows: a dead unit from a random image; "
    "a unit of region R, on an input in R, from a random image whose score is within the tolerance (a fraction "
    "of the score range) of the input's; on an input outside R, from a random image outside R. All units of a "
    "group share one source image per input. The baseline resamples every group from random images."
)
if groups is None:
    st.info("Fix the unit groups above to run causal scrubbing.")
    st.stop()
settings = controls.scrub_settings()
if settings is None:
    st.stop()
run_key = (model_name, layer, template.label, template.image.tobytes(), center, repr(rule), settings,
           tuple((name, idx.tobytes()) for name, idx in groups.items()))
results = st.session_state.setdefault("hyp_scrub_results", {})
clicked = st.button("Run causal scrubbing", key="hyp_run_scrub", type="primary")
# ?scrub=1 (set by a run) makes a shared link show the sweep without a click.
if clicked or (st.query_params.get("scrub") == "1" and run_key not in results):
    progress = st.progress(0.0, text="Scrubbing…")
    result = scrub(net, layer, hypothesis, groups, settings.tolerances, settings.seed, settings.split,
                   progress=lambda done, total: progress.progress(done / total, text=f"Scrubbing: step {done} of "
                                                                                     f"{total}"),
                   scores=train_scores if settings.split == "train" else test_scores)
    progress.empty()
    results.clear()  # one result: the one the settings above describe
    results[run_key] = result
    set_params(scrub="1")
result = results.get(run_key)
if result is None:
    set_params(scrub=None)
    st.info("Press **Run causal scrubbing** to resample the layer at each tolerance.")
    st.stop()
agreement = checks[0 if settings.split == "train" else 1].agreement
st.plotly_chart(scrub_sweep_figure(result.tolerances, result.preserved, result.random_baseline, agreement,
                                   title=f"Causal scrubbing of {layer} on {result.n_images:,} {settings.split} images"),
                key="hyp_scrub_plot")
sweep = pd.DataFrame({"tolerance": result.tolerances, "predictions preserved": result.preserved,
                      "inputs with no other image that close": result.self_fraction})
st.dataframe(sweep, hide_index=True, key="hyp_scrub_table",
             column_config={"predictions preserved": st.column_config.NumberColumn(format="percent"),
                            "inputs with no other image that close": st.column_config.NumberColumn(format="percent")})
st.markdown(f"Every group resampled from random images: **{result.random_baseline:.2%}** of predictions preserved.")
csv_button("Download the sweep (CSV)", sweep.assign(random_baseline=result.random_baseline),
           f"{model_name}-{layer}-scrubbing.csv", key="hyp_download_sweep")
