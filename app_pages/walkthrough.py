"""Walkthrough: find the EIS VII challenge network's hidden labelling function with the app's own tools.

Seven steps on ``challenge-cnn``, each showing what the full tool computes with
the same settings and linking to it: the task, PCA of ``fc1``, feature
visualisation, the clue as a template, a fitted band, unit groups and causal
scrubbing, and (only when asked) the answer from the model card. Every number
comes from ``mechmnistic.analysis.walkthrough`` and the modules it names.
"""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis import geometry as g
from mechmnistic.analysis import walkthrough as w
from mechmnistic.analysis.hypothesis import score_histogram
from mechmnistic.analysis.units import compress_indices
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz.common import digit_figure
from mechmnistic.viz.feature_viz import feature_grid
from mechmnistic.viz.geometry import pca_scatter
from mechmnistic.viz.hypothesis import score_histogram_figure, score_scatter_figure, scrub_sweep_figure
from ui import circuit_data, loaders
from ui import geometry as geo
from ui import walkthrough_data as data
from ui.links import ablations_href, dictionaries_href, features_href, geometry_href, hypothesis_href

REVEALED = "walkthrough_revealed"
HYPOTHESIS = {"layer": w.LAYER, "template": w.TEMPLATE, "center": w.CENTER}

st.title("Walkthrough: the challenge")
st.write(
    f"`{w.MODEL}` has the architecture of the EIS VII interpretability challenge's MNIST CNN and was trained on a "
    "secret rule that gives every image one of two labels. This page retraces how that rule was found, step by "
    "step, with the app's own tools; every step shows real results and links to the full tool with the same "
    "settings. The answer stays hidden until you ask for it at the end."
)
if w.MODEL not in loaders.list_models():
    st.error(f"`{w.MODEL}` is not in this model zoo, so there is nothing to walk through. It ships with "
             "MechMNISTic; restore `models/challenge-cnn/` to use this page.")
    st.stop()
active = st.session_state.get("active_model")
if active != w.MODEL:
    st.info(f"This page always studies `{w.MODEL}`; the model picked in the sidebar (`{active}`) is not used here. "
            f"The links below open the other pages on `{w.MODEL}`.")

model = loaders.load_model(w.MODEL)
card = loaders.load_card(w.MODEL)
train_predictions = circuit_data.predictions(w.MODEL, "train")
test_predictions = circuit_data.predictions(w.MODEL, "test")

# ------------------------------------------------------------------------------------------------ 1
st.header("1. The model and the task")
st.write(f"{card.config.describe()}. It outputs two classes; nothing tells us what they mean. The challenge's hints: "
         "the labels are binary, the rule is simple, and one clue image (training image 6).")
fractions = st.columns(4)
for c in range(model.n_classes):
    fractions[c].metric(f"Predicted class {c} (train)", f"{np.mean(train_predictions == c):.2%}")
    fractions[2 + c].metric(f"Predicted class {c} (test)", f"{np.mean(test_predictions == c):.2%}")
if "test_accuracy" in card.metrics:
    st.caption(f"The model's accuracy on its own hidden test labels: {card.metrics['test_accuracy']:.2%}. From here on "
               "we study what the model predicts, never those labels.")

# ------------------------------------------------------------------------------------------------ 2
st.header(f"2. The geometry of {w.LAYER}")
fit = geo.layer_pca(w.MODEL, w.LAYER)
logit = geo.direction(w.MODEL, w.LAYER, w.LOGIT_DIRECTION)
plane = (0, 1)
labels = loaders.mnist("train").labels
customdata = np.stack([np.arange(len(labels)), labels, train_predictions], axis=1)
st.plotly_chart(
    pca_scatter(fit.scores[:, :2], customdata, train_predictions, "prediction", ["class 0", "class 1"],
                [g.plane_arrow(fit, logit, plane, g.arrow_scale(fit, plane))], (fit.axis_title(0), fit.axis_title(1)),
                height=520),
    key="walkthrough_pca")
st.write(
    f"Every training image as a point of {w.LAYER}'s 200-dimensional activation space, on its first two principal "
    f"components ({fit.pca.explained_variance_ratio_[:2].sum():.1%} of the variance). The points lie along two "
    "arms of a V; class 0 sits where the arms meet and class 1 along both arms. The arrow is the logit-difference "
    f"direction ({logit.name}), the difference of the output weight rows: it points from the corner out, so "
    "*either* arm means class 1."
)
st.markdown(f"[Open in Activation geometry →]"
            f"({geometry_href(w.MODEL, layer=w.LAYER, color='prediction', dirs=w.LOGIT_DIRECTION)})")

# ------------------------------------------------------------------------------------------------ 3
st.header("3. What the arms' units look for")
positive, negative = w.arm_units(fit)
units = [int(u) for u in (*positive, *negative)]
unit_images = geo.unit_visualization(w.MODEL, w.LAYER, w.FEATURE_CONFIG).subset(units)
direction_images = geo.direction_visualization(w.MODEL, w.LAYER, (w.LOGIT_DIRECTION,), w.FEATURE_CONFIG)
images = np.concatenate([unit_images.images, direction_images.images])
names = [f"{name} (PC1 {'+' if k < len(positive) else '−'})" for k, name in enumerate(unit_images.names)]
names.append(f"direction {logit.name}")
nearest = geo.nearest_examples(images, 2)
st.plotly_chart(
    feature_grid(images, names, True, [*units, -1], nearest_images=loaders.mnist("train").images[nearest.indices],
                 nearest_indices=nearest.indices, nearest_similarity=nearest.similarity, columns=3),
    key="walkthrough_features", width="content", config={"displayModeBar": False})
st.write(
    f"Inputs that maximise the three units loading most on PC1 either way (rows 1 and 2) and the logit-difference "
    f"direction (row 3), by {w.FEATURE_CONFIG.steps} Adam steps from a blank image, each followed by its two most "
    "similar training images. One arm's units want a stroke like a \"1\"; the other's want the *opposite*: ink "
    "everywhere except where a \"1\" would be (an \"anti-1\"). From a blank image the logit-difference direction "
    "climbs the \"1\" arm, one of its two ways up. Hover a tile for its name."
)
st.markdown(
    f"[All 200 units in Feature visualisation →]({features_href(w.MODEL, layer=w.LAYER, target='units', units='all')})"
    f" · [the logit-difference direction →]"
    f"({features_href(w.MODEL, layer=w.LAYER, target='directions', dirs=w.LOGIT_DIRECTION)})"
)

# ------------------------------------------------------------------------------------------------ 4
st.header("4. The clue as a template")
fitted = data.band()
picture, text = st.columns([1, 3])
picture.plotly_chart(digit_figure(fitted.template.image, title=f"t = {w.TEMPLATE}", height=220),
                     key="walkthrough_template", config={"displayModeBar": False})
text.write(
    "The clue is a \"1\", so score every image by how much it looks like the clue rather than its inverse: "
    f"**s(x) = sum(x · (t − {w.CENTER}))** with pixels in [0, 1], which is the similarity to t minus the "
    "similarity to 1 − t, halved. Below: s over the training set, split by what the model predicts, and s "
    "against PC1. Class 0 fills the middle of the score range, class 1 both ends, and PC1 follows s closely: "
    "the network computes something very like this score."
)
histogram = score_histogram(fitted.train.scores, fitted.train.predictions, model.n_classes, bins=120)
st.plotly_chart(score_histogram_figure(histogram.centers, histogram.counts, (),
                                       title=f"s(x) over the 60,000 training images, t = {w.TEMPLATE}"),
                key="walkthrough_histogram")
st.plotly_chart(score_scatter_figure(fitted.train.scores, fit.scores[:, 0], fitted.train.predictions, (),
                                     f"{w.LAYER} {fit.axis_title(0)}"), key="walkthrough_scatter")
st.markdown(f"[Open in Hypothesis & scrubbing →]({hypothesis_href(w.MODEL, **HYPOTHESIS)})"
            f" · [colour the PCA by s →]({geometry_href(w.MODEL, layer=w.LAYER, color='score', template=w.TEMPLATE)})")

# ------------------------------------------------------------------------------------------------ 5
st.header("5. A band fitted to the model")
rule = fitted.rule
st.write("Class 0 inside a band of s, class 1 outside: the band's edges are fitted, by an exact search over the "
         "sorted training scores, to agree as often as possible with the model's own predictions.")
band_metrics = st.columns(3)
band_metrics[0].metric("Fitted band", f"{rule.low:.4g} < s < {rule.high:.4g}")
band_metrics[1].metric("Agreement with the model (train)", f"{fitted.train.agreement:.2%}")
band_metrics[2].metric("Agreement with the model (test)", f"{fitted.test.agreement:.2%}")
st.plotly_chart(score_histogram_figure(histogram.centers, histogram.counts, rule.thresholds,
                                       title="The fitted band's edges on the histogram"),
                key="walkthrough_band_histogram")
counts = pd.DataFrame({"region": list(rule.region_names),
                       "rule says": [f"class {label}" for label in rule.region_labels],
                       **{f"{c.split} images": list(c.region_counts().values()) for c in (fitted.train, fitted.test)},
                       **{f"{c.split} agreement": list(c.region_agreement().values())
                          for c in (fitted.train, fitted.test)}})
st.dataframe(counts, hide_index=True, key="walkthrough_regions",
             column_config={f"{split} agreement": st.column_config.NumberColumn(format="percent")
                            for split in ("train", "test")})
st.markdown(f"[Fit it in Hypothesis & scrubbing →]({hypothesis_href(w.MODEL, **HYPOTHESIS, rule='band', fit=1)})")

# ------------------------------------------------------------------------------------------------ 6
st.header("6. Unit groups and causal scrubbing")
result = data.scrub_sweep(fitted)
at_1e3 = result.preserved[list(w.TOLERANCES).index(1e-3)]
st.write(
    f"The band implies three kinds of {w.LAYER} unit: dead ones (never fire on the training set), detectors of the "
    "region below the band (anti-1) and of the region above it (1), each unit going where its mean activation is "
    "highest. Causal scrubbing then resamples *every* unit at once as that story allows: a dead unit from any image; "
    "a detector, on an input in its region, from an image whose score is within a tolerance of the input's, and "
    "elsewhere from any image outside its region. If the story is right, the model's predictions survive."
)
groups_column, sweep_column = st.columns([1, 2])
groups_column.dataframe(pd.DataFrame({"group": list(result.groups), "units": [len(u) for u in result.groups.values()],
                                      "which": [compress_indices(u) for u in result.groups.values()]}),
                        hide_index=True, key="walkthrough_groups")
sweep_column.plotly_chart(scrub_sweep_figure(result.tolerances, result.preserved, result.random_baseline,
                                             fitted.train.agreement,
                                             title=f"Causal scrubbing of {w.LAYER} on 60,000 training images"),
                          key="walkthrough_sweep")
st.metric("Predictions preserved at tolerance 0.001", f"{at_1e3:.2%}",
          delta=f"{100 * (at_1e3 - result.random_baseline):+.1f} points over resampling every unit from random images "
                f"({result.random_baseline:.2%})")
tolerances = ",".join(f"{t:g}" for t in w.TOLERANCES)
st.markdown(
    f"[Run the sweep in Hypothesis & scrubbing →]"
    f"({hypothesis_href(w.MODEL, **HYPOTHESIS, rule='band', fit=1, tol=tolerances, seed=w.SEED, scrub=1)})"
    f" · [ablate the groups →]({ablations_href(w.MODEL, **HYPOTHESIS, rule='band', fit=1)})"
)

# ------------------------------------------------------------------------------------------------ 7
st.header("7. Dictionary features: cleaner detectors?")
neurons_split, latents_split = data.separation(fitted)
st.write(
    f"A dictionary is another basis for {w.LAYER}: a sparse autoencoder trained on its activations "
    f"({w.DICTIONARY}, 512 TopK latents). Do its latents split the band's two detectors (anti-1 below the band, 1 "
    "above it) more cleanly than the neurons do? Measured on the same band, the same way for both:"
)
st.dataframe(pd.DataFrame({
    "": ["units that fire", "anti-1 detectors (below)", "1 detectors (above)",
         "cross-talk: the detectors' firing on the other's region", "units with ≥ 95% of their firing in one region",
         "units making up 90% of |logit 1 − logit 0| per test image (mean)"],
    "neurons": [f"{neurons_split.alive} of {neurons_split.units}", str(neurons_split.below), str(neurons_split.above),
                f"{neurons_split.cross_talk:.1%}", str(neurons_split.pure), f"{neurons_split.units_for_90:.1f}"],
    "latents": [f"{latents_split.alive} of {latents_split.units}", str(latents_split.below), str(latents_split.above),
                f"{latents_split.cross_talk:.1%}", str(latents_split.pure), f"{latents_split.units_for_90:.1f}"],
}), hide_index=True, key="walkthrough_dictionary")
cleaner = latents_split.cross_talk < neurons_split.cross_talk
st.write(
    ("Yes, by these measures: " if cleaner else "Not by these measures: ")
    + f"the latents' detectors put {latents_split.cross_talk:.1%} of their firing on the other region, the neurons' "
    f"{neurons_split.cross_talk:.1%}, and {latents_split.units_for_90:.1f} latents carry 90% of a logit difference "
    f"where {neurons_split.units_for_90:.1f} neurons do. The dictionary has more live units, which flatters the "
    "count of pure units; the cross-talk and the units per logit difference do not reward having more. "
    f"[Browse the latents →]({dictionaries_href(w.MODEL, w.LAYER, w.DICTIONARY)})"
)

# ------------------------------------------------------------------------------------------------ 8
st.header("8. The answer")
if not st.session_state.get(REVEALED):
    st.write("The model card records the rule the labels were made with. Compare it with the band above only when "
             "you are ready.")
    if st.button("Reveal the answer", key="walkthrough_reveal", type="primary"):
        st.session_state[REVEALED] = True
        st.rerun()
    st.stop()

try:
    answer = w.reveal(model, fitted)
except MechMNISTicError as exc:
    st.error(str(exc))
    st.stop()
st.success(answer.label_function.get("note") or answer.rule.describe())
st.dataframe(pd.DataFrame({
    "edge": [e.name for e in answer.edges], "hidden": [e.true for e in answer.edges],
    "fitted": [e.fitted for e in answer.edges], "fitted − hidden": [e.difference for e in answer.edges],
    "miss (% of the hidden edge)": [100 * e.relative for e in answer.edges],
}), hide_index=True, key="walkthrough_answer",
    column_config={"miss (% of the hidden edge)": st.column_config.NumberColumn(format="%.2f%%")})
st.write(
    f"The hidden rule labels the test set as the model predicts it {answer.test.agreement:.2%} of the time (the "
    f"model's accuracy); the fitted band, {fitted.test.agreement:.2%}. The band found from the model alone lies "
    f"within {100 * max(e.relative for e in answer.edges):.1f}% of each hidden edge."
)
if st.button("Hide the answer again", key="walkthrough_hide"):
    st.session_state[REVEALED] = False
    st.rerun()
