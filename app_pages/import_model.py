"""Import a model: upload a state dict, see what was recognised, answer what the weights cannot tell,
analyse it privately in this session, and save it into the model zoo only on purpose."""

from pathlib import Path

import pandas as pd
import streamlit as st

from mechmnistic.errors import MechMNISTicError
from mechmnistic.models.importer import (
    build_imported,
    ensure_name_free,
    read_for_import,
    save_imported,
    suggest_normalization,
)
from mechmnistic.models.weights_io import MAX_WEIGHTS_BYTES, PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES
from ui import loaders

LIMIT_MIB = MAX_WEIGHTS_BYTES // 2**20
NORMALIZATION_CHOICES = {
    "none": "none: pixels in [0, 1]",
    "mnist": "mnist: (x − 0.1307) / 0.3081",
    "custom": "custom mean and std",
}
FLASH_KEY = "import_flash"
#: Every file type the importer reads (the CLI takes the same), so the page refuses none of them.
WEIGHTS_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES


def show_recognised(plan) -> None:
    st.subheader("What was recognised")
    if plan.recognised:
        st.success(f"Recognised as {plan.recognised}: there is nothing to ask.")
    st.markdown(f"**{plan.summary()}**  \nNaming scheme: {plan.naming}. Layers keep the names your code gives them.")
    rows = [
        {"layer": layer.name,
         "type": f"Conv2d {layer.kernel_size}x{layer.kernel_size}" if layer.kind == "conv" else "Linear",
         "in": layer.in_size, "out": layer.out_size, "unit": "channels" if layer.kind == "conv" else "features"}
        for layer in plan.layers
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.markdown("\n".join(f"- {note[0].upper()}{note[1:]}." for note in plan.notes))


def normalisation_scores(plan, state) -> dict[str, float]:
    """Accuracy under each normalisation, computed once per uploaded file in this session."""
    memo = st.session_state.get("import_scores")
    if not memo or memo[0] != plan.file_sha256:
        with st.spinner("Trying each normalisation on 1,000 test digits…"):
            memo = (plan.file_sha256, suggest_normalization(plan, state))
        st.session_state["import_scores"] = memo
    return memo[1]


def ask(plan, state) -> dict | None:
    """Widgets for the plan's questions; their answers, or None while they cannot be given."""
    keys = {question.key for question in plan.questions}
    answers: dict = {}
    if not keys:
        return answers
    st.subheader("What the weights cannot tell")
    if "normalization" in keys:
        scores = normalisation_scores(plan, state)
        options = list(NORMALIZATION_CHOICES)
        best = max(scores, key=scores.get) if scores else "none"
        choice = st.radio("Input normalisation used in training", options, index=options.index(best),
                          format_func=NORMALIZATION_CHOICES.get, key="import_normalization")
        if scores:
            tried = ", ".join(f"{label} {score:.1%}" for label, score in scores.items())
            st.caption(f"Accuracy on the first 1,000 MNIST test digits: {tried}. A wrong normalisation shows up "
                       "as a much lower accuracy; the better one is preselected.")
        if choice == "custom":
            left, right = st.columns(2)
            mean = left.number_input("Mean", value=0.5, format="%.4f", key="import_mean")
            std = right.number_input("Std", value=0.5, min_value=1e-6, format="%.4f", key="import_std")
            answers["normalization"] = f"{mean!r},{std!r}"
        else:
            answers["normalization"] = choice
    if "classes" in keys:
        binary = st.checkbox("The last layer has a single output unit: read it as a binary classifier (class 1 "
                             "when the output is > 0; stored as two logits (0, output), with the same predictions "
                             "and sigmoid probabilities)", value=True, key="import_binary")
        if not binary:
            st.warning("MechMNISTic analyses classifiers: a single output unit can only be imported as a binary one.")
            return None
        answers["classes"] = 2
    return answers


def import_upload(upload) -> None:
    try:
        state, plan = read_for_import(upload.name, upload.getvalue())
    except MechMNISTicError as exc:
        st.error(str(exc))
        return
    show_recognised(plan)
    answers = ask(plan, state)
    if answers is None:
        return
    if st.button("Load privately into this session", type="primary", key="import_load"):
        try:
            model = build_imported(state, plan, "private", **answers)
            name = loaders.add_private_model(model, Path(upload.name).stem)
        except MechMNISTicError as exc:
            st.error(str(exc))
            return
        st.session_state[FLASH_KEY] = (f"Loaded **{name}** privately into this session: every page now analyses "
                                       "it (it is selected in the sidebar). Nobody else can see it.")
        st.query_params["model"] = name
        st.rerun()


def private_models() -> None:
    names = loaders.private_model_names()
    if not names:
        return
    st.subheader("Your private models")
    st.caption("Private to this browser session: nobody else sees them, and they are gone when the session ends. "
               "Save one into the model zoo to keep it and share it.")
    for name in names:
        card = loaders.load_card(name)
        accuracy = card.metrics.get("test_accuracy")
        shown = f"; test accuracy {accuracy:.2%}" if accuracy is not None else ""
        text, button = st.columns([5, 1], vertical_alignment="center")
        text.markdown(f"🔒 **{name}**: {card.config.describe()}{shown}")
        if button.button("Remove", key=f"import_remove_{name}"):
            loaders.remove_private_model(name)
            if st.session_state.get("active_model") == name:
                del st.query_params["model"]
            st.rerun()
    save_to_zoo(names)


def save_to_zoo(names: list[str]) -> None:
    st.subheader("Save to the model zoo")
    active = st.session_state.get("active_model")
    which = st.selectbox("Private model", names, index=names.index(active) if active in names else len(names) - 1,
                         key="import_save_model")
    zoo_name = st.text_input("Name in the zoo", value=which.split(loaders.PRIVATE_MARK)[0],
                             key=f"import_save_name_{which}", max_chars=64,
                             help="Letters, digits, '.', '_' and '-'; an existing model is never replaced.")
    description = st.text_input("Description (optional)", key=f"import_save_description_{which}", max_chars=500)
    st.caption("Saving makes the model visible to everyone using this MechMNISTic server.")
    if st.button("Save to the model zoo", key="import_save"):
        model = loaders.load_model(which)
        try:
            ensure_name_free(zoo_name)
            save_imported(model, zoo_name, description=description)
        except MechMNISTicError as exc:
            st.error(str(exc))
            return
        loaders.zoo_changed()
        loaders.remove_private_model(which)
        st.session_state[FLASH_KEY] = f"Saved **{zoo_name}** into the model zoo, with its card."
        st.query_params["model"] = zoo_name
        st.rerun()


st.title("Import a model")
st.write(
    "Upload the weights (a state dict) of a ReLU MLP or a small CNN (conv → ReLU → max-pool blocks, then fully "
    "connected layers) trained on 28x28 MNIST images. The architecture is read from the parameter names and "
    "shapes; you are asked only for what the weights cannot tell. The model stays **private to this browser "
    "session** until you save it into the model zoo."
)
st.caption(f"Files up to {LIMIT_MIB} MiB. `.pt`/`.pth` files are read with `torch.load(weights_only=True)`: "
           "a file holding pickled objects or code is refused, never run. The same is available as "
           "`mechmnistic import FILE --name NAME`.")
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.success(flash)
uploaded = st.file_uploader("Weights file (.safetensors, .pt, .pth, .bin or .ckpt)", type=list(WEIGHTS_SUFFIXES),
                            max_upload_size=LIMIT_MIB, key="import_upload")
if uploaded is not None:
    import_upload(uploaded)
private_models()
