"""Import a model: upload a state dict or an ONNX file, see what was recognised, answer what the file cannot
tell (with every candidate architecture's accuracy to go by), analyse it privately in this session, and save it
into the model zoo only on purpose."""

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from mechmnistic.errors import MechMNISTicError
from mechmnistic.models.importer import (
    ARCHITECTURE_KEYS,
    ONNX_SUFFIXES,
    Answers,
    MissingAnswerError,
    UnsupportedModelError,
    build_imported,
    ensure_name_free,
    read_for_import,
    resolve,
    save_imported,
)
from mechmnistic.models.recognise import GUESSED_ACTIVATIONS
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
IMPORT_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES + ONNX_SUFFIXES
#: Candidate architectures listed when the file cannot tell which it is.
CANDIDATES_SHOWN = 8


def show_recognised(plan) -> None:
    st.subheader("What was recognised")
    if plan.recognised:
        st.success(f"Recognised as {plan.recognised}: there is nothing to ask.")
    what = "an ONNX graph (the computation itself)" if plan.file_format == "onnx" else "a state dict (names and shapes)"
    st.markdown(f"From {what}. Layers: **{', '.join(plan.layer_names)}**  \nNaming scheme: {plan.naming}. Layers keep "
                "the names your code gives them.")
    rows = [{"layer": layer.name, "what": layer.describe()} for layer in plan.layers]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.markdown("\n".join(f"- {note[0].upper()}{note[1:]}." for note in plan.notes))


def _resolved(plan, state, answers: Answers):
    """``resolve`` once per file and answers in this session: the resolution, or the exception it raised."""
    memo = st.session_state.setdefault("import_resolutions", {})
    if memo.get("file") != plan.file_sha256:
        memo.clear()
        memo["file"] = plan.file_sha256
    if answers not in memo:
        with st.spinner("Trying every architecture the file allows on MNIST test digits…"):
            try:
                memo[answers] = resolve(state, plan, answers)
            except (MissingAnswerError, UnsupportedModelError) as exc:
                memo[answers] = exc
    return memo[answers]


def ask(plan, state) -> Answers | None:
    """Widgets for what the file cannot tell; the answers, or None while they cannot be given."""
    keys = {question.key for question in plan.questions}
    answers = Answers()
    if keys:
        st.subheader("What the file cannot tell")
    if "normalization" in keys:
        hints = getattr(_resolved(plan, state, Answers()), "hints", {})
        options = list(NORMALIZATION_CHOICES)
        best = max(hints, key=hints.get) if hints else "none"
        choice = st.radio("Input normalisation used in training", options, index=options.index(best),
                          format_func=NORMALIZATION_CHOICES.get, key="import_normalization")
        if hints:
            tried = ", ".join(f"{label} {score:.1%}" for label, score in hints.items())
            st.caption(f"Accuracy of the best architecture on MNIST test digits: {tried}. A wrong normalisation "
                       "shows up as a much lower accuracy; the better one is preselected.")
        if choice == "custom":
            left, right = st.columns(2)
            mean = left.number_input("Mean", value=0.5, format="%.4f", key="import_mean")
            std = right.number_input("Std", value=0.5, min_value=1e-6, format="%.4f", key="import_std")
            answers = dataclasses.replace(answers, normalization=f"{mean!r},{std!r}")
        else:
            answers = dataclasses.replace(answers, normalization=choice)
    if "classes" in keys:
        binary = st.checkbox("The last layer has a single output unit: read it as a binary classifier (class 1 "
                             "when the output is > 0; stored as two logits (0, output), with the same predictions "
                             "and sigmoid probabilities)", value=True, key="import_binary")
        if not binary:
            st.warning("MechMNISTic analyses classifiers: a single output unit can only be imported as a binary one.")
            return None
        answers = dataclasses.replace(answers, classes=2)
    return architecture(plan, state, answers)


def architecture(plan, state, answers: Answers) -> Answers | None:
    """The architecture: as decided (say how), or chosen here among the candidates when the file cannot tell."""
    answers = dataclasses.replace(answers, **_described(plan))
    outcome = _resolved(plan, state, answers)
    if isinstance(outcome, UnsupportedModelError):
        st.error(str(outcome))
        return None
    if not isinstance(outcome, MissingAnswerError):
        st.info(f"Architecture: {outcome.decision}.")
        return answers
    st.subheader("Which architecture is it?")
    st.warning(f"{outcome} Choose the one your code has (or describe it below).")
    ranking = outcome.ranking[:CANDIDATES_SHOWN]
    if not ranking:
        return None
    rows = [{**scored.candidate.choices, "accuracy": scored.accuracy, "test digits": scored.digits}
            for scored in ranking]
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={"accuracy": st.column_config.NumberColumn(format="percent")})
    labels = [f"{scored.candidate.describe()} ({scored.accuracy:.1%})" for scored in ranking]
    picked = st.radio("The architecture of your network", range(len(ranking)), index=None,
                      format_func=labels.__getitem__, key="import_candidate")
    if picked is None:
        return None
    chosen = dataclasses.replace(answers, **ranking[picked].candidate.choices)
    outcome = _resolved(plan, state, chosen)
    if isinstance(outcome, MechMNISTicError):
        st.error(str(outcome))
        return None
    st.info(f"Architecture: {outcome.decision}.")
    return chosen


def _described(plan) -> dict[str, str]:
    """What the user typed about the architecture, in an expander (state dicts only)."""
    if plan.file_format == "onnx" or plan.recognised:
        return {}
    with st.expander("Describe the architecture yourself (optional)"):
        st.caption("Leave a field empty to let the importer try every option. Per conv layer, comma-separated.")
        activation = st.selectbox("Activation", ["", *GUESSED_ACTIVATIONS, "leaky_relu(0.01)", "leaky_relu(0.1)"],
                                  key="import_activation")
        columns = st.columns(3)
        given = {"activation": activation}
        for column, key in zip(columns, ARCHITECTURE_KEYS[1:], strict=True):
            given[key] = column.text_input(key.capitalize(), key=f"import_{key}",
                                           placeholder={"pool": "none,max2", "padding": "0,0", "stride": "1,1"}[key])
    return {key: value.strip() for key, value in given.items() if value and value.strip()}


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
            model = build_imported(state, plan, "private", answers)
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
    "Upload an MNIST network you trained: its weights (a PyTorch state dict) or an ONNX export (from PyTorch, "
    "Keras/TensorFlow via tf2onnx, or JAX). MLPs and CNNs of any depth: Linear and Conv2d layers (any padding and "
    "stride), batch normalisation, ReLU, LeakyReLU, ELU, GELU, SiLU, tanh or sigmoid, max or average pooling. An "
    "ONNX file records the computation; a state dict only names and shapes, so every architecture they allow is "
    "tried on MNIST test digits and you are asked whenever the best is not clearly best. The model stays "
    "**private to this browser session** until you save it into the model zoo."
)
st.caption(f"Files up to {LIMIT_MIB} MiB. `.pt`/`.pth` files are read with `torch.load(weights_only=True)` and ONNX "
           "files as data: a file holding pickled objects or code is refused, never run, and an ONNX file whose "
           "tensors live in external files is refused. The same is available as `mechmnistic import FILE --name "
           "NAME`.")
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.success(flash)
uploaded = st.file_uploader("Weights or ONNX file (.safetensors, .pt, .pth, .bin, .ckpt or .onnx)",
                            type=list(IMPORT_SUFFIXES), max_upload_size=LIMIT_MIB, key="import_upload")
if uploaded is not None:
    import_upload(uploaded)
private_models()
